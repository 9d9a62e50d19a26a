"""DataFrames built from what the clients return: pure functions, no I/O.

- `Table`: the DataFrame the helpers return: all of pandas, shown in a notebook as a table that
  reads well (`workbench.widgets.tables.frame_html`); `as_table(frame)` makes one;
- `observations_frame(items)`: Langfuse observations, one row each, with retries marked;
- `score_rows(items)`: Langfuse scores;
- `journal_frame(rows)`: a Restate journal (`sys_journal` rows), one row per entry, decoded;
- `journaled_results(rows)`: the results Restate recorded for each `ctx.run`, in order.

The helpers (`wb.traces`, `wb.scores`, `Claim.journal`) and the charts share them.
"""

from __future__ import annotations

import json
import re
from collections.abc import Iterable
from datetime import datetime
from typing import Any

import pandas as pd

from services import names

__all__ = [
    "JOURNAL_COLUMNS",
    "OBSERVATION_COLUMNS",
    "SCORE_BASE_COLUMNS",
    "Table",
    "as_table",
    "epoch_s",
    "is_restate_span",
    "journal_frame",
    "journaled_results",
    "mark_retries",
    "observations_frame",
    "score_rows",
]

OBSERVATION_COLUMNS = [
    "id",
    "trace_id",
    "parent",
    "name",
    "type",
    "start",
    "end",
    "duration_ms",
    "level",
    "status_message",
    "model",
    "input_tokens",
    "output_tokens",
    "total_tokens",
    "prompt_name",
    "prompt_version",
    "version",
    "environment",
    "is_root",
    "restate",
    "attempt",
    "attempts",
    "retried",
    "metadata",
]
_RESTATE_NAME = re.compile(r"^(ingress |invocation-)")


class Table(pd.DataFrame):
    """A DataFrame as the helpers return it: everything pandas does, and a notebook display
    that reads well: missing values blank (no NaN, `<NA>` or None), text in full and
    left-aligned, numbers right-aligned, no 0..n-1 index (`frame_html`). Frames made from it
    (`query`, `head`, `set_index`, `groupby(...).agg`, `pd.concat`) are Tables too."""

    @property
    def _constructor(self) -> type[Table]:
        return Table

    def _repr_html_(self) -> str | None:
        from .widgets.tables import frame_html

        return frame_html(self)


def as_table(frame: pd.DataFrame) -> Table:
    """`frame` as a Table (its data shared, its `attrs` kept)."""
    if isinstance(frame, Table):
        return frame
    table = Table(frame)
    table.attrs = dict(frame.attrs)
    return table


# -- observations -----------------------------------------------------------------------------
def is_restate_span(name: str | None, metadata: dict[str, Any] | None) -> bool:
    """Spans that Restate's server exported itself (resource `service.name=Restate`)."""
    resource = (metadata or {}).get("resourceAttributes") or {}
    service = resource.get("service.name") if isinstance(resource, dict) else None
    if isinstance(service, str):
        return service.lower() == "restate"
    return bool(name and _RESTATE_NAME.match(name))


def _usage(details: dict[str, Any] | None, *keys: str) -> float | None:
    for key in keys:
        value = (details or {}).get(key)
        if value is not None:
            return value
    return None


def _observation_row(obs: Any, io: bool = False) -> dict[str, Any]:
    usage = obs.usage_details or {}
    inputs = _usage(usage, "input", "prompt_tokens", "input_tokens", "prompt")
    outputs = _usage(usage, "output", "completion_tokens", "output_tokens", "completion")
    total = _usage(usage, "total", "total_tokens")
    if total is None and (inputs is not None or outputs is not None):
        total = (inputs or 0) + (outputs or 0)
    return {
        "id": obs.id,
        "trace_id": obs.trace_id,
        "parent": obs.parent_observation_id,
        "name": obs.name,
        "type": obs.type,
        "start": obs.start_time,
        "end": obs.end_time,
        "level": obs.level or "DEFAULT",
        "status_message": obs.status_message,
        "model": obs.model,
        "input_tokens": inputs,
        "output_tokens": outputs,
        "total_tokens": total,
        "prompt_name": obs.prompt_name,
        "prompt_version": obs.prompt_version,
        "version": obs.version,
        "environment": obs.environment,
        "is_root": bool(obs.is_root_observation) or obs.parent_observation_id is None,
        "restate": is_restate_span(obs.name, obs.metadata),
        "metadata": obs.metadata or {},
        **({"input": obs.input, "output": obs.output} if io else {}),
    }


