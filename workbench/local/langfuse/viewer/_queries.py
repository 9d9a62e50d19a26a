"""What the viewer's pages read: SQL over the embedded Langfuse's SQLite, read only, shaped by the
API's own row mappers where a page shows what the API answers (a trace, an observation, a score,
a prompt version, a dataset item), so the viewer and the API never disagree."""

from __future__ import annotations

import sqlite3
from dataclasses import dataclass, field
from typing import Any

from .. import prompts as prompt_store
from .. import runs as run_store
from .._errors import NotFound
from ..datasets import dataset_json, item_json
from ..db import Database
from ..scores import score_v1
from ..traces import json_or_text, observation_view, trace_core

TRACES_PER_PAGE = 50
SCORES_PER_PAGE = 100
LEVELS = ("ERROR", "WARNING", "OK")
"""The traces list's level filter: has an ERROR / a WARNING observation, or has no ERROR."""
_EXPERIMENT = run_store.EXPERIMENT_ATTR
_DATASET_ID = run_store.DATASET_ID
_EXPERIMENT_ROWS = run_store.DATASET_ROWS


def _like(text: str) -> str:
    escaped = text.replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_")
    return f"%{escaped}%"


def _marks(values: list[Any] | tuple[Any, ...]) -> str:
    return ",".join("?" * len(values))


# --- traces ------------------------------------------------------------------------------------


@dataclass(frozen=True)
class TraceFilters:
    """The traces list's filters, as the query string gives them (blank = not filtered)."""

    claim: str = ""
    """A part of the trace metadata's `claim_id`."""
    name: str = ""
    """A part of the trace's name."""
    level: str = ""
    """ERROR, WARNING or OK (see LEVELS)."""
    prompt: str = ""
    """`name` (any version) or `name|version` of a prompt some generation used."""
    version: str = ""
    """A service version: the trace's or any of its observations'."""
    page: int = 1

    def prompt_parts(self) -> tuple[str, int | None] | None:
        if not self.prompt:
            return None
        name, sep, version = self.prompt.rpartition("|")
        if sep and version.isascii() and version.isdigit() and len(version) <= 9:
            return name, int(version)
        return self.prompt, None


@dataclass
class TraceSummary:
    row: dict[str, Any]
    claim_id: str | None
    observations: int = 0
    errors: int = 0
    warnings: int = 0
    tokens: int = 0
    prompts: list[tuple[str, int]] = field(default_factory=list)
    versions: list[str] = field(default_factory=list)
    scores: list[dict[str, Any]] = field(default_factory=list)


