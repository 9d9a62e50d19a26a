"""Dataset runs: one view over the two ways Langfuse records them.

- Through the API: `POST /api/public/dataset-run-items` (Langfuse v3's way, and what the
  workbench's experiments write) stores a run, by dataset and name, and its items (a dataset item
  linked to the trace that ran it) in `dataset_runs` and `dataset_run_items`.
- As spans: the langfuse SDK 5's `run_experiment` (Langfuse v4's way) sets `langfuse.experiment.*`
  attributes (`id`, `name`, `dataset.id`, `item.id`, `description`, `metadata`) on the spans of
  each item's trace; nothing else is written.

Every read goes through `dataset_runs()`, `runs_between()` and `items_of()` here: the dataset-run
endpoints, the experiments endpoints (`experiments.py`) and the viewer's dataset pages, so a run
shows the same everywhere whichever way it was written. Within a dataset a run is known by its
name, as in Langfuse: an API run and a span run of the same name are one run (the API run's id).

Endpoints: `POST/GET /api/public/dataset-run-items`, `GET /api/public/datasets/{name}/runs`,
`GET/DELETE /api/public/datasets/{name}/runs/{run}`.
"""

from __future__ import annotations

import sqlite3
import uuid
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import unquote

from starlette.concurrency import run_in_threadpool
from starlette.requests import Request
from starlette.responses import Response

from ._errors import BadRequest, Json, NotFound
from ._http import dumps, int_param, json_object, loads, page_meta, read_json, str_param
from ._time import iso, now_ns, parse_iso
from .db import Database

EXPERIMENT_ATTR = "json_extract(o.attributes, '$.\"langfuse.experiment.{}\"')"
"""A span attribute the langfuse SDK (5) sets on an experiment's spans."""
DATASET_ID = EXPERIMENT_ATTR.format("dataset.id")
DATASET_ROWS = "instr(o.attributes, 'langfuse.experiment.dataset.id') > 0"
"""The partial index's condition (db.py): repeated verbatim so that SQLite uses the index."""
EXPERIMENT_ROWS = "instr(o.attributes, 'langfuse.experiment.id') > 0"
"""Any experiment span, with or without a dataset (found by time, then by this)."""
_RUNS_PREFIX = "/api/public/datasets/"


@dataclass
class Run:
    """A dataset run (an experiment), however it was recorded."""

    id: str
    name: str
    dataset_id: str | None
    description: str | None
    metadata: Any
    created_ns: int
    updated_ns: int
    stored: bool = True
    """Written through the API (so it can be deleted); False for a run known from spans only."""
    span_ids: list[str] = field(default_factory=list)
    """The `langfuse.experiment.id`s of its spans, if any."""


@dataclass
class RunItem:
    """One dataset item as one run ran it: the trace that ran it."""

    id: str
    run_id: str
    run_name: str
    dataset_item_id: str | None
    trace_id: str
    observation_id: str | None
    created_ns: int
    updated_ns: int


# -- reading ---------------------------------------------------------------------------------------


def _stored_runs(conn: sqlite3.Connection, where: str, params: list[Any]) -> list[Run]:
    rows = conn.execute(f"SELECT * FROM dataset_runs r {where}", params).fetchall()
    return [
        Run(
            r["id"],
            r["name"],
            r["dataset_id"],
            r["description"],
            loads(r["metadata"]),
            r["created_ns"],
            r["updated_ns"],
        )
        for r in rows
    ]


