"""The agents' prompts, by label: from Langfuse when it is configured (`LANGFUSE_*`), else from
data/prompts/ (index.json names each version and its labels). The workflow fetches all three in
ONE durable step, so a claim keeps the versions it fetched through every retry and replay, while
new claims see where the labels point now."""

from __future__ import annotations

import asyncio
import json
import os
from typing import Any

from .config import settings
from .models import PromptRef, PromptSet
from .outage import LANGFUSE

PARSER, ANALYST, JUDGE = "claim-parser", "claim-analyst", "claim-judge"
NAMES = (PARSER, ANALYST, JUDGE)
DEFAULT_LABEL = "production"
PINNED = "pinned"
"""The `label` of a prompt fetched by its version (an experiment pins versions)."""


class UnknownPromptLabelError(LookupError):
    """No prompt carries the requested label."""


def langfuse_configured() -> bool:
    return bool(os.environ.get("LANGFUSE_PUBLIC_KEY") and os.environ.get("LANGFUSE_SECRET_KEY"))


# -- the files in data/prompts/ (the seed of Langfuse, and the source without it) --------------


def index() -> list[dict[str, Any]]:
    """data/prompts/index.json: each version's name, file, labels and commit message."""
    return json.loads((settings().data_dir / "prompts" / "index.json").read_text())


def file_text(entry: dict[str, Any]) -> str:
    return (settings().data_dir / "prompts" / entry["file"]).read_text()


def _file_prompt(name: str, label: str) -> PromptRef | None:
    for entry in index():
        if entry["name"] == name and label in entry.get("labels", []):
            return PromptRef(
                name=name, version=entry["version"], label=label, text=file_text(entry)
            )
    return None


def _file_version(name: str, version: int) -> PromptRef | None:
    for entry in index():
        if entry["name"] == name and entry["version"] == version:
            return PromptRef(name=name, version=version, label=PINNED, text=file_text(entry))
    return None


def labels() -> dict[str, list[str]]:
    """Each label of the seed prompts and the prompts (name vN) that carry it."""
    out: dict[str, list[str]] = {}
    for entry in index():
        for label in entry.get("labels", []):
            out.setdefault(label, []).append(f"{entry['name']} v{entry['version']}")
    return out


# -- Langfuse ------------------------------------------------------------------------------------


async def _langfuse_prompt(name: str, label: str) -> PromptRef | None:
    """One prompt version by label, through the Langfuse SDK's async API client (pooled
    connections, no cache: a new claim sees where the label points now)."""
    from langfuse import get_client
    from langfuse.api import NotFoundError

    try:
        prompt = await get_client().async_api.prompts.get(name, label=label)
    except NotFoundError:
        return None
    text = prompt.prompt if isinstance(prompt.prompt, str) else str(prompt.prompt)
    return PromptRef(name=name, version=prompt.version, label=label, text=text)


async def _langfuse_version(name: str, version: int) -> PromptRef | None:
    from langfuse import get_client
    from langfuse.api import NotFoundError

    try:
        prompt = await get_client().async_api.prompts.get(name, version=version)
    except NotFoundError:
        return None
    text = prompt.prompt if isinstance(prompt.prompt, str) else str(prompt.prompt)
    return PromptRef(name=name, version=prompt.version, label=PINNED, text=text)


async def prompt_version(name: str, version: int) -> PromptRef:
    """One version of a prompt (Langfuse when configured, else data/prompts/); LookupError when
    there is no such version."""
    if not langfuse_configured():
        found = _file_version(name, version)
    else:
        try:
            found = await _langfuse_version(name, version)
        except Exception as e:  # the backend is down: the seed files may hold that version
            if getattr(e, "status_code", None) == 404:
                found = None
            else:
                found = _file_version(name, version)
                if found is None:  # only Langfuse has it: the step is retried until it answers
                    raise
                where = os.environ.get("LANGFUSE_BASE_URL") or os.environ.get("LANGFUSE_HOST", "")
                LANGFUSE.failed(where, e, "pinned prompt versions are read from data/prompts/")
    if found is None:
        raise LookupError(
            f"Prompt {name!r} has no version {version}. List its versions with "
            f"wb.prompts.list({name!r})."
        )
    return found


async def _fetch(name: str, label: str) -> PromptRef | None:
    if not langfuse_configured():
        return _file_prompt(name, label)
    where = os.environ.get("LANGFUSE_BASE_URL") or os.environ.get("LANGFUSE_HOST", "")
    try:
        prompt = await _langfuse_prompt(name, label)
    except Exception as e:  # the backend is down: claims still complete, on the seed prompts
        if getattr(e, "status_code", None) == 404:
            LANGFUSE.answered(where)
            return None
        LANGFUSE.failed(where, e, "claims use the prompts of data/prompts/ until it answers")
        return _file_prompt(name, label)
    LANGFUSE.answered(where)
    return prompt


async def get_prompt(name: str, label: str = DEFAULT_LABEL) -> PromptRef:
    """The version of `name` that carries `label`, or its production version when only other
    prompts carry that label (a label such as `staging` may name just the analyst's candidate)."""
    for wanted in dict.fromkeys((label, DEFAULT_LABEL)):
        prompt = await _fetch(name, wanted)
        if prompt is not None:
            return prompt
    raise LookupError(f"Prompt {name!r} has neither label {label!r} nor {DEFAULT_LABEL!r}.")


async def prompt_set(
    label: str = DEFAULT_LABEL, versions: dict[str, int] | None = None
) -> PromptSet:
    """All prompts of a claim at once (one durable step in the workflow), fetched concurrently:
    those named in `versions` at that version, the others by `label`."""
    pinned = dict(versions or {})
    unknown = sorted(set(pinned) - set(NAMES))
    if unknown:
        raise LookupError(
            f"Prompt {unknown[0]!r} is not a prompt of the claim agents; pin versions of "
            f"{', '.join(NAMES)}."
        )
    by_label = [name for name in NAMES if name not in pinned]
    found = await asyncio.gather(
        *(_fetch(name, label) for name in by_label),
        *(prompt_version(name, version) for name, version in pinned.items()),
    )
    fetched = dict(zip([*by_label, *pinned], found, strict=True))
    if label != DEFAULT_LABEL and by_label and not pinned and not any(fetched.values()):
        raise UnknownPromptLabelError(
            f"Prompt label {label!r} is on no prompt ({', '.join(NAMES)}). "
            "Promote a version to that label first, or submit with a label that exists."
        )
    missing = [name for name in NAMES if fetched[name] is None]
    for name, ref in zip(
        missing,
        await asyncio.gather(*(get_prompt(n, DEFAULT_LABEL) for n in missing)),
        strict=True,
    ):
        fetched[name] = ref
    return PromptSet(parser=fetched[PARSER], analyst=fetched[ANALYST], judge=fetched[JUDGE])
