"""Prompts in Langfuse, with versions and labels: what a notebook lists, reads, creates,
promotes and compares (`wb.prompts`).

    import workbench as wb
    wb.prompts.list()                              # every version of every prompt, with labels
    wb.prompts.get("claim-analyst", label="staging")
    wb.prompts.diff("claim-analyst", 1, 2)         # coloured in Jupyter
    wb.prompts.promote("claim-analyst", 2)         # `production` moves from v1 to v2
    wb.prompts.labels()                            # {"production": ["claim-analyst v2", ...]}
    wb.prompts.switcher("claim-analyst")           # the same as a widget

Reads never use the SDK's prompt cache, so a promotion is visible at once. A label lives on one
version of a prompt at a time; `latest` always marks the newest.
"""

from __future__ import annotations

import builtins
import difflib
import html
import json
import sys
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field, replace
from typing import TYPE_CHECKING, Any

import pandas as pd

from services.prompts import ANALYST

from .clients.langfuse import describe_error
from .display import warn
from .errors import LangfuseError, PromptError, PromptNotFoundError
from .frames import as_table
from .session import Namespace, module_namespace

if TYPE_CHECKING:
    from .widgets.label_switcher import LabelSwitcher

__all__ = ["LATEST", "PRODUCTION", "Prompt", "PromptDiff", "Prompts"]

LATEST = "latest"
PRODUCTION = "production"
LIST_COLUMNS = ["name", "version", "labels", "commit_message", "created", "type", "tags"]


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
    unrecognized_clauses: tuple[str, ...] = ()
    """For an analyst prompt created while the embedded model runs: the clauses it would not
    apply (a real language model reads them all)."""

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
        missed = ""
        if self.unrecognized_clauses:
            items = "".join(f"<li>{html.escape(c)}</li>" for c in self.unrecognized_clauses)
            missed = (
                "<div style='background:#fff8e1;padding:4px 8px'>The embedded model does not "
                f"apply these clauses:<ul style='margin:2px 0'>{items}</ul></div>"
            )
        return f"<div>{head}{config}{missed}<pre style='white-space:pre-wrap'>{body}</pre></div>"


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


def _labels_moved(name: str) -> None:
    """Switchers on show in this kernel refresh (only if any was ever made)."""
    switchers = sys.modules.get("workbench.widgets.label_switcher")
    if switchers is not None:
        switchers.refresh_switchers(name)


def _check_name(name: Any) -> str:
    if not isinstance(name, str) or not name.strip():
        raise ValueError(
            f"A prompt name is a non-empty string such as 'claim-analyst'; got {name!r}."
        )
    return name


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


def _created(raw: Any) -> pd.Timestamp | None:
    """Langfuse answers `createdAt` beside the documented fields (the embedded one may not)."""
    extra = getattr(raw, "model_extra", None) or {}
    value = extra.get("createdAt") or extra.get("created_at")
    return pd.Timestamp(value) if value else None


