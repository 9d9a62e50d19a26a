"""Values as a page shows them: durations, times, JSON, short previews, score values."""

from __future__ import annotations

import json
import time
from typing import Any

MAX_SHOWN_CHARS = 200_000
"""A value longer than this is cut on the page (the API still has all of it)."""


def duration(seconds: float | None) -> str:
    """`0.0004` -> `0.4 ms`, `0.1234` -> `123 ms`, `12.3` -> `12.30 s`, `125` -> `2 min 05 s`."""
    if seconds is None:
        return "–"
    if seconds < 0.001:
        return f"{seconds * 1000:.2f} ms"
    if seconds < 1:
        return f"{seconds * 1000:.0f} ms"
    if seconds < 60:
        return f"{seconds:.2f} s"
    minutes, rest = divmod(int(round(seconds)), 60)
    return f"{minutes} min {rest:02d} s"


def ns_duration(start_ns: int | None, end_ns: int | None) -> str:
    if start_ns is None or end_ns is None:
        return "–"
    return duration(max(0, end_ns - start_ns) / 1e9)


def when(ns: int | None) -> str:
    """UTC, to the millisecond: `2026-11-26 14:03:05.123Z` (the page's script shows local time)."""
    if ns is None:
        return "–"
    seconds, rest = divmod(ns, 1_000_000_000)
    return time.strftime("%Y-%m-%d %H:%M:%S", time.gmtime(seconds)) + f".{rest // 1_000_000:03d}Z"


def iso_ms(ns: int | None) -> str:
    """For `<time datetime=...>`."""
    if ns is None:
        return ""
    seconds, rest = divmod(ns, 1_000_000_000)
    return time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime(seconds)) + f".{rest // 1_000_000:03d}Z"


def pretty(value: Any) -> str:
    """A value as indented JSON (a string as itself), cut at MAX_SHOWN_CHARS."""
    if value is None:
        return ""
    if isinstance(value, str):
        text = value
    else:
        text = json.dumps(value, indent=2, ensure_ascii=False, default=str)
    if len(text) > MAX_SHOWN_CHARS:
        cut = len(text) - MAX_SHOWN_CHARS
        text = f"{text[:MAX_SHOWN_CHARS]}\n… ({cut:,} more characters: read them from the API)"
    return text


def preview(value: Any, limit: int = 120) -> str:
    """A one-line preview of a value for a table cell."""
    if value is None:
        return ""
    text = value if isinstance(value, str) else json.dumps(value, ensure_ascii=False, default=str)
    text = " ".join(text.split())
    return text if len(text) <= limit else text[: limit - 1] + "…"


def score_value(score: dict[str, Any]) -> str:
    """A score's value as people read it: 0.85, True, approve."""
    data_type = score.get("dataType")
    if data_type == "NUMERIC":
        value = score.get("value")
        if value is None:
            return "–"
        return f"{value:.4g}" if isinstance(value, float) else str(value)
    if data_type == "BOOLEAN":
        return str(score.get("stringValue") or bool(score.get("value")))
    return str(score.get("stringValue") or "")


def chat_messages(value: Any) -> list[dict[str, Any]] | None:
    """The value as a list of chat messages (role + content), when it is one."""
    if isinstance(value, dict) and isinstance(value.get("messages"), list):
        value = value["messages"]
    if not isinstance(value, list) or not value:
        return None
    messages = []
    for message in value:
        if not isinstance(message, dict) or "role" not in message:
            return None
        content = message.get("content")
        messages.append({"role": str(message["role"]), "content": content})
    return messages


def tokens(usage: dict[str, Any] | None) -> str:
    """`{"input": 120, "output": 30, "total": 150}` -> `120 → 30 (150)`."""
    if not usage:
        return ""
    parts = []
    if "input" in usage or "output" in usage:
        parts.append(f"{usage.get('input', 0):,} → {usage.get('output', 0):,}")
    if "total" in usage:
        parts.append(f"({usage['total']:,})" if parts else f"{usage['total']:,}")
    return " ".join(parts)
