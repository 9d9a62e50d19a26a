"""Prompts in Langfuse, with versions and labels: what a notebook lists, reads, creates, promotes
and compares.

    import workbench as wb
    wb.prompts.list()                              # every version of every prompt, with labels
    wb.prompts.get("claim-analyst", label="staging")
    wb.prompts.diff("claim-analyst", 1, 2)         # coloured in Jupyter
    wb.prompts.promote("claim-analyst", 2)         # `production` moves from v1 to v2
    wb.prompts.labels()                            # {"production": ["claim-analyst v2", ...]}

The client is the real `langfuse` SDK pointed at `workbench.session.langfuse_endpoints()` (the
embedded Langfuse by default). Reads never use the SDK's prompt cache, so a promotion is visible
at once. A label lives on one version of a prompt at a time; `latest` always marks the newest.
"""

from __future__ import annotations

import builtins
import difflib
import html
import json
import logging
from collections.abc import Iterable, Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import quote

import pandas as pd

from . import _langfuse_client as lf
from ._langfuse_client import LangfuseError

__all__ = [
    "Prompt",
    "PromptDiff",
    "PromptError",
    "PromptNotFoundError",
    "create",
    "diff",
    "get",
    "labels",
    "list",
    "promote",
]

LATEST = "latest"
PRODUCTION = "production"
LIST_COLUMNS = ["name", "version", "labels", "commit_message", "created", "type", "tags"]


class PromptError(LangfuseError):
    """Langfuse refused a prompt operation; the message says what was wrong and how to fix it."""


class PromptNotFoundError(PromptError, LookupError):
    """No such prompt, version or label."""


@dataclass(frozen=True)
class Prompt:
    """One version of a prompt: its text (a string, or chat messages), config and labels."""

    name: str
    version: int
    text: str | builtins.list[dict[str, Any]]
    config: dict[str, Any] = field(default_factory=dict)
    labels: tuple[str, ...] = ()
    commit_message: str | None = None
    type: str = "text"
    tags: tuple[str, ...] = ()
    client: Any = field(default=None, repr=False, compare=False)
    """The SDK's prompt client (`.compile(**variables)`), when read through `get_prompt`."""

    def compile(self, **variables: Any) -> Any:
        """The prompt with `{{variables}}` filled in (the SDK's own compile)."""
        if self.client is None:
            raise PromptError(f"{self.title} was not read through the SDK; use get() first.")
        return self.client.compile(**variables)

    @property
    def title(self) -> str:
        labels = f" [{', '.join(self.labels)}]" if self.labels else ""
        return f"{self.name} v{self.version}{labels}"

    def as_text(self) -> str:
        return _as_text(self.text)

    def __str__(self) -> str:
        parts = [self.title]
        if self.commit_message:
            parts.append(f"# {self.commit_message}")
        if self.config:
            parts.append(f"config: {json.dumps(self.config, sort_keys=True)}")
        parts.extend(["", self.as_text()])
        return "\n".join(parts)

    def __repr__(self) -> str:
        first = self.as_text().strip().splitlines()[:1]
        preview = (first[0][:60] + ("..." if len(first[0]) > 60 else "")) if first else ""
        return f"Prompt({self.title}: {preview!r})"

    def _repr_html_(self) -> str:
        head = f"<b>{html.escape(self.title)}</b>"
        if self.commit_message:
            head += f" <i>{html.escape(self.commit_message)}</i>"
        config = ""
        if self.config:
            shown = html.escape(json.dumps(self.config, sort_keys=True))
            config = f"<div><code>config: {shown}</code></div>"
        body = html.escape(self.as_text())
        return f"<div>{head}{config}<pre style='white-space:pre-wrap'>{body}</pre></div>"


@dataclass(frozen=True)
class PromptDiff:
    """A unified diff of two prompt versions: plain text as `str()`, coloured in Jupyter."""

    name: str
    a: str
    b: str
    lines: tuple[str, ...]

    @property
    def changed(self) -> bool:
        return bool(self.lines)

    def __str__(self) -> str:
        if not self.lines:
            return f"{self.name}: {self.a} and {self.b} are identical."
        return "\n".join(self.lines)

    def __repr__(self) -> str:
        added = sum(1 for x in self.lines if x.startswith("+") and not x.startswith("+++"))
        removed = sum(1 for x in self.lines if x.startswith("-") and not x.startswith("---"))
        return f"PromptDiff({self.name}: {self.a} -> {self.b}, +{added} -{removed} lines)"

    def _repr_html_(self) -> str:
        if not self.lines:
            return f"<pre>{html.escape(str(self))}</pre>"
        styles = {
            "+++": "color:#1b5e20;font-weight:bold",
            "---": "color:#b71c1c;font-weight:bold",
            "@@": "color:#6a1b9a;background:#f3e5f5",
            "+": "color:#1b5e20;background:#e8f5e9",
            "-": "color:#b71c1c;background:#ffebee",
        }
        rows = []
        for line in self.lines:
            style = next((s for prefix, s in styles.items() if line.startswith(prefix)), "")
            text = html.escape(line) or "&nbsp;"
            rows.append(f"<div style='{style}'>{text}</div>")
        return (
            "<div style='font-family:monospace;white-space:pre-wrap;font-size:12px'>"
            + "".join(rows)
            + "</div>"
        )


