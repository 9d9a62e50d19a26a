"""Serve the services: `python -m services --host 127.0.0.1 --port 9080 [--workers N]`.

granian serves the Restate app over HTTP/2 (prior knowledge) and HTTP/1.1 from worker
processes (`services.worker`); WORKBENCH_SERVICES_SERVER=hypercorn serves it with hypercorn
instead (in this process when there is one worker). SIGINT or SIGTERM stops it gracefully. The
choices and why they are the defaults: `services.serving`."""

from __future__ import annotations

import argparse
import logging

from .serving import (
    serve_hypercorn_workers,
    serve_with_granian,
    serve_with_hypercorn,
    server,
)


def main() -> None:
    parser = argparse.ArgumentParser(prog="python -m services", description=__doc__)
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, default=9080)
    parser.add_argument(
        "--workers",
        type=int,
        default=1,
        help="worker processes behind the one address (Restate spreads its HTTP/2 connections "
        "over them); each imports the app, so each costs its memory",
    )
    args = parser.parse_args()
    if args.workers < 1:
        parser.error(f"--workers must be 1 or more, got {args.workers}")
    logging.basicConfig(  # one line per event, with the time (the log is a supervisord file)
        level=logging.WARNING, format="%(asctime)s %(levelname)s %(name)s: %(message)s"
    )
    chosen = server()
    if chosen == "granian":
        serve_with_granian("services.worker:app", args.host, args.port, args.workers)
    elif args.workers > 1:
        serve_hypercorn_workers("services.worker:app", args.host, args.port, args.workers)
    else:
        from .app import app

        serve_with_hypercorn(lambda: app, args.host, args.port)


if __name__ == "__main__":
    main()
