"""The SQLite store: schema, one connection per thread, one writer at a time (WAL mode)."""

from __future__ import annotations

import sqlite3
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

SCHEMA = """
CREATE TABLE IF NOT EXISTS observations (
    trace_id TEXT NOT NULL,
    id TEXT NOT NULL,
    parent_observation_id TEXT,
    is_root INTEGER NOT NULL,
    type TEXT NOT NULL,
    name TEXT,
    start_ns INTEGER NOT NULL,
    end_ns INTEGER,
    completion_start_ns INTEGER,
    level TEXT NOT NULL,
    status_message TEXT,
    version TEXT,
    environment TEXT NOT NULL,
    input TEXT,
    output TEXT,
    metadata TEXT,
    model TEXT,
    model_parameters TEXT,
    usage_details TEXT,
    cost_details TEXT,
    total_cost REAL,
    prompt_name TEXT,
    prompt_version INTEGER,
    user_id TEXT,
    session_id TEXT,
    release TEXT,
    scope_name TEXT,
    scope_version TEXT,
    attributes TEXT NOT NULL,
    resource_attributes TEXT NOT NULL,
    created_ns INTEGER NOT NULL,
    updated_ns INTEGER NOT NULL,
    PRIMARY KEY (trace_id, id)
);
CREATE INDEX IF NOT EXISTS observations_start ON observations (start_ns);
-- the spans of experiments (dataset runs), by dataset: the viewer's dataset pages read them
CREATE INDEX IF NOT EXISTS observations_experiment ON observations
    (json_extract(attributes, '$."langfuse.experiment.dataset.id"'))
    WHERE instr(attributes, 'langfuse.experiment.dataset.id') > 0;

CREATE TABLE IF NOT EXISTS traces (
    id TEXT PRIMARY KEY,
    name TEXT,
    user_id TEXT,
    session_id TEXT,
    release TEXT,
    version TEXT,
    environment TEXT,
    tags TEXT NOT NULL DEFAULT '[]',
    metadata TEXT,
    public INTEGER NOT NULL DEFAULT 0,
    input TEXT,
    output TEXT,
    root_id TEXT,
    root_rank INTEGER NOT NULL DEFAULT 0,
    root_name TEXT,
    root_input TEXT,
    root_output TEXT,
    root_start_ns INTEGER,
    start_ns INTEGER NOT NULL,
    end_ns INTEGER,
    created_ns INTEGER NOT NULL,
    updated_ns INTEGER NOT NULL
);
CREATE INDEX IF NOT EXISTS traces_start ON traces (start_ns);

CREATE TABLE IF NOT EXISTS scores (
    id TEXT PRIMARY KEY,
    trace_id TEXT,
    observation_id TEXT,
    session_id TEXT,
    dataset_run_id TEXT,
    name TEXT NOT NULL,
    value REAL,
    string_value TEXT,
    data_type TEXT NOT NULL,
    source TEXT NOT NULL,
    comment TEXT,
    metadata TEXT,
    config_id TEXT,
    queue_id TEXT,
    author_user_id TEXT,
    environment TEXT NOT NULL,
    timestamp_ns INTEGER NOT NULL,
    created_ns INTEGER NOT NULL,
    updated_ns INTEGER NOT NULL
);
CREATE INDEX IF NOT EXISTS scores_trace ON scores (trace_id);
CREATE INDEX IF NOT EXISTS scores_timestamp ON scores (timestamp_ns);

CREATE TABLE IF NOT EXISTS prompts (
    name TEXT NOT NULL,
    version INTEGER NOT NULL,
    type TEXT NOT NULL,
    prompt TEXT NOT NULL,
    config TEXT NOT NULL,
    commit_message TEXT,
    created_ns INTEGER NOT NULL,
    updated_ns INTEGER NOT NULL,
    PRIMARY KEY (name, version)
);
CREATE TABLE IF NOT EXISTS prompt_labels (
    name TEXT NOT NULL,
    label TEXT NOT NULL,
    version INTEGER NOT NULL,
    PRIMARY KEY (name, label)
);
CREATE TABLE IF NOT EXISTS prompt_tags (
    name TEXT PRIMARY KEY,
    tags TEXT NOT NULL
);

CREATE TABLE IF NOT EXISTS datasets (
    id TEXT PRIMARY KEY,
    name TEXT NOT NULL UNIQUE,
    description TEXT,
    metadata TEXT,
    input_schema TEXT,
    expected_output_schema TEXT,
    created_ns INTEGER NOT NULL,
    updated_ns INTEGER NOT NULL
);
CREATE TABLE IF NOT EXISTS dataset_items (
    id TEXT PRIMARY KEY,
    dataset_id TEXT NOT NULL,
    status TEXT NOT NULL,
    input TEXT,
    expected_output TEXT,
    metadata TEXT,
    source_trace_id TEXT,
    source_observation_id TEXT,
    created_ns INTEGER NOT NULL,
    updated_ns INTEGER NOT NULL
);
CREATE INDEX IF NOT EXISTS dataset_items_dataset ON dataset_items (dataset_id, created_ns);

-- dataset runs written through the API (POST /api/public/dataset-run-items); runs that the
-- langfuse SDK's run_experiment records as spans are read from the observations (runs.py)
CREATE TABLE IF NOT EXISTS dataset_runs (
    id TEXT PRIMARY KEY,
    dataset_id TEXT NOT NULL,
    name TEXT NOT NULL,
    description TEXT,
    metadata TEXT,
    created_ns INTEGER NOT NULL,
    updated_ns INTEGER NOT NULL,
    UNIQUE (dataset_id, name)
);
CREATE TABLE IF NOT EXISTS dataset_run_items (
    id TEXT PRIMARY KEY,
    run_id TEXT NOT NULL,
    dataset_item_id TEXT NOT NULL,
    trace_id TEXT NOT NULL,
    observation_id TEXT NOT NULL DEFAULT '',
    created_ns INTEGER NOT NULL,
    updated_ns INTEGER NOT NULL,
    UNIQUE (run_id, dataset_item_id, trace_id, observation_id)
);
CREATE INDEX IF NOT EXISTS dataset_run_items_trace ON dataset_run_items (trace_id);
CREATE INDEX IF NOT EXISTS dataset_run_items_created ON dataset_run_items (created_ns);
"""


