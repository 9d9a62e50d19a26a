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
from collections.abc import Iterable, Iterator
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
    "step_journal",
    "timeline_frame",
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


def _journal_entries(
    rows: Iterable[dict[str, Any]],
) -> Iterator[tuple[dict[str, Any], dict[str, Any], dict[str, Any], str | None]]:
    """Each journal row whose JSON parses, as (row, body, its command or {}, the step it
    records: the claim's step state set by a SetState, else None)."""
    for entry in rows:
        try:
            body = json.loads(entry.get("entry_json") or "{}")
        except ValueError:
            continue
        command = body.get("Command") or {}
        step = None
        if "SetState" in command and command["SetState"].get("key") == names.STEP_KEY:
            decoded = _decoded(command["SetState"].get("value"))
            step = decoded if isinstance(decoded, str) else None
        yield entry, body, command, step


def journaled_results(rows: Iterable[dict[str, Any]], model_step: str | None) -> list[dict]:
    """The results Restate recorded, in order: one dict (step, ok, at) per completed `ctx.run`.
    A "call LLM" is named after the step the workflow was in (its `step` state), or
    `model_step` (the judge's)."""
    steps: dict[int, str] = {}
    current: str | None = None
    results = []
    for entry, body, command, step in _journal_entries(rows):
        current = step or current
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


# -- the journal, one row per step -------------------------------------------------------------
STEP_COLUMNS = ["index", "step", "kind", "result", "error", "at", "ms", "attempt"]
_RESULT_CHARS = 120


WORKFLOW_RUN_STEPS = frozenset(
    (names.FETCH_PROMPTS, names.VERIFY_DOCUMENTS, names.CONVERT, names.REIMBURSE)
)
"""Steps of the claim that are one `ctx.run` of the same name (the workflow records no step
state for them: the journal entry says it)."""


def journal_step(rows: Iterable[dict[str, Any]]) -> str | None:
    """The step a running claim is in, from its journal: the later of the last step state
    recorded and the last `ctx.run` that is a step of its own (None for an empty journal)."""
    current: str | None = None
    for entry, _body, command, step in _journal_entries(rows):
        if step is not None:
            current = step
        elif "Run" in command:
            name = command["Run"].get("name") or entry.get("name")
            current = name if name in WORKFLOW_RUN_STEPS else current
    return current


def _decoded(value: Any) -> Any:
    """A journaled value (bytes as a list of ints) as JSON, or text, or None."""
    text = _bytes_text(value)
    if text is None:
        return None
    try:
        return json.loads(text)
    except ValueError:
        return text


def _summary(value: Any) -> str:
    """A short, readable digest of a journaled result."""
    if isinstance(value, dict) and isinstance(value.get("output"), list):  # a model response
        parts = []
        for item in value["output"]:
            if item.get("type") == "function_call":
                parts.append(f"calls {item.get('name')}({item.get('arguments', '')})")
            for content in item.get("content") or []:
                if content.get("text"):
                    parts.append(str(content["text"]))
        text = "model: " + "; ".join(parts)
    elif isinstance(value, dict) and {"parser", "analyst", "judge"} <= set(value):
        text = ", ".join(f"{v.get('name')} v{v.get('version')}" for v in value.values())
    elif isinstance(value, str | int | float | bool) or value is None:
        text = "" if value is None else str(value)
    else:
        text = json.dumps(value, ensure_ascii=False)
    return text if len(text) <= _RESULT_CHARS else text[: _RESULT_CHARS - 1] + "\u2026"


def _failure(result: dict[str, Any]) -> str:
    failure = result.get("Failure")
    if isinstance(failure, dict):
        return f"[{failure.get('code', '')}] {failure.get('message', '')}".strip()
    return str(failure)


def _complete(row: dict[str, Any], result: dict[str, Any], at: float | None) -> None:
    """Fill a step's row from the notification that completed it."""
    if "Success" in result:
        row["result"] = _summary(_decoded(result["Success"]))
    elif "Failure" in result:
        row["error"] = _failure(result)
    row["done_at"] = at
    if at is not None and row["at"] is not None:
        row["ms"] = round((at - row["at"]) * 1000.0, 1)


