"""The experiments read API (Langfuse v4): `GET /api/public/experiments` and
`GET /api/public/experiment-items`. An experiment is a dataset run (or a run of the SDK's
`run_experiment` on local data, without a dataset), read through `runs.py` whichever way it was
recorded; its items are the traces that ran the dataset's items."""

from __future__ import annotations

import json
import sqlite3
from dataclasses import dataclass
from typing import Any

from starlette.concurrency import run_in_threadpool
from starlette.requests import Request
from starlette.responses import Response

from ._errors import BadRequest, Json
from ._http import decode_cursor, encode_cursor, int_param, list_param, loads, str_param, time_param
from ._time import iso
from .db import Database
from .runs import Run, RunItem, items_of, runs_between
from .scores import score_v3
from .traces import json_or_text

EXPERIMENT_GROUPS = ("core", "metadata", "scores")
ITEM_GROUPS = ("core", "dataset", "io", "metadata", "itemMetadata", "experimentMetadata", "scores")
_FILTERABLE = {
    "experiments": {"id": "id", "name": "name", "datasetId": "datasetId"},
    "items": {
        "experimentId": "experimentId",
        "experimentName": "experimentName",
        "experimentItemId": "experimentItemId",
        "datasetId": "datasetId",
    },
}
_LEVELS = ("DEBUG", "DEFAULT", "WARNING", "ERROR")


def _groups(request: Request, allowed: tuple[str, ...], default: set[str]) -> set[str]:
    groups = set(list_param(request, "fields")) or set(default)
    unknown = groups - set(allowed)
    if unknown:
        raise BadRequest(
            f"Query parameter 'fields' has unknown group(s) {', '.join(sorted(unknown))}. "
            f"Use a comma-separated list of: {', '.join(allowed)}."
        )
    return groups | {"core"}


def _window(request: Request) -> tuple[int, int | None]:
    since = time_param(request, "fromStartTime")
    if since is None:
        raise BadRequest(
            "Query parameter 'fromStartTime' is required (ISO 8601, e.g. 2026-01-21T14:35:42Z): "
            "only experiments with items started since then are listed."
        )
    return since, time_param(request, "toStartTime")


def _filters(request: Request, kind: str) -> list[tuple[str, str, list[str]]]:
    """(field, operator, values) conditions from the list parameters and the JSON `filter`."""
    columns = _FILTERABLE[kind]
    out = [(field, "any of", list_param(request, name)) for name, field in columns.items()]
    out = [c for c in out if c[2]]
    raw = str_param(request, "filter")
    if raw is None:
        return out
    try:
        specs = json.loads(raw)
    except ValueError as exc:
        raise BadRequest(f"Query parameter 'filter' is not valid JSON ({exc}).") from exc
    if not isinstance(specs, list):
        raise BadRequest("Query parameter 'filter' must be a JSON list of filter conditions.")
    for index, spec in enumerate(specs):
        where = f"filter[{index}]"
        if not isinstance(spec, dict) or spec.get("column") not in columns:
            raise BadRequest(
                f"{where}: filter on one of the columns {', '.join(columns)} "
                "(an object with column, operator and value)."
            )
        operator = str(spec.get("operator", "")).lower()
        value = spec.get("value")
        values = value if isinstance(value, list) else [value]
        if operator not in ("=", "<>", "any of", "none of") or not all(
            isinstance(v, str) for v in values
        ):
            raise BadRequest(
                f"{where}: use the operator =, <>, 'any of' or 'none of' with string values."
            )
        out.append((columns[spec["column"]], operator, values))
    return out


def _keep(record: dict[str, Any], conditions: list[tuple[str, str, list[str]]]) -> bool:
    for field, operator, values in conditions:
        inside = record.get(field) in values
        if operator in ("=", "any of") and not inside:
            return False
        if operator in ("<>", "none of") and inside:
            return False
    return True


@dataclass
class _Trace:
    start_ns: int | None
    end_ns: int | None
    level: str
    environment: str
    input: Any
    output: Any
    metadata: Any


