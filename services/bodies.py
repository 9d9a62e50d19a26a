"""Request bodies checked by the handlers themselves, so that a bad one is answered HTTP 400 with
a readable reason.

Left to the SDK, a body that does not parse raises inside the SDK before the handler runs and is
answered HTTP 500 ("Unable to parse an input argument"). Here the input serde never raises: it
returns the model, or an `InvalidBody` saying what is wrong (not UTF-8, not JSON, not an object,
a field of the wrong type, a document empty or too long), and the handler's first line,
`accepted(body)`, turns that into `TerminalError(reason, status_code=400)`.

What Restate does with the claim id (checked on restate-server 1.7.12): the ingress itself
refuses an empty body or a wrong content type (HTTP 400, nothing is created). Any other body
creates the workflow's `run` invocation before the service sees it, so a `run` refused with 400
completes (failed) and the id answers HTTP 409 "the workflow method was already invoked" until
that invocation is purged (`PATCH /invocations/{id}/purge` on the admin API, the id is in the
400's `x-restate-id` header; `workbench.stack.admin.purge_invocation`), after which the id is
free again. A bad body sent to `approve` or `reject` changes nothing: the claim keeps waiting."""

from __future__ import annotations

import json
from typing import Any, Generic, TypeVar

from pydantic import BaseModel, ValidationError
from restate import TerminalError
from restate.serde import Serde

M = TypeVar("M", bound=BaseModel)

MAX_BODY_BYTES = 256 * 1024
"""Larger bodies are refused before parsing (a claim document is at most 20,000 characters)."""


class InvalidBody:
    """A body that is not a valid request, and why."""

    def __init__(self, reason: str) -> None:
        self.reason = reason

    def __repr__(self) -> str:
        return f"InvalidBody({self.reason!r})"


class Checked(Serde[M], Generic[M]):
    """Deserializes a JSON body into `model`, or into an `InvalidBody` (never raises).

    `defaults` fill fields the body leaves out (e.g. `approved` for the approve handler);
    `example` is shown in every reason, so the caller sees what a valid body looks like."""

    def __init__(self, model: type[M], example: str, defaults: dict[str, Any] | None = None):
        self.model = model
        self.example = example
        self.defaults = dict(defaults or {})

    def deserialize(self, buf: bytes) -> M | InvalidBody:  # type: ignore[override]
        return self.check(bytes(buf))

    def serialize(self, obj: M | None) -> bytes:
        return b"" if obj is None else obj.model_dump_json().encode()

    def check(self, raw: bytes) -> M | InvalidBody:
        what = self.model.__name__
        if len(raw) > MAX_BODY_BYTES:
            return self._invalid(
                f"the body has {len(raw):,} bytes; the limit is {MAX_BODY_BYTES:,}"
            )
        if not raw.strip():
            return self._invalid("the body is empty")
        try:
            text = raw.decode("utf-8")
        except UnicodeDecodeError as e:
            return self._invalid(
                f"the body is not UTF-8 text (byte 0x{raw[e.start]:02x} at offset {e.start})"
            )
        try:
            data = json.loads(text)
        except ValueError as e:
            return self._invalid(f"the body is not valid JSON ({e})")
        if not isinstance(data, dict):
            return self._invalid(f"the body must be a JSON object, not {_json_type(data)}")
        try:
            return self.model.model_validate({**self.defaults, **data})
        except ValidationError as e:
            return self._invalid(_problems(e, what))

    def _invalid(self, problem: str) -> InvalidBody:
        return InvalidBody(
            f"Bad {self.model.__name__} body: {problem.rstrip('.')}. "
            f"Send a JSON object like {self.example}."
        )


def accepted(body: M | InvalidBody) -> M:
    """The request, or TerminalError(400) with the reason (Restate answers HTTP 400)."""
    if isinstance(body, InvalidBody):
        raise TerminalError(body.reason, status_code=400)
    return body


def _json_type(value: Any) -> str:
    if value is None:
        return "null"
    return {bool: "a boolean", int: "a number", float: "a number", str: "a string"}.get(
        type(value), "an array"
    )


def _problems(error: ValidationError, what: str) -> str:
    parts = []
    for problem in error.errors()[:5]:
        where = ".".join(str(p) for p in problem["loc"]) or what
        message = str(problem["msg"]).removeprefix("Value error, ")
        if problem["type"] in ("missing", "value_error"):
            parts.append(f"{where}: {message}")
        else:
            parts.append(f"{where}: {message} (got {_short(problem.get('input'))})")
    return "; ".join(parts)


def _short(value: Any) -> str:
    text = json.dumps(value, ensure_ascii=False, default=str)
    return text if len(text) <= 60 else text[:57] + "..."