def step_journal(
    rows: Iterable[dict[str, Any]], attempt_starts: Iterable[float] = ()
) -> pd.DataFrame:
    """A journal as one row per step: the step (a `ctx.run` by its name, a model call by the
    step it was made in, a timer, the review promise, the judge send, the input and output),
    its kind,
    its result (a short digest) or error, when it was recorded, how long it took, and which
    attempt of the invocation recorded it (from the services' `attempt_starts`, epoch seconds;
    NA without them). The state updates that mark the step are folded in, not shown."""
    starts = sorted(attempt_starts)
    steps: list[dict[str, Any]] = []
    open_by_id: dict[Any, dict[str, Any]] = {}
    current = ""

    def add(index: Any, step: str, kind: str, at: float | None, **extra: Any) -> dict[str, Any]:
        row = {"index": index, "step": step, "kind": kind, "result": "", "error": "", "at": at}
        row.update(ms=None, done_at=at, **extra)
        steps.append(row)
        return row

    for entry, body, command, step in _journal_entries(rows):
        at = epoch_s(entry.get("appended_at"))
        if "SetState" in command:
            current = step or current
            continue
        if "Input" in command:
            add(entry.get("index"), "input", "input", at)
        elif "Run" in command:
            name = command["Run"].get("name") or "run"
            kind = "model call" if name == names.CALL_LLM else "step"
            label = current or "model" if kind == "model call" else name
            open_by_id[command["Run"].get("completion_id")] = add(
                entry.get("index"), label, kind, at
            )
        elif "Sleep" in command:
            name = command["Sleep"].get("name") or "sleep"
            open_by_id[command["Sleep"].get("completion_id")] = add(
                entry.get("index"), name, "timer", at
            )
        elif "GetPromise" in command:
            key = command["GetPromise"].get("key")
            row = add(entry.get("index"), f"waiting for {key!r}", "promise", at)
            open_by_id[command["GetPromise"].get("completion_id")] = row
        elif "OneWayCall" in command:
            target = (command["OneWayCall"].get("request") or command["OneWayCall"]).get(
                "invocation_target"
            ) or {}
            inner = next(iter(target.values()), {}) if isinstance(target, dict) else {}
            called = "/".join(str(inner.get(k)) for k in ("name", "key", "handler") if inner.get(k))
            label = names.EVALUATE_STEP if inner.get("name") == names.JUDGE else current
            add(entry.get("index"), label or "send", "send", at, result=called)
        elif "Output" in command:
            result = command["Output"].get("result") or {}
            row = add(entry.get("index"), "output", "output", at)
            if "Success" in result:
                outcome = _decoded(result["Success"])
                # a claim's outcome reads as its status; any other output as itself
                status = (
                    outcome.get("status")
                    if isinstance(outcome, dict) and "status" in outcome
                    else outcome
                )
                row["result"] = _summary(status)
            else:
                row["error"] = _failure(result)
        completion = (body.get("Notification") or {}).get("Completion") or {}
        for done in completion.values():
            row = open_by_id.pop(done.get("completion_id"), None)
            if row is None:
                continue
            result = done.get("result")
            if not isinstance(result, dict):
                if row["kind"] != "timer":  # a timer's completion carries no result
                    continue
                result = {}
            _complete(row, result, at)
    for row in steps:  # the attempt that recorded the result (a retry completes a step)
        done = row.pop("done_at")
        row["attempt"] = max(1, sum(t <= done for t in starts)) if starts and done else None
    frame = pd.DataFrame(steps, columns=STEP_COLUMNS)
    frame["at"] = pd.to_datetime(frame["at"], unit="s", utc=True)
    frame["ms"] = pd.to_numeric(frame["ms"]).astype("Float64")
    frame["attempt"] = pd.to_numeric(frame["attempt"]).astype("Int64")
    return frame


# -- a claim on one time axis ------------------------------------------------------------------
TIMELINE_COLUMNS = ["lane", "label", "start", "end", "status", "detail"]
LANES = ("journal", "attempts", "faults", "review", "trace", "judge")
"""The timeline's lanes, top to bottom: what Restate recorded, the workflow's attempts (one
process each, a new pid after a crash), the faults that fired, the wait for a human, the spans
and generations of the trace, and the judge's score."""


Row = tuple[str, str, float, "float | None", str, str]
"""lane, label, start, end, status, detail."""


def _journal_rows(journal: pd.DataFrame, now: float) -> list[Row]:
    rows: list[Row] = []
    for step in journal.itertuples():
        if pd.isna(step.at):
            continue
        start = step.at.timestamp()
        end = start + float(step.ms) / 1000.0 if pd.notna(step.ms) else None
        text = f"{step.kind}: {step.step}\n{step.error or step.result}"
        if pd.notna(step.attempt):
            text += f"\nrecorded by attempt {int(step.attempt)}"
        if step.kind == "promise":  # the wait for a human, open until the promise completes
            waiting = end is None
            status = "running" if waiting else "ok"
            rows.append(
                ("review", "waiting for review", start, now if waiting else end, status, text)
            )
        else:
            status = "error" if step.error else "ok"
            rows.append(("journal", str(step.step), start, end, status, text))
    return rows


