"""Reading requests: bounded bodies, JSON bodies, typed query parameters, opaque cursors."""

from __future__ import annotations

import base64
import binascii
import json
from typing import Any

from starlette.requests import Request

from ._errors import BadRequest, PayloadTooLarge
from ._time import parse_iso, time_problem

MAX_INT = 2**63 - 1
"""SQLite stores 64-bit signed integers: a larger number in a request is answered 400."""
MAX_PAGE = 2**31 - 1
"""Pages beyond this are refused (page x limit must stay a 64-bit row offset)."""

MAX_BODY_BYTES = 16 * 1024 * 1024
"""Request bodies above this are answered 413 (Langfuse Cloud's own limits are of this order)."""


async def read_body(request: Request, limit: int = MAX_BODY_BYTES) -> bytes:
    """The raw body, refused with 413 once it is larger than `limit` bytes."""
    declared = request.headers.get("content-length", "")
    if declared.isdigit() and int(declared) > limit:
        raise PayloadTooLarge(_too_large(int(declared), limit))
    chunks: list[bytes] = []
    size = 0
    async for chunk in request.stream():
        size += len(chunk)
        if size > limit:
            raise PayloadTooLarge(_too_large(size, limit))
        chunks.append(chunk)
    return b"".join(chunks)


def _too_large(size: int, limit: int) -> str:
    return (
        f"The request body ({size:,} bytes or more) is larger than the limit of {limit:,} bytes. "
        "Send smaller batches (e.g. a lower max_export_batch_size for spans)."
    )


async def read_json(request: Request) -> Any:
    """The body parsed as JSON, or 400 saying what is wrong with it."""
    raw = await read_body(request)
    if not raw.strip():
        raise BadRequest("The request body is empty. Send a JSON document.")
    try:
        return json.loads(raw)
    except (UnicodeDecodeError, ValueError) as exc:
        raise BadRequest(f"The request body is not valid JSON ({exc}).") from exc


def json_object(body: Any, what: str) -> dict[str, Any]:
    if not isinstance(body, dict):
        raise BadRequest(f"The body of {what} must be a JSON object, not {type(body).__name__}.")
    return body


def str_param(request: Request, name: str) -> str | None:
    value = request.query_params.get(name)
    return value if value not in (None, "") else None


def int_param(
    request: Request,
    name: str,
    default: int | None = None,
    *,
    minimum: int | None = None,
    maximum: int | None = None,
) -> int | None:
    raw = request.query_params.get(name)
    if raw in (None, ""):
        return default
    try:
        value = int(raw)
    except ValueError:
        raise BadRequest(f"Query parameter '{name}' has value '{raw}'. Not an integer.") from None
    if not -MAX_INT - 1 <= value <= MAX_INT:
        raise BadRequest(
            f"Query parameter '{name}' has value {value}, beyond the 64-bit integers this server "
            f"stores (at most {MAX_INT})."
        )
    if minimum is not None and value < minimum:
        raise BadRequest(f"Query parameter '{name}' has value {value}. It must be >= {minimum}.")
    if maximum is not None and value > maximum:
        raise BadRequest(f"Query parameter '{name}' has value {value}. It must be <= {maximum}.")
    return value


def float_param(request: Request, name: str) -> float | None:
    raw = request.query_params.get(name)
    if raw in (None, ""):
        return None
    try:
        return float(raw)
    except ValueError:
        raise BadRequest(f"Query parameter '{name}' has value '{raw}'. Not a number.") from None


def bool_param(request: Request, name: str) -> bool | None:
    raw = request.query_params.get(name)
    if raw in (None, ""):
        return None
    lowered = raw.lower()
    if lowered in ("true", "1"):
        return True
    if lowered in ("false", "0"):
        return False
    raise BadRequest(f"Query parameter '{name}' has value '{raw}'. Not a bool (true or false).")


def time_param(request: Request, name: str) -> int | None:
    """An ISO 8601 query parameter, as nanoseconds since the epoch."""
    raw = request.query_params.get(name)
    if raw in (None, ""):
        return None
    try:
        return parse_iso(raw)
    except ValueError as e:
        raise BadRequest(f"Query parameter '{name}': {time_problem(raw, e)}.") from None


def list_param(request: Request, name: str) -> list[str]:
    """Repeated (`a=1&a=2`) and comma-separated (`a=1,2`) values, in order, blanks dropped."""
    values: list[str] = []
    for raw in request.query_params.getlist(name):
        values.extend(part.strip() for part in raw.split(",") if part.strip())
    return values


def encode_cursor(*parts: Any) -> str:
    text = json.dumps(list(parts), separators=(",", ":"))
    return base64.urlsafe_b64encode(text.encode()).decode().rstrip("=")


def decode_cursor(raw: str | None, arity: int) -> list[Any] | None:
    if raw in (None, ""):
        return None
    try:
        padded = raw + "=" * (-len(raw) % 4)
        parts = json.loads(base64.urlsafe_b64decode(padded.encode()))
    except (binascii.Error, ValueError, UnicodeDecodeError):
        parts = None
    if not isinstance(parts, list) or len(parts) != arity:
        raise BadRequest(
            f"Query parameter 'cursor' has value '{raw}'. Not a cursor this server issued: pass "
            "meta.cursor of the previous page unchanged, or omit it for the first page."
        )
    return parts


def page_meta(page: int, limit: int, total: int) -> dict[str, int]:
    return {
        "page": page,
        "limit": limit,
        "totalItems": total,
        "totalPages": (total + limit - 1) // limit if limit else 0,
    }


def dumps(value: Any) -> str | None:
    """Compact JSON text for a column, None for None."""
    if value is None:
        return None
    return json.dumps(value, ensure_ascii=False, separators=(",", ":"))


def loads(text: str | None) -> Any:
    return None if text is None else json.loads(text)


def equality_filters(
    request: Request, clauses: list[str], params: list[Any], columns: tuple[tuple[str, str], ...]
) -> None:
    """Add `<sql> = ?` for each (query parameter, SQL expression) pair present in the request."""
    for name, sql in columns:
        value = str_param(request, name)
        if value is not None:
            clauses.append(f"{sql} = ?")
            params.append(value)
