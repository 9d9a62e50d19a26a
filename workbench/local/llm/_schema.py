"""Deterministic, schema-valid answers for any JSON schema, filled from the conversation.

`instance(schema, facts)` builds a value that satisfies the schema (objects with every property,
`$ref`/`$defs`, `anyOf`/`oneOf`/`allOf`, enums and consts, string formats, number bounds, array
lengths). Where a property's name matches a fact of the conversation (`facts_of`), the fact is
used when it fits the property's type: values stated as JSON (a user message, a tool's output,
the arguments of an earlier tool call), `Name: value` lines, and the claim fields the parser reads
from the last user message (customer id, date, amount, currency, category, receipt). Later
messages win over earlier ones, as a careful reader's latest information would. A property with
no matching fact gets null when the schema allows it, else the first enum value, the lowest
allowed number, false, an empty list, or a short placeholder text ("unknown"; a sentence about
the last user message for text-like names such as summary, reason or answer)."""

from __future__ import annotations

import json
import re
from typing import Any

from ._lexicon import fold
from ._protocol import Conversation

_KEY_VALUE = re.compile(
    r"^[ \t]*([A-Za-z][\w .\-/]{0,40}?)[ \t]*[:=][ \t]*(\S[^\n]{0,200}?)[ \t]*$", re.M
)
_SYNONYMS = {
    "customer": "customerid", "client": "customerid", "clientid": "customerid",
    "customernumber": "customerid", "date": "claimdate", "expensedate": "claimdate",
    "servicedate": "claimdate", "total": "amount", "sum": "amount", "type": "category",
    "receipt": "hasreceipt",
}  # fmt: skip
_TEXT_NAMES = re.compile(
    r"summary|reason|description|explanation|answer|message|text|comment|note|rationale"
    r"|response|justification|analysis|details|content|output|result"
)
_FORMATS = {
    "date": "1970-01-01",
    "date-time": "1970-01-01T00:00:00Z",
    "time": "00:00:00Z",
    "email": "unknown@example.com",
    "uri": "https://example.com/",
    "url": "https://example.com/",
    "uuid": "00000000-0000-4000-8000-000000000000",
}


def key(name: str) -> str:
    """A property or fact name reduced for matching ("Customer ID" -> "customerid")."""
    reduced = re.sub(r"[^a-z0-9]", "", fold(name))
    return _SYNONYMS.get(reduced, reduced)


def _flatten(data: Any, facts: dict[str, Any]) -> None:
    if isinstance(data, dict):
        for name, value in data.items():
            if value is not None:
                facts[key(str(name))] = value
            _flatten(value, facts)
    elif isinstance(data, list):
        for value in data:
            _flatten(value, facts)


def _json(text: str) -> Any:
    text = text.strip()
    if not text or text[0] not in "[{":
        return None
    try:
        return json.loads(text)
    except ValueError:
        return None


def facts_of(
    conversation: Conversation, claim_fields: dict[str, Any] | None = None
) -> dict[str, Any]:
    """Named values the conversation states (see the module docstring); later ones win."""
    facts: dict[str, Any] = {}
    for name, value in (claim_fields or {}).items():
        if value is not None and name not in ("description", "problems"):
            facts[key(name)] = value
    for message in conversation.messages:
        if message["role"] in ("system", "developer"):
            continue
        data = _json(message.get("content") or "")
        if data is not None:
            _flatten(data, facts)
        else:
            for m in _KEY_VALUE.finditer(message.get("content") or ""):
                facts[key(m.group(1))] = m.group(2)
        for call in message.get("tool_calls") or []:
            _flatten(_json(call["function"]["arguments"]), facts)
    return facts


def _resolve(schema: Any, root: dict[str, Any]) -> dict[str, Any]:
    seen = 0
    while isinstance(schema, dict) and "$ref" in schema and seen < 32:
        ref = schema["$ref"]
        target: Any = root
        for part in ref.lstrip("#/").split("/") if ref.startswith("#") else []:
            target = (
                target.get(part.replace("~1", "/").replace("~0", "~"), {})
                if isinstance(target, dict)
                else {}
            )
        rest = {k: v for k, v in schema.items() if k != "$ref"}
        schema = {**target, **rest} if isinstance(target, dict) else rest
        seen += 1
    return schema if isinstance(schema, dict) else {}


