"""Scores: the judge's verdicts, read back from Langfuse and joined with what produced them.

    import workbench as wb
    df = wb.scores.wait(batch)               # once every claim's trace has its `quality` score
    wb.scores.chart(df, by="prompt_version") # box + every score + the mean, per version
    wb.scores.over_time(df, by="prompt_label")
    wb.scores.get()                           # every `quality` score there is

Each score is joined with the version of the analyst prompt that made the decision (the judge's
score metadata first, else the trace's generations), the prompt label and the service version.
"""

from __future__ import annotations

import time
from collections.abc import Iterable
from concurrent.futures import ThreadPoolExecutor
from typing import TYPE_CHECKING, Any

import pandas as pd

from .claims import ClaimsLike
from .errors import ScoresTimeoutError
from .frames import SCORE_BASE_COLUMNS, as_table, is_restate_span, score_rows
from .session import Namespace, module_namespace
from .traces import check_trace_id, trace_ids_of

if TYPE_CHECKING:
    from matplotlib.axes import Axes

__all__ = ["SCORE_COLUMNS", "Scores"]

QUALITY = "quality"
ANALYST_PROMPT = "claim-analyst"
SCORE_COLUMNS = [
    *SCORE_BASE_COLUMNS[:7],
    "claim_id",
    "prompt_name",
    "prompt_version",
    "prompt_label",
    "service_version",
    "prompts",
    *SCORE_BASE_COLUMNS[7:],
]
_FILTERS = {
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
_TRACE_CHUNK = 40


class Scores(Namespace):
    """Judge scores (`wb.scores`): `get`, `wait`, `chart`, `over_time`. `get` and `wait` take
    claims as a `Claim`, a `ClaimBatch`, a claim id or a list of them."""

    def get(
        self,
        claims: ClaimsLike | None = None,
        *,
        name: str | None = QUALITY,
        trace_ids: Iterable[str] | None = None,
        prompt: str = ANALYST_PROMPT,
        join: bool = True,
        **filters: Any,
    ) -> pd.DataFrame:
        """Scores (by default the judge's `quality`) as a DataFrame, oldest first: of the claims'
        traces, of `trace_ids`, or all; joined per trace with the version of `prompt` that made
        the decision, the prompt label and the service version. Filters: source, data_type,
        environment, value_min, value_max, observation_id, session_id, since, until.

        Example:
            >>> wb.scores.get(batch)[["claim_id", "value", "prompt_version", "comment"]]
        """
        query = _query(filters)
        if name is not None:
            query["name"] = name
        ids: list[str] | None = None
        if trace_ids is not None:
            ids = [
                check_trace_id(t)
                for t in ([trace_ids] if isinstance(trace_ids, str) else trace_ids)
            ]
        if claims is not None:
            ids = [*(ids or []), *trace_ids_of(self.session, claims)]
        langfuse = self.session.langfuse
        found: list[Any] = []
        if ids is None:
            found = langfuse.scores(query)
        else:
            unique = [*dict.fromkeys(ids)]
            for start in range(0, len(unique), _TRACE_CHUNK):
                chunk = unique[start : start + _TRACE_CHUNK]
                found.extend(langfuse.scores({**query, "trace_id": ",".join(chunk)}))
        frame = score_rows(found)
        if frame.empty:
            empty = pd.DataFrame(columns=SCORE_COLUMNS)
            return as_table(empty.astype({"value": "float64", "prompt_version": "Int64"}))
        frame = self._join(frame, prompt) if join else _from_metadata(frame, prompt)
        frame["prompt_version"] = pd.to_numeric(frame["prompt_version"]).astype("Int64")
        frame = frame.sort_values("timestamp", kind="stable").reset_index(drop=True)
        return frame[SCORE_COLUMNS]

    def wait(
        self,
        claims: ClaimsLike | None = None,
        *,
        trace_ids: Iterable[str] | None = None,
        name: str = QUALITY,
        timeout_s: float = 60.0,
        poll_interval_s: float = 0.25,
        join: bool = True,
    ) -> pd.DataFrame:
        """Poll until every claim's trace (or each of `trace_ids`) has a score `name`, then
        return them (as `get`). ScoresTimeoutError names the traces still without one.

        Example:
            >>> df = wb.scores.wait(batch)
            >>> df.groupby("prompt_version")["value"].mean()
        """
        wanted: list[str] = []
        if trace_ids is not None:
            wanted += [
                check_trace_id(t)
                for t in ([trace_ids] if isinstance(trace_ids, str) else trace_ids)
            ]
        if claims is not None:
            wanted += trace_ids_of(self.session, claims)
        wanted = [*dict.fromkeys(wanted)]
        if not wanted:
            raise ValueError("wb.scores.wait needs claims (or trace_ids=) to wait for; got none.")
        if timeout_s <= 0 or poll_interval_s <= 0:
            raise ValueError(
                f"timeout_s and poll_interval_s must be positive; got {timeout_s}, "
                f"{poll_interval_s}."
            )
        deadline = time.monotonic() + timeout_s
        while True:
            found = self.get(name=name, trace_ids=wanted, join=False)
            missing = [t for t in wanted if t not in set(found["trace_id"])]
            if not missing:
                return self.get(name=name, trace_ids=wanted, join=True) if join else found
            if time.monotonic() >= deadline:
                break
            time.sleep(min(poll_interval_s, max(0.0, deadline - time.monotonic())))
        shown = ", ".join(missing[:5]) + (
            f" and {len(missing) - 5} more" if len(missing) > 5 else ""
        )
        raise ScoresTimeoutError(
            f"{len(missing)} of {len(wanted)} traces have no {name!r} score after {timeout_s:g} s: "
            f"{shown}. The judge scores a claim after it ended: check the claims finished "
            "(wb.claims.get(...)) and the judge's journal in the Restate UI."
        )

    def chart(self, scores: pd.DataFrame, by: str = "prompt_version", **options: Any) -> Axes:
        """The distribution of scores per group (`prompt_version`, `prompt_label`,
        `service_version` or any column): a box, every score as a dot, the mean. Options: ax,
        title.

        Example:
            >>> wb.scores.chart(wb.scores.wait(batch), by="prompt_version");
        """
        from .charts import score_chart

        return score_chart(scores, by, **options)

    def over_time(self, scores: pd.DataFrame, by: str = "prompt_version", **options: Any) -> Axes:
        """Each score at its time, coloured by group, with a rolling mean per group (a label
        promotion shows as one line taking over from another). Options: window, ax, title.

        Example:
            >>> wb.scores.over_time(df, by="prompt_label", window=5);
        """
        from .charts import scores_over_time

        return scores_over_time(scores, by, **options)

    # -- the join ------------------------------------------------------------------------------
    def _trace_facts(self, trace_id: str) -> dict[str, Any]:
        """The prompt versions a trace's generations used and the service version of its own
        (non-Restate) observations."""
        items = self.session.langfuse.observations(
            {"trace_id": trace_id}, fields="core,basic,prompt"
        )
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

    def _trace_label(self, trace_id: str) -> str | None:
        trace = self.session.langfuse.trace(trace_id)
        metadata = (trace or {}).get("metadata") or {}
        label = metadata.get("prompt_label") if isinstance(metadata, dict) else None
        return label if isinstance(label, str) else None

    def _join(self, frame: pd.DataFrame, prompt: str, workers: int = 8) -> pd.DataFrame:
        trace_ids = sorted({t for t in frame["trace_id"].dropna()})
        with ThreadPoolExecutor(max_workers=min(workers, max(1, len(trace_ids)))) as pool:
            facts = dict(zip(trace_ids, pool.map(self._trace_facts, trace_ids), strict=True))
        need_label = sorted(
            {
                row.trace_id
                for row in frame.itertuples()
                if row.trace_id and not isinstance(row.metadata.get("prompt_label"), str)
            }
        )
        with ThreadPoolExecutor(max_workers=min(workers, max(1, len(need_label)))) as pool:
            labels = dict(zip(need_label, pool.map(self._trace_label, need_label), strict=True))
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
        return pd.concat([frame, pd.DataFrame(rows, index=frame.index)], axis=1)


def _from_metadata(frame: pd.DataFrame, prompt: str) -> pd.DataFrame:
    meta = frame["metadata"]
    frame["claim_id"] = meta.map(lambda m: m.get("claim_id"))
    frame["prompt_name"] = prompt
    frame["prompt_version"] = meta.map(lambda m: _int_or_none(m.get(_version_key(prompt))))
    frame["prompt_label"] = meta.map(lambda m: m.get("prompt_label"))
    frame["service_version"] = meta.map(lambda m: m.get("service_version"))
    frame["prompts"] = None
    return frame


def _query(filters: dict[str, Any]) -> dict[str, Any]:
    query: dict[str, Any] = {}
    for key, value in filters.items():
        if key not in _FILTERS:
            raise TypeError(
                f"wb.scores.get() got an unknown filter {key!r}. Use claims, name=, trace_ids= "
                f"or any of: {', '.join(sorted(_FILTERS))}."
            )
        if value is None:
            continue
        if key in ("since", "until"):
            value = pd.Timestamp(value).to_pydatetime()
        query[_FILTERS[key]] = value
    if ("value_min" in query or "value_max" in query) and "data_type" not in query:
        query["data_type"] = "NUMERIC"  # Langfuse wants it with a value range
    return query


def _version_key(prompt: str) -> str:
    """The judge's metadata key for a prompt's version: claim-analyst -> analyst_prompt_version."""
    return f"{prompt.removeprefix('claim-')}_prompt_version"


def _int_or_none(value: Any) -> int | None:
    try:
        return int(value) if value is not None and value != "" else None
    except (TypeError, ValueError):
        return None


__getattr__, __dir__ = module_namespace(__name__, Scores)
