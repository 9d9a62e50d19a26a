"""Traces: a claim's spans and generations, read back from Langfuse as DataFrames.

    import workbench as wb
    spans = wb.traces.wait(claim)      # once the trace is complete (root, generations, parents)
    wb.traces.waterfall(claim)         # the picture of it
    wb.traces.get(batch, type="GENERATION")   # the generations of many claims

One claim = one trace: Restate's own spans (`ingress ClaimWorkflow/run`, `invocation-*`), the
agents' spans and generations (model, tokens, the prompt version that produced them), a span per
durable step, and the judge's `quality` score. Observations are read with Langfuse's v2
observations API; a claim's trace id comes from its outcome, else from Langfuse (trace metadata
`claim_id`), else from Restate (the workflow invocation's trace id).
"""

from __future__ import annotations

import json
import re
import time
from collections.abc import Callable, Iterable
from typing import TYPE_CHECKING, Any

import pandas as pd

from services import names

from ._aio import run_sync
from .claims import Claim, ClaimsLike, claim_ids
from .errors import TraceNotFoundError, TraceTimeoutError
from .frames import observations_frame
from .session import Namespace, Session, module_namespace

if TYPE_CHECKING:
    from matplotlib.axes import Axes

__all__ = ["Traces", "check_trace_id", "trace_ids_of"]

