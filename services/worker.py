"""The services app as one of several hypercorn worker processes (`python -m services --workers
N`): each worker imports the app on its own, and dies with its parent. A worker that crashes
makes hypercorn's parent stop the others and exit, so supervisord restarts the whole deployment
(as when the one process crashes); a parent killed outright (SIGKILL, `stack.kill`) takes its
workers with it instead of leaving them serving its port."""

from __future__ import annotations

import ctypes
import logging
import os
import signal
import sys

PR_SET_PDEATHSIG = 1


def _die_with_parent() -> None:
    if sys.platform.startswith("linux"):
        ctypes.CDLL(None, use_errno=True).prctl(PR_SET_PDEATHSIG, signal.SIGKILL)
    if os.getppid() == 1:  # the parent is already gone
        os._exit(1)


_die_with_parent()
logging.basicConfig(  # as `python -m services` does for the one process
    level=logging.WARNING, format="%(asctime)s %(levelname)s %(name)s: %(message)s"
)

from .__main__ import freeze_imported_objects  # noqa: E402
from .app import app as _app  # noqa: E402  (after the parent-death signal: never outlives it)

freeze_imported_objects()

_sigterm_passed_on = False


async def app(scope: object, receive: object, send: object) -> None:
    """The services app. At the first request the Restate SDK takes the loop's SIGTERM handler
    (to tell its invocations of the shutdown), which is how the server stops this worker
    (granian's parent terminates its workers); a SIGTERM is therefore passed on as SIGINT, which
    the server still handles, beside the SDK's own hook."""
    global _sigterm_passed_on
    if not _sigterm_passed_on:
        _sigterm_passed_on = True
        import asyncio

        from restate.server import install_shutdown_hook

        install_shutdown_hook(
            asyncio.get_running_loop(),
            lambda: os.kill(os.getpid(), signal.SIGINT),
            signal.SIGTERM,
        )
    await _app(scope, receive, send)  # type: ignore[arg-type]


__all__ = ["app"]
