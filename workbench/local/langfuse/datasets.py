"""Datasets and their items: `/api/public/v2/datasets[/{name}]`,
`/api/public/dataset-items[/{id}]`."""

from __future__ import annotations

import sqlite3
import uuid
from typing import Any
from urllib.parse import quote, unquote

from starlette.concurrency import run_in_threadpool
from starlette.requests import Request
from starlette.responses import Response

from ._errors import BadRequest, Json, NotFound
from ._http import (
    MAX_PAGE,
    dumps,
    int_param,
    json_object,
    loads,
    page_meta,
    read_json,
    str_param,
    time_param,
)
from ._time import iso, now_ns
from .db import Database

STATUSES = ("ACTIVE", "ARCHIVED")
_PREFIX = b"/api/public/v2/datasets/"
_ITEM_FIELDS = {
    "input": "input",
    "expectedOutput": "expected_output",
    "metadata": "metadata",
}


def dataset_json(row: sqlite3.Row, project_id: str) -> dict[str, Any]:
    return {
        "id": row["id"],
        "name": row["name"],
        "description": row["description"],
        "metadata": loads(row["metadata"]),
        "inputSchema": loads(row["input_schema"]),
        "expectedOutputSchema": loads(row["expected_output_schema"]),
        "projectId": project_id,
        "createdAt": iso(row["created_ns"]),
        "updatedAt": iso(row["updated_ns"]),
    }


def item_json(row: sqlite3.Row) -> dict[str, Any]:
    return {
        "id": row["id"],
        "status": row["status"],
        "input": loads(row["input"]),
        "expectedOutput": loads(row["expected_output"]),
        "metadata": loads(row["metadata"]),
        "sourceTraceId": row["source_trace_id"],
        "sourceObservationId": row["source_observation_id"],
        "datasetId": row["dataset_id"],
        "datasetName": row["dataset_name"],
        "createdAt": iso(row["created_ns"]),
        "updatedAt": iso(row["updated_ns"]),
        "mediaReferences": [],
    }


def _dataset(conn: sqlite3.Connection, name: str) -> sqlite3.Row:
    row = conn.execute("SELECT * FROM datasets WHERE name = ?", (name,)).fetchone()
    if row is None:
        raise NotFound(
            f"Dataset '{name}' not found. Create it with POST /api/public/v2/datasets "
            '{"name": ...}.'
        )
    return row


def create_dataset(db: Database, project_id: str, body: dict[str, Any]) -> dict[str, Any]:
    name = body.get("name")
    if not isinstance(name, str) or not name.strip():
        raise BadRequest("'name' is required: a non-empty string.")
    description = body.get("description")
    if description is not None and not isinstance(description, str):
        raise BadRequest("'description' must be a string.")
    now = now_ns()
    with db.write() as conn:
        row = conn.execute("SELECT * FROM datasets WHERE name = ?", (name,)).fetchone()
        if row is None:
            conn.execute(
                "INSERT INTO datasets (id, name, description, metadata, input_schema, "
                "expected_output_schema, created_ns, updated_ns) VALUES (?, ?, ?, ?, ?, ?, ?, ?)",
                (
                    uuid.uuid4().hex,
                    name,
                    description,
                    dumps(body.get("metadata")),
                    dumps(body.get("inputSchema")),
                    dumps(body.get("expectedOutputSchema")),
                    now,
                    now,
                ),
            )
        else:  # upsert by name: the fields sent replace the stored ones
            updates = {
                "description": description,
                "metadata": dumps(body.get("metadata")),
                "input_schema": dumps(body.get("inputSchema")),
                "expected_output_schema": dumps(body.get("expectedOutputSchema")),
            }
            keys = {
                "description": "description",
                "metadata": "metadata",
                "input_schema": "inputSchema",
                "expected_output_schema": "expectedOutputSchema",
            }
            sent = {column: value for column, value in updates.items() if keys[column] in body}
            sets = "".join(f"{column} = ?, " for column in sent)
            conn.execute(
                f"UPDATE datasets SET {sets}updated_ns = ? WHERE name = ?",
                [*sent.values(), now, name],
            )
        return dataset_json(_dataset(conn, name), project_id)