def list_traces(
    db: Database, project_id: str, filters: TraceFilters
) -> tuple[list[TraceSummary], int]:
    """One page of traces (newest first) with their counts, prompts, versions and scores; and
    how many traces match in all."""
    clauses: list[str] = []
    params: list[Any] = []
    if filters.claim:
        clauses.append("json_extract(t.metadata, '$.claim_id') LIKE ? ESCAPE '\\'")
        params.append(_like(filters.claim))
    if filters.name:
        clauses.append("COALESCE(t.name, t.root_name) LIKE ? ESCAPE '\\'")
        params.append(_like(filters.name))
    has = "EXISTS (SELECT 1 FROM observations o WHERE o.trace_id = t.id AND {})"
    if filters.level in ("ERROR", "WARNING"):
        clauses.append(has.format("o.level = ?"))
        params.append(filters.level)
    elif filters.level == "OK":
        clauses.append("NOT " + has.format("o.level = 'ERROR'"))
    prompt = filters.prompt_parts()
    if prompt is not None:
        name, version = prompt
        if version is None:
            clauses.append(has.format("o.prompt_name = ?"))
            params.append(name)
        else:
            clauses.append(has.format("o.prompt_name = ? AND o.prompt_version = ?"))
            params.extend([name, version])
    if filters.version:
        clauses.append(f"(t.version = ? OR {has.format('o.version = ?')})")
        params.extend([filters.version, filters.version])
    where = f"WHERE {' AND '.join(clauses)}" if clauses else ""
    conn = db.connection()
    total = conn.execute(f"SELECT COUNT(*) FROM traces t {where}", params).fetchone()[0]
    rows = conn.execute(
        f"SELECT * FROM traces t {where} ORDER BY t.start_ns DESC, t.id LIMIT ? OFFSET ?",
        [*params, TRACES_PER_PAGE, (filters.page - 1) * TRACES_PER_PAGE],
    ).fetchall()
    summaries: dict[str, TraceSummary] = {}
    for row in rows:
        core = trace_core(row, project_id)
        core["latency"] = _latency(row["start_ns"], row["end_ns"])
        metadata = core.get("metadata")
        claim = metadata.get("claim_id") if isinstance(metadata, dict) else None
        summaries[row["id"]] = TraceSummary(core, None if claim is None else str(claim))
    ids = list(summaries)
    if ids:
        marks = _marks(ids)
        for agg in conn.execute(
            "SELECT trace_id, COUNT(*) AS n, SUM(level = 'ERROR') AS errors, "
            "SUM(level = 'WARNING') AS warnings, "
            "SUM(COALESCE(json_extract(usage_details, '$.total'), 0)) AS tokens "
            f"FROM observations WHERE trace_id IN ({marks}) GROUP BY trace_id",
            ids,
        ):
            summary = summaries[agg["trace_id"]]
            summary.observations, summary.errors = agg["n"], agg["errors"] or 0
            summary.warnings, summary.tokens = agg["warnings"] or 0, int(agg["tokens"] or 0)
        for used in conn.execute(
            "SELECT DISTINCT trace_id, prompt_name, prompt_version FROM observations "
            f"WHERE trace_id IN ({marks}) AND prompt_name IS NOT NULL "
            "ORDER BY prompt_name, prompt_version",
            ids,
        ):
            summaries[used["trace_id"]].prompts.append(
                (used["prompt_name"], used["prompt_version"])
            )
        for used in conn.execute(
            "SELECT DISTINCT trace_id, version FROM observations "
            f"WHERE trace_id IN ({marks}) AND version IS NOT NULL ORDER BY version",
            ids,
        ):
            summaries[used["trace_id"]].versions.append(used["version"])
        for score in conn.execute(
            f"SELECT * FROM scores WHERE trace_id IN ({marks}) AND data_type <> 'CORRECTION' "
            "ORDER BY timestamp_ns, id",
            ids,
        ):
            summaries[score["trace_id"]].scores.append(score_v1(score))
    return list(summaries.values()), total


def trace_filter_options(db: Database) -> dict[str, list[Any]]:
    """Choices for the traces list's filters: every prompt version, and the service versions seen
    in the latest 500 traces (bounded, so the list stays fast on a large store)."""
    conn = db.connection()
    prompts = [
        (r["name"], r["version"])
        for r in conn.execute("SELECT name, version FROM prompts ORDER BY name, version")
    ]
    versions = [
        r[0]
        for r in conn.execute(
            "SELECT DISTINCT o.version FROM observations o WHERE o.version IS NOT NULL AND "
            "o.trace_id IN (SELECT id FROM traces ORDER BY start_ns DESC LIMIT 500) "
            "UNION SELECT DISTINCT version FROM traces WHERE version IS NOT NULL ORDER BY 1"
        )
    ]
    return {"prompts": prompts, "versions": versions}


def _latency(start_ns: int | None, end_ns: int | None) -> float | None:
    if start_ns is None or end_ns is None:
        return None
    return max(0, end_ns - start_ns) / 1e9


@dataclass
class TraceDetail:
    trace: dict[str, Any]
    start_ns: int
    end_ns: int
    observations: list[sqlite3.Row]
    scores: list[dict[str, Any]]