def _types(schema: dict[str, Any]) -> list[str]:
    kind = schema.get("type")
    if isinstance(kind, list):
        return [str(k) for k in kind]
    if isinstance(kind, str):
        return [kind]
    if "properties" in schema:
        return ["object"]
    if "items" in schema:
        return ["array"]
    return []


def _nullable(schema: dict[str, Any], root: dict[str, Any]) -> bool:
    if "null" in _types(schema) or schema.get("nullable") is True:
        return True
    options = schema.get("anyOf") or schema.get("oneOf") or []
    return any("null" in _types(_resolve(o, root)) for o in options)


_MISSING = object()


def _coerce(value: Any, schema: dict[str, Any], root: dict[str, Any]) -> Any:
    """The value made to fit the schema, or _MISSING when it cannot fit."""
    schema = _resolve(schema, root)
    if "const" in schema:
        return schema["const"] if value == schema["const"] else _MISSING
    if "enum" in schema:
        for option in schema["enum"]:
            if option == value or (isinstance(option, str) and isinstance(value, str)
                                   and fold(option) == fold(value.strip())):  # fmt: skip
                return option
        return _MISSING
    options = schema.get("anyOf") or schema.get("oneOf")
    if options:
        for option in options:
            fitted = _coerce(value, option, root)
            if fitted is not _MISSING:
                return fitted
        return _MISSING
    types = _types(schema) or ["string", "number", "boolean", "object", "array"]
    for kind in types:
        fitted = _fit(value, kind, schema, root)
        if fitted is not _MISSING:
            return fitted
    return _MISSING


def _fit(value: Any, kind: str, schema: dict[str, Any], root: dict[str, Any]) -> Any:
    if kind == "null":
        return None if value is None else _MISSING
    if kind == "boolean":
        if isinstance(value, bool):
            return value
        if isinstance(value, str) and fold(value.strip()) in ("yes", "true", "ja", "oui", "si"):
            return True
        if isinstance(value, str) and fold(value.strip()) in ("no", "false", "nein", "non"):
            return False
        return _MISSING
    if kind in ("integer", "number"):
        number = value if isinstance(value, int | float) and not isinstance(value, bool) else None
        if isinstance(value, str):
            m = re.fullmatch(r"\s*-?\d+(?:\.\d+)?\s*", value)
            number = float(value) if m else None
        if number is None:
            return _MISSING
        if kind == "integer":
            if float(number) != int(number):
                return _MISSING
            number = int(number)
        low, high = schema.get("minimum"), schema.get("maximum")
        if (low is not None and number < low) or (high is not None and number > high):
            return _MISSING
        return number
    if kind == "string":
        if isinstance(value, bool) or not isinstance(value, str | int | float):
            return _MISSING
        text = value if isinstance(value, str) else f"{value:g}"
        if len(text) < schema.get("minLength", 0):
            return _MISSING
        pattern = schema.get("pattern")
        if pattern and not re.search(pattern, text):
            return _MISSING
        return text[: schema["maxLength"]] if "maxLength" in schema else text
    if kind == "array":
        if not isinstance(value, list):
            return _MISSING
        items = [_coerce(v, schema.get("items") or {}, root) for v in value]
        if any(i is _MISSING for i in items) or len(items) < schema.get("minItems", 0):
            return _MISSING
        return items[: schema["maxItems"]] if "maxItems" in schema else items
    if kind == "object":
        if not isinstance(value, dict):
            return _MISSING
        facts = {key(k): v for k, v in value.items()}
        return instance(schema, facts, root)
    return _MISSING


def _default(kind: str, schema: dict[str, Any], name: str, summary: str) -> Any:
    """A value of a scalar type within the schema's bounds, when no fact fits."""
    if kind == "boolean":
        return False
    if kind in ("integer", "number"):
        return _number(kind, schema)
    if kind == "null":
        return None
    return _text(schema, name, summary)