def _traces(conn: sqlite3.Connection, trace_ids: list[str]) -> dict[str, _Trace]:
    out: dict[str, _Trace] = {}
    for start in range(0, len(trace_ids), 500):
        chunk = trace_ids[start : start + 500]
        marks = ",".join("?" * len(chunk))
        levels: dict[str, str] = {}
        for row in conn.execute(
            f"SELECT trace_id, level FROM observations WHERE trace_id IN ({marks}) "
            "GROUP BY trace_id, level",
            chunk,
        ):
            known = levels.get(row["trace_id"], "DEFAULT")
            level = row["level"] if row["level"] in _LEVELS else "DEFAULT"
            levels[row["trace_id"]] = max(known, level, key=_LEVELS.index)
        for row in conn.execute(
            "SELECT id, start_ns, end_ns, environment, metadata, "
            "COALESCE(input, root_input) AS input, COALESCE(output, root_output) AS output "
            f"FROM traces WHERE id IN ({marks})",
            chunk,
        ):
            out[row["id"]] = _Trace(
                row["start_ns"],
                row["end_ns"],
                levels.get(row["id"], "DEFAULT"),
                row["environment"] or "default",
                json_or_text(row["input"]),
                json_or_text(row["output"]),
                loads(row["metadata"]),
            )
    return out


def _item_times(item: RunItem, trace: _Trace | None) -> tuple[int, int | None]:
    if trace is not None and trace.start_ns is not None:
        return trace.start_ns, trace.end_ns
    return item.created_ns, item.updated_ns if item.updated_ns != item.created_ns else None


def _in_window(start_ns: int, since: int, until: int | None) -> bool:
    return start_ns >= since and (until is None or start_ns < until)


def _scores(
    conn: sqlite3.Connection, column: str, ids: list[str], project_id: str, limit: int
) -> dict[str, list[dict[str, Any]]]:
    out: dict[str, list[dict[str, Any]]] = {}
    groups = frozenset({"details", "subject"})
    for start in range(0, len(ids), 500):
        chunk = ids[start : start + 500]
        for row in conn.execute(
            f"SELECT * FROM scores WHERE {column} IN ({','.join('?' * len(chunk))}) "
            "AND data_type <> 'CORRECTION' ORDER BY timestamp_ns, id",
            chunk,
        ):
            found = out.setdefault(row[column], [])
            if len(found) < limit:
                found.append(score_v3(row, groups, project_id))
    return out


def _paginate(
    rows: list[tuple[int, str, dict[str, Any]]], request: Request, limit: int
) -> dict[str, Any]:
    """Newest first by (time, id); the cursor is the last row's (time, id)."""
    rows.sort(key=lambda r: (r[0], r[1]), reverse=True)
    cursor = decode_cursor(str_param(request, "cursor"), 2)
    if cursor is not None:
        rows = [r for r in rows if (r[0], r[1]) < (cursor[0], cursor[1])]
    page = rows[:limit]
    meta: dict[str, Any] = {}
    if len(rows) > limit:
        meta["cursor"] = encode_cursor(page[-1][0], page[-1][1])
    return {"data": [r[2] for r in page], "meta": meta}


def _dataset_items(conn: sqlite3.Connection, ids: list[str]) -> dict[str, sqlite3.Row]:
    out: dict[str, sqlite3.Row] = {}
    for start in range(0, len(ids), 500):
        chunk = ids[start : start + 500]
        for row in conn.execute(
            f"SELECT * FROM dataset_items WHERE id IN ({','.join('?' * len(chunk))})", chunk
        ):
            out[row["id"]] = row
    return out


def list_experiments(db: Database, project_id: str, request: Request) -> dict[str, Any]:
    groups = _groups(request, EXPERIMENT_GROUPS, {"core"})
    limit = int_param(request, "limit", 50, minimum=1, maximum=100)
    score_limit = int_param(request, "scoreLimit", 50, minimum=1, maximum=50)
    assert limit is not None and score_limit is not None
    since, until = _window(request)
    conditions = _filters(request, "experiments")
    conn = db.connection()
    runs = runs_between(conn, since, until)
    items = items_of(conn, runs)
    traces = _traces(conn, sorted({i.trace_id for found in items.values() for i in found}))
    rows: list[tuple[int, str, dict[str, Any]]] = []
    kept: list[Run] = []
    for run in runs:
        record: dict[str, Any] = {
            "id": run.id,
            "name": run.name,
            "description": run.description,
            "datasetId": run.dataset_id,
        }
        if not _keep(record, conditions):
            continue
        times = [_item_times(i, traces.get(i.trace_id)) for i in items[run.id]]
        times = [(s, e) for s, e in times if _in_window(s, since, until)]
        if not times:
            continue
        start = min(s for s, _ in times)
        end = max((e if e is not None else s) for s, e in times)
        record.update(startTime=iso(max(start, since)), endTime=iso(end), itemCount=len(times))
        if "metadata" in groups:
            metadata = run.metadata
            record["metadata"] = (
                metadata if isinstance(metadata, dict) or metadata is None else {"value": metadata}
            )
        rows.append((end, run.id, record))
        kept.append(run)
    if "scores" in groups:
        found = _scores(conn, "dataset_run_id", [r.id for r in kept], project_id, score_limit)
        for _, run_id, record in rows:
            record["scores"] = found.get(run_id, [])
    return _paginate(rows, request, limit)