def _as_text(content: Any) -> str:
    if isinstance(content, str):
        return content
    lines = []
    for message in content or []:
        if isinstance(message, dict) and message.get("type") == "placeholder":
            lines.append(f"[placeholder: {message.get('name')}]")
        elif isinstance(message, dict):
            lines.append(f"{message.get('role')}: {message.get('content')}")
        else:
            lines.append(str(message))
    return "\n".join(lines)


@contextmanager
def _quiet_sdk() -> Iterator[None]:
    """The SDK logs a warning/error for every prompt it cannot find; we raise a clearer error."""
    logger = logging.getLogger("langfuse")
    previous = logger.level
    logger.setLevel(logging.CRITICAL)
    try:
        yield
    finally:
        logger.setLevel(previous)


def _check_name(name: Any) -> str:
    if not isinstance(name, str) or not name.strip():
        raise ValueError(
            f"A prompt name is a non-empty string such as 'claim-analyst'; got {name!r}."
        )
    return name


def _meta(name: str) -> Any | None:
    """The prompt's list entry (versions and labels), or None when it does not exist."""
    with lf.guard(f"Reading prompt {name!r}"):
        answer = lf.sdk().api.prompts.list(name=name, limit=1)
    return next((p for p in answer.data if p.name == name), None)


def _all_meta() -> builtins.list[Any]:
    out: builtins.list[Any] = []
    page = 1
    while True:
        with lf.guard("Listing prompts"):
            answer = lf.sdk().api.prompts.list(page=page, limit=100)
        out.extend(answer.data)
        if page >= (answer.meta.total_pages or 1):
            return out
        page += 1


def _known_names() -> str:
    names = sorted(p.name for p in _all_meta())
    return ", ".join(names) if names else "none yet"


def _not_found(name: str, wanted: str, hint: str | None = None) -> PromptNotFoundError:
    meta = _meta(name)
    if meta is None:
        return PromptNotFoundError(
            f"No prompt named {name!r} in Langfuse (known prompts: {_known_names()}). "
            f"Create it with workbench.prompts.create({name!r}, text)."
        )
    versions = ", ".join(str(v) for v in sorted(meta.versions))
    return PromptNotFoundError(
        f"Prompt {name!r} has no {wanted} (versions: {versions}; labels: "
        f"{', '.join(sorted(meta.labels)) or 'none'}). "
        + (
            hint
            or "Use one of those, or move a label to a version with "
            f"workbench.prompts.promote({name!r}, version, label)."
        )
    )


def _from_client(client: Any) -> Prompt:
    return Prompt(
        name=client.name,
        version=client.version,
        text=client.prompt,
        config=dict(client.config or {}),
        labels=tuple(sorted(client.labels or ())),
        commit_message=client.commit_message,
        type="chat" if isinstance(client.prompt, builtins.list) else "text",
        tags=tuple(client.tags or ()),
        client=client,
    )


def _ref(ref: int | str) -> dict[str, Any]:
    """A version number or a label, as get() keywords."""
    if isinstance(ref, bool) or not isinstance(ref, int | str):
        raise TypeError(f"Name a version (an int) or a label (a str); got {ref!r}.")
    if isinstance(ref, str) and ref.isdigit():
        return {"version": int(ref)}
    return {"version": ref} if isinstance(ref, int) else {"label": ref}


def get(name: str, label: str | None = None, version: int | None = None) -> Prompt:
    """One version of a prompt: by `version`, by `label`, or (neither) the `production` one."""
    _check_name(name)
    if label is not None and version is not None:
        raise ValueError(
            f"Pass either label= or version= for prompt {name!r}, not both "
            f"(got label={label!r}, version={version!r})."
        )
    wanted = f"version {version}" if version is not None else f"label {label or PRODUCTION!r}"
    from langfuse.api import NotFoundError

    try:
        with lf.guard(f"Reading prompt {name!r} ({wanted})"), _quiet_sdk():
            client = lf.sdk().get_prompt(
                name, label=label, version=version, cache_ttl_seconds=0, max_retries=0
            )
    except NotFoundError:
        raise _not_found(name, wanted) from None
    return _from_client(client)