def mark_retries(frame: pd.DataFrame) -> pd.DataFrame:
    """`attempt` k of `attempts` per name in a trace (start order); `retried` when a name came
    again after a failed attempt (level ERROR), or a Restate span repeats (a new invocation
    attempt after a crash). Agents call the model many times by design: repeats alone are no
    retry."""
    frame = frame.copy()
    if frame.empty:
        for column, dtype in (("attempt", "int64"), ("attempts", "int64"), ("retried", "bool")):
            frame[column] = pd.Series(dtype=dtype)
        return frame
    keys = [frame["trace_id"].fillna(""), frame["name"].fillna("")]
    ordered = frame.sort_values("start", kind="stable")
    frame["attempt"] = ordered.groupby(keys, sort=False).cumcount().reindex(frame.index) + 1
    frame["attempts"] = frame.groupby(keys, sort=False)["id"].transform("count")
    failed_before_last = (frame["level"] == "ERROR") & (frame["attempt"] < frame["attempts"])
    group_failed = failed_before_last.groupby(keys, sort=False).transform("any")
    frame["retried"] = (frame["attempts"] > 1) & (group_failed | frame["restate"])
    return frame


def observations_frame(items: Iterable[Any], io: bool = False) -> pd.DataFrame:
    """Observations (the SDK's v2 objects) as one DataFrame, in start order, retries marked."""
    rows = [_observation_row(obs, io) for obs in items]
    extra = ["input", "output"] if io else []
    derived = ("duration_ms", "attempt", "attempts", "retried")
    frame = pd.DataFrame(rows, columns=[c for c in OBSERVATION_COLUMNS if c not in derived] + extra)
    frame["start"] = pd.to_datetime(frame["start"], utc=True)
    frame["end"] = pd.to_datetime(frame["end"], utc=True)
    frame["duration_ms"] = (frame["end"] - frame["start"]).dt.total_seconds() * 1000.0
    for column in ("input_tokens", "output_tokens", "total_tokens", "prompt_version"):
        frame[column] = pd.to_numeric(frame[column]).astype("Int64")
    frame = frame.sort_values(["trace_id", "start", "end"], kind="stable").reset_index(drop=True)
    frame = mark_retries(frame)
    return as_table(frame[OBSERVATION_COLUMNS + extra])


# -- scores -----------------------------------------------------------------------------------
SCORE_BASE_COLUMNS = [
    "id",
    "trace_id",
    "observation_id",
    "name",
    "value",
    "comment",
    "timestamp",
    "source",
    "environment",
    "metadata",
]


def _score_trace_id(score: Any) -> str | None:
    subject = getattr(score, "subject", None)
    if subject is None:
        return getattr(score, "trace_id", None)
    if getattr(subject, "kind", None) == "trace":
        return subject.id
    return getattr(subject, "trace_id", None)


def score_rows(items: Iterable[Any]) -> pd.DataFrame:
    """Scores (the SDK's v3 objects), one row each, timestamps as UTC datetimes."""
    rows = []
    for score in items:
        subject = getattr(score, "subject", None)
        rows.append(
            {
                "id": score.id,
                "trace_id": _score_trace_id(score),
                "observation_id": subject.id
                if getattr(subject, "kind", None) == "observation"
                else None,
                "name": score.name,
                "value": score.value,
                "comment": score.comment,
                "timestamp": score.timestamp,
                "source": score.source,
                "environment": score.environment,
                "metadata": score.metadata if isinstance(score.metadata, dict) else {},
            }
        )
    frame = pd.DataFrame(rows, columns=SCORE_BASE_COLUMNS)
    frame["timestamp"] = pd.to_datetime(frame["timestamp"], utc=True)
    frame["value"] = pd.to_numeric(frame["value"], errors="coerce").astype("float64")
    return as_table(frame)