def list_items(db: Database, project_id: str, request: Request) -> dict[str, Any]:
    groups = _groups(request, ITEM_GROUPS, {"core", "dataset"})
    limit = int_param(request, "limit", 50, minimum=1, maximum=100)
    score_limit = int_param(request, "scoreLimit", 50, minimum=1, maximum=50)
    assert limit is not None and score_limit is not None
    since, until = _window(request)
    conditions = _filters(request, "items")
    conn = db.connection()
    runs = {run.id: run for run in runs_between(conn, since, until)}
    items = items_of(conn, list(runs.values()))
    traces = _traces(conn, sorted({i.trace_id for found in items.values() for i in found}))
    dataset_items = _dataset_items(
        conn, sorted({i.dataset_item_id for f in items.values() for i in f if i.dataset_item_id})
    )
    rows: list[tuple[int, str, dict[str, Any]]] = []
    for run_id, found in items.items():
        run = runs[run_id]
        for item in found:
            trace = traces.get(item.trace_id)
            start, end = _item_times(item, trace)
            if not _in_window(start, since, until):
                continue
            record: dict[str, Any] = {
                "id": item.id,
                "traceId": item.trace_id,
                "startTime": iso(start),
                "endTime": iso(end),
                "level": trace.level if trace else "DEFAULT",
                "environment": trace.environment if trace else "default",
                "experimentId": run.id,
                "experimentName": run.name,
                "experimentItemId": item.dataset_item_id or item.id,
                "datasetId": run.dataset_id,
            }
            if not _keep(record, conditions):
                continue
            del record["datasetId"]
            source = dataset_items.get(item.dataset_item_id or "")
            if "dataset" in groups:
                record["experimentDatasetId"] = run.dataset_id
                record["experimentItemVersion"] = iso(source["updated_ns"]) if source else None
            if "io" in groups:
                record["input"] = (
                    trace.input
                    if trace and trace.input is not None
                    else (loads(source["input"]) if source else None)
                )
                record["output"] = trace.output if trace else None
                record["expectedOutput"] = loads(source["expected_output"]) if source else None
            if "metadata" in groups:
                metadata = trace.metadata if trace else None
                record["metadata"] = metadata if isinstance(metadata, dict) else None
            if "itemMetadata" in groups:
                metadata = loads(source["metadata"]) if source else None
                record["experimentItemMetadata"] = metadata if isinstance(metadata, dict) else None
            if "experimentMetadata" in groups:
                metadata = run.metadata
                record["experimentMetadata"] = metadata if isinstance(metadata, dict) else None
                record["experimentDescription"] = run.description
            rows.append((start, item.id, record))
    if "scores" in groups:
        ids = sorted({r[2]["traceId"] for r in rows})
        found_scores = _scores(conn, "trace_id", ids, project_id, score_limit)
        for _, _, record in rows:
            record["scores"] = found_scores.get(record["traceId"], [])
    return _paginate(rows, request, limit)


async def experiments_endpoint(request: Request) -> Response:
    """`GET /api/public/experiments`."""
    state = request.app.state
    return Json(await run_in_threadpool(list_experiments, state.db, state.project.id, request))


async def experiment_items_endpoint(request: Request) -> Response:
    """`GET /api/public/experiment-items`."""
    state = request.app.state
    return Json(await run_in_threadpool(list_items, state.db, state.project.id, request))
