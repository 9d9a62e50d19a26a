"""Storing an export request: observation rows inserted and their traces merged, atomically."""

from __future__ import annotations

import json
import sqlite3
from typing import Any

from ._http import loads
from .db import Database
from .mapping import OBSERVATION_COLUMNS, TracePatch, merge_patches

_INSERT = (
    f"INSERT OR REPLACE INTO observations ({', '.join(OBSERVATION_COLUMNS)}) "
    f"VALUES ({', '.join('?' * len(OBSERVATION_COLUMNS))})"
)

TRACE_COLUMNS = (
    "id",
    "name",
    "user_id",
    "session_id",
    "release",
    "version",
    "environment",
    "tags",
    "metadata",
    "public",
    "input",
    "output",
    "root_id",
    "root_rank",
    "root_name",
    "root_input",
    "root_output",
    "root_start_ns",
    "start_ns",
    "end_ns",
    "created_ns",
    "updated_ns",
)
_UPSERT = (
    f"INSERT OR REPLACE INTO traces ({', '.join(TRACE_COLUMNS)}) "
    f"VALUES ({', '.join('?' * len(TRACE_COLUMNS))})"
)
_CHUNK = 500
"""Trace ids per `IN (...)` lookup."""


def store_observations(
    db: Database, rows: list[tuple[Any, ...]], traces: dict[str, TracePatch]
) -> None:
    """Insert (or replace, by trace and span id) the rows and update their traces, atomically."""
    with db.write() as conn:
        conn.executemany(_INSERT, rows)
        merge_traces(conn, traces, rows[0][-1])


def _patch_from_row(row: sqlite3.Row) -> TracePatch:
    root = None
    if row["root_id"] is not None:
        root = (
            row["root_rank"],
            row["root_id"],
            row["root_name"],
            row["root_input"],
            row["root_output"],
            row["root_start_ns"],
        )
    return TracePatch(
        start_ns=row["start_ns"],
        end_ns=row["end_ns"],
        name=row["name"],
        user_id=row["user_id"],
        session_id=row["session_id"],
        tags=json.loads(row["tags"]),
        metadata=loads(row["metadata"]) or {},
        public=bool(row["public"]),
        input=row["input"],
        output=row["output"],
        release=row["release"],
        version=row["version"],
        environment=row["environment"],
        root=root,
    )


def merge_traces(conn: sqlite3.Connection, patches: dict[str, TracePatch], now: int) -> None:
    """Fold what a request says about its traces into the stored trace rows."""
    ids = list(patches)
    existing: dict[str, sqlite3.Row] = {}
    for start in range(0, len(ids), _CHUNK):
        chunk = ids[start : start + _CHUNK]
        marks = ",".join("?" * len(chunk))
        for row in conn.execute(f"SELECT * FROM traces WHERE id IN ({marks})", chunk):
            existing[row["id"]] = row
    rows = []
    for trace_id, patch in patches.items():
        stored = existing.get(trace_id)
        created = now
        if stored is not None:
            created = stored["created_ns"]
            patch = merge_patches(_patch_from_row(stored), patch)
        root = patch.root or (0, None, None, None, None, None)
        rows.append(
            (
                trace_id,
                patch.name,
                patch.user_id,
                patch.session_id,
                patch.release,
                patch.version,
                patch.environment,
                json.dumps(patch.tags, ensure_ascii=False),
                json.dumps(patch.metadata, ensure_ascii=False) if patch.metadata else None,
                1 if patch.public else 0,
                patch.input,
                patch.output,
                root[1],
                root[0],
                root[2],
                root[3],
                root[4],
                root[5],
                patch.start_ns,
                patch.end_ns,
                created,
                now,
            )
        )
    conn.executemany(_UPSERT, rows)
