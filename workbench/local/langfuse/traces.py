"""Traces, derived from their observations: the merge done at ingest, and the v1 read API
(`GET /api/public/traces`, `GET /api/public/traces/{traceId}`, deletes)."""

from __future__ import annotations

import json
import sqlite3
from typing import Any

from starlette.concurrency import run_in_threadpool
from starlette.requests import Request
from starlette.responses import Response

from . import _filters
from ._errors import BadRequest, Json, NotFound
from ._http import (
    MAX_PAGE,
    equality_filters,
    int_param,
    json_object,
    list_param,
    loads,
    page_meta,
    read_json,
    str_param,
    time_param,
)
from ._time import iso, seconds_between
from .db import Database
from .observations import observation_metadata
from .scores import score_v1

ORDER_FIELDS = {
    "id": "t.id",
    "timestamp": "t.start_ns",
    "name": "COALESCE(t.name, t.root_name)",
    "userId": "t.user_id",
    "release": "t.release",
    "version": "t.version",
    "public": "t.public",
    "bookmarked": "t.start_ns",
    "sessionId": "t.session_id",
}
FILTER_COLUMNS = {
    "id": _filters.Column("t.id"),
    "name": _filters.Column("COALESCE(t.name, t.root_name)"),
    "timestamp": _filters.Column("t.start_ns", "datetime"),
    "userId": _filters.Column("t.user_id"),
    "sessionId": _filters.Column("t.session_id"),
    "environment": _filters.Column("t.environment"),
    "version": _filters.Column("t.version"),
    "release": _filters.Column("t.release"),
    "tags": _filters.Column("t.tags", "array"),
    "metadata": _filters.Column("t.metadata", "object"),
    "latency": _filters.Column("((t.end_ns - t.start_ns) / 1e9)", "number"),
}


def json_or_text(text: str | None) -> Any:
    """v1 answers input/output as JSON values: decode when the raw string is JSON."""
    if text is None:
        return None
    try:
        return json.loads(text)
    except ValueError:
        return text


def trace_core(row: sqlite3.Row, project_id: str, io: bool = True) -> dict[str, Any]:
    out: dict[str, Any] = {
        "id": row["id"],
        "timestamp": iso(row["start_ns"]),
        "name": row["name"] if row["name"] is not None else row["root_name"],
        "sessionId": row["session_id"],
        "release": row["release"],
        "version": row["version"],
        "userId": row["user_id"],
        "tags": json.loads(row["tags"]),
        "public": bool(row["public"]),
        "environment": row["environment"] or "default",
        "htmlPath": f"/project/{project_id}/traces/{row['id']}",
    }
    if io:
        out["input"] = json_or_text(row["input"] if row["input"] is not None else row["root_input"])
        out["output"] = json_or_text(
            row["output"] if row["output"] is not None else row["root_output"]
        )
        out["metadata"] = loads(row["metadata"])
    return out


def observation_view(row: sqlite3.Row) -> dict[str, Any]:
    """One ObservationsView (v1 shape): every field present, nulls where unknown."""
    usage = loads(row["usage_details"]) or {}
    cost = loads(row["cost_details"]) or {}
    return {
        "id": row["id"],
        "traceId": row["trace_id"],
        "type": row["type"],
        "name": row["name"],
        "startTime": iso(row["start_ns"]),
        "endTime": iso(row["end_ns"]),
        "completionStartTime": iso(row["completion_start_ns"]),
        "model": row["model"],
        "modelParameters": loads(row["model_parameters"]),
        "input": json_or_text(row["input"]),
        "version": row["version"],
        "metadata": observation_metadata(row),
        "output": json_or_text(row["output"]),
        "usage": {
            "input": usage.get("input", 0),
            "output": usage.get("output", 0),
            "total": usage.get("total", 0),
            "unit": "TOKENS" if usage else None,
            "inputCost": cost.get("input"),
            "outputCost": cost.get("output"),
            "totalCost": row["total_cost"],
        },
        "level": row["level"],
        "statusMessage": row["status_message"],
        "parentObservationId": row["parent_observation_id"],
        "promptId": None,
        "usageDetails": usage,
        "costDetails": cost,
        "environment": row["environment"],
        "promptName": row["prompt_name"],
        "promptVersion": row["prompt_version"],
        "modelId": None,
        "inputPrice": None,
        "outputPrice": None,
        "totalPrice": None,
        "calculatedInputCost": cost.get("input"),
        "calculatedOutputCost": cost.get("output"),
        "calculatedTotalCost": row["total_cost"],
        "latency": seconds_between(row["start_ns"], row["end_ns"]),
        "timeToFirstToken": seconds_between(row["start_ns"], row["completion_start_ns"]),
    }


