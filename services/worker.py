"""The services app in one of the server's worker processes (`python -m services`: granian's
workers, or hypercorn's with `--workers N`): each worker imports the app on its own and dies
with its parent. A worker that crashes makes the parent stop the others and exit, so supervisord
restarts the whole deployment (as when one process crashes); a parent killed outright (SIGKILL,
`stack.kill`) takes its workers with it instead of leaving them serving its port."""

from __future__ import annotations

import logging

from .serving import worker_app

logging.basicConfig(  # as `python -m services` does for the one process
    level=logging.WARNING, format="%(asctime)s %(levelname)s %(name)s: %(message)s"
)


def _services_app() -> object:
    from .app import app

    return app


app = worker_app(_services_app)
"""The services app; SIGTERM is passed on as SIGINT (see `services.serving.passing_sigterm_on`)."""

__all__ = ["app"]
