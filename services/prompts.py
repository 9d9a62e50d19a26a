"""The agents' prompts, by label: from Langfuse when it is configured (`LANGFUSE_*`), else from
data/prompts/ (index.json names each version and its labels). The workflow fetches all three in
ONE durable step, so a claim keeps the versions it fetched through every retry and replay, while
new claims see where the labels point now."""

from __future__ import annotations

import asyncio
import json
import os
import time
from typing import Any

from .config import settings
from .models import PromptRef, PromptSet
from .names import PROMPT_CHANGES_ANNOUNCED, PROMPT_CHANGES_ENV, PROMPT_CHANGES_FILE
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


def _prompts_api() -> Any:
    """The Langfuse SDK's async prompts API of the client for the configured key (named, so
    that another client made in the same process cannot be picked instead)."""
    from langfuse import get_client

    return get_client(public_key=os.environ.get("LANGFUSE_PUBLIC_KEY")).async_api.prompts


async def _langfuse_prompt(name: str, label: str) -> PromptRef | None:
    """One prompt version by label, through the Langfuse SDK's async API client (pooled
    connections, no cache: a new claim sees where the label points now)."""
    from langfuse.api import NotFoundError

    try:
        prompt = await _prompts_api().get(name, label=label)
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
    """All prompts of a claim at once (one durable step in the workflow): those named in
    `versions` at that version (`_pinned_prompt_set`), the others by `label`. By label from
    Langfuse: one request says which version of each prompt carries the label now
    (`_labelled_versions`); the texts of versions already seen come from memory
    (`_version_text`). Without Langfuse, or while it is down, from data/prompts/."""
    if versions:
        return await _pinned_prompt_set(label, versions)
    if langfuse_configured():
        where = os.environ.get("LANGFUSE_BASE_URL") or os.environ.get("LANGFUSE_HOST", "")
        try:
            found = await _langfuse_prompt_set(label)
        except (UnknownPromptLabelError, LookupError):
            LANGFUSE.answered(where)
            raise
        except Exception as e:  # the backend is down: claims still complete, on the seed prompts
            LANGFUSE.failed(where, e, "claims use the prompts of data/prompts/ until it answers")
        else:
            LANGFUSE.answered(where)
            return found
    fetched = {name: _file_prompt(name, label) for name in NAMES}
    return _complete(label, fetched, {n: _file_prompt(n, DEFAULT_LABEL) for n in NAMES})


def _complete(
    label: str, fetched: dict[str, PromptRef | None], defaults: dict[str, PromptRef | None]
) -> PromptSet:
    """The set, each prompt without `label` falling back to its production version."""
    if label != DEFAULT_LABEL and not any(fetched.values()):
        raise UnknownPromptLabelError(
            f"Prompt label {label!r} is on no prompt ({', '.join(NAMES)}). "
            "Promote a version to that label first, or submit with a label that exists."
        )
    for name in NAMES:
        fetched[name] = fetched[name] or defaults.get(name)
        if fetched[name] is None:
            raise LookupError(f"Prompt {name!r} has neither label {label!r} nor {DEFAULT_LABEL!r}.")
    return PromptSet(parser=fetched[PARSER], analyst=fetched[ANALYST], judge=fetched[JUDGE])


# -- the Langfuse fast path: one request per claim ------------------------------------------------

_texts: dict[tuple[str, int, Any], str] = {}
"""Prompt texts by (name, version, last update): a version's text never changes, and a version
deleted and created again has a new update time, so an entry is never stale."""


LABEL_TTL_S = float(os.environ.get("WORKBENCH_PROMPT_LABEL_TTL_S", "0"))
"""How long the answer to "which version of each prompt carries this label" is reused, when the
Langfuse does not announce its changes (Langfuse Cloud, a self-hosted one):
`WORKBENCH_PROMPT_LABEL_TTL_S`, 0 by default (Langfuse is asked for every claim, so a label
moved anywhere is seen by the very next claim). A prompt changed through the workbench
(`wb.prompts`) is seen at once whatever the TTL. The Langfuse SDK's own cache keeps prompts 60 s."""
ANNOUNCED_MAX_AGE_S = 60.0
"""How long an answer is reused when the Langfuse announces every change (the embedded one,
`PROMPT_CHANGES_ENV`): until a change is announced, at most this long."""

_label_answers: dict[str, tuple[float, Any, dict[str, tuple[int, Any] | None]]] = {}
_label_requests: dict[tuple[str, Any], asyncio.Future[dict[str, tuple[int, Any] | None]]] = {}


