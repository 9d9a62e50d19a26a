"""The agents' prompts, by label. For now they come from data/prompts/ (index.json names each
version and its labels); the observability work moves them into Langfuse."""

from __future__ import annotations

import json
from typing import Any

from .config import settings
from .models import PromptRef, PromptSet

PARSER, ANALYST, JUDGE = "claim-parser", "claim-analyst", "claim-judge"
DEFAULT_LABEL = "production"


class UnknownPromptLabelError(LookupError):
    """No prompt carries the requested label."""


def _index() -> list[dict[str, Any]]:
    return json.loads((settings().data_dir / "prompts" / "index.json").read_text())


def labels() -> dict[str, list[str]]:
    """Each label and the prompts (name vN) that carry it."""
    out: dict[str, list[str]] = {}
    for entry in _index():
        for label in entry.get("labels", []):
            out.setdefault(label, []).append(f"{entry['name']} v{entry['version']}")
    return out


def get_prompt(name: str, label: str = DEFAULT_LABEL) -> PromptRef:
    """The version of `name` that carries `label`, or its production version when only other
    prompts carry that label (a label such as `staging` may name just the analyst's candidate)."""
    entries = [e for e in _index() if e["name"] == name]
    if not entries:
        raise LookupError(f"No prompt named {name!r} in data/prompts/index.json.")
    for wanted in (label, DEFAULT_LABEL):
        for entry in entries:
            if wanted in entry.get("labels", []):
                text = (settings().data_dir / "prompts" / entry["file"]).read_text()
                return PromptRef(name=name, version=entry["version"], label=wanted, text=text)
    raise LookupError(f"Prompt {name!r} has neither label {label!r} nor {DEFAULT_LABEL!r}.")


def check_label(label: str) -> None:
    known = labels()
    if label not in known:
        raise UnknownPromptLabelError(
            f"Prompt label {label!r} is on no prompt. Known labels: {', '.join(sorted(known))}. "
            "Pass one of them, or give a prompt version that label first."
        )


def prompt_set(label: str = DEFAULT_LABEL) -> PromptSet:
    """All prompts of a claim at once (one durable step in the workflow)."""
    check_label(label)
    return PromptSet(
        parser=get_prompt(PARSER, label),
        analyst=get_prompt(ANALYST, label),
        judge=get_prompt(JUDGE, label),
    )
