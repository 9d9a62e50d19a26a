"""How a Restate app is served in its own process: the HTTP/2 server (granian by default,
hypercorn on request), the event loop (uvloop by default), a graceful stop on SIGINT or SIGTERM,
and the worker processes' ties to their parent. Importing this module does nothing by itself:
the services (`python -m services`) and the benchmark's bare floor (`workbench.bench_floor`)
are both served through it, so the floor is measured on the same server as the claims."""

from __future__ import annotations

import asyncio
import ctypes
import os
import signal
import sys
from collections.abc import Callable
from typing import Any

SERVER_ENV = "WORKBENCH_SERVICES_SERVER"
EVENT_LOOP_ENV = "WORKBENCH_EVENT_LOOP"


def server() -> str:
    """The HTTP/2 server the services run in: granian (Rust, the default), or hypercorn (pure
    Python) with WORKBENCH_SERVICES_SERVER=hypercorn. Measured (`python -m workbench.bench_ab`,
    four A/Bs of 3-5 alternated rounds of 96 claims at c=32): granian's CPU per claim, all
    processes, -16.6, -9.4, -9.7 and +7.2 ms (median -9.6 of about 190), the services' own about
    -10 ms in three; throughput equal or higher in all four (README, Benchmark)."""
    return _chosen(SERVER_ENV, ("granian", "hypercorn"))


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


# -- granian ---------------------------------------------------------------------------------------


def serve_with_granian(
    target: str, host: str, port: int, workers: int = 1, *, factory: bool = False
) -> None:
    """Serve the ASGI app at `target` ("module:attribute"; with `factory`, a function that
    returns the app) with granian until SIGINT or SIGTERM. Its main process holds the port and
    imports no app; each of its `workers` processes imports the target, which must tie the
    worker to its parent (`die_with_parent`) and pass SIGTERM on (`passing_sigterm_on`).
    HTTP/2 (prior knowledge, as Restate speaks it) and HTTP/1.1 on one port, with as many
    streams per connection as Restate opens."""
    from granian import Granian
    from granian.constants import HTTPModes, Interfaces, Loops
    from granian.http import HTTP2Settings
    from granian.log import LogLevels

    try:
        Granian(
            target,
            address=host,
            port=port,
            interface=Interfaces.ASGINL,  # the Restate app has no lifespan events
            http=HTTPModes.auto,
            loop=Loops.uvloop if event_loop() == "uvloop" else Loops.asyncio,
            workers=workers,
            http2_settings=HTTP2Settings(max_concurrent_streams=1000),
            log_level=LogLevels.warning,
            factory=factory,
            # How long a stop waits for each worker before killing it. Without it, granian waits
            # forever: after one of two workers crashed, the other kept serving Restate's open
            # HTTP/2 connection, the parent never exited, and supervisord never restarted the
            # deployment (found by test_workers). 2 s, as hypercorn's graceful_timeout.
            workers_kill_timeout=2,
        ).serve()
    except RuntimeError as exc:  # granian's bind errors carry a Rust backtrace: keep the cause
        cause = str(exc).splitlines()[0] if str(exc) else type(exc).__name__
        raise SystemExit(f"cannot serve on {host}:{port}: {cause}") from None


PR_SET_PDEATHSIG = 1


def die_with_parent() -> None:
    """Make this worker process end (SIGKILL) when its parent does: a parent killed outright
    (SIGKILL, `stack.kill`) takes its workers with it instead of leaving them serving its port."""
    if sys.platform.startswith("linux"):
        ctypes.CDLL(None, use_errno=True).prctl(PR_SET_PDEATHSIG, signal.SIGKILL)
    if os.getppid() == 1:  # the parent is already gone
        os._exit(1)


def worker_app(build: Callable[[], Any]) -> Any:
    """The app `build()` returns, made for a server's worker process: the worker tied to its
    parent first (so a slow import never outlives it), the imports frozen, SIGTERM passed on."""
    die_with_parent()
    app = build()
    freeze_imported_objects()
    return passing_sigterm_on(app)


def passing_sigterm_on(app: Any) -> Any:
    """`app`, in a worker whose server stops it with SIGTERM (granian's main process does).

    At its first request the Restate SDK takes the loop's SIGTERM handler (to tell its
    invocations of the shutdown), and the server would no longer stop; so at that first request
    a hook joins the SDK's own hook list and passes SIGTERM on as SIGINT, which the server still
    handles."""
    hooked = False

    async def serving(scope: Any, receive: Any, send: Any) -> None:
        nonlocal hooked
        if not hooked:
            hooked = True
            from restate.server import install_shutdown_hook

            install_shutdown_hook(
                asyncio.get_running_loop(),
                lambda: os.kill(os.getpid(), signal.SIGINT),
                signal.SIGTERM,
            )
        await app(scope, receive, send)

    return serving


# -- hypercorn -------------------------------------------------------------------------------------


def hypercorn_config(host: str, port: int) -> Any:
    """The hypercorn settings an app is served with: many HTTP/2 streams per connection, long
    keep-alive, a 2 s graceful stop."""
    from hypercorn.config import Config

    config = Config()
    config.bind = [f"{host}:{port}"]
    config.h2_max_concurrent_streams = 1000
    config.keep_alive_timeout = 600
    config.graceful_timeout = 2.0
    config.accesslog = None
    return config


def serve_with_hypercorn(app: Callable[[], Any], host: str, port: int) -> None:
    """Serve the app `app()` returns in this process with hypercorn until SIGINT or SIGTERM,
    then stop gracefully."""
    from hypercorn.asyncio import serve

    config = hypercorn_config(host, port)
    served = app()
    freeze_imported_objects()

    async def run() -> None:
        stop = asyncio.Event()
        loop = asyncio.get_running_loop()
        loop.add_signal_handler(signal.SIGINT, stop.set)
        # The Restate SDK takes the loop's SIGTERM handler at its first request (to tell its
        # invocations of the shutdown); a handler set here would be replaced and SIGTERM would
        # no longer stop the server. Its own hook list keeps both.
        from restate.server import install_shutdown_hook

        install_shutdown_hook(loop, stop.set, signal.SIGTERM)
        await serve(served, config, shutdown_trigger=stop.wait)  # type: ignore[arg-type]

    if event_loop() == "uvloop":
        import uvloop

        uvloop.run(run())
    else:
        asyncio.run(run())


def serve_hypercorn_workers(target: str, host: str, port: int, workers: int) -> None:
    """Serve the ASGI app at `target` from `workers` hypercorn worker processes (each imports
    it; this parent does not). Exits with hypercorn's status."""
    from hypercorn.run import run as run_workers

    config = hypercorn_config(host, port)
    config.application_path = target
    config.workers = workers
    config.worker_class = "uvloop" if event_loop() == "uvloop" else "asyncio"
    sys.exit(run_workers(config))


def freeze_imported_objects() -> None:
    """Move everything the imports made (the agents SDK, openai's types, pydantic's models:
    hundreds of thousands of objects) out of the garbage collector's reach: they live as long as
    the process, and every full collection would walk them all again. Measured: a services
    process spent 0.80 s of a benchmark run in the collector, 0.38 s with this."""
    import gc

    gc.collect()
    gc.freeze()