def _attempt_rows(events: list[dict[str, Any]], last_recorded: float) -> list[Row]:
    """Each attempt of the workflow, in the process (pid) that ran it, until the next one (a
    failed attempt) or the last thing recorded, with the faults and failures that ended it."""
    attempts = [e for e in events if e["event"] == "attempt"]
    rows: list[Row] = []
    for i, attempt in enumerate(attempts):
        failed = i + 1 < len(attempts)
        end = attempts[i + 1]["at"] if failed else max(attempt["at"], last_recorded)
        why = [
            f"{e['step']}: {e['kind'] or e['event']} {e['detail'] or ''}".strip()
            for e in events
            if e["event"] in ("fault", "failed") and attempt["at"] <= e["at"] < end + 1e-6
        ]
        detail = "\n".join([f"attempt {i + 1} in pid {attempt['pid']}", *why])
        label = f"attempt {i + 1} (pid {attempt['pid']})"
        rows.append(("attempts", label, attempt["at"], end, "error" if failed else "ok", detail))
    return rows


def _fault_rows(events: list[dict[str, Any]]) -> list[Row]:
    return [
        (
            "faults",
            f"{e['kind'] or 'failed'} at {e['step']}",
            e["at"],
            None,
            "error",
            f"{e['event']}: {e['kind'] or 'failed'} at {e['step']!r} ({e['detail'] or ''}), "
            f"pid {e['pid']}",
        )
        for e in events
        if e["event"] in ("fault", "failed")
    ]


def _trace_rows(observations: pd.DataFrame | None) -> list[Row]:
    """The trace's own spans and generations (Restate's are in the journal and attempt lanes)."""
    if observations is None or observations.empty:
        return []
    rows: list[Row] = []
    for o in observations[~observations["restate"].astype(bool)].itertuples():
        if pd.isna(o.start):
            continue
        text = f"{o.type}: {o.name}"
        if isinstance(o.model, str):
            text += f"\nmodel {o.model}"
        if pd.notna(o.total_tokens):
            text += f", {int(o.input_tokens or 0)}\u2192{int(o.output_tokens or 0)} tokens"
        if isinstance(o.prompt_name, str) and pd.notna(o.prompt_version):
            text += f"\nprompt {o.prompt_name} v{int(o.prompt_version)}"
        if isinstance(o.status_message, str) and o.status_message:
            text += f"\n{o.status_message}"
        end = o.end.timestamp() if pd.notna(o.end) else None
        status = "error" if o.level == "ERROR" else "ok"
        rows.append(("trace", str(o.name), o.start.timestamp(), end, status, text))
    return rows


def _score_rows(scores: pd.DataFrame | None) -> list[Row]:
    if scores is None or scores.empty:
        return []
    return [
        (
            "judge",
            f"{s.name} {s.value:.2f}",
            s.timestamp.timestamp(),
            None,
            "ok",
            f"score {s.name} = {s.value:.2f}\n{s.comment or ''}",
        )
        for s in scores.itertuples()
    ]


def timeline_frame(
    journal: pd.DataFrame,
    events: list[dict[str, Any]],
    observations: pd.DataFrame | None = None,
    scores: pd.DataFrame | None = None,
    *,
    now: float | None = None,
) -> pd.DataFrame:
    """Everything known about one claim as rows on one time axis (epoch seconds): the journal's
    steps (`step_journal`), the services' records (attempts with their pids, faults, failures),
    the trace's non-Restate spans and generations, and the judge's scores. `end` is None for an
    instant; a wait still open runs to `now`."""
    now = now if now is not None else max([e["at"] for e in events], default=0.0)
    rows = _journal_rows(journal, now)
    last_recorded = max([r[2] for r in rows] + [r[3] for r in rows if r[3]], default=0.0)
    rows += _attempt_rows(events, last_recorded)
    rows += _fault_rows(events) + _trace_rows(observations) + _score_rows(scores)
    frame = pd.DataFrame(rows, columns=TIMELINE_COLUMNS)
    frame["lane"] = pd.Categorical(frame["lane"], categories=LANES, ordered=True)
    return frame.sort_values(["lane", "start"], kind="stable").reset_index(drop=True)
