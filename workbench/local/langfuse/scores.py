"""Scores: `POST /api/public/scores` (a list, as SDK 5 sends, or one object), the v3 and v2 reads,
`GET /api/public/v2/scores/{id}` and `DELETE /api/public/scores/{id}`. Ids upsert."""

from __future__ import annotations

import math
import sqlite3
import uuid
from dataclasses import dataclass
from typing import Any

from starlette.concurrency import run_in_threadpool
from starlette.requests import Request
from starlette.responses import Response

from . import _filters
from ._errors import BadRequest, Json, NotFound
from ._http import (
    MAX_PAGE,
    decode_cursor,
    dumps,
    encode_cursor,
    equality_filters,
    float_param,
    int_param,
    list_param,
    loads,
    page_meta,
    read_json,
    str_param,
    time_param,
)
from ._time import iso, now_ns, parse_iso, time_problem
from .db import Database

DATA_TYPES = ("NUMERIC", "BOOLEAN", "CATEGORICAL", "TEXT", "CORRECTION")
STRING_TYPES = frozenset({"CATEGORICAL", "TEXT", "CORRECTION"})
SOURCES = ("API", "ANNOTATION", "EVAL")
V3_GROUPS = ("details", "subject", "annotation")

SCORE_COLUMNS = (
    "id",
    "trace_id",
    "observation_id",
    "session_id",
    "dataset_run_id",
    "name",
    "value",
    "string_value",
    "data_type",
    "source",
    "comment",
    "metadata",
    "config_id",
    "queue_id",
    "author_user_id",
    "environment",
    "timestamp_ns",
    "created_ns",
    "updated_ns",
)
_UPSERT = (
    f"INSERT INTO scores ({', '.join(SCORE_COLUMNS)}) "
    f"VALUES ({', '.join('?' * len(SCORE_COLUMNS))}) ON CONFLICT(id) DO UPDATE SET "
    + ", ".join(f"{c} = excluded.{c}" for c in SCORE_COLUMNS if c not in ("id", "created_ns"))
)


class InvalidScore(ValueError):
    """A score the API refuses; the message says which field and how to fix it."""


def _optional_str(body: dict[str, Any], key: str) -> str | None:
    value = body.get(key)
    if value is None:
        return None
    if not isinstance(value, str):
        raise InvalidScore(f"'{key}' has value {value!r}. Not a string.")
    return value or None


def score_row(body: Any, now: int) -> tuple[Any, ...]:
    """Validate one CreateScoreRequest and return its row (in SCORE_COLUMNS order)."""
    if not isinstance(body, dict):
        raise InvalidScore(f"A score must be a JSON object, not {type(body).__name__}.")
    name = body.get("name")
    if not isinstance(name, str) or not name.strip():
        raise InvalidScore("'name' is required: a non-empty string such as 'accuracy'.")
    if "value" not in body or body["value"] is None:
        raise InvalidScore(f"Score '{name}' has no 'value'. Send a number or a string.")
    value = body["value"]
    data_type = body.get("dataType")
    if data_type is None:
        data_type = "CATEGORICAL" if isinstance(value, str) else "NUMERIC"
    if data_type not in DATA_TYPES:
        raise InvalidScore(
            f"Score '{name}' has dataType {data_type!r}. Use one of: {', '.join(DATA_TYPES)}."
        )
    number: float | None
    string: str | None = None
    if data_type in STRING_TYPES:
        if not isinstance(value, str):
            raise InvalidScore(
                f"Score '{name}' is {data_type} but its value {value!r} is not a string."
            )
        if data_type == "TEXT" and not 1 <= len(value) <= 500:
            raise InvalidScore(f"TEXT score '{name}' must have 1 to 500 characters.")
        number, string = 0.0, value
    else:
        if isinstance(value, bool):
            value = float(value)
        if not isinstance(value, int | float) or not math.isfinite(value):
            raise InvalidScore(
                f"Score '{name}' is {data_type} but its value {value!r} is not a finite number "
                "(string values need dataType CATEGORICAL, TEXT or CORRECTION)."
            )
        number = float(value)
        if data_type == "BOOLEAN":
            if number not in (0.0, 1.0):
                raise InvalidScore(f"BOOLEAN score '{name}' must have value 1 or 0, not {value}.")
            string = "True" if number else "False"
    trace_id = _optional_str(body, "traceId")
    observation_id = _optional_str(body, "observationId")
    session_id = _optional_str(body, "sessionId")
    dataset_run_id = _optional_str(body, "datasetRunId")
    if observation_id is not None and trace_id is None:
        raise InvalidScore(f"Score '{name}' has an observationId but no traceId: send both.")
    if trace_id is None and session_id is None and dataset_run_id is None:
        raise InvalidScore(
            f"Score '{name}' is attached to nothing: send traceId (and optionally observationId), "
            "sessionId or datasetRunId."
        )
    source = body.get("source") or "API"
    if source not in ("API", "ANNOTATION"):
        raise InvalidScore(f"Score '{name}' has source {source!r}. Use API or ANNOTATION.")
    timestamp = now
    if body.get("timestamp") is not None:
        try:
            timestamp = parse_iso(str(body["timestamp"]))
        except ValueError as e:
            raise InvalidScore(
                f"Score '{name}' has timestamp {time_problem(body['timestamp'], e)}."
            ) from None
    score_id = _optional_str(body, "id") or uuid.uuid4().hex
    return (
        score_id,
        trace_id,
        observation_id,
        session_id,
        dataset_run_id,
        name,
        number,
        string,
        data_type,
        source,
        _optional_str(body, "comment"),
        dumps(body.get("metadata")),
        _optional_str(body, "configId"),
        _optional_str(body, "queueId"),
        None,
        _optional_str(body, "environment") or "default",
        timestamp,
        now,
        now,
    )