def _span_runs(conn: sqlite3.Connection, where: str, params: list[Any]) -> list[Run]:
    attr = EXPERIMENT_ATTR
    rows = conn.execute(
        f"SELECT {attr.format('id')} AS run_id, {attr.format('name')} AS run_name, "
        f"{DATASET_ID} AS dataset_id, MAX({attr.format('description')}) AS description, "
        f"MAX({attr.format('metadata')}) AS metadata, MIN(o.start_ns) AS first_ns, "
        "MAX(COALESCE(o.end_ns, o.start_ns)) AS last_ns "
        f"FROM observations o WHERE {where} GROUP BY run_id, run_name, dataset_id",
        params,
    ).fetchall()
    runs = []
    for row in rows:
        run_id = str(row["run_id"] or row["run_name"] or "run")
        metadata = row["metadata"]
        if isinstance(metadata, str):  # the SDK serializes it to a JSON string
            try:
                metadata = loads(metadata)
            except ValueError:
                pass
        runs.append(
            Run(
                run_id,
                str(row["run_name"] or run_id),
                row["dataset_id"],
                row["description"],
                metadata,
                row["first_ns"],
                row["last_ns"],
                stored=False,
                span_ids=[run_id],
            )
        )
    return runs


def _merge(stored: list[Run], spans: list[Run]) -> list[Run]:
    """One run per (dataset, name), oldest first; a stored run absorbs the span run of its name."""
    by_key: dict[tuple[str | None, str], Run] = {}
    for run in [*stored, *spans]:
        key = (run.dataset_id, run.name)
        known = by_key.get(key)
        if known is None:
            by_key[key] = run
            continue
        known.span_ids.extend(run.span_ids)
        known.created_ns = min(known.created_ns, run.created_ns)
        known.updated_ns = max(known.updated_ns, run.updated_ns)
        known.description = known.description or run.description
        known.metadata = known.metadata if known.metadata is not None else run.metadata
    return sorted(by_key.values(), key=lambda r: (r.created_ns, r.name))


def dataset_runs(conn: sqlite3.Connection, dataset_id: str) -> list[Run]:
    """The runs of a dataset, oldest first."""
    stored = _stored_runs(conn, "WHERE r.dataset_id = ?", [dataset_id])
    spans = _span_runs(conn, f"{DATASET_ROWS} AND {DATASET_ID} = ?", [dataset_id])
    return _merge(stored, spans)


def runs_between(conn: sqlite3.Connection, since_ns: int, until_ns: int | None) -> list[Run]:
    """Every run with an item that started in [since, until): stored runs by their items'
    creation or their traces' start, span runs (with or without a dataset) by their spans."""
    bound = "" if until_ns is None else " AND {col} < ?"
    params: list[Any] = [since_ns] + ([] if until_ns is None else [until_ns])
    stored = _stored_runs(
        conn,
        "WHERE r.id IN (SELECT i.run_id FROM dataset_run_items i "
        "LEFT JOIN traces t ON t.id = i.trace_id "
        "WHERE COALESCE(t.start_ns, i.created_ns) >= ?"
        + bound.format(col="COALESCE(t.start_ns, i.created_ns)")
        + ")",
        params,
    )
    spans = _span_runs(
        conn, "o.start_ns >= ?" + bound.format(col="o.start_ns") + f" AND {EXPERIMENT_ROWS}", params
    )
    return _merge(stored, spans)