def trace_detail(db: Database, project_id: str, trace_id: str) -> TraceDetail:
    conn = db.connection()
    row = conn.execute("SELECT * FROM traces WHERE id = ?", (trace_id,)).fetchone()
    if row is None:
        raise NotFound(
            f"Trace '{trace_id}' not found. Its spans may not be exported yet (exporters batch "
            "for a few seconds): reload this page in a moment."
        )
    observations = conn.execute(
        "SELECT * FROM observations WHERE trace_id = ? ORDER BY start_ns, id", (trace_id,)
    ).fetchall()
    scores = conn.execute(
        "SELECT * FROM scores WHERE trace_id = ? AND data_type <> 'CORRECTION' "
        "ORDER BY timestamp_ns, id",
        (trace_id,),
    ).fetchall()
    core = trace_core(row, project_id)
    core["latency"] = _latency(row["start_ns"], row["end_ns"])
    ends = [obs["end_ns"] or obs["start_ns"] for obs in observations]
    end_ns = max([row["end_ns"] or row["start_ns"], *ends])
    return TraceDetail(core, row["start_ns"], end_ns, observations, [score_v1(s) for s in scores])


def observation(db: Database, trace_id: str, observation_id: str) -> dict[str, Any]:
    """One observation as the v1 API shows it (input, output, metadata with raw attributes)."""
    row = (
        db.connection()
        .execute(
            "SELECT * FROM observations WHERE trace_id = ? AND id = ?", (trace_id, observation_id)
        )
        .fetchone()
    )
    if row is None:
        raise NotFound(f"Observation '{observation_id}' not found in trace '{trace_id}'.")
    return observation_view(row)


def observation_scores(db: Database, trace_id: str, observation_id: str) -> list[dict[str, Any]]:
    rows = db.connection().execute(
        "SELECT * FROM scores WHERE trace_id = ? AND observation_id = ? "
        "AND data_type <> 'CORRECTION' ORDER BY timestamp_ns, id",
        (trace_id, observation_id),
    )
    return [score_v1(row) for row in rows]


# --- scores ------------------------------------------------------------------------------------


def list_scores(
    db: Database, name: str, trace_id: str, page: int
) -> tuple[list[dict[str, Any]], int, list[str]]:
    """A page of scores (newest first) with their trace's name; the total; every score name."""
    clauses, params = ["s.data_type <> 'CORRECTION'"], []
    if name:
        clauses.append("s.name = ?")
        params.append(name)
    if trace_id:
        clauses.append("s.trace_id = ?")
        params.append(trace_id)
    where = f"WHERE {' AND '.join(clauses)}"
    conn = db.connection()
    total = conn.execute(f"SELECT COUNT(*) FROM scores s {where}", params).fetchone()[0]
    rows = conn.execute(
        "SELECT s.*, COALESCE(t.name, t.root_name) AS trace_name, "
        "json_extract(t.metadata, '$.claim_id') AS claim_id "
        f"FROM scores s LEFT JOIN traces t ON t.id = s.trace_id {where} "
        "ORDER BY s.timestamp_ns DESC, s.id LIMIT ? OFFSET ?",
        [*params, SCORES_PER_PAGE, (page - 1) * SCORES_PER_PAGE],
    ).fetchall()
    scores = []
    for row in rows:
        score = score_v1(row)
        score.update(
            traceName=row["trace_name"],
            claimId=row["claim_id"],
            datasetRunId=row["dataset_run_id"],
            sessionId=row["session_id"],
        )
        scores.append(score)
    names = [r[0] for r in conn.execute("SELECT DISTINCT name FROM scores ORDER BY name")]
    return scores, total, names


# --- prompts -----------------------------------------------------------------------------------


def list_prompts(db: Database) -> list[dict[str, Any]]:
    """Every prompt: type, versions, which version each label points to, last update."""
    conn = db.connection()
    prompts: dict[str, dict[str, Any]] = {}
    for row in conn.execute(
        "SELECT name, type, COUNT(*) AS n, MAX(version) AS newest, MAX(updated_ns) AS updated "
        "FROM prompts GROUP BY name ORDER BY name"
    ):
        prompts[row["name"]] = {
            "name": row["name"],
            "type": row["type"],
            "versions": row["n"],
            "newest": row["newest"],
            "updated_ns": row["updated"],
            "labels": [],
        }
    for row in conn.execute("SELECT name, label, version FROM prompt_labels ORDER BY name, label"):
        if row["name"] in prompts:
            prompts[row["name"]]["labels"].append((row["label"], row["version"]))
    return list(prompts.values())


