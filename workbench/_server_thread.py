"""An ASGI app served by hypercorn in a background thread of this process, on its own event loop.

    server = ServerThread(app, name="Triage", log_path=home / "logs" / "served-Triage.log")
    server.start(port)            # returns once the port answers; OSError if it is taken
    server.stop(timeout_s=5)      # graceful, then the thread ends

The loop is the thread's own: never the kernel's (a cell's `await` stays free) and never
`workbench._aio`'s (the sync helpers that call this server run there, and would otherwise wait on
themselves). Hypercorn speaks HTTP/2 with prior knowledge and HTTP/1.1, as Restate needs. Its log
goes to a file, never to stderr (in a notebook that would be a red box in whatever cell runs).
Every server still running at interpreter exit is stopped (`atexit`), so nothing outlives the
kernel: the port is free for the next one.
"""

from __future__ import annotations

import asyncio
import atexit
import concurrent.futures
import logging
import threading
import time
import weakref
from pathlib import Path
from typing import Any

import httpx

__all__ = ["ServerThread"]

_live: weakref.WeakSet[ServerThread] = weakref.WeakSet()
_THREAD_PREFIX = "workbench-serve-"
ROUTED_LOGGERS = ("restate.server", "restate.server_context", "restate.vm", "openai.agents")
"""Loggers whose records, when made on a server's thread, go to that server's log file instead
of the kernel's stderr (a handler that raises logs its traceback there, once per attempt; the
invocation's status and `last_failure` say the same where the user looks)."""


class ServerThread:
    """One hypercorn server for one ASGI app, in one daemon thread."""

    def __init__(
        self,
        app: Any,
        *,
        name: str,
        log_path: Path,
        host: str = "127.0.0.1",
        graceful_timeout_s: float = 0.5,
    ) -> None:
        self.app = app
        self.name = name
        self.host = host
        self.log_path = Path(log_path)
        self.graceful_timeout_s = graceful_timeout_s
        self.port: int | None = None
        self._thread: threading.Thread | None = None
        self._loop: asyncio.AbstractEventLoop | None = None
        self._stop: asyncio.Event | None = None
        self._done: concurrent.futures.Future[None] | None = None
        self._logger: logging.Logger | None = None

    @property
    def url(self) -> str:
        return f"http://{self.host}:{self.port}"

    @property
    def running(self) -> bool:
        return self._thread is not None and self._thread.is_alive()

    def __repr__(self) -> str:
        state = "running" if self.running else "stopped"
        return f"ServerThread({self.name!r}, {self.url if self.port else '-'}, {state})"

    # -- start -------------------------------------------------------------------------------------
    def start(self, port: int, *, timeout_s: float = 15.0, poll_interval_s: float = 0.02) -> None:
        """Serve on `port` and return once `/health` answers there. Raises OSError when the port
        cannot be bound (taken), TimeoutError when the server does not answer in time; in both
        cases nothing is left running."""
        if self.running:
            raise RuntimeError(f"{self!r} is already running; stop() it first")
        self.port = port
        self._logger = _file_logger(self.name, self.log_path)
        ready = threading.Event()
        self._done = concurrent.futures.Future()
        self._thread = threading.Thread(
            target=self._run, args=(ready,), name=f"{_THREAD_PREFIX}{self.name}", daemon=True
        )
        self._thread.start()
        ready.wait()
        _live.add(self)
        deadline = time.monotonic() + timeout_s
        with httpx.Client(timeout=1.0, trust_env=False) as http:
            while True:
                if self._done.done():  # serve() ended before answering: bind failed
                    self._thread.join(timeout=5.0)
                    error = self._done.exception()
                    self._close_log()
                    if error is not None:
                        raise error
                    raise RuntimeError(f"{self.name}: the server stopped before it answered")
                try:
                    if http.get(f"{self.url}/health").status_code == 200:
                        return
                except httpx.HTTPError:
                    pass
                if time.monotonic() >= deadline:
                    self.stop()
                    raise TimeoutError(
                        f"{self.name}: the server on {self.url} did not answer GET /health in "
                        f"{timeout_s:g} s (see {self.log_path})"
                    )
                time.sleep(poll_interval_s)

    def _run(self, ready: threading.Event) -> None:
        loop = asyncio.new_event_loop()
        asyncio.set_event_loop(loop)
        self._loop = loop
        assert self._done is not None
        try:
            self._stop = asyncio.Event()
            ready.set()
            loop.run_until_complete(self._serve())
        except BaseException as e:  # noqa: BLE001 - handed to the thread that started us
            self._done.set_exception(e)
        else:
            self._done.set_result(None)
        finally:
            ready.set()
            try:
                loop.run_until_complete(loop.shutdown_asyncgens())
            finally:
                loop.close()

    async def _serve(self) -> None:
        from hypercorn.asyncio import serve
        from hypercorn.config import Config

        config = Config()
        config.bind = [f"{self.host}:{self.port}"]
        config.h2_max_concurrent_streams = 1000
        config.keep_alive_timeout = 600
        config.accesslog = None
        config.errorlog = self._logger
        assert self._stop is not None and self._logger is not None
        logger, stop = self._logger, self._stop
        asyncio.get_running_loop().set_exception_handler(
            lambda loop, context: logger.warning(
                "%s", context.get("message"), exc_info=context.get("exception")
            )
        )
        app = _Disconnectable(self.app)

        async def shutdown() -> None:
            """Stop: requests in flight get the grace period, then read a disconnect; hypercorn
            shuts down once none runs (so it cancels nothing of the app's)."""
            await stop.wait()
            await app.until_idle(self.graceful_timeout_s)
            app.cut.set()
            await app.until_idle(5.0)

        config.graceful_timeout = 0.5  # by then only idle connections are left
        await serve(app, config, shutdown_trigger=shutdown)

    # -- stop --------------------------------------------------------------------------------------
    def stop(self, *, timeout_s: float = 10.0) -> None:
        """Stop serving (requests in flight get `graceful_timeout_s`) and end the thread.
        Idempotent."""
        thread, loop, stop = self._thread, self._loop, self._stop
        if thread is not None and thread.is_alive() and loop is not None and stop is not None:
            try:
                loop.call_soon_threadsafe(stop.set)
            except RuntimeError:  # the loop closed meanwhile
                pass
            thread.join(timeout=timeout_s)
            if thread.is_alive():
                raise TimeoutError(
                    f"{self.name}: the server on {self.url} did not stop in {timeout_s:g} s"
                )
        _live.discard(self)
        self._close_log()

    def _close_log(self) -> None:
        logger, self._logger = self._logger, None
        if logger is not None:
            for handler in list(logger.handlers):
                logger.removeHandler(handler)
                handler.close()