class Prompts(Namespace):
    """Prompt versions and labels in Langfuse (`wb.prompts`): list, get, create, ensure, promote,
    diff, labels, switcher."""

    def _known_names(self) -> str:
        names = sorted(p.name for p in self.session.langfuse.prompt_metas())
        return ", ".join(names) if names else "none yet"

    def _not_found(self, name: str, wanted: str, hint: str | None = None) -> PromptNotFoundError:
        meta = self.session.langfuse.prompt_meta(name)
        if meta is None:
            return PromptNotFoundError(
                f"No prompt named {name!r} in Langfuse (known prompts: {self._known_names()}). "
                f"Create it with wb.prompts.create({name!r}, text)."
            )
        versions = ", ".join(str(v) for v in sorted(meta.versions))
        return PromptNotFoundError(
            f"Prompt {name!r} has no {wanted} (versions: {versions}; labels: "
            f"{', '.join(sorted(meta.labels)) or 'none'}). "
            + (
                hint
                or "Use one of those, or move a label to a version with "
                f"wb.prompts.promote({name!r}, version, label)."
            )
        )

    def get(self, name: str, label: str | None = None, version: int | None = None) -> Prompt:
        """One version of a prompt: by `version`, by `label`, or (neither) the `production` one.

        Example:
            >>> print(wb.prompts.get("claim-analyst", label="staging"))
        """
        _check_name(name)
        if label is not None and version is not None:
            raise ValueError(
                f"Pass either label= or version= for prompt {name!r}, not both "
                f"(got label={label!r}, version={version!r})."
            )
        wanted = f"version {version}" if version is not None else f"label {label or PRODUCTION!r}"
        from langfuse.api import NotFoundError

        try:
            client = self.session.langfuse.prompt(name, label=label, version=version)
        except NotFoundError:
            raise self._not_found(name, wanted) from None
        return _from_client(client)

    def create(
        self,
        name: str,
        text: str | Sequence[dict[str, Any]],
        labels: Iterable[str] = (),
        commit_message: str | None = None,
        *,
        config: dict[str, Any] | None = None,
        tags: Iterable[str] | None = None,
    ) -> Prompt:
        """A new version of `name` (version = newest + 1; `latest` moves to it). `text` is a
        string (a text prompt) or a list of chat messages `{"role", "content"}`; `labels` (such
        as `["staging"]`) move to the new version.

        When the embedded model answers the claims, an analyst prompt is checked against the
        clause forms it applies: a clause it would not apply is named in a warning (and in
        `Prompt.unrecognized_clauses`), never silently ignored.

        Example:
            >>> v3 = wb.prompts.create("claim-analyst", text, labels=["staging"],
            ...                        commit_message="review every travel claim")
        """
        from langfuse.api.core import ApiError

        _check_name(name)
        chat = not isinstance(text, str)
        if chat:
            messages = builtins.list(text)
            if not messages or not all(isinstance(m, dict) for m in messages):
                raise ValueError(
                    f"Prompt {name!r}: the text is a string, or a non-empty list of messages "
                    f'such as [{{"role": "system", "content": "..."}}]; got {text!r}.'
                )
        elif not text.strip():
            raise ValueError(
                f"Prompt {name!r}: the text is empty. Write the prompt's instructions."
            )
        if isinstance(labels, str):
            labels = [labels]
        wanted = [*dict.fromkeys(labels)]
        if LATEST in wanted:
            raise ValueError(
                "The label 'latest' is set by Langfuse on the newest version; leave it out."
            )
        try:
            client = self.session.langfuse.create_prompt(
                name=name,
                prompt=messages if chat else text,
                labels=wanted,
                tags=[*tags] if tags is not None else None,
                config=config,
                commit_message=commit_message,
            )
        except ApiError as e:
            raise PromptError(
                f"Langfuse refused the new version of prompt {name!r}: {describe_error(e)}"
            ) from None
        _labels_moved(name)
        created = _from_client(client)
        if name == ANALYST and not chat and self._embedded_model():
            from .local.llm.clauses import unrecognized_clauses

            missed = tuple(unrecognized_clauses(text))
            if missed:
                created = replace(created, unrecognized_clauses=missed)
                warn(
                    f"{name} v{created.version}: the embedded model will not apply "
                    f"{len(missed)} clause(s) of this prompt, and says so in each claim's "
                    "outcome (unrecognized_clauses) and trace: "
                    + "; ".join(missed)
                    + ". Reword them in a form it knows (workbench/local/llm/README.md), or "
                    "point OPENAI_BASE_URL at a language model."
                )
        return created

    def _embedded_model(self) -> bool:
        """The claims of this session are answered by the embedded model (not a real one)."""
        stack = self.session.stack
        return stack is not None and "llm" in stack.names

    def ensure(
        self,
        name: str,
        text: str | Sequence[dict[str, Any]],
        labels: Iterable[str] = (),
        commit_message: str | None = None,
    ) -> Prompt:
        """The version of `name` whose text is exactly `text`, created (as `create` does) when no
        version has it: a notebook run twice makes one version, not two. `labels` move to it
        either way.

        Example:
            >>> v3 = wb.prompts.ensure("claim-analyst", text, commit_message="receipts from 50 EUR")
            >>> v3.version
            3
        """
        _check_name(name)
        meta = self.session.langfuse.prompt_meta(name)
        for version in sorted(meta.versions if meta is not None else [], reverse=True):
            found = self.get(name, version=version)
            if found.text == text:
                wanted = [*dict.fromkeys([labels] if isinstance(labels, str) else labels)]
                missing = [label for label in wanted if label not in found.labels]
                if missing:
                    kept = [label for label in found.labels if label != LATEST]
                    self.session.langfuse.move_labels(name, version, [*kept, *missing])
                    _labels_moved(name)
                    found = self.get(name, version=version)
                return found
        return self.create(name, text, labels, commit_message)

    def promote(self, name: str, version: int, label: str = PRODUCTION) -> Prompt:
        """Move `label` to `version` of `name` (off the version that had it). New claims fetching
        that label get this version; claims that already fetched keep theirs.

        Example:
            >>> wb.prompts.promote("claim-analyst", 2, "production")
        """
        from langfuse.api.core import ApiError

        _check_name(name)
        if isinstance(version, bool) or not isinstance(version, int):
            raise TypeError(f"A prompt version is an int such as 2; got {version!r}.")
        if not isinstance(label, str) or not label:
            raise ValueError(f"A label is a non-empty string such as 'production'; got {label!r}.")
        if label == LATEST:
            raise ValueError(
                "The label 'latest' always marks the newest version and cannot be moved: create "
                "a new version instead, or promote to another label (e.g. 'production')."
            )
        meta = self.session.langfuse.prompt_meta(name)
        if meta is None or version not in meta.versions:
            raise self._not_found(
                name,
                f"version {version}",
                "Promote one of those versions, or add a version with "
                f"wb.prompts.create({name!r}, text).",
            )
        try:
            self.session.langfuse.move_labels(name, version, [label])
        except ApiError as e:
            raise PromptError(
                f"Langfuse refused to move label {label!r} to {name} v{version}: "
                f"{describe_error(e)}"
            ) from None
        _labels_moved(name)
        return self.get(name, version=version)

    def diff(self, name: str, a: int | str, b: int | str, *, context: int = 3) -> PromptDiff:
        """A unified diff from `a` to `b`: each a version number or a label (`"production"`).

        Example:
            >>> wb.prompts.diff("claim-analyst", 1, "staging")
        """
        first, second = self.get(name, **_ref(a)), self.get(name, **_ref(b))
        old, new = f"{name} v{first.version}", f"{name} v{second.version}"
        before, after = first.as_text().splitlines(), second.as_text().splitlines()
        if first.config != second.config:
            before += ["", f"config: {json.dumps(first.config, sort_keys=True)}"]
            after += ["", f"config: {json.dumps(second.config, sort_keys=True)}"]
        lines = difflib.unified_diff(before, after, old, new, n=context, lineterm="")
        return PromptDiff(name, f"v{first.version}", f"v{second.version}", tuple(lines))

    def list(self, name: str | None = None) -> pd.DataFrame:
        """Every version of every prompt (or of `name`): version, labels, commit message,
        created, type, tags.

        Example:
            >>> wb.prompts.list("claim-analyst")
        """
        langfuse = self.session.langfuse
        if name is None:
            metas = langfuse.prompt_metas()
        else:
            meta = langfuse.prompt_meta(_check_name(name))
            if meta is None:
                raise PromptNotFoundError(
                    f"No prompt named {name!r} in Langfuse (known prompts: "
                    f"{self._known_names()}). Create it with wb.prompts.create({name!r}, text)."
                )
            metas = [meta]
        rows = []
        for meta in sorted(metas, key=lambda m: m.name):
            for version in sorted(meta.versions):
                raw = langfuse.prompt_version(meta.name, version)
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
        return as_table(frame)

    def labels(self, name: str | None = None) -> dict[str, builtins.list[str]]:
        """Each label and the prompt versions that carry it: {"production": ["claim-analyst v1"]}.

        Example:
            >>> wb.prompts.labels("claim-analyst")
            {'latest': ['claim-analyst v2'], 'production': ['claim-analyst v1'], ...}
        """
        out: dict[str, builtins.list[str]] = {}
        for row in self.list(name).itertuples():
            for label in row.labels:
                out.setdefault(label, []).append(f"{row.name} v{row.version}")
        return dict(sorted(out.items()))

    def known_labels(self) -> set[str]:
        """The labels some prompt carries (one request): what a claim's `prompt_label` may be.
        From Langfuse when the stack has one and it answers; else from data/prompts/, as the
        services do.

        Example:
            >>> "production" in wb.prompts.known_labels()
            True
        """
        session = self.session
        if session.has_langfuse:
            try:
                return session.langfuse.prompt_labels()
            except LangfuseError:
                pass  # Langfuse unreachable: the services fall back to the seed prompts too
        from services.prompts import labels as seed_labels

        return set(seed_labels())

    def switcher(self, name: str = "claim-analyst", label: str = PRODUCTION) -> LabelSwitcher:
        """A widget: the versions of `name` and where each label points, with a [Promote]
        button that moves a label to the selected version.

        Example:
            >>> wb.prompts.switcher("claim-analyst")
        """
        from .widgets.label_switcher import LabelSwitcher

        return LabelSwitcher(name, label, prompts=self)


__getattr__, __dir__ = module_namespace(__name__, Prompts)