def items_of(conn: sqlite3.Connection, runs: list[Run]) -> dict[str, list[RunItem]]:
    """Each run's items (by run id), oldest first; one per (dataset item, trace)."""
    out: dict[str, list[RunItem]] = {run.id: [] for run in runs}
    seen: dict[str, set[tuple[str | None, str]]] = {run.id: set() for run in runs}
    stored = [run for run in runs if run.stored]
    for start in range(0, len(stored), 500):
        chunk = stored[start : start + 500]
        names = {run.id: run.name for run in chunk}
        for row in conn.execute(
            f"SELECT * FROM dataset_run_items WHERE run_id IN ({','.join('?' * len(chunk))}) "
            "ORDER BY created_ns, id",
            list(names),
        ):
            out[row["run_id"]].append(_stored_item(row, names[row["run_id"]]))
            seen[row["run_id"]].add((row["dataset_item_id"], row["trace_id"]))
    span_owner = {span_id: run for run in runs for span_id in run.span_ids}
    if span_owner:
        attr = EXPERIMENT_ATTR
        ids = list(span_owner)
        datasets = sorted({run.dataset_id for run in runs if run.span_ids and run.dataset_id})
        where = f"{attr.format('id')} IN ({','.join('?' * len(ids))})"
        params: list[Any] = list(ids)
        if datasets and all(run.dataset_id for run in runs if run.span_ids):
            where = (
                f"{DATASET_ROWS} AND {DATASET_ID} IN ({','.join('?' * len(datasets))}) AND " + where
            )
            params = [*datasets, *params]
        else:
            where = f"{EXPERIMENT_ROWS} AND " + where
        rows = conn.execute(
            f"SELECT o.trace_id, {attr.format('id')} AS span_run, "
            f"{attr.format('item.id')} AS item_id, MIN(o.start_ns) AS first_ns, o.id AS obs_id, "
            "MAX(COALESCE(o.end_ns, o.start_ns)) AS last_ns "
            f"FROM observations o WHERE {where} GROUP BY o.trace_id, span_run, item_id "
            "ORDER BY first_ns",
            params,
        ).fetchall()
        for row in rows:
            run = span_owner.get(str(row["span_run"]))
            if run is None:
                continue
            key = (row["item_id"], row["trace_id"])
            if key in seen[run.id]:
                continue
            seen[run.id].add(key)
            out[run.id].append(
                RunItem(
                    row["obs_id"],
                    run.id,
                    run.name,
                    row["item_id"],
                    row["trace_id"],
                    None,
                    row["first_ns"],
                    row["last_ns"],
                )
            )
        for items in out.values():
            items.sort(key=lambda item: (item.created_ns, item.id))
    return out


def _stored_item(row: sqlite3.Row, run_name: str) -> RunItem:
    return RunItem(
        row["id"],
        row["run_id"],
        run_name,
        row["dataset_item_id"],
        row["trace_id"],
        row["observation_id"] or None,
        row["created_ns"],
        row["updated_ns"],
    )


# -- answers -----------------------------------------------------------------------------------


def run_json(run: Run, dataset_name: str) -> dict[str, Any]:
    return {
        "id": run.id,
        "name": run.name,
        "description": run.description,
        "metadata": run.metadata,
        "datasetId": run.dataset_id,
        "datasetName": dataset_name,
        "createdAt": iso(run.created_ns),
        "updatedAt": iso(run.updated_ns),
    }


def run_item_json(item: RunItem) -> dict[str, Any]:
    return {
        "id": item.id,
        "datasetRunId": item.run_id,
        "datasetRunName": item.run_name,
        "datasetItemId": item.dataset_item_id,
        "traceId": item.trace_id,
        "observationId": item.observation_id,
        "createdAt": iso(item.created_ns),
        "updatedAt": iso(item.updated_ns),
    }


# -- writing -------------------------------------------------------------------------------------


def _optional_str(body: dict[str, Any], key: str) -> str | None:
    value = body.get(key)
    if value is not None and not isinstance(value, str):
        raise BadRequest(f"'{key}' must be a string; got {type(value).__name__}.")
    return value or None