def _fields(request: Request) -> frozenset[str]:
    raw = str_param(request, "fields")
    if raw is None:
        return frozenset({"core", "io", "scores", "observations", "metrics"})
    groups = {part.strip() for part in raw.split(",") if part.strip()}
    unknown = groups - {"core", "io", "scores", "observations", "metrics"}
    if unknown:
        raise BadRequest(
            f"Query parameter 'fields' has unknown group(s) {', '.join(sorted(unknown))}. "
            "Use a comma-separated list of: core, io, scores, observations, metrics."
        )
    return frozenset(groups | {"core"})


def get_trace(db: Database, project_id: str, trace_id: str, request: Request) -> dict[str, Any]:
    fields = _fields(request)
    conn = db.connection()
    row = conn.execute("SELECT * FROM traces WHERE id = ?", (trace_id,)).fetchone()
    if row is None:
        raise NotFound(
            f"Trace '{trace_id}' not found. Its spans may not be exported yet (exporters batch "
            "for a few seconds): flush the exporter and retry."
        )
    out = trace_core(row, project_id, io="io" in fields)
    observations = conn.execute(
        "SELECT * FROM observations WHERE trace_id = ? ORDER BY start_ns, id", (trace_id,)
    ).fetchall()
    scores = conn.execute(
        "SELECT * FROM scores WHERE trace_id = ? AND data_type <> 'CORRECTION' "
        "ORDER BY timestamp_ns, id",
        (trace_id,),
    ).fetchall()
    if "metrics" in fields:
        costs = [obs["total_cost"] for obs in observations if obs["total_cost"] is not None]
        out["latency"] = seconds_between(row["start_ns"], row["end_ns"])
        out["totalCost"] = sum(costs) if costs else 0.0
    else:
        out["latency"] = out["totalCost"] = -1
    out["observations"] = (
        [observation_view(obs) for obs in observations] if "observations" in fields else []
    )
    out["scores"] = [score_v1(score) for score in scores] if "scores" in fields else []
    return out