def store_scores(db: Database, rows: list[tuple[Any, ...]]) -> None:
    if rows:
        with db.write() as conn:
            conn.executemany(_UPSERT, rows)


def _base(row: sqlite3.Row) -> dict[str, Any]:
    metadata = loads(row["metadata"])
    return {
        "id": row["id"],
        "name": row["name"],
        "source": row["source"],
        "timestamp": iso(row["timestamp_ns"]),
        "createdAt": iso(row["created_ns"]),
        "updatedAt": iso(row["updated_ns"]),
        "authorUserId": row["author_user_id"],
        "comment": row["comment"],
        "metadata": metadata if metadata is not None else {},
        "configId": row["config_id"],
        "queueId": row["queue_id"],
        "environment": row["environment"],
        "dataType": row["data_type"],
    }


def _values_v1(row: sqlite3.Row, out: dict[str, Any]) -> dict[str, Any]:
    if row["data_type"] == "NUMERIC":
        out["value"] = row["value"]
    elif row["data_type"] == "TEXT":
        out["stringValue"] = row["string_value"]
    else:
        out.update(value=row["value"], stringValue=row["string_value"])
    return out


def score_v1(row: sqlite3.Row) -> dict[str, Any]:
    """ScoreV1 (inside a trace): the trace id is required."""
    out = _base(row)
    out.update(traceId=row["trace_id"], observationId=row["observation_id"])
    return _values_v1(row, out)


def score_v2(row: sqlite3.Row, with_trace: bool = False) -> dict[str, Any]:
    """Score / GetScoresResponseData (v2 reads)."""
    out = _base(row)
    out.update(
        traceId=row["trace_id"],
        sessionId=row["session_id"],
        observationId=row["observation_id"],
        datasetRunId=row["dataset_run_id"],
    )
    _values_v1(row, out)
    if with_trace and row["t_exists"]:  # omitted, not null: the spec's $ref is not nullable
        out["trace"] = {
            "userId": row["t_user_id"],
            "tags": loads(row["t_tags"]) or [],
            "environment": row["t_environment"],
            "sessionId": row["t_session_id"],
        }
    return out


