"""Timestamps: stored as integer nanoseconds since the epoch, answered as RFC 3339 UTC strings."""

from __future__ import annotations

import time
from datetime import UTC, datetime

_EPOCH = datetime(1970, 1, 1, tzinfo=UTC)
MIN_NS = -(2**63)
MAX_NS = 2**63 - 1
"""Times are stored as SQLite INTEGERs (64-bit): 1677-09-21T00:12:43Z to 2262-04-11T23:47:16Z."""


class TimeOutOfRange(ValueError):
    """A valid datetime that 64-bit nanoseconds cannot hold."""


def now_ns() -> int:
    return time.time_ns()


def iso(ns: int | None) -> str | None:
    """`1700000000123456789` -> `'2023-11-14T22:13:20.123456Z'` (microseconds, UTC)."""
    if ns is None:
        return None
    seconds, rest = divmod(ns, 1_000_000_000)
    stamp = time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime(seconds))
    return f"{stamp}.{rest // 1000:06d}Z"


def parse_iso(text: str) -> int:
    """RFC 3339 / ISO 8601 text to nanoseconds; a naive time is taken as UTC. Raises ValueError."""
    value = text.strip()
    if value.endswith(("Z", "z")):
        value = value[:-1] + "+00:00"
    moment = datetime.fromisoformat(value)
    if moment.tzinfo is None:
        moment = moment.replace(tzinfo=UTC)
    delta = moment - _EPOCH
    ns = (delta.days * 86_400 + delta.seconds) * 1_000_000_000 + delta.microseconds * 1000
    check_ns(ns, text)
    return ns


def check_ns(ns: int, shown: object) -> int:
    """`ns`, or TimeOutOfRange when it does not fit the 64-bit range this server stores."""
    if not MIN_NS <= ns <= MAX_NS:
        raise TimeOutOfRange(
            f"{shown} is outside the range this server stores (1677-09-21 to 2262-04-11, "
            "64-bit nanoseconds since 1970)"
        )
    return ns


def time_problem(raw: object, error: ValueError) -> str:
    """Why `raw` is not a usable time, for an error message."""
    if isinstance(error, TimeOutOfRange):
        return str(error)
    return f"{raw!r} is not an ISO 8601 datetime (e.g. 2026-01-21T14:35:42Z)"


def seconds_between(start_ns: int | None, end_ns: int | None) -> float | None:
    if start_ns is None or end_ns is None:
        return None
    return max(0, end_ns - start_ns) / 1e9
