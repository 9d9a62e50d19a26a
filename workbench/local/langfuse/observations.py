"""Observations: storing mapped spans, and `GET /api/public/v2/observations`."""

from __future__ import annotations

import json
import sqlite3
from typing import Any

from starlette.concurrency import run_in_threadpool
from starlette.requests import Request
from starlette.responses import Response

from . import _filters
from ._errors import BadRequest, Json
from ._http import (
    bool_param,
    decode_cursor,
    encode_cursor,
    int_param,
    list_param,
    loads,
    str_param,
    time_param,
)
from ._time import iso, seconds_between
from .db import Database
from .mapping import LEVELS, OBSERVATION_TYPES

FIELD_GROUPS = (
    "core",
    "basic",
    "time",
    "io",
    "metadata",
    "model",
    "usage",
    "prompt",
    "metrics",
    "trace_context",
)
DEFAULT_GROUPS = frozenset({"core", "basic"})

FILTER_COLUMNS = {
    "id": _filters.Column("o.id"),
    "type": _filters.Column("o.type"),
    "name": _filters.Column("o.name"),
    "traceId": _filters.Column("o.trace_id"),
    "startTime": _filters.Column("o.start_ns", "datetime"),
    "endTime": _filters.Column("o.end_ns", "datetime"),
    "environment": _filters.Column("o.environment"),
    "level": _filters.Column("o.level"),
    "statusMessage": _filters.Column("o.status_message"),
    "version": _filters.Column("o.version"),
    "userId": _filters.Column("COALESCE(o.user_id, t.user_id)"),
    "sessionId": _filters.Column("COALESCE(o.session_id, t.session_id)"),
    "isRootObservation": _filters.Column("o.is_root", "boolean"),
    "parentObservationId": _filters.Column("o.parent_observation_id"),
    "traceName": _filters.Column("COALESCE(t.name, t.root_name)"),
    "traceTags": _filters.Column("t.tags", "array"),
    "tags": _filters.Column("t.tags", "array"),
    "latency": _filters.Column("((o.end_ns - o.start_ns) / 1e9)", "number"),
    "timeToFirstToken": _filters.Column("((o.completion_start_ns - o.start_ns) / 1e9)", "number"),
    "inputTokens": _filters.Column("json_extract(o.usage_details, '$.input')", "number"),
    "outputTokens": _filters.Column("json_extract(o.usage_details, '$.output')", "number"),
    "totalTokens": _filters.Column("json_extract(o.usage_details, '$.total')", "number"),
    "tokens": _filters.Column("json_extract(o.usage_details, '$.total')", "number"),
    "inputCost": _filters.Column("json_extract(o.cost_details, '$.input')", "number"),
    "outputCost": _filters.Column("json_extract(o.cost_details, '$.output')", "number"),
    "totalCost": _filters.Column("o.total_cost", "number"),
    "model": _filters.Column("o.model"),
    "providedModelName": _filters.Column("o.model"),
    "promptName": _filters.Column("o.prompt_name"),
    "promptVersion": _filters.Column("o.prompt_version", "number"),
    "input": _filters.Column("o.input"),
    "output": _filters.Column("o.output"),
    "metadata": _filters.Column("o.metadata", "object"),
    "scopeName": _filters.Column("o.scope_name"),
    "attributes": _filters.Column("o.attributes", "object"),
    "resourceAttributes": _filters.Column("o.resource_attributes", "object"),
}
"""`filter` columns: Langfuse's, plus raw OTel `attributes`, `resourceAttributes`, `scopeName`."""

_HIDDEN_ATTRIBUTE_PREFIXES = ("langfuse.", "llm.input_messages.", "llm.output_messages.")
_HIDDEN_ATTRIBUTES = frozenset({"input.value", "output.value"})


def observation_metadata(row: sqlite3.Row) -> dict[str, Any]:
    """The observation's metadata, with the raw OTel context as Langfuse shows it."""
    metadata = loads(row["metadata"]) or {}
    if not isinstance(metadata, dict):
        metadata = {"metadata": metadata}
    attributes = {
        key: value
        for key, value in json.loads(row["attributes"]).items()
        if key not in _HIDDEN_ATTRIBUTES and not key.startswith(_HIDDEN_ATTRIBUTE_PREFIXES)
    }
    if attributes:
        metadata.setdefault("attributes", attributes)
    resource = json.loads(row["resource_attributes"])
    if resource:
        metadata.setdefault("resourceAttributes", resource)
    if row["scope_name"]:
        metadata.setdefault("scope", {"name": row["scope_name"], "version": row["scope_version"]})
    return metadata


def observation_v2(row: sqlite3.Row, groups: frozenset[str], project_id: str) -> dict[str, Any]:
    """One ObservationV2 with the requested field groups (core always)."""
    out: dict[str, Any] = {
        "id": row["id"],
        "traceId": row["trace_id"],
        "startTime": iso(row["start_ns"]),
        "endTime": iso(row["end_ns"]),
        "projectId": project_id,
        "parentObservationId": row["parent_observation_id"],
        "type": row["type"],
        "modelId": None,
        "inputPrice": None,
        "outputPrice": None,
        "totalPrice": None,
    }
    if "basic" in groups:
        out.update(
            name=row["name"],
            level=row["level"],
            statusMessage=row["status_message"],
            version=row["version"],
            environment=row["environment"],
            bookmarked=False,
            public=bool(row["t_public"]),
            userId=row["o_user_id"],
            sessionId=row["o_session_id"],
            isRootObservation=bool(row["is_root"]),
        )
    if "time" in groups:
        out.update(
            completionStartTime=iso(row["completion_start_ns"]),
            createdAt=iso(row["created_ns"]),
            updatedAt=iso(row["updated_ns"]),
        )
    if "io" in groups:
        out.update(input=row["input"], output=row["output"])
    if "metadata" in groups:
        out["metadata"] = observation_metadata(row)
    if "model" in groups:
        out.update(
            providedModelName=row["model"],
            model=row["model"],
            internalModelId=None,
            modelParameters=loads(row["model_parameters"]),
        )
    if "usage" in groups:
        out.update(
            usageDetails=loads(row["usage_details"]) or {},
            costDetails=loads(row["cost_details"]) or {},
            totalCost=row["total_cost"],
            usagePricingTierName=None,
        )
    if "prompt" in groups:
        out.update(
            promptId=None, promptName=row["prompt_name"], promptVersion=row["prompt_version"]
        )
    if "metrics" in groups:
        out.update(
            latency=seconds_between(row["start_ns"], row["end_ns"]),
            timeToFirstToken=seconds_between(row["start_ns"], row["completion_start_ns"]),
        )
    if "trace_context" in groups:
        out.update(
            tags=loads(row["t_tags"]) or [],
            release=row["release"] or row["t_release"],
            traceName=row["t_name"],
        )
    return out


