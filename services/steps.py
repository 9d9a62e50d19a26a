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

from restate import InvocationRetryPolicy, RunOptions, TerminalError
from restate.server_context import current_context

from . import faults
from .faults import env_int
from .tracing import step_span

T = TypeVar("T")

RETRY_POLICY = InvocationRetryPolicy(
    initial_interval=timedelta(milliseconds=env_int("WORKBENCH_RETRY_INITIAL_MS", 200)),
    exponentiation_factor=2.0,
    max_interval=timedelta(milliseconds=env_int("WORKBENCH_RETRY_MAX_INTERVAL_MS", 500)),
    max_attempts=env_int("WORKBENCH_RETRY_MAX_ATTEMPTS", 60),
    on_max_attempts="pause",
)
"""The invocation retry policy of the claim workflow and of the judge. Snappy for demos: first
retry after 0.2 s, then at most 0.5 s apart, so a restarted service is found within half a second
of being back (`python -m workbench.bench --recovery`); after 60 failed attempts (about 30 s) the
invocation is paused, not dropped: fix the cause and resume it from the Restate UI. Each knob is
overridable in the services' environment (WORKBENCH_RETRY_INITIAL_MS,
WORKBENCH_RETRY_MAX_INTERVAL_MS, WORKBENCH_RETRY_MAX_ATTEMPTS)."""

STEP_OPTIONS = RunOptions(
    max_attempts=5, initial_retry_interval=timedelta(milliseconds=100), retry_interval_factor=2.0
)
"""A step that fails five times in a row fails for good (TerminalError): never an endless retry."""

LLM_OPTIONS = RunOptions(
    max_attempts=4, initial_retry_interval=timedelta(milliseconds=200), retry_interval_factor=2.0
)
"""Model calls: four tries, then the claim fails with the model's last error as its reason."""


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