def list_datasets(db: Database, project_id: str, request: Request) -> dict[str, Any]:
    page = int_param(request, "page", 1, minimum=1, maximum=MAX_PAGE)
    limit = int_param(request, "limit", 50, minimum=1, maximum=1000)
    assert page is not None and limit is not None
    conn = db.connection()
    total = conn.execute("SELECT COUNT(*) FROM datasets").fetchone()[0]
    rows = conn.execute(
        "SELECT * FROM datasets ORDER BY created_ns DESC, name LIMIT ? OFFSET ?",
        (limit, (page - 1) * limit),
    ).fetchall()
    return {
        "data": [dataset_json(row, project_id) for row in rows],
        "meta": page_meta(page, limit, total),
    }


_ITEM_SELECT = (
    "SELECT i.*, d.name AS dataset_name FROM dataset_items i JOIN datasets d ON d.id = i.dataset_id"
)


def upsert_item(db: Database, body: dict[str, Any]) -> dict[str, Any]:
    dataset_name = body.get("datasetName")
    if not isinstance(dataset_name, str) or not dataset_name:
        raise BadRequest("'datasetName' is required: the name of an existing dataset.")
    status = body.get("status")
    if status is not None and status not in STATUSES:
        raise BadRequest(f"'status' has value {status!r}. Use ACTIVE or ARCHIVED.")
    item_id = body.get("id")
    if item_id is not None and (not isinstance(item_id, str) or not 0 < len(item_id) <= 255):
        raise BadRequest("'id' must be a string of 1 to 255 characters.")
    for key in ("sourceTraceId", "sourceObservationId"):
        if body.get(key) is not None and not isinstance(body[key], str):
            raise BadRequest(f"'{key}' must be a string.")
    now = now_ns()
    with db.write() as conn:
        dataset = _dataset(conn, dataset_name)
        existing = None
        if item_id is not None:
            existing = conn.execute(
                "SELECT * FROM dataset_items WHERE id = ?", (item_id,)
            ).fetchone()
        if existing is not None and existing["dataset_id"] != dataset["id"]:
            raise BadRequest(
                f"Dataset item id '{item_id}' is already used in another dataset; ids are "
                "unique per project. Choose another id."
            )
        if existing is None:
            item_id = item_id or uuid.uuid4().hex
            conn.execute(
                "INSERT INTO dataset_items (id, dataset_id, status, input, expected_output, "
                "metadata, source_trace_id, source_observation_id, created_ns, updated_ns) "
                "VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
                (
                    item_id,
                    dataset["id"],
                    status or "ACTIVE",
                    dumps(body.get("input")),
                    dumps(body.get("expectedOutput")),
                    dumps(body.get("metadata")),
                    body.get("sourceTraceId"),
                    body.get("sourceObservationId"),
                    now,
                    now,
                ),
            )
        else:
            sent = {column: dumps(body[key]) for key, column in _ITEM_FIELDS.items() if key in body}
            if status is not None:
                sent["status"] = status
            for key, column in (
                ("sourceTraceId", "source_trace_id"),
                ("sourceObservationId", "source_observation_id"),
            ):
                if key in body:
                    sent[column] = body[key]
            sets = "".join(f"{column} = ?, " for column in sent)
            conn.execute(
                f"UPDATE dataset_items SET {sets}updated_ns = ? WHERE id = ?",
                [*sent.values(), now, item_id],
            )
        row = conn.execute(f"{_ITEM_SELECT} WHERE i.id = ?", (item_id,)).fetchone()
        return item_json(row)


