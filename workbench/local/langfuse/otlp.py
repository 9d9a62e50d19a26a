"""OTLP/HTTP trace ingest: decode an `ExportTraceServiceRequest` (protobuf or JSON, gzip or not)
and store its spans as observations, all of them or none."""

from __future__ import annotations

import base64
import binascii
import json
import re
import zlib
from typing import Any

from google.protobuf import json_format
from google.protobuf.message import DecodeError
from opentelemetry.proto.collector.trace.v1.trace_service_pb2 import (
    ExportTraceServiceRequest,
    ExportTraceServiceResponse,
)
from starlette.concurrency import run_in_threadpool
from starlette.requests import Request
from starlette.responses import Response

from ._errors import BadRequest, Json, PayloadTooLarge, UnsupportedMediaType
from ._http import MAX_BODY_BYTES, read_body
from .ingest import store_observations
from .mapping import map_request

MAX_INFLATED_BYTES = 4 * MAX_BODY_BYTES
"""A compressed body may inflate to this much; beyond it the request is refused (413)."""

PROTOBUF_TYPES = frozenset({"application/x-protobuf", "application/protobuf", ""})
JSON_TYPES = frozenset({"application/json"})

_HEX = re.compile(r"^[0-9a-fA-F]*$")
_EMPTY_PROTOBUF_RESPONSE = ExportTraceServiceResponse().SerializeToString()


def _inflate(body: bytes, encoding: str) -> bytes:
    if encoding in ("", "identity"):
        return body
    if encoding not in ("gzip", "x-gzip", "deflate"):
        raise UnsupportedMediaType(
            f"Content-Encoding '{encoding}' is not supported. Send gzip, deflate or no encoding."
        )
    wbits = 16 + zlib.MAX_WBITS if encoding != "deflate" else zlib.MAX_WBITS
    inflater = zlib.decompressobj(wbits)
    try:
        data = inflater.decompress(body, MAX_INFLATED_BYTES)
        if inflater.unconsumed_tail:
            raise PayloadTooLarge(
                f"The {encoding} body inflates to more than {MAX_INFLATED_BYTES:,} bytes. "
                "Send smaller batches."
            )
        data += inflater.flush()
    except zlib.error as exc:
        raise BadRequest(
            f"The body is not valid {encoding} data ({exc}) although Content-Encoding says "
            f"'{encoding}'. Compress it, or drop the Content-Encoding header."
        ) from exc
    if not inflater.eof:
        raise BadRequest(f"The {encoding} body is truncated. Send the complete compressed body.")
    return data


def decode(body: bytes, content_type: str, content_encoding: str) -> ExportTraceServiceRequest:
    """Parse an OTLP/HTTP trace export body, or raise BadRequest saying what is wrong with it."""
    media_type = content_type.split(";", 1)[0].strip().lower()
    data = _inflate(body, content_encoding.strip().lower())
    if media_type in JSON_TYPES:
        return _from_json(data)
    if media_type not in PROTOBUF_TYPES:
        raise UnsupportedMediaType(
            f"Content-Type '{content_type}' is not an OTLP encoding. Send "
            "'application/x-protobuf' (binary ExportTraceServiceRequest) or 'application/json'."
        )
    request = ExportTraceServiceRequest()
    try:
        request.ParseFromString(data)
    except (DecodeError, RuntimeError, ValueError) as exc:
        raise BadRequest(
            f"The body is not a valid OTLP ExportTraceServiceRequest protobuf ({exc}). Nothing "
            "was stored. Send the serialized message as 'application/x-protobuf' or OTLP JSON "
            "as 'application/json'."
        ) from exc
    return request


def _id_to_base64(value: Any, size: int, where: str) -> Any:
    """OTLP JSON ids are hex (the OTLP spec); proto3 JSON says base64. Accept both."""
    if not isinstance(value, str) or value == "":
        return value
    if len(value) == 2 * size and _HEX.match(value):
        return base64.b64encode(bytes.fromhex(value)).decode()
    try:
        raw = base64.b64decode(value, validate=True)
    except (binascii.Error, ValueError):
        raw = b""
    if len(raw) != size:
        raise BadRequest(
            f"{where} has value '{value}'. Not a {size}-byte id as {2 * size} hex characters "
            "(or base64)."
        )
    return value


def _from_json(data: bytes) -> ExportTraceServiceRequest:
    try:
        document = json.loads(data)
    except (UnicodeDecodeError, ValueError) as exc:
        raise BadRequest(f"The body is not valid JSON ({exc}). Nothing was stored.") from exc
    if not isinstance(document, dict):
        raise BadRequest(
            'The OTLP JSON body must be an object such as {"resourceSpans": [...]}. '
            "Nothing was stored."
        )
    for r, resource_spans in enumerate(_items(document.get("resourceSpans"))):
        for s, scope_spans in enumerate(_items(resource_spans.get("scopeSpans"))):
            for i, span in enumerate(_items(scope_spans.get("spans"))):
                where = f"resourceSpans[{r}].scopeSpans[{s}].spans[{i}]"
                for key, size in (("traceId", 16), ("spanId", 8), ("parentSpanId", 8)):
                    if key in span:
                        span[key] = _id_to_base64(span[key], size, f"{where}.{key}")
                for j, link in enumerate(_items(span.get("links"))):
                    for key, size in (("traceId", 16), ("spanId", 8)):
                        if key in link:
                            link[key] = _id_to_base64(link[key], size, f"{where}.links[{j}].{key}")
    request = ExportTraceServiceRequest()
    try:
        json_format.ParseDict(document, request, ignore_unknown_fields=True)
    except json_format.ParseError as exc:
        raise BadRequest(
            f"The body is not a valid OTLP JSON ExportTraceServiceRequest ({exc}). "
            "Nothing was stored."
        ) from exc
    return request


def _items(value: Any) -> list[dict[str, Any]]:
    return [item for item in value if isinstance(item, dict)] if isinstance(value, list) else []


def ingest(db: Any, body: bytes, content_type: str, content_encoding: str) -> int:
    """Decode, map and store one export request; returns the number of spans stored."""
    request = decode(body, content_type, content_encoding)
    rows, traces = map_request(request)
    if rows:
        store_observations(db, rows, traces)
    return len(rows)


async def export_traces(request: Request) -> Response:
    """`POST /api/public/otel/v1/traces`."""
    body = await read_body(request)
    content_type = request.headers.get("content-type", "")
    await run_in_threadpool(
        ingest,
        request.app.state.db,
        body,
        content_type,
        request.headers.get("content-encoding", ""),
    )
    if content_type.split(";", 1)[0].strip().lower() in JSON_TYPES:
        return Json({})
    return Response(_EMPTY_PROTOBUF_RESPONSE, media_type="application/x-protobuf")