class _Disconnectable:
    """ASGI middleware: once `cut` is set, every request still open reads `http.disconnect`,
    as if the connection dropped. Restate keeps an invocation's stream open while its handler
    waits (a timer, a model call), and the SDK does not end a handler on cancellation; a
    disconnect ends the attempt, which Restate retries at the same address (as after a crash)."""

    def __init__(self, app: Any) -> None:
        self.app = app
        self.cut = asyncio.Event()
        self._active = 0
        self._idle = asyncio.Event()
        self._idle.set()

    async def until_idle(self, timeout_s: float) -> None:
        """Wait until no request runs, at most `timeout_s`."""
        try:
            await asyncio.wait_for(self._idle.wait(), timeout_s)
        except TimeoutError:
            pass

    async def __call__(self, scope: Any, receive: Any, send: Any) -> None:
        if scope.get("type") != "http":
            await self.app(scope, receive, send)
            return
        cut = self.cut

        async def receive_until_cut() -> Any:
            if cut.is_set():
                return {"type": "http.disconnect"}
            message = asyncio.ensure_future(receive())
            stopped = asyncio.ensure_future(cut.wait())
            try:
                await asyncio.wait({message, stopped}, return_when=asyncio.FIRST_COMPLETED)
            finally:
                stopped.cancel()
            if message.done():
                return message.result()
            message.cancel()
            return {"type": "http.disconnect"}

        self._active += 1
        self._idle.clear()
        try:
            await self.app(scope, receive_until_cut, send)
        finally:
            self._active -= 1
            if self._active == 0:
                self._idle.set()


def _file_logger(name: str, path: Path) -> logging.Logger:
    """A logger of its own (never hypercorn's shared one) writing to `path` only."""
    path.parent.mkdir(parents=True, exist_ok=True)
    _route_logs()
    logger = logging.getLogger(f"workbench.served.{name}")
    logger.propagate = False
    logger.setLevel(logging.INFO)
    for handler in list(logger.handlers):
        logger.removeHandler(handler)
        handler.close()
    handler = logging.FileHandler(path)
    handler.setFormatter(logging.Formatter("%(asctime)s [%(levelname)s] %(message)s"))
    logger.addHandler(handler)
    return logger


class _ToServerLog(logging.Filter):
    """Drops a record made on a server thread from its logger's usual path, after handing it
    to that server's file logger."""

    def filter(self, record: logging.LogRecord) -> bool:
        thread = record.threadName or ""
        if not thread.startswith(_THREAD_PREFIX):
            return True
        target = logging.getLogger(f"workbench.served.{thread[len(_THREAD_PREFIX) :]}")
        if target.handlers:
            target.handle(record)
        return False


_router = _ToServerLog()


def _route_logs() -> None:
    for name in ROUTED_LOGGERS:
        logger = logging.getLogger(name)
        if _router not in logger.filters:
            logger.addFilter(_router)


@atexit.register
def _stop_all() -> None:
    for server in list(_live):
        try:
            server.stop(timeout_s=5.0)
        except Exception:  # noqa: BLE001 - the interpreter is exiting: stop the others
            pass
