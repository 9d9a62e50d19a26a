"""How Restate retries the claim workflow and the judge: fast enough that a claim continues
within half a second of its dependency coming back, long enough to wait out an outage.

Every failed attempt of an invocation counts (a crash, a step that failed transiently, a model
call that found the endpoint down). Attempts are spaced by capped exponential backoff (first retry
after `WORKBENCH_RETRY_INITIAL_MS`, doubling up to `WORKBENCH_RETRY_MAX_INTERVAL_MS`); after
`WORKBENCH_OUTAGE_WINDOW_S` of failing (default 10 minutes, counted in attempts: see
`attempts_for_window`) Restate PAUSES the invocation instead of failing it. A paused claim keeps
its journal and resumes where it stopped with `PATCH /invocations/{id}/resume` on the admin API
(`python -m workbench up` resumes the paused claims of its deployments).

`WORKBENCH_RETRY_MAX_ATTEMPTS` sets the attempt budget directly (it wins over the window)."""

from __future__ import annotations

from datetime import timedelta

from restate import InvocationRetryPolicy

from .faults import env_int

DEFAULT_INITIAL_MS = 200
DEFAULT_MAX_INTERVAL_MS = 500
DEFAULT_OUTAGE_WINDOW_S = 600


def attempts_for_window(window_s: float, initial_ms: int, max_interval_ms: int) -> int:
    """How many attempts, spaced by the policy's backoff, span at least `window_s` seconds
    (attempts that take time themselves, such as a model call timing out, stretch it further)."""
    if window_s <= 0:
        return 1
    elapsed_ms, delay_ms, attempts = 0.0, float(max(initial_ms, 1)), 1
    cap_ms = float(max(max_interval_ms, 1))
    while elapsed_ms < window_s * 1000:
        elapsed_ms += min(delay_ms, cap_ms)
        delay_ms *= 2
        attempts += 1
    return attempts


def retry_policy() -> InvocationRetryPolicy:
    """The policy from the environment (read when the services start)."""
    initial_ms = env_int("WORKBENCH_RETRY_INITIAL_MS", DEFAULT_INITIAL_MS)
    max_interval_ms = max(env_int("WORKBENCH_RETRY_MAX_INTERVAL_MS", DEFAULT_MAX_INTERVAL_MS), 1)
    window_s = env_int("WORKBENCH_OUTAGE_WINDOW_S", DEFAULT_OUTAGE_WINDOW_S)
    attempts = env_int("WORKBENCH_RETRY_MAX_ATTEMPTS", 0) or attempts_for_window(
        window_s, initial_ms, max_interval_ms
    )
    return InvocationRetryPolicy(
        initial_interval=timedelta(milliseconds=initial_ms),
        exponentiation_factor=2.0,
        max_interval=timedelta(milliseconds=max_interval_ms),
        max_attempts=max(attempts, 1),
        on_max_attempts="pause",
    )


RETRY_POLICY = retry_policy()
"""Shared by `ClaimWorkflow` and `ClaimJudge`."""