class Database:
    """A SQLite file shared by the request threads.

    Each thread reads through its own connection (WAL lets readers run beside the writer); writes
    go through `write()`, which holds a process-wide lock and one IMMEDIATE transaction, so a
    request's rows are stored all together or not at all.
    """

    def __init__(self, path: Path) -> None:
        self.path = Path(path)
        self.prompt_changes: Path | None = None
        """A file appended to after every prompt change (`prompts.announce_change`)."""
        self.path.parent.mkdir(parents=True, exist_ok=True)
        self._local = threading.local()
        self._write_lock = threading.Lock()
        self._all: list[sqlite3.Connection] = []
        self._all_lock = threading.Lock()
        conn = self.connection()
        conn.execute("PRAGMA journal_mode=WAL")
        conn.executescript(SCHEMA)

    def connection(self) -> sqlite3.Connection:
        """This thread's connection (created on first use)."""
        conn: sqlite3.Connection | None = getattr(self._local, "conn", None)
        if conn is None:
            conn = sqlite3.connect(
                self.path, isolation_level=None, check_same_thread=False, timeout=30.0
            )
            conn.row_factory = sqlite3.Row
            conn.execute("PRAGMA synchronous=NORMAL")
            conn.execute("PRAGMA busy_timeout=30000")
            conn.execute("PRAGMA temp_store=MEMORY")
            self._local.conn = conn
            with self._all_lock:
                self._all.append(conn)
        return conn

    @contextmanager
    def write(self) -> Iterator[sqlite3.Connection]:
        """One write transaction: committed when the block ends, rolled back if it raises."""
        conn = self.connection()
        with self._write_lock:
            conn.execute("BEGIN IMMEDIATE")
            try:
                yield conn
            except BaseException:
                conn.execute("ROLLBACK")
                raise
            conn.execute("COMMIT")

    def close(self) -> None:
        with self._all_lock:
            for conn in self._all:
                conn.close()
            self._all.clear()
        self._local = threading.local()
