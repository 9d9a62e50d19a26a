"""The services app in one of the server's worker processes (`python -m services`: granian's
workers, or hypercorn's with `--workers N`): each worker imports the app on its own and dies
with its parent. A worker that crashes makes the parent stop the others and exit, so supervisord
restarts the whole deployment (as when one process crashes); a parent killed outright (SIGKILL,
`stack.kill`) takes its workers with it instead of leaving them serving its port."""

from __future__ import annotations

import logging

from .serving import die_with_parent, freeze_imported_objects, passing_sigterm_on

die_with_parent()
logging.basicConfig(  # as `python -m services` does for the one process
    level=logging.WARNING, format="%(asctime)s %(levelname)s %(name)s: %(message)s"
)

from .app import app as _app  # noqa: E402  (after the parent-death signal: never outlives it)

freeze_imported_objects()

app = passing_sigterm_on(_app)
"""The services app; SIGTERM is passed on as SIGINT (see `passing_sigterm_on`)."""

__all__ = ["app"]