def _changes_seen() -> Any:
    """What the home's prompt changes file looks like now (size, mtime; None without one)."""
    try:
        stat = (settings().home / PROMPT_CHANGES_FILE).stat()
    except OSError:
        return None
    return (stat.st_size, stat.st_mtime_ns)


def _reusable_for_s() -> float:
    if os.environ.get(PROMPT_CHANGES_ENV) == PROMPT_CHANGES_ANNOUNCED:
        return ANNOUNCED_MAX_AGE_S
    return LABEL_TTL_S


async def _current_versions(label: str) -> dict[str, tuple[int, Any] | None]:
    """`_labelled_versions`, reused while no prompt change is seen (`_changes_seen`) for
    `_reusable_for_s()`. Measured: one request per claim cost about 10 ms of CPU at
    concurrency 32 (httpx and the SDK's parsing in the services, the answer in Langfuse).
    Claims that ask at the same time share one request begun after the last change seen
    (with a TTL of 0 and no announced changes, each claim asks on its own)."""
    changes, reusable_s = _changes_seen(), _reusable_for_s()
    kept = _label_answers.get(label)
    if kept is not None and kept[1] == changes and time.monotonic() - kept[0] < reusable_s:
        return kept[2]
    key = (label, changes)
    pending = _label_requests.get(key)
    if reusable_s > 0 and pending is not None and pending.get_loop() is asyncio.get_running_loop():
        return await asyncio.shield(pending)  # begun before this claim asked: fine if reusable
    asked_at = time.monotonic()
    pending = _label_requests[key] = asyncio.ensure_future(_labelled_versions(label))
    pending.add_done_callback(
        lambda done: _label_requests.pop(key) if _label_requests.get(key) is done else None
    )
    answer = await asyncio.shield(pending)
    _label_answers[label] = (asked_at, changes, answer)
    return answer


def forget_labels() -> None:
    """Drop what is remembered of where labels point."""
    _label_answers.clear()


async def _labelled_versions(label: str) -> dict[str, tuple[int, Any] | None]:
    """Which version of each of the claim's prompts carries `label` now, with its last update,
    in one request (`GET /api/public/v2/prompts?label=`, every page); a prompt not listed does
    not carry the label. One listed with more than one version (a server that does not filter
    the versions by label) maps to None: it is fetched by label instead."""
    api = _prompts_api()
    found: dict[str, tuple[int, Any] | None] = {}
    page = 1
    while True:
        listed = await api.list(label=label, page=page, limit=100)
        for meta in listed.data:
            if meta.name in NAMES:
                one = len(meta.versions) == 1
                found[meta.name] = (meta.versions[0], meta.last_updated_at) if one else None
        if page >= (getattr(listed.meta, "total_pages", 1) or 1):
            return found
        page += 1


async def _version_text(name: str, version: int, updated: Any) -> str:
    key = (name, version, updated)
    if key not in _texts:
        prompt = await _prompts_api().get(name, version=version)
        _texts[key] = prompt.prompt if isinstance(prompt.prompt, str) else str(prompt.prompt)
    return _texts[key]


async def _langfuse_prompt_set(label: str) -> PromptSet:
    labels = list(dict.fromkeys((label, DEFAULT_LABEL)))
    versions = dict(
        zip(labels, await asyncio.gather(*(_current_versions(x) for x in labels)), strict=True)
    )

    async def ref(name: str, wanted: str) -> PromptRef | None:
        if name not in versions[wanted]:
            return None  # no version of it carries that label
        if (listed := versions[wanted][name]) is None:
            return await _langfuse_prompt(name, wanted)  # listed oddly: ask by label
        version, updated = listed
        text = await _version_text(name, version, updated)
        return PromptRef(name=name, version=version, label=wanted, text=text)

    async def refs(wanted: str) -> dict[str, PromptRef | None]:
        if wanted == label or any(n not in versions[label] for n in NAMES):
            found = await asyncio.gather(*(ref(n, wanted) for n in NAMES))
            return dict(zip(NAMES, found, strict=True))
        return {}

    fetched = await refs(label)
    defaults = fetched if label == DEFAULT_LABEL else await refs(DEFAULT_LABEL)
    return _complete(label, fetched, defaults)


async def _pinned_prompt_set(label: str, versions: dict[str, int]) -> PromptSet:
    """Prompts pinned to versions (an experiment's variant), the others by label, fetched
    concurrently."""
    pinned = dict(versions)
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
    missing = [name for name in NAMES if fetched[name] is None]
    for name, ref in zip(
        missing,
        await asyncio.gather(*(get_prompt(n, DEFAULT_LABEL) for n in missing)),
        strict=True,
    ):
        fetched[name] = ref
    return PromptSet(parser=fetched[PARSER], analyst=fetched[ANALYST], judge=fetched[JUDGE])