def score_v3(row: sqlite3.Row, groups: frozenset[str], project_id: str) -> dict[str, Any]:
    data_type = row["data_type"]
    if data_type == "NUMERIC":
        value: Any = row["value"]
    elif data_type == "BOOLEAN":
        value = bool(row["value"])
    else:
        value = row["string_value"] or ""
    out: dict[str, Any] = {
        "id": row["id"],
        "projectId": project_id,
        "name": row["name"],
        "value": value,
        "dataType": data_type,
        "source": row["source"],
        "timestamp": iso(row["timestamp_ns"]),
        "environment": row["environment"],
        "createdAt": iso(row["created_ns"]),
        "updatedAt": iso(row["updated_ns"]),
    }
    if "details" in groups:
        metadata = loads(row["metadata"])
        if metadata is not None and not isinstance(metadata, dict):
            metadata = {"value": metadata}
        out.update(comment=row["comment"], configId=row["config_id"], metadata=metadata)
    if "subject" in groups:
        if row["observation_id"]:
            subject: dict[str, Any] | None = {
                "kind": "observation",
                "id": row["observation_id"],
                "traceId": row["trace_id"],
            }
        elif row["trace_id"]:
            subject = {"kind": "trace", "id": row["trace_id"]}
        elif row["session_id"]:
            subject = {"kind": "session", "id": row["session_id"]}
        elif row["dataset_run_id"]:
            subject = {"kind": "experiment", "id": row["dataset_run_id"]}
        else:
            subject = None
        if subject is not None:  # omitted, not null: the spec's $ref is not nullable
            out["subject"] = subject
    if "annotation" in groups:
        out.update(authorUserId=row["author_user_id"], queueId=row["queue_id"])
    return out


def _in(clauses: list[str], params: list[Any], sql: str, values: list[Any]) -> None:
    if values:
        clauses.append(f"{sql} IN ({','.join('?' * len(values))})")
        params.extend(values)


@dataclass(frozen=True)
class V3Query:
    """A v3 scores list request, parsed and checked (no HTTP beyond this point)."""

    limit: int
    groups: frozenset[str]
    equal: dict[str, list[Any]]
    """column -> the values it may take (an IN filter)."""
    value_min: float | None
    value_max: float | None
    since_ns: int | None
    until_ns: int | None
    cursor: tuple[Any, ...] | None


def _value_filter(data_types: list[str], values: list[str]) -> tuple[str, list[Any]]:
    """The `value` filter as a column and the values it may take, by the one data type given."""
    if len(data_types) != 1 or data_types[0] not in ("NUMERIC", "BOOLEAN", "CATEGORICAL"):
        raise BadRequest(
            "The value filter needs exactly one dataType of NUMERIC, BOOLEAN or CATEGORICAL."
        )
    if data_types[0] == "CATEGORICAL":
        return "string_value", list(values)
    numbers = []
    for raw in values:
        if data_types[0] == "BOOLEAN":
            if raw.lower() not in ("true", "false"):
                raise BadRequest(f"BOOLEAN value filter '{raw}' must be true or false.")
            numbers.append(1.0 if raw.lower() == "true" else 0.0)
        else:
            try:
                numbers.append(float(raw))
            except ValueError:
                raise BadRequest(f"NUMERIC value filter '{raw}' is not a number.") from None
    return "value", numbers


def v3_query(request: Request) -> V3Query:
    """Read and check the query parameters of `GET /api/public/v3/scores`."""
    limit = int_param(request, "limit", 50, minimum=1, maximum=100)
    assert limit is not None
    groups = set(list_param(request, "fields"))
    unknown = groups - set(V3_GROUPS)
    if unknown:
        raise BadRequest(
            f"Query parameter 'fields' has unknown group(s) {', '.join(sorted(unknown))}. "
            f"Use a comma-separated list of: {', '.join(V3_GROUPS)}."
        )
    data_types = [d.upper() for d in list_param(request, "dataType")]
    equal: dict[str, list[Any]] = {
        "id": list_param(request, "id"),
        "name": list_param(request, "name"),
        "source": [s.upper() for s in list_param(request, "source")],
        "data_type": data_types,
        "environment": list_param(request, "environment"),
        "config_id": list_param(request, "configId"),
        "queue_id": list_param(request, "queueId"),
        "author_user_id": list_param(request, "authorUserId"),
        "trace_id": list_param(request, "traceId"),
        "observation_id": list_param(request, "observationId"),
        "session_id": list_param(request, "sessionId"),
        "dataset_run_id": list_param(request, "experimentId"),
    }
    if equal["observation_id"] and not equal["trace_id"]:
        raise BadRequest("observationId needs traceId: observation ids are scoped to a trace.")
    chosen = [
        name
        for name, column in (
            ("traceId", "trace_id"),
            ("sessionId", "session_id"),
            ("experimentId", "dataset_run_id"),
        )
        if equal[column]
    ]
    if len(chosen) > 1:
        raise BadRequest(f"{' and '.join(chosen)} are mutually exclusive: filter by one of them.")
    values = list_param(request, "value")
    if values:
        column, accepted = _value_filter(data_types, values)
        equal[column] = accepted
    value_min, value_max = float_param(request, "valueMin"), float_param(request, "valueMax")
    if (value_min is not None or value_max is not None) and data_types != ["NUMERIC"]:
        raise BadRequest("valueMin/valueMax need dataType=NUMERIC (and only it).")
    return V3Query(
        limit=limit,
        groups=frozenset(groups),
        equal={column: v for column, v in equal.items() if v},
        value_min=value_min,
        value_max=value_max,
        since_ns=time_param(request, "fromTimestamp"),
        until_ns=time_param(request, "toTimestamp"),
        cursor=decode_cursor(str_param(request, "cursor"), 2),
    )