def create_run_item(db: Database, body: dict[str, Any]) -> dict[str, Any]:
    """Link a dataset item to the trace that ran it, in the run `runName` of the item's dataset
    (created when new; its description and metadata updated when sent). Idempotent: the same
    (run, item, trace, observation) answers the link stored before."""
    run_name = body.get("runName")
    if not isinstance(run_name, str) or not run_name.strip():
        raise BadRequest("'runName' is required: the name of the run (created when new).")
    item_id = body.get("datasetItemId")
    if not isinstance(item_id, str) or not item_id:
        raise BadRequest("'datasetItemId' is required: the id of an item of the dataset.")
    trace_id = _optional_str(body, "traceId")
    observation_id = _optional_str(body, "observationId")
    description = _optional_str(body, "runDescription")
    created = body.get("createdAt")
    try:
        created_ns = parse_iso(created) if isinstance(created, str) else None
    except ValueError:
        raise BadRequest(f"'createdAt' has value {created!r}. Not an ISO 8601 datetime.") from None
    now = now_ns()
    with db.write() as conn:
        item = conn.execute(
            "SELECT dataset_id FROM dataset_items WHERE id = ?", (item_id,)
        ).fetchone()
        if item is None:
            raise NotFound(
                f"Dataset item '{item_id}' not found. Create it first with POST "
                "/api/public/dataset-items."
            )
        if trace_id is None and observation_id is not None:
            found = conn.execute(
                "SELECT trace_id FROM observations WHERE id = ? LIMIT 1", (observation_id,)
            ).fetchone()
            trace_id = found["trace_id"] if found else None
        if trace_id is None:
            raise BadRequest(
                "'traceId' is required: the trace that ran the item (or an 'observationId' "
                "this server has stored, to infer it from)."
            )
        run = conn.execute(
            "SELECT * FROM dataset_runs WHERE dataset_id = ? AND name = ?",
            (item["dataset_id"], run_name),
        ).fetchone()
        if run is None:
            run_id = uuid.uuid4().hex
            conn.execute(
                "INSERT INTO dataset_runs (id, dataset_id, name, description, metadata, "
                "created_ns, updated_ns) VALUES (?, ?, ?, ?, ?, ?, ?)",
                (
                    run_id,
                    item["dataset_id"],
                    run_name,
                    description,
                    dumps(body.get("metadata")),
                    now,
                    now,
                ),
            )
        else:
            run_id = run["id"]
            updates: dict[str, Any] = {}
            if description is not None:
                updates["description"] = description
            if body.get("metadata") is not None:
                updates["metadata"] = dumps(body["metadata"])
            if updates:
                sets = "".join(f"{column} = ?, " for column in updates)
                conn.execute(
                    f"UPDATE dataset_runs SET {sets}updated_ns = ? WHERE id = ?",
                    [*updates.values(), now, run_id],
                )
        link = (run_id, item_id, trace_id, observation_id or "")
        existing = conn.execute(
            "SELECT * FROM dataset_run_items WHERE run_id = ? AND dataset_item_id = ? "
            "AND trace_id = ? AND observation_id = ?",
            link,
        ).fetchone()
        if existing is None:
            stamp = created_ns if created_ns is not None else now
            conn.execute(
                "INSERT INTO dataset_run_items (id, run_id, dataset_item_id, trace_id, "
                "observation_id, created_ns, updated_ns) VALUES (?, ?, ?, ?, ?, ?, ?)",
                (uuid.uuid4().hex, *link, stamp, now),
            )
            existing = conn.execute(
                "SELECT * FROM dataset_run_items WHERE run_id = ? AND dataset_item_id = ? "
                "AND trace_id = ? AND observation_id = ?",
                link,
            ).fetchone()
        return run_item_json(_stored_item(existing, run_name))


def _dataset_by_name(conn: sqlite3.Connection, name: str) -> sqlite3.Row:
    row = conn.execute("SELECT * FROM datasets WHERE name = ?", (name,)).fetchone()
    if row is None:
        raise NotFound(f"Dataset '{name}' not found.")
    return row


def _dataset_by_id(conn: sqlite3.Connection, dataset_id: str) -> sqlite3.Row:
    row = conn.execute("SELECT * FROM datasets WHERE id = ?", (dataset_id,)).fetchone()
    if row is None:
        raise NotFound(f"Dataset with id '{dataset_id}' not found.")
    return row


def _run_named(conn: sqlite3.Connection, dataset: sqlite3.Row, run_name: str) -> Run:
    for run in dataset_runs(conn, dataset["id"]):
        if run.name == run_name:
            return run
    raise NotFound(f"Dataset run '{run_name}' not found in dataset '{dataset['name']}'.")


def _page(request: Request) -> tuple[int, int]:
    page = int_param(request, "page", 1, minimum=1)
    limit = int_param(request, "limit", 50, minimum=1, maximum=1000)
    assert page is not None and limit is not None
    return page, limit


