"""Reading traces and judge scores back from Langfuse, as DataFrames.

    import workbench as wb
    obs = wb.wait_for_trace(claim_id="claim-001")    # the claim's trace, once it holds a root
                                                     # and a generation
    wb.waterfall(obs)                                # the picture of it
    wb.wait_for_scores(obs.trace_id.unique())
    df = wb.scores()                                 # `quality`, joined with prompt and version

One claim = one trace: Restate's own spans (`ingress ClaimWorkflow/run`, `invocation-*`), the
agents' spans and generations (model, tokens, the prompt version that produced them), a span per
durable step, and the judge's `quality` score. Observations are read with the SDK's
`api.observations.get_many` (Langfuse's real-time read path), scores with `api.scores.get_many`
(v3); traces by claim id with the v1 traces API, which the SDK has no call for.
"""

from __future__ import annotations

import json
import re
import time
from collections.abc import Callable, Iterable, Iterator
from concurrent.futures import ThreadPoolExecutor
from contextlib import contextmanager
from typing import Any

import pandas as pd

from . import _langfuse_client as lf
from ._langfuse_client import LangfuseError

__all__ = [
    "LangfuseError",
    "ScoresTimeoutError",
    "TraceNotFoundError",
    "TraceTimeoutError",
    "scores",
    "trace_id_for",
    "traces",
    "wait_for_scores",
    "wait_for_trace",
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
SCORE_COLUMNS = [
    "id",
    "trace_id",
    "observation_id",
    "name",
    "value",
    "comment",
    "timestamp",
    "claim_id",
    "prompt_name",
    "prompt_version",
    "prompt_label",
    "service_version",
    "prompts",
    "source",
    "environment",
    "metadata",
]
OBSERVATION_FIELDS = "core,basic,time,model,usage,prompt,metadata"
ANALYST_PROMPT = "claim-analyst"
CLAIM_WORKFLOW = "ClaimWorkflow"
_TRACE_ID = re.compile(r"^[0-9a-f]{32}$")
_RESTATE_NAME = re.compile(r"^(ingress |invocation-)")
_OBSERVATION_FILTERS = {
    "name": "name",
    "type": "type",
    "level": "level",
    "version": "version",
    "environment": "environment",
    "user_id": "user_id",
    "session_id": "session_id",
    "parent": "parent_observation_id",
    "is_root": "is_root_observation",
    "since": "from_start_time",
    "until": "to_start_time",
    "filter": "filter",
}
_SCORE_FILTERS = {
    "source": "source",
    "data_type": "data_type",
    "environment": "environment",
    "value_min": "value_min",
    "value_max": "value_max",
    "observation_id": "observation_id",
    "session_id": "session_id",
    "since": "from_timestamp",
    "until": "to_timestamp",
}
_PAGE = 500
_SCORE_PAGE = 100
_TRACE_CHUNK = 40


class TraceNotFoundError(LookupError):
    """No trace for that claim (or trace id) yet; the message says what was tried."""


class TraceTimeoutError(TimeoutError):
    """A trace did not reach the expected state in time; the message says what it held."""


class ScoresTimeoutError(TimeoutError):
    """Scores did not land in time; the message names the traces still without one."""


@contextmanager
def _refused(what: str) -> Iterator[None]:
    """A query Langfuse refused (a bad filter value): its message, as a LangfuseError."""
    from langfuse.api.core import ApiError

    try:
        yield
    except ApiError as e:
        raise LangfuseError(
            f"{what}: Langfuse refused the query (HTTP {e.status_code}): {lf.describe_error(e)}"
        ) from None


# --- traces --------------------------------------------------------------------------------------


def _check_trace_id(trace_id: str) -> str:
    normalized = str(trace_id).strip().lower().replace("-", "")
    if not _TRACE_ID.match(normalized):
        raise ValueError(
            f"Trace id {trace_id!r} is not a W3C trace id (32 hex characters, such as a claim's "
            "`outcome.trace_id`). For a claim, pass claim_id= instead."
        )
    return normalized


def _trace_id_from_langfuse(claim_id: str) -> str | None:
    """The oldest trace whose metadata names the claim (the services set
    `langfuse.trace.metadata.claim_id`); the judge's own trace, if any, comes later."""
    condition = {
        "type": "stringObject",
        "column": "metadata",
        "key": "claim_id",
        "operator": "=",
        "value": claim_id,
    }
    answer = lf.get_json(
        "/api/public/traces",
        f"Looking up the trace of claim {claim_id!r}",
        filter=json.dumps([condition]),
        orderBy="timestamp.asc",
        fields="core",
        limit=5,
    )
    data = answer.get("data") or []
    return data[0]["id"] if data else None


def _trace_id_from_restate(claim_id: str) -> str | None:
    """The trace id Restate gave the claim's workflow invocation (the services' spans join it)."""
    from ._aio import run_sync
    from .restate_admin import RestateAdmin, _literal
    from .session import endpoints

    rows = run_sync(
        RestateAdmin(endpoints().admin_url, timeout_s=5.0).aquery(
            "SELECT trace_id FROM sys_invocation "
            f"WHERE target_service_name = {_literal(CLAIM_WORKFLOW)} "
            f"AND target_service_key = {_literal(claim_id)} AND target_handler_name = 'run' "
            "ORDER BY created_at DESC LIMIT 1"
        )
    )
    value = rows[0].get("trace_id") if rows else None
    if not value:
        return None
    try:
        return _check_trace_id(value)
    except ValueError:
        return None


def trace_id_for(claim_id: str) -> str:
    """The trace of a claim: from Langfuse (trace metadata `claim_id`), else from Restate (the
    workflow invocation's trace id, known from the moment the claim was submitted)."""
    from .claims import _check_id

    _check_id(claim_id)
    found = _trace_id_from_langfuse(claim_id)
    if found:
        return found
    tried = [f"Langfuse at {lf.url()} has no trace with metadata claim_id={claim_id!r}"]
    try:
        found = _trace_id_from_restate(claim_id)
    except Exception as e:  # Restate down or not configured: say so, keep the Langfuse reason
        tried.append(f"Restate could not be asked ({type(e).__name__}: {e})")
    else:
        if found:
            return found
        tried.append(f"Restate knows no {CLAIM_WORKFLOW} run for {claim_id!r}")
    raise TraceNotFoundError(
        f"No trace found for claim {claim_id!r}: {'; '.join(tried)}. Submit the claim first "
        "(workbench.submit_claim), or wait for its trace with "
        f"workbench.wait_for_trace(claim_id={claim_id!r})."
    )


def _observation_query(filters: dict[str, Any]) -> dict[str, Any]:
    query: dict[str, Any] = {}
    for key, value in filters.items():
        if key not in _OBSERVATION_FILTERS:
            raise TypeError(
                f"traces() got an unknown filter {key!r}. Use claim_id=, trace_id= or any of: "
                f"{', '.join(sorted(_OBSERVATION_FILTERS))}."
            )
        if value is None:
            continue
        if key in ("since", "until"):
            value = pd.Timestamp(value).to_pydatetime()
        if key == "filter" and not isinstance(value, str):
            value = json.dumps(value)
        query[_OBSERVATION_FILTERS[key]] = value
    return query


def _fetch_observations(
    query: dict[str, Any],
    *,
    io: bool = False,
    limit: int | None = None,
    fields: str = OBSERVATION_FIELDS,
) -> list[Any]:
    fields = fields + (",io" if io else "")
    out: list[Any] = []
    cursor: str | None = None
    what = "Reading observations" + (
        f" of trace {query['trace_id']}" if "trace_id" in query else ""
    )
    while True:
        page = _PAGE if limit is None else min(_PAGE, limit - len(out))
        with lf.guard(what), _refused(what):
            answer = lf.sdk().api.observations.get_many(
                fields=fields, limit=page, cursor=cursor, **query
            )
        out.extend(answer.data)
        cursor = getattr(answer.meta, "cursor", None)
        if not cursor or not answer.data or (limit is not None and len(out) >= limit):
            return out


def _usage(details: dict[str, Any] | None, *keys: str) -> float | None:
    for key in keys:
        value = (details or {}).get(key)
        if value is not None:
            return value
    return None


def is_restate_span(name: str | None, metadata: dict[str, Any] | None) -> bool:
    """Spans that Restate's server exported itself (resource `service.name=Restate`)."""
    resource = (metadata or {}).get("resourceAttributes") or {}
    service = resource.get("service.name") if isinstance(resource, dict) else None
    if isinstance(service, str):
        return service.lower() == "restate"
    return bool(name and _RESTATE_NAME.match(name))


def _row(obs: Any, io: bool = False) -> dict[str, Any]:
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
    """Observations (the SDK's ObservationV2 objects) as the frame `traces()` returns."""
    rows = [_row(obs, io) for obs in items]
    extra = ["input", "output"] if io else []
    frame = pd.DataFrame(
        rows,
        columns=[
            c
            for c in OBSERVATION_COLUMNS
            if c not in ("duration_ms", "attempt", "attempts", "retried")
        ]
        + extra,
    )
    frame["start"] = pd.to_datetime(frame["start"], utc=True)
    frame["end"] = pd.to_datetime(frame["end"], utc=True)
    frame["duration_ms"] = (frame["end"] - frame["start"]).dt.total_seconds() * 1000.0
    for column in ("input_tokens", "output_tokens", "total_tokens", "prompt_version"):
        frame[column] = pd.to_numeric(frame[column]).astype("Int64")
    frame = frame.sort_values(["trace_id", "start", "end"], kind="stable").reset_index(drop=True)
    frame = mark_retries(frame)
    return frame[OBSERVATION_COLUMNS + extra]


def traces(
    claim_id: str | None = None,
    trace_id: str | None = None,
    *,
    io: bool = False,
    limit: int | None = None,
    **filters: Any,
) -> pd.DataFrame:
    """Observations as a DataFrame, one row per span/generation, in start order: of one claim's
    trace (`claim_id=`), of a trace (`trace_id=`), or of every trace matching `filters` (name,
    type, level, version, environment, user_id, session_id, parent, is_root, since, until, or a
    Langfuse `filter` list). `io=True` adds the raw input and output."""
    if claim_id is not None and trace_id is not None:
        raise ValueError("Pass claim_id= or trace_id=, not both.")
    query = _observation_query(filters)
    if claim_id is not None:
        trace_id = trace_id_for(claim_id)
    if trace_id is not None:
        query["trace_id"] = _check_trace_id(trace_id)
    return observations_frame(_fetch_observations(query, io=io, limit=limit), io=io)


def _default_expectation(frame: pd.DataFrame) -> tuple[bool, str]:
    has_root = bool(frame["is_root"].any())
    has_generation = bool((frame["type"] == "GENERATION").any())
    missing = [
        w for w, ok in (("a root span", has_root), ("a generation", has_generation)) if not ok
    ]
    reason = ("missing " + " and ".join(missing)) if missing else ""
    orphans = int((frame["parent"].notna() & ~frame["parent"].isin(frame["id"])).sum())
    if not has_root and orphans:
        reason += (
            f" (the parent of {orphans} span(s) is not in the trace yet: Restate exports its "
            "own spans when the invocation ends; pass expect=[span names] to wait for others)"
        )
    return not missing, reason


def _expectation(
    expect: Iterable[str] | Callable[[pd.DataFrame], bool] | None,
) -> Callable[[pd.DataFrame], tuple[bool, str]]:
    if expect is None:
        return _default_expectation
    if callable(expect):
        check = expect

        def by_callable(frame: pd.DataFrame) -> tuple[bool, str]:
            ok = bool(check(frame))
            return ok, "" if ok else f"{getattr(check, '__name__', 'expect')}(...) is still false"

        return by_callable
    if isinstance(expect, str):
        expect = [expect]
    wanted = [*dict.fromkeys(expect)]

    def by_names(frame: pd.DataFrame) -> tuple[bool, str]:
        present = set(frame["name"].dropna())
        missing = [n for n in wanted if n not in present]
        return not missing, f"missing spans {missing}" if missing else ""

    return by_names


def _describe(frame: pd.DataFrame) -> str:
    if frame.empty:
        return "no observations yet"
    names = frame["name"].fillna("?").value_counts(sort=False)
    listed = ", ".join(f"{n} x{c}" if c > 1 else str(n) for n, c in names.items())
    return f"{len(frame)} observations ({listed})"


def wait_for_trace(
    ref: str | None = None,
    *,
    claim_id: str | None = None,
    trace_id: str | None = None,
    timeout_s: float = 10.0,
    poll_interval_s: float = 0.25,
    expect: Iterable[str] | Callable[[pd.DataFrame], bool] | None = None,
) -> pd.DataFrame:
    """Poll until a trace holds what is expected, then return its observations (as `traces()`).

    `ref` is a trace id (32 hex) or a claim id. `expect` is a list of span names that must all be
    present, or a function of the observations frame; by default a root span and at least one
    generation. Raises TraceTimeoutError after `timeout_s` with what the trace held so far."""
    if ref is not None:
        if claim_id is not None or trace_id is not None:
            raise ValueError("Pass the trace or claim once: positionally, or as a keyword.")
        if _TRACE_ID.match(str(ref).strip().lower().replace("-", "")):
            trace_id = ref
        else:
            claim_id = ref
    if (claim_id is None) == (trace_id is None):
        raise ValueError("wait_for_trace needs a claim_id= or a trace_id= (exactly one).")
    if timeout_s <= 0 or poll_interval_s <= 0:
        raise ValueError(
            f"timeout_s and poll_interval_s must be positive; got {timeout_s}, {poll_interval_s}."
        )
    check = _expectation(expect)
    tid = _check_trace_id(trace_id) if trace_id is not None else None
    deadline = time.monotonic() + timeout_s
    frame = observations_frame([])
    lookup_error = ""
    reason = "no observations yet"
    while True:
        if tid is None:
            try:
                tid = trace_id_for(claim_id)  # type: ignore[arg-type]
            except TraceNotFoundError as e:
                lookup_error = str(e)
        if tid is not None:
            frame = observations_frame(_fetch_observations({"trace_id": tid}))
            ok, reason = check(frame)
            if ok:
                return frame
        if time.monotonic() >= deadline:
            break
        time.sleep(min(poll_interval_s, max(0.0, deadline - time.monotonic())))
    if tid is None:
        raise TraceTimeoutError(
            f"No trace for claim {claim_id!r} after {timeout_s:g} s. {lookup_error}"
        )
    what = f"claim {claim_id!r} (trace {tid})" if claim_id else f"trace {tid}"
    raise TraceTimeoutError(
        f"The {what} is not complete after {timeout_s:g} s: {reason}; it holds "
        f"{_describe(frame)}. A trace is readable ~1-2 s after the claim ended: is the claim "
        "done (workbench.claim(id)), and is tracing on (LANGFUSE_* keys for the services)?"
    )


# --- scores --------------------------------------------------------------------------------------


def _score_query(filters: dict[str, Any]) -> dict[str, Any]:
    query: dict[str, Any] = {}
    for key, value in filters.items():
        if key not in _SCORE_FILTERS:
            raise TypeError(
                f"scores() got an unknown filter {key!r}. Use name=, trace_ids=, claim_id= or "
                f"any of: {', '.join(sorted(_SCORE_FILTERS))}."
            )
        if value is None:
            continue
        if key in ("since", "until"):
            value = pd.Timestamp(value).to_pydatetime()
        query[_SCORE_FILTERS[key]] = value
    if ("value_min" in query or "value_max" in query) and "data_type" not in query:
        query["data_type"] = "NUMERIC"  # Langfuse wants it with a value range
    return query


def _fetch_scores(query: dict[str, Any]) -> list[Any]:
    out: list[Any] = []
    cursor: str | None = None
    while True:
        with lf.guard("Reading scores"), _refused("Reading scores"):
            answer = lf.sdk().api.scores.get_many(
                fields="details,subject", limit=_SCORE_PAGE, cursor=cursor, **query
            )
        out.extend(answer.data)
        cursor = getattr(answer.meta, "cursor", None)
        if not cursor or not answer.data:
            return out


def _score_trace_id(score: Any) -> str | None:
    subject = getattr(score, "subject", None)
    if subject is None:
        return getattr(score, "trace_id", None)
    if getattr(subject, "kind", None) == "trace":
        return subject.id
    return getattr(subject, "trace_id", None)


def _score_row(score: Any) -> dict[str, Any]:
    subject = getattr(score, "subject", None)
    metadata = score.metadata if isinstance(score.metadata, dict) else {}
    return {
        "id": score.id,
        "trace_id": _score_trace_id(score),
        "observation_id": subject.id if getattr(subject, "kind", None) == "observation" else None,
        "name": score.name,
        "value": score.value,
        "comment": score.comment,
        "timestamp": score.timestamp,
        "source": score.source,
        "environment": score.environment,
        "metadata": metadata,
    }


def _trace_facts(trace_id: str) -> dict[str, Any]:
    """What a trace says about the run that produced it: the prompt versions its generations
    used and the service version of its (non-Restate) observations."""
    items = _fetch_observations({"trace_id": trace_id}, fields="core,basic,prompt")
    prompts: dict[str, int] = {}
    versions: list[str] = []
    generation_versions: list[str] = []
    for obs in items:
        if obs.prompt_name and obs.prompt_version is not None:
            prompts.setdefault(obs.prompt_name, int(obs.prompt_version))
        if obs.version and not is_restate_span(obs.name, obs.metadata):
            versions.append(obs.version)
            if obs.type == "GENERATION":
                generation_versions.append(obs.version)
    chosen = generation_versions or versions
    service_version = max(set(chosen), key=chosen.count) if chosen else None
    return {"prompts": prompts, "service_version": service_version}


def _trace_label(trace_id: str) -> str | None:
    trace = lf.get_json(
        f"/api/public/traces/{trace_id}",
        f"Reading trace {trace_id}",
        missing_ok=True,
        fields="core,io",
    )
    metadata = (trace or {}).get("metadata") or {}
    label = metadata.get("prompt_label") if isinstance(metadata, dict) else None
    return label if isinstance(label, str) else None


def _version_key(prompt: str) -> str:
    """The judge's metadata key for a prompt's version: claim-analyst -> analyst_prompt_version."""
    return f"{prompt.removeprefix('claim-')}_prompt_version"


def _int_or_none(value: Any) -> int | None:
    try:
        return int(value) if value is not None and value != "" else None
    except (TypeError, ValueError):
        return None


def _join(frame: pd.DataFrame, prompt: str, workers: int = 8) -> pd.DataFrame:
    trace_ids = sorted({t for t in frame["trace_id"].dropna()})
    with ThreadPoolExecutor(max_workers=min(workers, max(1, len(trace_ids)))) as pool:
        facts = dict(zip(trace_ids, pool.map(_trace_facts, trace_ids), strict=True))
    need_label = {
        row.trace_id
        for row in frame.itertuples()
        if row.trace_id and not isinstance(row.metadata.get("prompt_label"), str)
    }
    with ThreadPoolExecutor(max_workers=min(workers, max(1, len(need_label)))) as pool:
        labels = dict(zip(need_label, pool.map(_trace_label, need_label), strict=True))
    rows = []
    for row in frame.itertuples():
        meta: dict[str, Any] = row.metadata
        fact = facts.get(row.trace_id, {"prompts": {}, "service_version": None})
        version = _int_or_none(meta.get(_version_key(prompt)))
        if version is None:
            version = fact["prompts"].get(prompt)
        label = meta.get("prompt_label")
        rows.append(
            {
                "claim_id": meta.get("claim_id"),
                "prompt_name": prompt,
                "prompt_version": version,
                "prompt_label": label if isinstance(label, str) else labels.get(row.trace_id),
                "service_version": meta.get("service_version") or fact["service_version"],
                "prompts": ", ".join(f"{n} v{v}" for n, v in sorted(fact["prompts"].items())),
            }
        )
    joined = pd.DataFrame(rows, index=frame.index)
    return pd.concat([frame, joined], axis=1)


def scores(
    name: str | None = "quality",
    *,
    trace_ids: Iterable[str] | str | None = None,
    claim_id: str | None = None,
    prompt: str = ANALYST_PROMPT,
    join: bool = True,
    **filters: Any,
) -> pd.DataFrame:
    """Scores (by default the judge's `quality`) as a DataFrame, newest last, joined per trace
    with the version of `prompt` that produced the decision (score metadata first, else the
    trace's generations), the prompt label and the service version.

    Narrow with `trace_ids=`, `claim_id=`, or filters: source, data_type, environment,
    value_min, value_max, observation_id, session_id, since, until."""
    query = _score_query(filters)
    if name is not None:
        query["name"] = name
    ids: list[str] | None = None
    if isinstance(trace_ids, str):
        trace_ids = [trace_ids]
    if trace_ids is not None:
        ids = [_check_trace_id(t) for t in trace_ids]
    if claim_id is not None:
        ids = [*(ids or []), trace_id_for(claim_id)]
    found: list[Any] = []
    if ids is None:
        found = _fetch_scores(query)
    else:
        unique = [*dict.fromkeys(ids)]
        for start in range(0, len(unique), _TRACE_CHUNK):
            chunk = unique[start : start + _TRACE_CHUNK]
            found.extend(_fetch_scores({**query, "trace_id": ",".join(chunk)}))
    frame = pd.DataFrame([_score_row(s) for s in found])
    if frame.empty:
        return pd.DataFrame(columns=SCORE_COLUMNS).astype(
            {"value": "float64", "prompt_version": "Int64"}
        )
    frame["timestamp"] = pd.to_datetime(frame["timestamp"], utc=True)
    if join:
        frame = _join(frame, prompt)
    else:
        meta = frame["metadata"]
        frame["claim_id"] = meta.map(lambda m: m.get("claim_id"))
        frame["prompt_name"] = prompt
        frame["prompt_version"] = meta.map(lambda m: _int_or_none(m.get(_version_key(prompt))))
        frame["prompt_label"] = meta.map(lambda m: m.get("prompt_label"))
        frame["service_version"] = meta.map(lambda m: m.get("service_version"))
        frame["prompts"] = None
    frame["prompt_version"] = pd.to_numeric(frame["prompt_version"]).astype("Int64")
    frame = frame.sort_values("timestamp", kind="stable").reset_index(drop=True)
    return frame[SCORE_COLUMNS]


def wait_for_scores(
    trace_ids: Iterable[str] | str,
    *,
    name: str = "quality",
    timeout_s: float = 30.0,
    poll_interval_s: float = 0.25,
    join: bool = True,
) -> pd.DataFrame:
    """Poll until every trace in `trace_ids` has a score `name`, then return them (as
    `scores()`). Raises ScoresTimeoutError naming the traces still without one."""
    if isinstance(trace_ids, str):
        trace_ids = [trace_ids]
    wanted = [*dict.fromkeys(_check_trace_id(t) for t in trace_ids if t)]
    if not wanted:
        raise ValueError(
            "wait_for_scores needs at least one trace id (a claim's outcome.trace_id); got none."
        )
    if timeout_s <= 0 or poll_interval_s <= 0:
        raise ValueError(
            f"timeout_s and poll_interval_s must be positive; got {timeout_s}, {poll_interval_s}."
        )
    deadline = time.monotonic() + timeout_s
    while True:
        found = scores(name, trace_ids=wanted, join=False)
        missing = [t for t in wanted if t not in set(found["trace_id"])]
        if not missing:
            return scores(name, trace_ids=wanted, join=True) if join else found
        if time.monotonic() >= deadline:
            break
        time.sleep(min(poll_interval_s, max(0.0, deadline - time.monotonic())))
    shown = ", ".join(missing[:5]) + (f" and {len(missing) - 5} more" if len(missing) > 5 else "")
    raise ScoresTimeoutError(
        f"{len(missing)} of {len(wanted)} traces have no {name!r} score after {timeout_s:g} s: "
        f"{shown}. The judge scores a claim after it ended: check the claims finished "
        "(workbench.claim(id)) and the judge's journal in the Restate UI."
    )