# -- journals ---------------------------------------------------------------------------------
JOURNAL_COLUMNS = ["index", "entry_type", "name", "detail", "appended_at"]


def epoch_s(value: Any) -> float | None:
    """Seconds since the epoch from Restate's timestamps (ISO text or epoch milliseconds)."""
    if value is None:
        return None
    if isinstance(value, int | float):
        return value / 1000 if value > 1e11 else float(value)
    try:
        return datetime.fromisoformat(str(value).replace("Z", "+00:00")).timestamp()
    except ValueError:
        return None


def _detail(lite_json: str | None) -> str:
    """A readable digest of an entry's `entry_lite_json`."""
    if not lite_json:
        return ""
    try:
        entry = json.loads(lite_json)
    except ValueError:
        return ""
    kind, body = next(iter(entry.items()))
    if kind == "Notification":
        result = body.get("result")
        return f"result: {result}" if isinstance(result, str) else ""
    command, fields = next(iter(body.items()))
    if not isinstance(fields, dict):
        return ""
    if "key" in fields:
        what = "promise" if "Promise" in command else "state"
        return f"{what} {fields['key']!r}"
    target = fields.get("invocation_target")
    if isinstance(target, dict):
        inner = next(iter(target.values()))
        if isinstance(inner, dict):
            return "/".join(
                str(inner.get(k, "")) for k in ("name", "key", "handler") if inner.get(k)
            )
    if "result" in fields:
        return f"result: {fields['result']}"
    return ""


def journal_frame(rows: Iterable[dict[str, Any]]) -> pd.DataFrame:
    """A journal (`sys_journal` rows) as one row per entry: its type, the step name, and a short
    detail (the state key set, the call made, the result of a completion)."""
    out = [
        {
            "index": row.get("index"),
            "entry_type": row.get("entry_type"),
            "name": row.get("name"),
            "detail": _detail(row.get("entry_lite_json")),
            "appended_at": row.get("appended_at"),
        }
        for row in rows
    ]
    return as_table(pd.DataFrame(out, columns=JOURNAL_COLUMNS))


def _bytes_text(value: Any) -> str | None:
    if isinstance(value, list):
        try:
            return bytes(value).decode()
        except (ValueError, TypeError):
            return None
    return None


def journaled_results(rows: Iterable[dict[str, Any]], model_step: str | None) -> list[dict]:
    """The results Restate recorded, in order: one dict (step, ok, at) per completed `ctx.run`.
    A "call LLM" is named after the step the workflow was in (its `step` state), or
    `model_step` (the judge's)."""
    steps: dict[int, str] = {}
    current: str | None = None
    results = []
    for entry in rows:
        try:
            body = json.loads(entry.get("entry_json") or "{}")
        except ValueError:
            continue
        command = body.get("Command") or {}
        if "SetState" in command and command["SetState"].get("key") == names.STEP_KEY:
            text = _bytes_text(command["SetState"].get("value"))
            current = json.loads(text) if text else current
        if "Run" in command:
            name = command["Run"].get("name") or entry.get("name") or "run"
            if name == names.CALL_LLM:
                name = model_step or current or "model"
            steps[command["Run"].get("completion_id")] = name
        run = ((body.get("Notification") or {}).get("Completion") or {}).get("Run")
        if run is not None:
            result = run.get("result") or {}
            results.append(
                {
                    "step": steps.get(run.get("completion_id"), "run"),
                    "ok": "Success" in result,
                    "at": epoch_s(entry.get("appended_at")),
                }
            )
    return results