def _number(kind: str, schema: dict[str, Any]) -> int | float:
    low = schema.get("minimum", schema.get("exclusiveMinimum", 0))
    value: float = low + (1 if "exclusiveMinimum" in schema and "minimum" not in schema else 0)
    step = schema.get("multipleOf")
    if isinstance(step, int | float) and step > 0 and value % step:
        value = (value // step + 1) * step
    high = schema.get("maximum", schema.get("exclusiveMaximum"))
    if high is not None and value > high:
        value = high
    return int(value) if kind == "integer" else float(value)


def _text(schema: dict[str, Any], name: str, summary: str) -> str:
    first = _FORMATS.get(str(schema.get("format")), "")
    if not first:
        first = summary if _TEXT_NAMES.search(name.lower()) else "unknown"
    low, high = int(schema.get("minLength", 0)), schema.get("maxLength")
    pattern = schema.get("pattern")
    for candidate in (first, "unknown", "0", "a", "A", "x" * max(low, 1), "0" * max(low, 1)):
        text = candidate.ljust(low, ".")
        text = text[:high] if high is not None else text
        if not pattern or re.search(pattern, text):
            return text
    return first  # a pattern none of the plain candidates meets: the closest honest answer


def _unique(items: list[Any]) -> list[Any]:
    """Items made distinct (for `uniqueItems`): numbers counted up, texts numbered."""
    out: list[Any] = []
    for item in items:
        while item in out:
            if isinstance(item, bool):
                item = not item
            elif isinstance(item, int | float):
                item = item + 1
            elif isinstance(item, str):
                item = f"{item} {len(out) + 1}"
            else:
                break
        out.append(item)
    return out


def instance(
    schema: dict[str, Any],
    facts: dict[str, Any],
    root: dict[str, Any] | None = None,
    name: str = "",
    summary: str = "unknown",
) -> Any:
    """A value valid under `schema`, filled from `facts` where property names match."""
    root = root if root is not None else schema
    schema = _resolve(schema, root)
    if "allOf" in schema:
        merged: dict[str, Any] = {k: v for k, v in schema.items() if k != "allOf"}
        for part in schema["allOf"]:
            part = _resolve(part, root)
            merged["properties"] = {**merged.get("properties", {}), **part.get("properties", {})}
            merged.update({k: v for k, v in part.items() if k != "properties"})
        schema = merged
    if "properties" in schema or "object" in _types(schema):
        out = {}
        for prop, sub in (schema.get("properties") or {}).items():
            out[prop] = _value(sub, facts, root, prop, summary)
        return out
    return _value(schema, facts, root, name, summary, top=True)


def _value(
    schema: Any,
    facts: dict[str, Any],
    root: dict[str, Any],
    name: str,
    summary: str,
    top: bool = False,
) -> Any:
    schema = _resolve(schema, root)
    if name and not top:
        fact = facts.get(key(name), _MISSING)
        if fact is not _MISSING:
            fitted = _coerce(fact, schema, root)
            if fitted is not _MISSING:
                return fitted
        if _nullable(schema, root):
            return None
    if "const" in schema:
        return schema["const"]
    if schema.get("enum"):
        return schema["enum"][0]
    if "default" in schema and _coerce(schema["default"], schema, root) is not _MISSING:
        return schema["default"]
    options = schema.get("anyOf") or schema.get("oneOf")
    if options:
        choices = [o for o in options if "null" not in _types(_resolve(o, root))] or options
        return _value(choices[0], facts, root, name, summary, top=True)
    if "properties" in schema or "allOf" in schema:
        return instance(schema, facts, root, name, summary)
    kinds = [k for k in _types(schema) if k != "null"] or ["string"]
    if kinds[0] == "object":
        return instance(schema, facts, root, name, summary)
    if kinds[0] == "array":
        count = int(schema.get("minItems", 0))
        items = [
            _value(schema.get("items") or {}, facts, root, "", summary, top=True)
            for _ in range(count)
        ]
        return _unique(items) if schema.get("uniqueItems") else items
    return _default(kinds[0], schema, name, summary)
