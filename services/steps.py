"""Durable steps that also run outside Restate.

Inside a Restate handler `step()` journals the call with `ctx.run_typed`, so a retry or replay
reuses the recorded result; outside (the in-process baseline of the benchmark, unit tests) it
simply calls the function."""

from __future__ import annotations

import dataclasses
import inspect
from collections.abc import Awaitable, Callable
from datetime import timedelta
from functools import cache
from typing import Any, TypeVar

from restate import RunOptions, TerminalError
from restate.server_context import current_context

from . import faults
from .tracing import step_span

T = TypeVar("T")

STEP_OPTIONS = RunOptions(
    max_attempts=5, initial_retry_interval=timedelta(milliseconds=100), retry_interval_factor=2.0
)
"""A step that fails five times in a row fails for good (TerminalError): never an endless retry."""

LLM_OPTIONS = RunOptions()
"""Model calls: no budget of their own. An outage is retried under the invocation's retry policy
(capped backoff, then a pause: `retries.py`); what no retry can fix (a refused key, an unknown
model, nonsense answered again and again) is a TerminalError raised by `model_errors`, which
ends the claim as `failed` with that reason."""


async def step(name: str, fn: Callable[..., T | Awaitable[T]], *args: Any, **kwargs: Any) -> T:
    ctx = _context()
    if ctx is None:
        result = fn(*args, **kwargs)
        if isinstance(result, Awaitable):
            result = await result
        return result  # type: ignore[return-value]
    wrapped, options = _journaled(faults.observed(name, fn), name)
    try:
        return await ctx.run_typed(name, wrapped, options, *args, **kwargs)
    except TerminalError as e:
        faults.note_terminal(name, e)
        raise


def _context() -> Any:
    """The Restate context of the running handler, or None outside one."""
    try:
        return current_context()
    except LookupError:
        return None


PERMANENT_ERRORS: tuple[type[Exception], ...] = (ValueError, LookupError)
"""Errors that a retry cannot fix (bad input, unknown names): journaled as terminal at once."""


@cache
def _journaled(fn: Callable[..., Any], name: str) -> tuple[Callable[..., Any], RunOptions]:
    """The step function, traced and with permanent errors made terminal, and run options that
    carry its return type (so the SDK serializes it without inspecting the signature each call)."""
    options = dataclasses.replace(STEP_OPTIONS, type_hint=_return_type(fn))
    return _permanent_errors_are_terminal(fn, name), options


def _permanent_errors_are_terminal(fn: Callable[..., Any], name: str) -> Callable[..., Any]:
    async def run(*args: Any, **kwargs: Any) -> Any:
        # runs only when the step really executes (a replay reads the journal instead)
        with step_span(name):
            try:
                result = fn(*args, **kwargs)
                if isinstance(result, Awaitable):
                    result = await result
                return result
            except PERMANENT_ERRORS as e:
                raise TerminalError(str(e)) from e

    return run


def _return_type(fn: Callable[..., Any]) -> Any:
    return inspect.signature(fn, eval_str=True).return_annotation
