"""A line diff of two prompt versions (text, chat messages, config), changed words marked."""

from __future__ import annotations

import difflib
import json
import re
from dataclasses import dataclass
from typing import Any

_WORDS = re.compile(r"\s+|\w+|[^\w\s]")


@dataclass(frozen=True)
class DiffLine:
    kind: str
    """`same`, `del` (only in the old version) or `add` (only in the new one)."""
    old: int | None
    new: int | None
    segments: tuple[tuple[bool, str], ...]
    """(changed, text) pieces of the line; `changed` marks words that differ."""


def prompt_lines(prompt: dict[str, Any]) -> list[str]:
    """A prompt version as lines: its text, or its messages with their roles; then its config."""
    content = prompt.get("prompt")
    lines: list[str] = []
    if isinstance(content, list):
        for message in content:
            if message.get("type") == "placeholder":
                lines.append(f"[placeholder: {message.get('name')}]")
                continue
            lines.append(f"[{message.get('role')}]")
            lines.extend(str(message.get("content", "")).splitlines() or [""])
    else:
        lines.extend(str(content or "").splitlines())
    config = prompt.get("config")
    if config:
        lines.append("[config]")
        lines.extend(json.dumps(config, indent=2, sort_keys=True, ensure_ascii=False).splitlines())
    return lines


def _words(old: str, new: str) -> tuple[tuple[tuple[bool, str], ...], tuple[tuple[bool, str], ...]]:
    a, b = _WORDS.findall(old), _WORDS.findall(new)
    left: list[tuple[bool, str]] = []
    right: list[tuple[bool, str]] = []
    for tag, i1, i2, j1, j2 in difflib.SequenceMatcher(None, a, b, autojunk=False).get_opcodes():
        if i2 > i1:
            left.append((tag != "equal", "".join(a[i1:i2])))
        if j2 > j1:
            right.append((tag != "equal", "".join(b[j1:j2])))
    return tuple(left), tuple(right)


def diff(old: list[str], new: list[str]) -> list[DiffLine]:
    """Every line of both versions in order, each marked same, del or add."""
    out: list[DiffLine] = []
    matcher = difflib.SequenceMatcher(None, old, new, autojunk=False)
    for tag, i1, i2, j1, j2 in matcher.get_opcodes():
        if tag == "equal":
            for k in range(i2 - i1):
                out.append(DiffLine("same", i1 + k + 1, j1 + k + 1, ((False, old[i1 + k]),)))
            continue
        if tag == "replace" and i2 - i1 == j2 - j1:
            pairs = [_words(old[i1 + k], new[j1 + k]) for k in range(i2 - i1)]
            for k, (left, _) in enumerate(pairs):
                out.append(DiffLine("del", i1 + k + 1, None, left))
            for k, (_, right) in enumerate(pairs):
                out.append(DiffLine("add", None, j1 + k + 1, right))
            continue
        for k in range(i1, i2):
            out.append(DiffLine("del", k + 1, None, ((True, old[k]),)))
        for k in range(j1, j2):
            out.append(DiffLine("add", None, k + 1, ((True, new[k]),)))
    return out