def list_v3(db: Database, project_id: str, query: V3Query) -> dict[str, Any]:
    """One page of scores, newest first, for a checked v3 query."""
    clauses: list[str] = []
    params: list[Any] = []
    for column, values in query.equal.items():
        _in(clauses, params, column, values)
    for condition, value in (
        ("value >= ?", query.value_min),
        ("value <= ?", query.value_max),
        ("timestamp_ns >= ?", query.since_ns),
        ("timestamp_ns < ?", query.until_ns),
    ):
        if value is not None:
            clauses.append(condition)
            params.append(value)
    if query.cursor is not None:
        clauses.append("(timestamp_ns, id) < (?, ?)")
        params.extend(query.cursor)
    where = f"WHERE {' AND '.join(clauses)}" if clauses else ""
    rows = (
        db.connection()
        .execute(
            f"SELECT * FROM scores {where} ORDER BY timestamp_ns DESC, id DESC LIMIT ?",
            [*params, query.limit + 1],
        )
        .fetchall()
    )
    meta: dict[str, Any] = {"limit": query.limit}
    if len(rows) > query.limit:
        rows = rows[: query.limit]
        meta["cursor"] = encode_cursor(rows[-1]["timestamp_ns"], rows[-1]["id"])
    return {"data": [score_v3(row, query.groups, project_id) for row in rows], "meta": meta}


V2_FILTER_COLUMNS = {
    "id": _filters.Column("s.id"),
    "name": _filters.Column("s.name"),
    "timestamp": _filters.Column("s.timestamp_ns", "datetime"),
    "value": _filters.Column("s.value", "number"),
    "stringValue": _filters.Column("s.string_value"),
    "dataType": _filters.Column("s.data_type"),
    "source": _filters.Column("s.source"),
    "environment": _filters.Column("s.environment"),
    "traceId": _filters.Column("s.trace_id"),
    "comment": _filters.Column("s.comment"),
    "metadata": _filters.Column("s.metadata", "object"),
    "tags": _filters.Column("t.tags", "array"),
}

_V2_SELECT = """
SELECT s.*, t.id IS NOT NULL AS t_exists, t.user_id AS t_user_id, t.tags AS t_tags,
       t.environment AS t_environment, t.session_id AS t_session_id
FROM scores s LEFT JOIN traces t ON t.id = s.trace_id
"""