def list_items(db: Database, request: Request) -> dict[str, Any]:
    page = int_param(request, "page", 1, minimum=1, maximum=MAX_PAGE)
    limit = int_param(request, "limit", 50, minimum=1, maximum=1000)
    assert page is not None and limit is not None
    conn = db.connection()
    clauses: list[str] = []
    params: list[Any] = []
    dataset_name = str_param(request, "datasetName")
    if dataset_name is not None:
        clauses.append("i.dataset_id = ?")
        params.append(_dataset(conn, dataset_name)["id"])
    for key, column in (
        ("sourceTraceId", "i.source_trace_id"),
        ("sourceObservationId", "i.source_observation_id"),
    ):
        value = str_param(request, key)
        if value is not None:
            clauses.append(f"{column} = ?")
            params.append(value)
    version = time_param(request, "version")
    if version is not None:
        if dataset_name is None:
            raise BadRequest("The 'version' parameter needs 'datasetName' too.")
        clauses.append("i.created_ns <= ?")
        params.append(version)
    where = f"WHERE {' AND '.join(clauses)}" if clauses else ""
    total = conn.execute(f"SELECT COUNT(*) FROM dataset_items i {where}", params).fetchone()[0]
    rows = conn.execute(
        f"{_ITEM_SELECT} {where} ORDER BY i.created_ns DESC, i.id LIMIT ? OFFSET ?",
        [*params, limit, (page - 1) * limit],
    ).fetchall()
    return {"data": [item_json(row) for row in rows], "meta": page_meta(page, limit, total)}


def get_item(db: Database, item_id: str) -> dict[str, Any]:
    row = db.connection().execute(f"{_ITEM_SELECT} WHERE i.id = ?", (item_id,)).fetchone()
    if row is None:
        raise NotFound(f"Dataset item '{item_id}' not found.")
    return item_json(row)


def delete_item(db: Database, item_id: str) -> None:
    with db.write() as conn:
        if not conn.execute("DELETE FROM dataset_items WHERE id = ?", (item_id,)).rowcount:
            raise NotFound(f"Dataset item '{item_id}' not found.")


async def datasets_collection(request: Request) -> Response:
    """`GET /api/public/v2/datasets` (list) and `POST` (create or update by name)."""
    state = request.app.state
    if request.method == "POST":
        body = json_object(await read_json(request), "POST /api/public/v2/datasets")
        return Json(await run_in_threadpool(create_dataset, state.db, state.project.id, body))
    return Json(await run_in_threadpool(list_datasets, state.db, state.project.id, request))


def _get_dataset(db: Database, project_id: str, name: str) -> dict[str, Any]:
    return dataset_json(_dataset(db.connection(), name), project_id)


async def dataset_item_endpoint(request: Request) -> Response:
    """`GET /api/public/v2/datasets/{datasetName}` (the name URL-encoded, '/' included)."""
    raw = request.scope.get("raw_path")
    if isinstance(raw, bytes) and raw.startswith(_PREFIX):
        name = unquote(raw[len(_PREFIX) :].decode("latin-1"))
    else:
        name = unquote(quote(request.path_params["rest"], safe="/"))
    state = request.app.state
    return Json(await run_in_threadpool(_get_dataset, state.db, state.project.id, name))


async def items_collection(request: Request) -> Response:
    """`POST /api/public/dataset-items` (upsert by id) and `GET` (list, paged)."""
    db = request.app.state.db
    if request.method == "POST":
        body = json_object(await read_json(request), "POST /api/public/dataset-items")
        return Json(await run_in_threadpool(upsert_item, db, body))
    return Json(await run_in_threadpool(list_items, db, request))


async def item_endpoint(request: Request) -> Response:
    """`GET|DELETE /api/public/dataset-items/{id}`."""
    db = request.app.state.db
    item_id = request.path_params["item_id"]
    if request.method == "DELETE":
        await run_in_threadpool(delete_item, db, item_id)
        return Json({"message": "Dataset item successfully deleted"})
    return Json(await run_in_threadpool(get_item, db, item_id))
