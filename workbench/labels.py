"""Checking a claim's prompt label before it is sent: against Langfuse when the stack has one
(labels can be created there at any time), else against the seed prompts in data/prompts/."""

from __future__ import annotations

from services.prompts import UnknownPromptLabelError
from services.prompts import labels as seed_labels

from . import session

__all__ = ["UnknownPromptLabelError", "check_label"]


def _known_labels() -> dict[str, list[str]]:
    current = session._current
    if current is not None and current.has_langfuse:
        from . import prompts

        try:
            return prompts.labels()
        except Exception:  # Langfuse unreachable: the services fall back to the seed prompts too
            pass
    return seed_labels()


def check_label(label: str) -> None:
    known = _known_labels()
    if label not in known:
        raise UnknownPromptLabelError(
            f"Prompt label {label!r} is on no prompt. Known labels: {', '.join(sorted(known))}. "
            "Pass one of them, or give a prompt version that label first "
            "(workbench.prompts.promote(name, version, label))."
        )