@dataclass
class PromptDetail:
    name: str
    versions: list[dict[str, Any]]
    """Newest first: version, labels, commitMessage, created_ns."""
    shown: dict[str, Any]
    """The version shown, as the API answers it."""
    compared: dict[str, Any] | None
    """The version it is compared with, if any."""


def prompt_detail(
    db: Database, name: str, version: int | None, compare: int | None
) -> PromptDetail:
    conn = db.connection()
    rows = conn.execute(
        "SELECT version, commit_message, created_ns FROM prompts WHERE name = ? "
        "ORDER BY version DESC",
        (name,),
    ).fetchall()
    if not rows:
        raise NotFound(f"Prompt '{name}' not found.")
    labels: dict[int, list[str]] = {}
    for row in conn.execute(
        "SELECT label, version FROM prompt_labels WHERE name = ? ORDER BY label", (name,)
    ):
        labels.setdefault(row["version"], []).append(row["label"])
    versions = [
        {
            "version": row["version"],
            "labels": labels.get(row["version"], []),
            "commitMessage": row["commit_message"],
            "created_ns": row["created_ns"],
        }
        for row in rows
    ]
    if version is None:
        production = [v for v in versions if prompt_store.DEFAULT_LABEL in v["labels"]]
        version = (production or versions)[0]["version"]
    shown = prompt_store.get(db, name, version, None)
    compared = None if compare is None else prompt_store.get(db, name, compare, None)
    return PromptDetail(name, versions, shown, compared)


# --- datasets and their runs -------------------------------------------------------------------


def list_datasets(db: Database, project_id: str) -> list[dict[str, Any]]:
    conn = db.connection()
    datasets = []
    for row in conn.execute(
        "SELECT d.*, (SELECT COUNT(*) FROM dataset_items i WHERE i.dataset_id = d.id) AS items "
        "FROM datasets d ORDER BY d.created_ns DESC, d.name"
    ):
        dataset = dataset_json(row, project_id)
        dataset.update(items=row["items"], runs=len(run_store.dataset_runs(conn, row["id"])))
        datasets.append(dataset)
    return datasets


@dataclass
class RunItem:
    """One dataset item as one run ran it: the item's trace, its output and scores."""

    trace_id: str
    item_id: str | None
    output: Any
    start_ns: int
    latency: float | None
    errors: int
    scores: list[dict[str, Any]] = field(default_factory=list)
    times_run: int = 1
    """How often the run ran this item (the latest is shown)."""


@dataclass
class Run:
    id: str
    name: str
    description: str | None
    start_ns: int
    items: dict[str, RunItem] = field(default_factory=dict)
    """By dataset item id."""
    scores: list[dict[str, Any]] = field(default_factory=list)
    """Run-level scores (`datasetRunId` = the run's id)."""

    def averages(self) -> list[tuple[str, float, int]]:
        """(score name, mean, count) over the run's item scores, numeric and boolean ones."""
        values: dict[str, list[float]] = {}
        for item in self.items.values():
            for score in item.scores:
                if score["dataType"] in ("NUMERIC", "BOOLEAN") and score.get("value") is not None:
                    values.setdefault(score["name"], []).append(float(score["value"]))
        return [(name, sum(v) / len(v), len(v)) for name, v in sorted(values.items())]


@dataclass
class DatasetDetail:
    dataset: dict[str, Any]
    items: list[dict[str, Any]]
    runs: list[Run]

    def unlisted_items(self) -> list[str]:
        """Ids of items some run ran that the dataset no longer holds (deleted since)."""
        listed = {item["id"] for item in self.items}
        ran = {item_id for run in self.runs for item_id in run.items}
        return sorted(ran - listed)