def _groups(raw: str | None) -> frozenset[str]:
    if raw is None:
        return DEFAULT_GROUPS
    groups = {part.strip() for part in raw.split(",") if part.strip()}
    unknown = groups - set(FIELD_GROUPS)
    if unknown:
        raise BadRequest(
            f"Query parameter 'fields' has unknown group(s) {', '.join(sorted(unknown))}. "
            f"Use a comma-separated list of: {', '.join(FIELD_GROUPS)}."
        )
    return frozenset(groups | {"core"})


SELECT = """
SELECT o.*, COALESCE(o.user_id, t.user_id) AS o_user_id,
       COALESCE(o.session_id, t.session_id) AS o_session_id,
       COALESCE(t.name, t.root_name) AS t_name, t.tags AS t_tags, t.release AS t_release,
       t.public AS t_public
FROM observations o LEFT JOIN traces t ON t.id = o.trace_id
"""


def _conditions(request: Request) -> tuple[list[str], list[Any]]:
    raw_filter = str_param(request, "filter")
    if raw_filter is not None:
        return _filters.parse(raw_filter, FILTER_COLUMNS)
    clauses: list[str] = []
    params: list[Any] = []

    def equal(sql: str, value: Any) -> None:
        if value is not None:
            clauses.append(f"{sql} = ?")
            params.append(value)

    equal("o.name", str_param(request, "name"))
    equal("COALESCE(o.user_id, t.user_id)", str_param(request, "userId"))
    equal("COALESCE(o.session_id, t.session_id)", str_param(request, "sessionId"))
    equal("o.trace_id", str_param(request, "traceId"))
    equal("o.version", str_param(request, "version"))
    obs_type = str_param(request, "type")
    if obs_type is not None:
        if obs_type.upper() not in OBSERVATION_TYPES:
            raise BadRequest(
                f"Query parameter 'type' has value '{obs_type}'. Use one of: "
                f"{', '.join(sorted(OBSERVATION_TYPES))}."
            )
        equal("o.type", obs_type.upper())
    level = str_param(request, "level")
    if level is not None:
        if level not in LEVELS:
            raise BadRequest(
                f"Query parameter 'level' has value '{level}'. Use one of: "
                f"{', '.join(sorted(LEVELS))}."
            )
        equal("o.level", level)
    if "parentObservationId" in request.query_params:
        parent = request.query_params["parentObservationId"]
        if parent == "":
            clauses.append("o.parent_observation_id IS NULL")
        else:
            equal("o.parent_observation_id", parent)
    is_root = bool_param(request, "isRootObservation")
    if is_root is not None:
        equal("o.is_root", 1 if is_root else 0)
    environments = list_param(request, "environment")
    if environments:
        clauses.append(f"o.environment IN ({','.join('?' * len(environments))})")
        params.extend(environments)
    start = time_param(request, "fromStartTime")
    if start is not None:
        clauses.append("o.start_ns >= ?")
        params.append(start)
    end = time_param(request, "toStartTime")
    if end is not None:
        clauses.append("o.start_ns < ?")
        params.append(end)
    return clauses, params


def list_v2(db: Database, project_id: str, request: Request) -> dict[str, Any]:
    if bool_param(request, "parseIoAsJson"):
        raise BadRequest(
            "parseIoAsJson=true is deprecated and not supported: input and output are always "
            "raw strings. Remove the parameter (or set it to false) and json-decode them yourself."
        )
    groups = _groups(str_param(request, "fields"))
    limit = int_param(request, "limit", 50, minimum=1, maximum=1000)
    assert limit is not None
    clauses, params = _conditions(request)
    cursor = decode_cursor(str_param(request, "cursor"), 3)
    if cursor is not None:
        clauses.append("(o.start_ns, o.trace_id, o.id) < (?, ?, ?)")
        params.extend(cursor)
    where = f"WHERE {' AND '.join(clauses)}" if clauses else ""
    sql = f"{SELECT} {where} ORDER BY o.start_ns DESC, o.trace_id DESC, o.id DESC LIMIT ?"
    rows = db.connection().execute(sql, [*params, limit + 1]).fetchall()
    meta: dict[str, Any] = {}
    if len(rows) > limit:
        rows = rows[:limit]
        last = rows[-1]
        meta["cursor"] = encode_cursor(last["start_ns"], last["trace_id"], last["id"])
    return {"data": [observation_v2(row, groups, project_id) for row in rows], "meta": meta}


async def get_observations_v2(request: Request) -> Response:
    """`GET /api/public/v2/observations`."""
    state = request.app.state
    body = await run_in_threadpool(list_v2, state.db, state.project.id, request)
    return Json(body)
