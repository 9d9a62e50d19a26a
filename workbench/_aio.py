"""Run a coroutine from synchronous code, in a plain script and inside Jupyter alike.

Jupyter's kernel already runs an event loop, so `asyncio.run` would fail there; nest-asyncio
lets the helpers' sync variants re-enter it."""

from __future__ import annotations

import asyncio
from collections.abc import Coroutine
from typing import Any, TypeVar

T = TypeVar("T")


def run_sync(coro: Coroutine[Any, Any, T]) -> T:
    try:
        loop = asyncio.get_running_loop()
    except RuntimeError:
        return asyncio.run(coro)
    import nest_asyncio

    nest_asyncio.apply(loop)
    return loop.run_until_complete(coro)
