"""Run the workbench's coroutines from synchronous code: in a plain script, in a Jupyter cell,
in a widget's callback, while other cells are queued.

Every sync helper hands its coroutine to ONE private event loop that runs in a daemon thread
(started on first use) and blocks the calling thread until the result is there. This is the
pattern of `jupyter_core.utils.run_sync` (its `_TaskRunner`) and of asgiref's `async_to_sync`:

- The kernel's own event loop is never re-entered. ipykernel 7 runs each cell as a task in its
  own `contextvars.Context`; re-entering its loop from inside a cell (nest-asyncio's
  `run_until_complete`) steps the NEXT queued cell's task inside the current one, which fails
  with "cannot enter context ... is already entered" and leaves every later cell at `[*]`.
  Here the calling thread only waits on a `concurrent.futures.Future`, so queued cells (Run
  All), widget callbacks and the user's own `await`s on the kernel's loop are untouched.
- The caller's context variables go with the coroutine (`run_coroutine_threadsafe` schedules
  it in a copy of the caller's `Context`), so Jupyter's output routing and OpenTelemetry's
  context see the calling cell.
- Ctrl-C / "Interrupt kernel" cancels the coroutine on the private loop, then re-raises.
- Called from the private loop's own thread (a sync helper inside a coroutine that already runs
  there), the coroutine runs on a fresh loop in a short-lived thread instead of deadlocking.

nest-asyncio is not used: the user may still apply it for their own code; it does not affect
this loop.
"""

from __future__ import annotations

import asyncio
import atexit
import concurrent.futures
import contextvars
import threading
from collections.abc import Coroutine
from typing import Any, TypeVar

T = TypeVar("T")

__all__ = ["run_sync", "loop"]


class _LoopThread:
    """One event loop in one daemon thread, started on first use, closed at exit."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._loop: asyncio.AbstractEventLoop | None = None
        self._thread: threading.Thread | None = None

    def get(self) -> asyncio.AbstractEventLoop:
        with self._lock:
            if self._loop is None or self._thread is None or not self._thread.is_alive():
                ready = threading.Event()
                loop = asyncio.new_event_loop()

                def run() -> None:
                    asyncio.set_event_loop(loop)
                    loop.call_soon(ready.set)
                    loop.run_forever()

                thread = threading.Thread(target=run, name="workbench-aio", daemon=True)
                thread.start()
                ready.wait()
                self._loop, self._thread = loop, thread
            return self._loop

    def in_loop_thread(self) -> bool:
        return self._thread is not None and threading.current_thread() is self._thread

    def close(self) -> None:
        with self._lock:
            loop, thread = self._loop, self._thread
            self._loop = self._thread = None
        if loop is None or thread is None:
            return
        loop.call_soon_threadsafe(loop.stop)
        thread.join(timeout=2.0)
        if not thread.is_alive():
            loop.close()


_runner = _LoopThread()
atexit.register(_runner.close)


def loop() -> asyncio.AbstractEventLoop:
    """The private loop the sync helpers run on (for code that must schedule work there)."""
    return _runner.get()


def run_sync(coro: Coroutine[Any, Any, T]) -> T:
    """Run `coro` to completion on the workbench's private loop and return its result (or raise
    its exception); safe to call from any thread, with or without a running event loop."""
    if _runner.in_loop_thread():
        return _run_in_fresh_thread(coro)
    # run_coroutine_threadsafe schedules the task with a copy of this thread's context
    future = asyncio.run_coroutine_threadsafe(coro, _runner.get())
    try:
        return future.result()
    except BaseException:  # KeyboardInterrupt (kernel interrupt) while waiting: stop the work
        future.cancel()
        raise


def _run_in_fresh_thread(coro: Coroutine[Any, Any, T]) -> T:
    context = contextvars.copy_context()
    with concurrent.futures.ThreadPoolExecutor(1, thread_name_prefix="workbench-aio") as pool:
        return pool.submit(context.run, asyncio.run, coro).result()
