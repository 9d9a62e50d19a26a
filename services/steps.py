"""Durable steps that also run outside Restate.

Inside a Restate handler `step()` journals the call with `ctx.run_typed`, so a retry or replay
reuses the recorded result; outside (the in-process baseline of the benchmark, unit tests) it
simply calls the function."""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from datetime import timedelta
from typing import Any, TypeVar

from restate import RunOptions, TerminalError
from restate.server_context import current_context

T = TypeVar("T")

STEP_OPTIONS = RunOptions(
    max_attempts=5, initial_retry_interval=timedelta(milliseconds=100), retry_interval_factor=2.0
)
"""A step that fails five times in a row fails for good (TerminalError): never an endless retry."""

LLM_OPTIONS = RunOptions(
    max_attempts=4, initial_retry_interval=timedelta(milliseconds=200), retry_interval_factor=2.0
)
"""Model calls: four tries, then the claim fails with the model's last error as its reason."""


async def step(name: str, fn: Callable[..., T | Awaitable[T]], *args: Any, **kwargs: Any) -> T:
    ctx = current_context()
    if ctx is None:
        result = fn(*args, **kwargs)
        if isinstance(result, Awaitable):
            result = await result
        return result  # type: ignore[return-value]
    return await ctx.run_typed(
        name, _permanent_errors_are_terminal(fn), STEP_OPTIONS, *args, **kwargs
    )


PERMANENT_ERRORS: tuple[type[Exception], ...] = (ValueError, LookupError)
"""Errors that a retry cannot fix (bad input, unknown names): journaled as terminal at once."""


def _permanent_errors_are_terminal(fn: Callable[..., Any]) -> Callable[..., Any]:
    async def run(*args: Any, **kwargs: Any) -> Any:
        try:
            result = fn(*args, **kwargs)
            if isinstance(result, Awaitable):
                result = await result
            return result
        except PERMANENT_ERRORS as e:
            raise TerminalError(str(e)) from e

    run.__annotations__ = {"return": _return_type(fn)}
    return run


def _return_type(fn: Callable[..., Any]) -> Any:
    import inspect

    return inspect.signature(fn, eval_str=True).return_annotation