def list_run_items(db: Database, request: Request) -> dict[str, Any]:
    dataset_id = str_param(request, "datasetId")
    run_name = str_param(request, "runName")
    if dataset_id is None or run_name is None:
        raise BadRequest("Query parameters 'datasetId' and 'runName' are required.")
    page, limit = _page(request)
    conn = db.connection()
    run = _run_named(conn, _dataset_by_id(conn, dataset_id), run_name)
    items = items_of(conn, [run])[run.id]
    chosen = items[(page - 1) * limit : page * limit]
    return {"data": [run_item_json(i) for i in chosen], "meta": page_meta(page, limit, len(items))}


def list_runs(db: Database, dataset_name: str, request: Request) -> dict[str, Any]:
    page, limit = _page(request)
    conn = db.connection()
    dataset = _dataset_by_name(conn, dataset_name)
    runs = list(reversed(dataset_runs(conn, dataset["id"])))  # newest first
    chosen = runs[(page - 1) * limit : page * limit]
    return {
        "data": [run_json(run, dataset["name"]) for run in chosen],
        "meta": page_meta(page, limit, len(runs)),
    }


def get_run(db: Database, dataset_name: str, run_name: str) -> dict[str, Any]:
    conn = db.connection()
    dataset = _dataset_by_name(conn, dataset_name)
    run = _run_named(conn, dataset, run_name)
    out = run_json(run, dataset["name"])
    out["datasetRunItems"] = [run_item_json(i) for i in items_of(conn, [run])[run.id]]
    return out


def delete_run(db: Database, dataset_name: str, run_name: str) -> dict[str, Any]:
    with db.write() as conn:
        dataset = _dataset_by_name(conn, dataset_name)
        run = _run_named(conn, dataset, run_name)
        if not run.stored:
            raise BadRequest(
                f"Dataset run '{run_name}' was recorded as experiment spans (the langfuse SDK's "
                "run_experiment): delete its traces (DELETE /api/public/traces) to remove it."
            )
        conn.execute("DELETE FROM dataset_run_items WHERE run_id = ?", (run.id,))
        conn.execute("DELETE FROM dataset_runs WHERE id = ?", (run.id,))
    return {"message": f"Dataset run '{run_name}' and its items were deleted."}


# -- endpoints ---------------------------------------------------------------------------------


async def run_items_collection(request: Request) -> Response:
    """`POST /api/public/dataset-run-items` (link, idempotent) and `GET` (a run's items)."""
    db = request.app.state.db
    if request.method == "POST":
        body = json_object(await read_json(request), "POST /api/public/dataset-run-items")
        return Json(await run_in_threadpool(create_run_item, db, body))
    return Json(await run_in_threadpool(list_run_items, db, request))


def _path_parts(request: Request) -> tuple[str, str | None]:
    """(dataset name, run name) of `/api/public/datasets/{name}/runs[/{run}]`, each URL-decoded
    on its own, so a '/' sent as %2F inside a name stays in that name."""
    raw = request.scope.get("raw_path")
    path = raw.decode("latin-1") if isinstance(raw, bytes) else request.url.path
    rest = path.split("?", 1)[0][len(_RUNS_PREFIX) :]
    dataset, sep, tail = rest.partition("/runs")
    if not sep or (tail and not tail.startswith("/")):
        raise NotFound(f"No endpoint {request.method} {request.url.path}.")
    run = tail[1:] if tail else None
    return unquote(dataset), (unquote(run) if run else None)


async def runs_endpoint(request: Request) -> Response:
    """`GET /api/public/datasets/{datasetName}/runs`, `GET|DELETE .../runs/{runName}`."""
    db = request.app.state.db
    dataset, run = _path_parts(request)
    if run is None:
        return Json(await run_in_threadpool(list_runs, db, dataset, request))
    if request.method == "DELETE":
        return Json(await run_in_threadpool(delete_run, db, dataset, run))
    return Json(await run_in_threadpool(get_run, db, dataset, run))