def create(
    name: str,
    text: str | Sequence[dict[str, Any]],
    labels: Iterable[str] = (),
    commit_message: str | None = None,
    *,
    config: dict[str, Any] | None = None,
    tags: Iterable[str] | None = None,
) -> Prompt:
    """A new version of `name` (version = newest + 1; `latest` moves to it). `text` is a string
    (a text prompt) or a list of chat messages `{"role", "content"}`; `labels` (such as
    `["staging"]`) move to the new version."""
    from langfuse.api.core import ApiError

    _check_name(name)
    chat = not isinstance(text, str)
    if chat:
        messages = builtins.list(text)
        if not messages or not all(isinstance(m, dict) for m in messages):
            raise ValueError(
                f"Prompt {name!r}: the text is a string, or a non-empty list of messages such "
                f'as [{{"role": "system", "content": "..."}}]; got {text!r}.'
            )
    elif not text.strip():
        raise ValueError(f"Prompt {name!r}: the text is empty. Write the prompt's instructions.")
    if isinstance(labels, str):
        labels = [labels]
    wanted = [*dict.fromkeys(labels)]
    if LATEST in wanted:
        raise ValueError(
            "The label 'latest' is set by Langfuse on the newest version; leave it out."
        )
    try:
        with lf.guard(f"Creating a version of prompt {name!r}"):
            client = lf.sdk().create_prompt(
                name=name,
                prompt=messages if chat else text,
                labels=wanted,
                tags=[*tags] if tags is not None else None,
                type="chat" if chat else "text",
                config=config,
                commit_message=commit_message,
            )
    except ApiError as e:
        raise PromptError(
            f"Langfuse refused the new version of prompt {name!r}: {lf.describe_error(e)}"
        ) from None
    return _from_client(client)


def promote(name: str, version: int, label: str = PRODUCTION) -> Prompt:
    """Move `label` to `version` of `name` (off the version that had it). New claims fetching
    that label get this version; claims that already fetched keep theirs."""
    from langfuse.api.core import ApiError

    _check_name(name)
    if isinstance(version, bool) or not isinstance(version, int):
        raise TypeError(f"A prompt version is an int such as 2; got {version!r}.")
    if not isinstance(label, str) or not label:
        raise ValueError(f"A label is a non-empty string such as 'production'; got {label!r}.")
    if label == LATEST:
        raise ValueError(
            "The label 'latest' always marks the newest version and cannot be moved: create a "
            "new version instead, or promote to another label (e.g. 'production')."
        )
    meta = _meta(name)
    if meta is None or version not in meta.versions:
        raise _not_found(
            name,
            f"version {version}",
            "Promote one of those versions, or add a version with "
            f"workbench.prompts.create({name!r}, text).",
        )
    try:
        with lf.guard(f"Promoting {name} v{version} to {label!r}"):
            lf.sdk().update_prompt(name=name, version=version, new_labels=[label])
    except ApiError as e:
        raise PromptError(
            f"Langfuse refused to move label {label!r} to {name} v{version}: {lf.describe_error(e)}"
        ) from None
    return get(name, version=version)


def diff(name: str, a: int | str, b: int | str, *, context: int = 3) -> PromptDiff:
    """A unified diff from `a` to `b`: each a version number or a label (`"production"`)."""
    first, second = get(name, **_ref(a)), get(name, **_ref(b))
    old, new = f"{name} v{first.version}", f"{name} v{second.version}"
    before, after = first.as_text().splitlines(), second.as_text().splitlines()
    if first.config != second.config:
        before += ["", f"config: {json.dumps(first.config, sort_keys=True)}"]
        after += ["", f"config: {json.dumps(second.config, sort_keys=True)}"]
    lines = difflib.unified_diff(before, after, old, new, n=context, lineterm="")
    return PromptDiff(name, f"v{first.version}", f"v{second.version}", tuple(lines))


def _raw_version(name: str, version: int) -> Any:
    with lf.guard(f"Reading prompt {name!r} version {version}"):
        return lf.sdk().api.prompts.get(quote(name, safe=""), version=version)


def _created(raw: Any) -> pd.Timestamp | None:
    """Langfuse answers `createdAt` beside the documented fields (the embedded one may not)."""
    extra = getattr(raw, "model_extra", None) or {}
    value = extra.get("createdAt") or extra.get("created_at")
    return pd.Timestamp(value) if value else None


def list(name: str | None = None) -> pd.DataFrame:
    """Every version of every prompt (or of `name`): version, labels, commit message, created."""
    metas = _all_meta() if name is None else [m for m in [_meta(_check_name(name))] if m]
    if name is not None and not metas:
        raise PromptNotFoundError(
            f"No prompt named {name!r} in Langfuse (known prompts: {_known_names()}). "
            f"Create it with workbench.prompts.create({name!r}, text)."
        )
    rows = []
    for meta in sorted(metas, key=lambda m: m.name):
        for version in sorted(meta.versions):
            raw = _raw_version(meta.name, version)
            rows.append(
                {
                    "name": meta.name,
                    "version": version,
                    "labels": sorted(raw.labels or []),
                    "commit_message": raw.commit_message,
                    "created": _created(raw),
                    "type": getattr(raw, "type", None) or meta.type,
                    "tags": builtins.list(raw.tags or []),
                }
            )
    frame = pd.DataFrame(rows, columns=LIST_COLUMNS)
    frame["created"] = pd.to_datetime(frame["created"], utc=True)
    return frame


def labels(name: str | None = None) -> dict[str, builtins.list[str]]:
    """Each label and the prompt versions that carry it: {"production": ["claim-analyst v1"]}."""
    out: dict[str, builtins.list[str]] = {}
    for row in list(name).itertuples():
        for label in row.labels:
            out.setdefault(label, []).append(f"{row.name} v{row.version}")
    return dict(sorted(out.items()))