_TRACE_ID = re.compile(r"^[0-9a-f]{32}$")
_FILTERS = {
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
SETTLE_S = 1.5
"""A trace that has its root and a generation but still misses a parent span (one that was never
exported: a Restate server killed mid-attempt) counts as complete once it stopped growing for
this long."""


def check_trace_id(trace_id: str) -> str:
    """A W3C trace id (32 hex), normalized; ValueError otherwise."""
    normalized = str(trace_id).strip().lower().replace("-", "")
    if not _TRACE_ID.match(normalized):
        raise ValueError(
            f"Trace id {trace_id!r} is not a W3C trace id (32 hex characters, such as a claim's "
            "`outcome.trace_id`). For a claim, pass the claim (or its id) instead."
        )
    return normalized


def trace_ids_of(session: Session, claims: ClaimsLike) -> list[str]:
    """The trace ids of claims (from their outcomes when known, else looked up)."""
    items = [claims] if isinstance(claims, Claim | str) else list(claims)  # type: ignore[arg-type]
    out = []
    for item in items:
        if isinstance(item, Claim) and item.outcome is not None and item.outcome.trace_id:
            out.append(check_trace_id(item.outcome.trace_id))
        else:
            out.append(session.traces.trace_id(item))
    return out


class Traces(Namespace):
    """Read traces back from Langfuse (`wb.traces`): `trace_id`, `get`, `wait`, `waterfall`.
    Each takes claims as a `Claim`, a `ClaimBatch`, a claim id or a list of them."""

    # -- which trace -----------------------------------------------------------------------------
    def trace_id(self, claim: Claim | str) -> str:
        """The trace of a claim: its outcome's, else Langfuse's (trace metadata `claim_id`), else
        Restate's (the workflow invocation's trace id, known from the moment it was submitted).

        Example:
            >>> wb.traces.trace_id("claim-001")
            '4bf92f3577b34da6a3ce929d0e0e4736'
        """
        if isinstance(claim, Claim) and claim.outcome is not None and claim.outcome.trace_id:
            return check_trace_id(claim.outcome.trace_id)
        claim_id = claim_ids(claim)[0]
        session = self.session
        found = self._from_langfuse(claim_id)
        if found:
            return found
        tried = [
            f"Langfuse at {session.langfuse.url} has no trace with metadata claim_id={claim_id!r}"
        ]
        try:
            invocation = run_sync(session.restate.invocation(names.WORKFLOW, claim_id))
        except Exception as e:  # Restate down or not configured: say so, keep the Langfuse reason
            tried.append(f"Restate could not be asked ({type(e).__name__}: {e})")
        else:
            value = (invocation or {}).get("trace_id")
            if value and _TRACE_ID.match(str(value).lower()):
                return str(value).lower()
            tried.append(f"Restate knows no {names.WORKFLOW} run for {claim_id!r}")
        raise TraceNotFoundError(
            f"No trace found for claim {claim_id!r}: {'; '.join(tried)}. Submit the claim first "
            f"(wb.claims.submit), or wait for its trace with wb.traces.wait({claim_id!r})."
        )

    def _from_langfuse(self, claim_id: str) -> str | None:
        """The oldest trace whose metadata names the claim (the services set
        `langfuse.trace.metadata.claim_id`); the judge's own trace, if any, comes later."""
        condition = {
            "type": "stringObject",
            "column": "metadata",
            "key": "claim_id",
            "operator": "=",
            "value": claim_id,
        }
        data = self.session.langfuse.traces(
            filter=json.dumps([condition]), orderBy="timestamp.asc", fields="core", limit=5
        )
        return data[0]["id"] if data else None

    def url(self, claim: Claim | str) -> str:
        """Where the claim's trace opens in a browser: the embedded Langfuse's viewer (log in
        with the stack's keys), or the configured Langfuse's own UI.

        Example:
            >>> wb.traces.url(c)
            'http://127.0.0.1:3000/project/local-workbench/traces/4bf9...'
        """
        return self.session.langfuse.trace_url(self.trace_id(claim))

    # -- observations ----------------------------------------------------------------------------
    def get(
        self,
        claims: ClaimsLike | None = None,
        *,
        trace_id: str | None = None,
        io: bool = False,
        limit: int | None = None,
        **filters: Any,
    ) -> pd.DataFrame:
        """Observations as a DataFrame, one row per span or generation, in start order: of the
        claims' traces, of one `trace_id`, or of every trace matching `filters` (name, type,
        level, version, environment, user_id, session_id, parent, is_root, since, until, or a
        Langfuse `filter` list). `io=True` adds the raw input and output.

        Example:
            >>> spans = wb.traces.get(c)
            >>> spans[spans["type"] == "GENERATION"][["name", "prompt_version", "total_tokens"]]
        """
        if claims is not None and trace_id is not None:
            raise ValueError("Pass claims or trace_id=, not both.")
        query = _query(filters)
        ids = [check_trace_id(trace_id)] if trace_id is not None else None
        if claims is not None:
            ids = trace_ids_of(self.session, claims)
        if ids is None:
            return observations_frame(
                self.session.langfuse.observations(query, io=io, limit=limit), io
            )
        items: list[Any] = []
        for tid in dict.fromkeys(ids):
            items.extend(
                self.session.langfuse.observations({**query, "trace_id": tid}, io=io, limit=limit)
            )
        return observations_frame(items, io)

    def wait(
        self,
        claims: ClaimsLike | None = None,
        *,
        trace_id: str | None = None,
        timeout_s: float = 15.0,
        poll_interval_s: float = 0.25,
        expect: Iterable[str] | Callable[[pd.DataFrame], bool] | None = None,
    ) -> pd.DataFrame:
        """Poll until each trace is complete, then return its observations (as `get`). By
        default complete means: a root span, a generation, and every span's parent present (or
        the trace stopped growing for a moment, for a parent that was never exported). `expect`
        is a list of span names that must all be present, or a function of the frame.
        TraceTimeoutError after `timeout_s` says what the trace held.

        Example:
            >>> spans = wb.traces.wait(c)
            >>> wb.traces.waterfall(spans)
        """
        if (claims is None) == (trace_id is None):
            raise ValueError("wb.traces.wait needs claims or a trace_id= (exactly one).")
        if timeout_s <= 0 or poll_interval_s <= 0:
            raise ValueError(
                f"timeout_s and poll_interval_s must be positive; got {timeout_s}, "
                f"{poll_interval_s}."
            )
        if trace_id is not None:
            return self._wait_one(
                None, check_trace_id(trace_id), timeout_s, poll_interval_s, expect
            )
        items = [claims] if isinstance(claims, Claim | str) else list(claims)  # type: ignore[arg-type]
        frames = []
        deadline = time.monotonic() + timeout_s
        for item in items:
            known = (
                item.outcome.trace_id
                if isinstance(item, Claim) and item.outcome is not None
                else None
            )
            left = max(deadline - time.monotonic(), poll_interval_s)
            frames.append(
                self._wait_one(claim_ids(item)[0], known, left, poll_interval_s, expect, timeout_s)
            )
        return pd.concat(frames, ignore_index=True) if len(frames) > 1 else frames[0]

    def _wait_one(
        self,
        claim_id: str | None,
        trace_id: str | None,
        timeout_s: float,
        poll_interval_s: float,
        expect: Iterable[str] | Callable[[pd.DataFrame], bool] | None,
        asked_s: float | None = None,
    ) -> pd.DataFrame:
        """Wait for one trace (`timeout_s` left of the `asked_s` the caller gave)."""
        asked_s = timeout_s if asked_s is None else asked_s
        check = _expectation(expect)
        langfuse = self.session.langfuse
        deadline = time.monotonic() + timeout_s
        frame = observations_frame([])
        lookup_error, reason = "", "no observations yet"
        last_count, stable_since = -1, time.monotonic()
        while True:
            if trace_id is None and claim_id is not None:
                try:
                    trace_id = self.trace_id(claim_id)
                except TraceNotFoundError as e:
                    lookup_error = str(e)
            if trace_id is not None:
                frame = observations_frame(langfuse.observations({"trace_id": trace_id}))
                if len(frame) != last_count:
                    last_count, stable_since = len(frame), time.monotonic()
                ok, reason = check(frame, time.monotonic() - stable_since)
                if ok:
                    return frame
            if time.monotonic() >= deadline:
                break
            time.sleep(min(poll_interval_s, max(0.0, deadline - time.monotonic())))
        if trace_id is None:
            raise TraceTimeoutError(
                f"No trace for claim {claim_id!r} after {asked_s:g} s. {lookup_error}"
            )
        what = f"claim {claim_id!r} (trace {trace_id})" if claim_id else f"trace {trace_id}"
        raise TraceTimeoutError(
            f"The {what} is not complete after {asked_s:g} s: {reason}; it holds "
            f"{_describe(frame)}. A trace is readable ~1-2 s after the claim ended: is the claim "
            "done (wb.claims.get(id)), and is tracing on (LANGFUSE_* keys for the services)?"
        )

    def waterfall(
        self,
        trace: ClaimsLike | pd.DataFrame | None = None,
        *,
        trace_id: str | None = None,
        **options: Any,
    ) -> Axes:
        """Draw a claim's trace (a Claim, a claim id, `trace_id=`, or the frame of `get`/`wait`)
        as a waterfall: spans on one time axis, nested, coloured by type, failures and retries
        marked. Waits for the trace to be complete first. Options: ax, max_rows, title.

        Example:
            >>> wb.traces.waterfall(c);
        """
        from .charts import waterfall

        if isinstance(trace, pd.DataFrame):
            frame = trace
        else:
            frame = self.wait(trace, trace_id=trace_id)
        return waterfall(frame, **options)


def _query(filters: dict[str, Any]) -> dict[str, Any]:
    query: dict[str, Any] = {}
    for key, value in filters.items():
        if key not in _FILTERS:
            raise TypeError(
                f"wb.traces.get() got an unknown filter {key!r}. Use claims, trace_id= or any "
                f"of: {', '.join(sorted(_FILTERS))}."
            )
        if value is None:
            continue
        if key in ("since", "until"):
            value = pd.Timestamp(value).to_pydatetime()
        if key == "filter" and not isinstance(value, str):
            value = json.dumps(value)
        query[_FILTERS[key]] = value
    return query


def _orphans(frame: pd.DataFrame) -> int:
    return int((frame["parent"].notna() & ~frame["parent"].isin(frame["id"])).sum())


def _complete(frame: pd.DataFrame, stable_s: float) -> tuple[bool, str]:
    missing = [
        what
        for what, ok in (
            ("a root span", bool(frame["is_root"].any())),
            ("a generation", bool((frame["type"] == "GENERATION").any())),
        )
        if not ok
    ]
    orphans = _orphans(frame) if len(frame) else 0
    if not missing and (orphans == 0 or stable_s >= SETTLE_S):
        return True, ""
    reasons = [f"missing {' and '.join(missing)}"] if missing else []
    if orphans:
        reasons.append(
            f"the parent of {orphans} span(s) is not in the trace yet (Restate exports its own "
            "spans when an attempt ends)"
        )
    return False, "; ".join(reasons)


def _expectation(
    expect: Iterable[str] | Callable[[pd.DataFrame], bool] | None,
) -> Callable[[pd.DataFrame, float], tuple[bool, str]]:
    if expect is None:
        return _complete
    if callable(expect):
        check = expect

        def by_callable(frame: pd.DataFrame, stable_s: float) -> tuple[bool, str]:
            ok = bool(check(frame))
            return ok, "" if ok else f"{getattr(check, '__name__', 'expect')}(...) is still false"

        return by_callable
    wanted = [*dict.fromkeys([expect] if isinstance(expect, str) else expect)]

    def by_names(frame: pd.DataFrame, stable_s: float) -> tuple[bool, str]:
        present = set(frame["name"].dropna())
        missing = [n for n in wanted if n not in present]
        return not missing, f"missing spans {missing}" if missing else ""

    return by_names


def _describe(frame: pd.DataFrame) -> str:
    if frame.empty:
        return "no observations yet"
    counts = frame["name"].fillna("?").value_counts(sort=False)
    listed = ", ".join(f"{n} x{c}" if c > 1 else str(n) for n, c in counts.items())
    return f"{len(frame)} observations ({listed})"


__getattr__, __dir__ = module_namespace(__name__, Traces)
