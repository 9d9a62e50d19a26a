"""Serve the services: `python -m services --host 127.0.0.1 --port 9080`.

Hypercorn serves the Restate app over HTTP/2 (prior knowledge) and HTTP/1.1. SIGINT or SIGTERM
stops it gracefully."""

from __future__ import annotations

import argparse
import asyncio
import logging
import os
import signal
import sys
from typing import Any


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

    if server() == "granian":
        serve_with_granian(args.host, args.port, args.workers)
        return
    config = hypercorn_config(args.host, args.port)
    if args.workers > 1:  # each worker imports the app (services.worker); this parent does not
        from hypercorn.run import run as run_workers

        config.application_path = "services.worker:app"
        config.workers = args.workers
        config.worker_class = "uvloop" if event_loop() == "uvloop" else "asyncio"
        sys.exit(run_workers(config))
    from .app import app

    freeze_imported_objects()
    serve_until_signalled(app, config)


def hypercorn_config(host: str, port: int) -> Any:
    """The hypercorn settings the services are served with (the benchmark's bare floor uses
    them too): many HTTP/2 streams per connection, long keep-alive, a 2 s graceful stop."""
    from hypercorn.config import Config

    config = Config()
    config.bind = [f"{host}:{port}"]
    config.h2_max_concurrent_streams = 1000
    config.keep_alive_timeout = 600
    config.graceful_timeout = 2.0
    config.accesslog = None
    return config


def freeze_imported_objects() -> None:
    """Move everything the imports made (the agents SDK, openai's types, pydantic's models:
    hundreds of thousands of objects) out of the garbage collector's reach: they live as long as
    the process, and every full collection would walk them all again. Measured: a services
    process spent 0.80 s of a benchmark run in the collector, 0.38 s with this."""
    import gc

    gc.collect()
    gc.freeze()


def serve_until_signalled(app: Any, config: Any) -> None:
    """Serve `app` in this process until SIGINT or SIGTERM, then stop gracefully."""
    from hypercorn.asyncio import serve

    async def run() -> None:
        stop = asyncio.Event()
        loop = asyncio.get_running_loop()
        loop.add_signal_handler(signal.SIGINT, stop.set)
        # The Restate SDK takes the loop's SIGTERM handler at its first request (to tell its
        # invocations of the shutdown); a handler set here would be replaced and SIGTERM would
        # no longer stop the server. Its own hook list keeps both.
        from restate.server import install_shutdown_hook

        install_shutdown_hook(loop, stop.set, signal.SIGTERM)
        await serve(app, config, shutdown_trigger=stop.wait)  # type: ignore[arg-type]

    if event_loop() == "uvloop":
        import uvloop

        uvloop.run(run())
    else:
        asyncio.run(run())


SERVER_ENV = "WORKBENCH_SERVICES_SERVER"


def server() -> str:
    """The HTTP/2 server the services run in: hypercorn (pure Python, the default), or granian
    (Rust) with WORKBENCH_SERVICES_SERVER=granian. Measured (`python -m workbench.bench_ab`,
    medians of 3 alternated rounds of 96 claims at c=32): granian took 16.6 ms of CPU off a
    claim's 167 (services -9.5, restate-server -6.3) and lifted throughput from 8.3 to 9.2
    claims/s. Not the default yet: the fault suite (crashes, kills, workers) runs on hypercorn."""
    return _chosen(SERVER_ENV, ("hypercorn", "granian"))


def serve_with_granian(host: str, port: int, workers: int) -> None:
    """Serve the services with granian: its main process holds the port and stops on SIGINT or
    SIGTERM; each worker process imports the app (`services.worker`: it dies with its parent and
    freezes its imports), with as many HTTP/2 streams per connection as hypercorn is given."""
    from granian import Granian
    from granian.constants import HTTPModes, Interfaces, Loops
    from granian.http import HTTP2Settings
    from granian.log import LogLevels

    Granian(
        "services.worker:app",
        address=host,
        port=port,
        interface=Interfaces.ASGI,
        http=HTTPModes.auto,
        loop=Loops.uvloop if event_loop() == "uvloop" else Loops.asyncio,
        workers=workers,
        http2_settings=HTTP2Settings(max_concurrent_streams=1000),
        log_level=LogLevels.warning,
    ).serve()


EVENT_LOOP_ENV = "WORKBENCH_EVENT_LOOP"


def event_loop() -> str:
    """The event loop the services run on: uvloop unless WORKBENCH_EVENT_LOOP=asyncio (the
    standard one). Measured (`python -m workbench.bench_ab`, medians of 3 alternated rounds of 96
    claims at c=32): uvloop took 1-4 ms of CPU off a claim's ~160 ms, always in its favour."""
    return _chosen(EVENT_LOOP_ENV, ("uvloop", "asyncio"))


def _chosen(env: str, choices: tuple[str, ...]) -> str:
    """The value of `env` among `choices` (the first when unset), or an error naming them."""
    value = os.environ.get(env, "").strip().lower() or choices[0]
    if value not in choices:
        raise SystemExit(f"{env}={value!r}: use " + " or ".join(map(repr, choices)))
    return value


if __name__ == "__main__":
    main()