def list_traces(db: Database, project_id: str, request: Request) -> dict[str, Any]:
    fields = _fields(request)
    page = int_param(request, "page", 1, minimum=1, maximum=MAX_PAGE)
    limit = int_param(request, "limit", 50, minimum=1, maximum=1000)
    assert page is not None and limit is not None
    clauses: list[str] = []
    params: list[Any] = []
    raw_filter = str_param(request, "filter")
    if raw_filter is not None:
        clauses, params = _filters.parse(raw_filter, FILTER_COLUMNS)
    else:
        equality_filters(
            request,
            clauses,
            params,
            (
                ("userId", "t.user_id"),
                ("name", "COALESCE(t.name, t.root_name)"),
                ("sessionId", "t.session_id"),
                ("version", "t.version"),
                ("release", "t.release"),
            ),
        )
        for name, op in (("fromTimestamp", ">="), ("toTimestamp", "<")):
            moment = time_param(request, name)
            if moment is not None:
                clauses.append(f"t.start_ns {op} ?")
                params.append(moment)
        for tag in request.query_params.getlist("tags"):
            clauses.append("EXISTS (SELECT 1 FROM json_each(t.tags) WHERE json_each.value = ?)")
            params.append(tag)
        environments = list_param(request, "environment")
        if environments:
            clauses.append(f"t.environment IN ({','.join('?' * len(environments))})")
            params.extend(environments)
    order = str_param(request, "orderBy") or "timestamp.desc"
    field, _, direction = order.partition(".")
    if field not in ORDER_FIELDS or direction.lower() not in ("asc", "desc"):
        raise BadRequest(
            f"Query parameter 'orderBy' has value '{order}'. Use [field].[asc|desc] with field "
            f"one of {', '.join(ORDER_FIELDS)} (e.g. timestamp.desc)."
        )
    where = f"WHERE {' AND '.join(clauses)}" if clauses else ""
    conn = db.connection()
    total = conn.execute(f"SELECT COUNT(*) FROM traces t {where}", params).fetchone()[0]
    rows = conn.execute(
        f"SELECT * FROM traces t {where} ORDER BY {ORDER_FIELDS[field]} {direction.upper()}, "
        "t.id LIMIT ? OFFSET ?",
        [*params, limit, (page - 1) * limit],
    ).fetchall()
    ids = [row["id"] for row in rows]
    observation_ids: dict[str, list[str]] = {trace_id: [] for trace_id in ids}
    score_ids: dict[str, list[str]] = {trace_id: [] for trace_id in ids}
    costs: dict[str, float] = {}
    if ids:
        marks = ",".join("?" * len(ids))
        for obs in conn.execute(
            f"SELECT trace_id, id, total_cost FROM observations WHERE trace_id IN ({marks}) "
            "ORDER BY start_ns",
            ids,
        ):
            observation_ids[obs["trace_id"]].append(obs["id"])
            if obs["total_cost"] is not None:
                costs[obs["trace_id"]] = costs.get(obs["trace_id"], 0.0) + obs["total_cost"]
        for score in conn.execute(
            f"SELECT trace_id, id FROM scores WHERE trace_id IN ({marks})", ids
        ):
            score_ids[score["trace_id"]].append(score["id"])
    data = []
    for row in rows:
        item = trace_core(row, project_id, io="io" in fields)
        if "metrics" in fields:
            item["latency"] = seconds_between(row["start_ns"], row["end_ns"])
            item["totalCost"] = costs.get(row["id"], 0.0)
        else:
            item["latency"] = item["totalCost"] = -1
        item["observations"] = observation_ids[row["id"]] if "observations" in fields else []
        item["scores"] = score_ids[row["id"]] if "scores" in fields else []
        data.append(item)
    return {"data": data, "meta": page_meta(page, limit, total)}


def delete_traces(db: Database, trace_ids: list[str]) -> int:
    """Delete traces with their observations and scores; returns how many traces existed."""
    with db.write() as conn:
        deleted = 0
        for trace_id in trace_ids:
            deleted += conn.execute("DELETE FROM traces WHERE id = ?", (trace_id,)).rowcount
            conn.execute("DELETE FROM observations WHERE trace_id = ?", (trace_id,))
            conn.execute("DELETE FROM scores WHERE trace_id = ?", (trace_id,))
    return deleted


async def get_trace_endpoint(request: Request) -> Response:
    """`GET /api/public/traces/{traceId}`."""
    state = request.app.state
    trace_id = request.path_params["trace_id"]
    body = await run_in_threadpool(get_trace, state.db, state.project.id, trace_id, request)
    return Json(body)


async def list_traces_endpoint(request: Request) -> Response:
    """`GET /api/public/traces`."""
    state = request.app.state
    return Json(await run_in_threadpool(list_traces, state.db, state.project.id, request))


async def delete_trace_endpoint(request: Request) -> Response:
    """`DELETE /api/public/traces/{traceId}`."""
    trace_id = request.path_params["trace_id"]
    if not await run_in_threadpool(delete_traces, request.app.state.db, [trace_id]):
        raise NotFound(f"Trace '{trace_id}' not found.")
    return Json({"message": "Trace deleted successfully"})


async def delete_traces_endpoint(request: Request) -> Response:
    """`DELETE /api/public/traces` with `{"traceIds": [...]}`."""
    body = json_object(await read_json(request), "DELETE /api/public/traces")
    trace_ids = body.get("traceIds")
    if not isinstance(trace_ids, list) or not all(isinstance(i, str) for i in trace_ids):
        raise BadRequest('Send {"traceIds": ["<trace id>", ...]}: a list of trace id strings.')
    await run_in_threadpool(delete_traces, request.app.state.db, trace_ids)
    return Json({"message": "Traces deleted successfully"})