def list_v2(db: Database, request: Request) -> dict[str, Any]:
    page = int_param(request, "page", 1, minimum=1, maximum=MAX_PAGE)
    limit = int_param(request, "limit", 50, minimum=1, maximum=100)
    assert page is not None and limit is not None
    groups = set(list_param(request, "fields")) or {"score", "trace"}
    if groups - {"score", "trace"}:
        raise BadRequest("Query parameter 'fields' takes 'score' and/or 'trace'.")
    clauses: list[str] = []
    params: list[Any] = []
    raw_filter = str_param(request, "filter")
    if raw_filter is not None:
        clauses, params = _filters.parse(raw_filter, V2_FILTER_COLUMNS)
    equality_filters(
        request,
        clauses,
        params,
        (
            ("name", "s.name"),
            ("configId", "s.config_id"),
            ("sessionId", "s.session_id"),
            ("datasetRunId", "s.dataset_run_id"),
            ("traceId", "s.trace_id"),
            ("queueId", "s.queue_id"),
            ("dataType", "s.data_type"),
            ("source", "s.source"),
            ("userId", "t.user_id"),
        ),
    )
    _in(clauses, params, "s.id", list_param(request, "scoreIds"))
    _in(clauses, params, "s.observation_id", list_param(request, "observationId"))
    _in(clauses, params, "s.environment", list_param(request, "environment"))
    for tag in request.query_params.getlist("traceTags"):
        clauses.append("EXISTS (SELECT 1 FROM json_each(t.tags) WHERE json_each.value = ?)")
        params.append(tag)
    for name, op in (("fromTimestamp", ">="), ("toTimestamp", "<")):
        moment = time_param(request, name)
        if moment is not None:
            clauses.append(f"s.timestamp_ns {op} ?")
            params.append(moment)
    value = float_param(request, "value")
    if value is not None:
        operator = str_param(request, "operator") or "="
        if operator not in ("=", "<", ">", "<=", ">=", "!=", "<>"):
            raise BadRequest(f"Query parameter 'operator' has value '{operator}'. Use =, <, >, ...")
        clauses.append(f"s.value {'<>' if operator == '!=' else operator} ?")
        params.append(value)
    where = f"WHERE {' AND '.join(clauses)}" if clauses else ""
    conn = db.connection()
    total = conn.execute(
        f"SELECT COUNT(*) FROM scores s LEFT JOIN traces t ON t.id = s.trace_id {where}", params
    ).fetchone()[0]
    rows = conn.execute(
        f"{_V2_SELECT} {where} ORDER BY s.timestamp_ns DESC, s.id DESC LIMIT ? OFFSET ?",
        [*params, limit, (page - 1) * limit],
    ).fetchall()
    return {
        "data": [score_v2(row, with_trace="trace" in groups) for row in rows],
        "meta": page_meta(page, limit, total),
    }


def get_one(db: Database, score_id: str) -> dict[str, Any]:
    row = db.connection().execute("SELECT * FROM scores WHERE id = ?", (score_id,)).fetchone()
    if row is None:
        raise NotFound(f"Score '{score_id}' not found.")
    return score_v2(row)


def delete_one(db: Database, score_id: str) -> bool:
    with db.write() as conn:
        return conn.execute("DELETE FROM scores WHERE id = ?", (score_id,)).rowcount > 0


async def create_scores(request: Request) -> Response:
    """`POST /api/public/scores`: a list (202, or 207 listing rejections) or one object (200)."""
    body = await read_json(request)
    db = request.app.state.db
    now = now_ns()
    if isinstance(body, list):
        rows: list[tuple[Any, ...]] = []
        errors: list[dict[str, Any]] = []
        for index, item in enumerate(body):
            try:
                rows.append(score_row(item, now))
            except InvalidScore as exc:
                error: dict[str, Any] = {"index": index, "message": str(exc)}
                if isinstance(item, dict) and isinstance(item.get("id"), str):
                    error["id"] = item["id"]
                errors.append(error)
        await run_in_threadpool(store_scores, db, rows)
        if errors:
            return Json(
                {"accepted": len(rows), "rejected": len(errors), "errors": errors},
                status_code=207,
            )
        return Json({"message": "Accepted"}, status_code=202)
    try:
        row = score_row(body, now)
    except InvalidScore as exc:
        raise BadRequest(str(exc)) from exc
    await run_in_threadpool(store_scores, db, [row])
    return Json({"id": row[0]})


async def get_scores_v3(request: Request) -> Response:
    """`GET /api/public/v3/scores`."""
    state = request.app.state
    return Json(await run_in_threadpool(list_v3, state.db, state.project.id, v3_query(request)))


async def get_scores_v2(request: Request) -> Response:
    """`GET /api/public/v2/scores`."""
    return Json(await run_in_threadpool(list_v2, request.app.state.db, request))


async def get_score_v2(request: Request) -> Response:
    """`GET /api/public/v2/scores/{scoreId}`."""
    score_id = request.path_params["score_id"]
    return Json(await run_in_threadpool(get_one, request.app.state.db, score_id))


async def delete_score(request: Request) -> Response:
    """`DELETE /api/public/scores/{scoreId}` (204)."""
    score_id = request.path_params["score_id"]
    if not await run_in_threadpool(delete_one, request.app.state.db, score_id):
        raise NotFound(f"Score '{score_id}' not found.")
    return Response(status_code=204)