def dataset_detail(db: Database, project_id: str, dataset_id: str) -> DatasetDetail:
    conn = db.connection()
    row = conn.execute("SELECT * FROM datasets WHERE id = ?", (dataset_id,)).fetchone()
    if row is None:
        raise NotFound(f"Dataset '{dataset_id}' not found.")
    items = [
        item_json(item)
        for item in conn.execute(
            "SELECT i.*, d.name AS dataset_name FROM dataset_items i "
            "JOIN datasets d ON d.id = i.dataset_id WHERE i.dataset_id = ? "
            "ORDER BY i.created_ns, i.id",
            (dataset_id,),
        )
    ]
    return DatasetDetail(dataset_json(row, project_id), items, dataset_runs(db, dataset_id))


def dataset_runs(db: Database, dataset_id: str) -> list[Run]:
    """The runs of a dataset (oldest first), each with its items' traces and scores, however
    the runs were recorded (through the API or as the SDK's experiment spans: `runs.py`)."""
    conn = db.connection()
    found = run_store.dataset_runs(conn, dataset_id)
    links = run_store.items_of(conn, found)
    runs: dict[str, Run] = {}
    by_trace: dict[str, list[RunItem]] = {}
    for stored in found:
        run = runs[stored.id] = Run(stored.id, stored.name, stored.description, stored.created_ns)
        for link in links[stored.id]:
            item = RunItem(link.trace_id, link.dataset_item_id, None, link.created_ns, None, 0)
            key = str(link.dataset_item_id)
            earlier = run.items.get(key)
            if earlier is not None:  # the item ran again in this run: show the latest, count all
                item.times_run = earlier.times_run + 1
            run.items[key] = item
            by_trace.setdefault(link.trace_id, []).append(item)
    trace_ids = list(by_trace)
    for start in range(0, len(trace_ids), 500):
        chunk = trace_ids[start : start + 500]
        marks = _marks(chunk)
        for trace in conn.execute(
            "SELECT t.id, t.start_ns, t.end_ns, COALESCE(t.output, t.root_output) AS output, "
            "(SELECT COUNT(*) FROM observations o WHERE o.trace_id = t.id AND o.level = 'ERROR') "
            f"AS errors FROM traces t WHERE t.id IN ({marks})",
            chunk,
        ):
            for item in by_trace[trace["id"]]:
                item.output = json_or_text(trace["output"])
                item.latency = _latency(trace["start_ns"], trace["end_ns"])
                item.errors = trace["errors"]
        for score in conn.execute(
            f"SELECT * FROM scores WHERE trace_id IN ({marks}) AND data_type <> 'CORRECTION' "
            "ORDER BY timestamp_ns, id",
            chunk,
        ):
            for item in by_trace[score["trace_id"]]:
                item.scores.append(score_v1(score))
    run_ids = {span_id: stored.id for stored in found for span_id in [stored.id, *stored.span_ids]}
    if run_ids:
        for score in conn.execute(
            f"SELECT * FROM scores WHERE dataset_run_id IN ({_marks(list(run_ids))}) "
            "ORDER BY timestamp_ns, id",
            list(run_ids),
        ):
            runs[run_ids[score["dataset_run_id"]]].scores.append(score_v1(score))
    return list(runs.values())


def experiment_dataset(db: Database, experiment_id: str) -> str | None:
    """The dataset an experiment (a run, by its id) ran on, if it ran on one."""
    conn = db.connection()
    stored = conn.execute(
        "SELECT dataset_id FROM dataset_runs WHERE id = ?", (experiment_id,)
    ).fetchone()
    if stored is not None:
        return str(stored[0])
    row = conn.execute(
        f"SELECT {_DATASET_ID} FROM observations o WHERE {_EXPERIMENT_ROWS} AND "
        f"{_EXPERIMENT.format('id')} = ? LIMIT 1",
        (experiment_id,),
    ).fetchone()
    return None if row is None else row[0]
