"""Experiments: prompt variants compared on the same documents, durably (`wb.experiments`).

    exp = wb.experiments.run(
        "receipts-v3", wb.samples.pick(30), {"production": "production", "v3": {"claim-analyst": 3}}
    )
    exp.wait()                        # a live progress bar; the experiment runs without the kernel
    exp.results()                     # one row per claim: decision, expected, correct, score, ...
    cmp = exp.compare("production", "v3")
    cmp.summary                       # accuracy, mean score with a paired bootstrap 95% CI, W/T/L
    cmp.plot_scores(); cmp.plot_decisions(); exp.plot_accuracy()
    exp.rejudge(2)                    # every finished claim scored again by judge prompt v2
    exp.to_csv("receipts-v3.csv")

An experiment is the Restate workflow `Experiment/<name>` (`services/experiment.py`): one claim per
(document, variant, repeat) with the id `name:variant:document:repeat`, at most `concurrency` at
a time, each variant's prompt versions fixed when it starts. It runs in the Restate server, not in
the notebook: a dead kernel, a crash of the services or a restart of the stack (`down`/`up`)
lose nothing, and calling `run` again with the same name attaches to it, running only what had
not run (a claim id runs once). A second `run` of a name with other documents, variants or
settings is refused (`ExperimentExistsError`): the name stays taken while Restate keeps the
finished experiment (30 days by default, `WORKBENCH_EXPERIMENT_RETENTION_DAYS`).

In Langfuse an experiment is a dataset holding the documents (the expected outcome and fields as
each item's expected output), one dataset run per variant (`<name>:<variant>`) whose run items
link each claim's trace, and the judge's `quality` scores on those traces: the dataset's page
compares the variants. The notebook writes the dataset when the experiment starts and the run
items as claims finish (idempotently: `wait`, `progress`, `results` and attaching catch up on
whatever finished meanwhile). A Langfuse without the dataset-run-items API (Langfuse v4) gets the
runs as experiment spans in the claims' traces instead.

What counts as correct: each document's expected outcome (for the samples, the outcome the
manifest expects under the production prompts: `Sample.status_v1`; for a Langfuse dataset, its
items' expected output) against the claim's own decision (approve, reject, review; or invalid,
failed when the analyst never decided), not against how a reviewer settled it.
"""

from __future__ import annotations

import hashlib
import html
import json
import os
import threading
import time
from collections import Counter
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any

import numpy as np
import pandas as pd
from pydantic import ValidationError

from services import names
from services.experiment_types import (
    ExperimentDefinition,
    ExperimentDocument,
    ExperimentItem,
    ExperimentRequest,
    RejudgeBatch,
    Variant,
    plan,
)
from services.fault_store import ATTEMPT, EXECUTED
from services.faults import MODEL_STEPS, WORKFLOW_MODEL_STEPS
from services.models import ClaimRequest, JudgeVerdict
from services.prompts import ANALYST, JUDGE
from services.prompts import NAMES as PROMPT_NAMES

from ._aio import run_sync
from .clients.langfuse import RunItemsUnsupportedError
from .errors import (
    ExperimentError,
    ExperimentExistsError,
    ExperimentNotFoundError,
    ExperimentTimeoutError,
    LangfuseError,
    UnknownPromptLabelError,
)
from .frames import epoch_s
from .progress import Progress
from .samples import Sample
from .session import Namespace, Session, module_namespace, resolve

if TYPE_CHECKING:
    from matplotlib.axes import Axes

__all__ = ["Comparison", "Experiment", "ExperimentProgress", "Experiments"]

REVIEW_POLICIES = names.REVIEW_POLICIES
DECISION_OF_STATUS = {
    "paid": "approve",
    "approved": "approve",
    "rejected": "reject",
    "review": "review",
    "awaiting review": "review",
    "invalid": "invalid",
    "failed": "failed",
}
"""An expected status as the decision it expects (a claim paid was approved by the analyst)."""
RESULT_COLUMNS = [
    "document",
    "variant",
    "repeat",
    "claim_id",
    "status",
    "decision",
    "expected",
    "correct",
    "score",
    "judge_version",
    "fields_ok",
    "analyst_version",
    "prompt_versions",
    "latency_s",
    "tokens",
    "amount_eur",
    "paid_eur",
    "reviewed_by",
    "reason",
    "trace_id",
]
NOT_STARTED = "not started"
RUNNING = "running"
RETRYING = "retrying"
PAUSED = "paused"
WAITING = names.AWAITING_REVIEW
POLL_INTERVAL_S = 0.5
FIELD_NAMES = ("customer_id", "claim_date", "amount", "currency", "category", "has_receipt")


# -- the documents and what is expected of them ----------------------------------------------------
def _expected(value: Any) -> dict[str, Any] | None:
    """An expected output as `{"decision", "status"?, "fields"?}` (None when it says nothing)."""
    if value is None:
        return None
    if isinstance(value, str):
        return {"status": value, "decision": DECISION_OF_STATUS.get(value, value)}
    if not isinstance(value, Mapping):
        return None
    out = dict(value)
    if "decision" not in out and isinstance(out.get("status"), str):
        out["decision"] = DECISION_OF_STATUS.get(out["status"], out["status"])
    if "fields" not in out and any(k in out for k in FIELD_NAMES):
        out["fields"] = {k: out.pop(k) for k in FIELD_NAMES if k in out}
    return out if out.get("decision") or out.get("fields") else None


def expected_of(sample: Sample) -> dict[str, Any]:
    """What a sample is expected to end as under the production prompts, and its fields."""
    status = sample.status_v1
    return {
        "status": status,
        "decision": DECISION_OF_STATUS.get(status, status),
        "fields": dict(sample.expected),
    }


def _doc_id(text: str) -> str:
    return "doc-" + hashlib.sha256(text.encode()).hexdigest()[:12]


def _safe_id(value: str) -> str:
    try:
        return names.check_part("document", value)
    except ValueError:
        return "item-" + hashlib.sha256(value.encode()).hexdigest()[:12]


def _check_text(doc_id: str, text: Any) -> str:
    if not isinstance(text, str):
        raise TypeError(f"Document {doc_id!r} is {type(text).__name__}, not the claim's text.")
    try:
        ClaimRequest(document=text)
    except ValidationError as e:
        message = e.errors()[0]["msg"].removeprefix("Value error, ")
        raise ValueError(f"Document {doc_id!r} cannot be a claim: {message}") from None
    return text


def _documents_from_list(documents: Iterable[Any]) -> list[ExperimentDocument]:
    out = []
    for item in documents:
        if isinstance(item, Sample):
            doc = ExperimentDocument(
                id=_safe_id(item.id), text=item.document, expected=expected_of(item)
            )
        elif isinstance(item, str):
            doc = ExperimentDocument(id=_doc_id(item), text=item)
        elif isinstance(item, tuple) and len(item) == 2 and isinstance(item[0], str):
            doc = ExperimentDocument(id=names.check_part("document", item[0]), text=item[1])
        elif isinstance(item, Mapping):
            text = item.get("document", item.get("text"))
            raw_id = item.get("id")
            doc_id = names.check_part("document", raw_id) if raw_id else _doc_id(str(text))
            doc = ExperimentDocument(
                id=doc_id, text=text or "", expected=_expected(item.get("expected"))
            )
        else:
            raise TypeError(
                "Experiment documents are samples (wb.samples.pick(...)), claim texts, "
                "(id, text) pairs, dicts with 'document' (and 'id', 'expected'), or the name of "
                f"a Langfuse dataset; got {type(item).__name__}."
            )
        _check_text(doc.id, doc.text)
        out.append(doc)
    if not out:
        raise ValueError("An experiment needs documents; the list is empty.")
    ids = [d.id for d in out]
    repeated = sorted({i for i in ids if ids.count(i) > 1})
    if repeated:
        raise ValueError(
            f"Documents appear twice: {', '.join(repeated[:5])}. Give each once "
            "(use repeats= to run documents several times)."
        )
    return out


def _item_text(raw: Any) -> Any:
    if isinstance(raw, Mapping):
        return raw.get("document", raw.get("text"))
    return raw


def _dataset_item_id(dataset: str, doc_id: str) -> str:
    """A dataset item id for a document of a dataset the experiment creates: readable, and
    distinct across datasets (item ids are unique per Langfuse project)."""
    return f"{doc_id}.{hashlib.sha256(dataset.encode()).hexdigest()[:8]}"


# -- variants ------------------------------------------------------------------------------------
def _variants(variants: Mapping[str, Any]) -> dict[str, Variant]:
    if not isinstance(variants, Mapping) or not variants:
        raise ValueError(
            "variants maps each variant's name to a prompt label or to {prompt: version}, e.g. "
            "{'production': 'production', 'v3': {'claim-analyst': 3}}; got "
            f"{variants!r}."
        )
    out = {}
    for name, spec in variants.items():
        names.check_part("variant", name)
        if isinstance(spec, str):
            out[name] = Variant(label=spec)
        elif isinstance(spec, Variant):
            out[name] = spec
        elif isinstance(spec, Mapping) and spec:
            bad = [
                (k, v)
                for k, v in spec.items()
                if k not in PROMPT_NAMES or isinstance(v, bool) or not isinstance(v, int) or v < 1
            ]
            if bad:
                raise ValueError(
                    f"Variant {name!r}: {bad[0][0]!r}: {bad[0][1]!r} is not a prompt version. "
                    f"Map prompt names ({', '.join(PROMPT_NAMES)}) to version numbers."
                )
            out[name] = Variant(versions=dict(spec))
        else:
            raise ValueError(
                f"Variant {name!r} is {spec!r}: give a prompt label ('production') or "
                "{prompt name: version} ({'claim-analyst': 3})."
            )
    return out


def _fingerprint(request: ExperimentRequest) -> str:
    """What defines an experiment (not its concurrency): the documents, what is expected of
    them, the variants as given, repeats and the review policy."""
    content = {
        "documents": [
            [d.id, hashlib.sha256(d.text.encode()).hexdigest(), d.expected]
            for d in request.documents
        ],
        "variants": {k: v.model_dump() for k, v in request.variants.items()},
        "repeats": request.repeats,
        "review": request.review,
    }
    text = json.dumps(content, sort_keys=True, separators=(",", ":"))
    return hashlib.sha256(text.encode()).hexdigest()[:32]


def _differences(old: ExperimentDefinition, new: ExperimentRequest) -> str:
    said = []
    if [d.id for d in old.documents] != [d.id for d in new.documents]:
        said.append(f"{len(old.documents)} documents there, {len(new.documents)} given")
    elif [d.expected for d in old.documents] != [d.expected for d in new.documents]:
        said.append("the expected outcomes differ")
    else:
        said.append("documents of the same ids have other texts")
    if old.variants != new.variants:
        said[-1:] = [] if said[-1].startswith("documents of the same") else said[-1:]
        said.append(
            f"variants {_show_variants(old.variants)} there, {_show_variants(new.variants)} given"
        )
    if old.repeats != new.repeats:
        said.append(f"repeats {old.repeats} there, {new.repeats} given")
    if old.review != new.review:
        said.append(f"review {old.review!r} there, {new.review!r} given")
    return "; ".join(said)


def _show_variants(variants: Mapping[str, Variant]) -> str:
    return (
        "{"
        + ", ".join(f"{k}: {v.label or ''}{v.versions or ''}" for k, v in variants.items())
        + "}"
    )


# -- the pieces of a result row --------------------------------------------------------------------
def _decision(item: ExperimentItem) -> str | None:
    outcome = item.outcome
    if outcome is None:
        return names.FAILED if item.error else None
    if outcome.decision is not None:
        return outcome.decision
    return outcome.status if outcome.status in (names.INVALID, names.FAILED) else None


def _same(got: Any, want: Any) -> bool:
    if isinstance(want, bool) or isinstance(got, bool):
        return bool(got) == bool(want) if got is not None and want is not None else got is want
    if isinstance(want, int | float) and isinstance(got, int | float):
        return abs(float(got) - float(want)) < 0.005
    if isinstance(want, str) and isinstance(got, str):
        return got.strip().lower() == want.strip().lower()
    return got == want


def _fields_ok(item: ExperimentItem, expected: dict[str, Any] | None) -> float | None:
    wanted = (expected or {}).get("fields")
    if not isinstance(wanted, Mapping) or not wanted or item.outcome is None:
        return None
    parsed = item.outcome.claim
    got = parsed.model_dump() if parsed is not None else {}
    return sum(_same(got.get(k), v) for k, v in wanted.items()) / len(wanted)


def _verdict_score(raw: str | None) -> tuple[float | None, int | None]:
    if not raw:
        return None, None
    value = json.loads(raw)
    verdict = value.get("verdict")
    score = JudgeVerdict.model_validate(verdict).score if verdict else None
    return score, value.get("prompt_version")


# -- progress ------------------------------------------------------------------------------------
@dataclass
class ExperimentProgress:
    """Where an experiment stands: its state in Restate and its items by status.

    `state` is pending, running, retrying, paused, completed or failed (the workflow's);
    `counts` has every item's status (not started, running, retrying, awaiting review, paused,
    or how it ended: paid, rejected, invalid, failed); `by_variant` the same per variant."""

    name: str
    state: str
    total: int
    counts: dict[str, int]
    by_variant: pd.DataFrame
    error: str | None = None

    @property
    def ended(self) -> int:
        """Items whose claim ended (whatever the outcome)."""
        return sum(n for s, n in self.counts.items() if s in names.FINAL_STATUSES)

    @property
    def finished(self) -> bool:
        """The workflow completed: every item ended and is kept."""
        return self.state == "completed"

    @property
    def stalled(self) -> bool:
        """Nothing runs: what is left waits for a human, or Restate paused it (the claims or the
        experiment itself)."""
        if self.state == PAUSED:
            return True
        busy = sum(self.counts.get(s, 0) for s in (RUNNING, RETRYING))
        blocked = sum(self.counts.get(s, 0) for s in (PAUSED, WAITING))
        return not self.finished and self.state != "pending" and busy == 0 and blocked > 0

    def label(self) -> str:
        shown = [f"{n} {s}" for s, n in sorted(self.counts.items(), key=lambda x: -x[1]) if n]
        return ", ".join(shown)

    def __repr__(self) -> str:
        extra = f" (last error: {self.error})" if self.error else ""
        return (
            f"Experiment {self.name!r}: {self.state}, {self.ended}/{self.total} items ended: "
            f"{self.label()}{extra}"
        )

    def _repr_html_(self) -> str:
        share = self.ended / self.total if self.total else 1.0
        head = (
            f"<p><b>{html.escape(self.name)}</b>: {html.escape(self.state)}, "
            f"{self.ended}/{self.total} items ended ({share:.0%})"
            + (
                f"<br><span style='color:#c62828'>{html.escape(self.error)}</span>"
                if self.error
                else ""
            )
            + "</p>"
        )
        return head + self.by_variant._repr_html_()


# -- the comparison ------------------------------------------------------------------------------
def paired_bootstrap(
    differences: np.ndarray, *, resamples: int = 2000, seed: int = 0, level: float = 0.95
) -> tuple[float, float]:
    """The percentile interval of the mean of paired differences, resampling the pairs (NaN
    with fewer than two pairs)."""
    values = np.asarray(differences, dtype=float)
    values = values[~np.isnan(values)]
    if len(values) < 2:
        return float("nan"), float("nan")
    rng = np.random.default_rng(seed)
    means = values[rng.integers(0, len(values), size=(resamples, len(values)))].mean(axis=1)
    tail = (1 - level) / 2 * 100
    low, high = np.percentile(means, [tail, 100 - tail])
    return float(low), float(high)


def _mode(values: pd.Series) -> Any:
    counted = Counter(v for v in values if v is not None and not pd.isna(v))
    return counted.most_common(1)[0][0] if counted else None


@dataclass
class Comparison:
    """Variant `b` against variant `a` on the same documents.

    `table`: one row per document: the decision under each (the most frequent one over repeats),
    whether it changed, correctness (the share of repeats that were), the mean score and its
    difference b - a. `summary`: accuracy and mean score per variant, their difference with a
    paired bootstrap 95% interval (documents resampled), wins/ties/losses of b by score, and how
    many decisions changed."""

    a: str
    b: str
    table: pd.DataFrame
    summary: pd.DataFrame
    wins: int
    ties: int
    losses: int
    judge: int | None = None

    @property
    def changed(self) -> pd.DataFrame:
        """The documents whose decision changed."""
        return self.table[self.table["changed"]]

    def plot_scores(self, ax: Axes | None = None) -> Axes:
        """Each document's score under a (x) and b (y): above the diagonal b scored higher."""
        from .charts import paired_scores

        return paired_scores(self.table, self.a, self.b, summary=self.summary, ax=ax)

    def plot_decisions(self, ax: Axes | None = None) -> Axes:
        """How the decisions moved from a (rows) to b (columns): off the diagonal they changed."""
        from .charts import decision_matrix

        return decision_matrix(self.table, self.a, self.b, ax=ax)

    def __repr__(self) -> str:
        return (
            f"Comparison({self.b} vs {self.a}: {self.wins} wins, {self.ties} ties, "
            f"{self.losses} losses; {int(self.table['changed'].sum())} decisions changed)\n"
            f"{self.summary.to_string()}"
        )

    def _repr_html_(self) -> str:
        head = (
            f"<p><b>{html.escape(self.b)}</b> vs <b>{html.escape(self.a)}</b>"
            + (f" (judge v{self.judge})" if self.judge else "")
            + f": {self.wins} wins, {self.ties} ties, {self.losses} losses by score; "
            f"{int(self.table['changed'].sum())} of {len(self.table)} decisions changed</p>"
        )
        changed = self.changed
        tail = "<p>Decisions that changed:</p>" + changed._repr_html_() if len(changed) else ""
        return head + self.summary._repr_html_() + tail


def compare_results(
    results: pd.DataFrame,
    a: str,
    b: str,
    *,
    resamples: int = 2000,
    seed: int = 0,
    judge: int | None = None,
) -> Comparison:
    """The comparison of variants a and b in a results frame (`Experiment.results()`)."""
    variants = set(results["variant"])
    for name in (a, b):
        if name not in variants:
            raise ValueError(
                f"Variant {name!r} is not in this experiment; its variants are "
                f"{', '.join(sorted(variants))}."
            )
    if a == b:
        raise ValueError(f"Compare two different variants; got {a!r} twice.")
    ended = results[results["status"].isin(names.FINAL_STATUSES)]
    ended = ended.assign(
        correct=ended["correct"].astype("Float64").astype("float64"),
        score=ended["score"].astype("float64"),
    )
    per_doc = {}
    for name in (a, b):
        rows = ended[ended["variant"] == name]
        per_doc[name] = rows.groupby("document", sort=False).agg(
            decision=("decision", _mode),
            correct=("correct", "mean"),
            score=("score", "mean"),
            runs=("claim_id", "count"),
        )
    expected = results.drop_duplicates("document").set_index("document")["expected"]
    table = per_doc[a].join(per_doc[b], how="inner", lsuffix=f"_{a}", rsuffix=f"_{b}")
    table.insert(0, "expected", expected.reindex(table.index))
    table["changed"] = table[f"decision_{a}"] != table[f"decision_{b}"]
    table["delta"] = table[f"score_{b}"] - table[f"score_{a}"]
    columns = [
        "expected",
        f"decision_{a}",
        f"decision_{b}",
        "changed",
        f"correct_{a}",
        f"correct_{b}",
        f"score_{a}",
        f"score_{b}",
        "delta",
    ]
    table = table[columns].reset_index()
    paired = table.dropna(subset=["delta"])
    tol = 1e-9
    wins = int((paired["delta"] > tol).sum())
    losses = int((paired["delta"] < -tol).sum())
    ties = len(paired) - wins - losses
    both_correct = table.dropna(subset=[f"correct_{a}", f"correct_{b}"])
    acc_diff = both_correct[f"correct_{b}"] - both_correct[f"correct_{a}"]
    rows = []
    for metric, frame_a, frame_b, diffs, n in (
        (
            "accuracy",
            both_correct[f"correct_{a}"],
            both_correct[f"correct_{b}"],
            acc_diff,
            len(both_correct),
        ),
        ("mean score", paired[f"score_{a}"], paired[f"score_{b}"], paired["delta"], len(paired)),
    ):
        low, high = paired_bootstrap(diffs.to_numpy(), resamples=resamples, seed=seed)
        rows.append(
            {
                "metric": metric,
                a: frame_a.mean() if n else float("nan"),
                b: frame_b.mean() if n else float("nan"),
                f"{b} - {a}": diffs.mean() if n else float("nan"),
                "95% CI low": low,
                "95% CI high": high,
                "documents": n,
            }
        )
    summary = pd.DataFrame(rows).set_index("metric")
    return Comparison(a, b, table, summary, wins, ties, losses, judge)


# -- the handle ----------------------------------------------------------------------------------
class Experiment:
    """One experiment, by name: read it, wait for it, compare its variants, re-judge it.

    Everything is read from Restate (the experiment's state, its claims, their judges) and,
    for tokens, from Langfuse; nothing is cached but the definition, so a handle made in another
    kernel, or after a restart of the stack, sees the same.

    Example:
        >>> exp = wb.experiments.get("receipts-v3")
        >>> exp.progress()
    """

    def __init__(self, name: str, session: Session | None = None) -> None:
        self.name = names.check_part("experiment", name)
        self._bound = session
        self._definition: ExperimentDefinition | None = None
        self._versions: dict[str, dict[str, int]] | None = None
        self._linked: dict[str, set[tuple[str, str]]] | None = None
        self._span_runs = False
        self._documents: list[ExperimentDocument] | None = None
        """The documents' texts, when this handle was made by `run` (for the Langfuse dataset)."""
        self._dataset_checked = False
        self._lock = threading.Lock()

    @property
    def session(self) -> Session:
        return resolve(self._bound)

    def __repr__(self) -> str:
        try:
            return repr(self.progress())
        except Exception as e:  # a repr must not raise: say why there is nothing to show
            return f"Experiment({self.name!r}: {type(e).__name__}: {e})"

    def _repr_html_(self) -> str:
        try:
            return self.progress()._repr_html_()
        except Exception as e:
            return f"<p>Experiment {html.escape(self.name)}: {html.escape(str(e))}</p>"

    # -- what it is --------------------------------------------------------------------------------
    async def _state(self) -> dict[str, str]:
        rows = await self.session.restate.state(
            names.EXPERIMENT, key=self.name, names=[names.DEFINITION_KEY, names.VERSIONS_KEY]
        )
        return {row["key"]: row["value_utf8"] for row in rows}

    def _load(self, state: dict[str, str]) -> None:
        if names.DEFINITION_KEY in state and self._definition is None:
            self._definition = ExperimentDefinition.model_validate_json(state[names.DEFINITION_KEY])
        if names.VERSIONS_KEY in state and self._versions is None:
            self._versions = json.loads(state[names.VERSIONS_KEY])

    @property
    def definition(self) -> ExperimentDefinition:
        """The documents (ids and what is expected of them), variants, repeats, review policy
        and concurrency it runs with."""
        if self._definition is None:
            self._load(run_sync(self._state()))
        if self._definition is None:
            raise ExperimentNotFoundError(self._not_found())
        return self._definition

    @property
    def versions(self) -> dict[str, dict[str, int]]:
        """Each variant's prompt versions, fixed when the experiment started."""
        if self._versions is None:
            self._load(run_sync(self._state()))
        return dict(self._versions or {})

    @property
    def variants(self) -> list[str]:
        return list(self.definition.variants)

    @property
    def dataset(self) -> str | None:
        """The Langfuse dataset holding its documents (None without Langfuse)."""
        return self.definition.dataset

    def run_name(self, variant: str) -> str:
        """The Langfuse dataset run of one variant.

        Example:
            >>> exp.run_name("v3")
            'receipts:v3'
        """
        return f"{self.name}:{variant}"

    def dataset_url(self) -> str:
        """Where Langfuse (the embedded viewer, or a real Langfuse's UI) shows the experiment's
        dataset with its runs side by side.

        Example:
            >>> exp.dataset_url()
            'http://127.0.0.1:3000/project/local-workbench/datasets/6c59...'
        """
        session = self.session
        if not session.has_langfuse or self.dataset is None:
            raise ExperimentError(f"Experiment {self.name!r} has no Langfuse dataset.")
        langfuse = session.langfuse
        dataset = langfuse.dataset(self.dataset)
        if dataset is None:
            raise ExperimentError(f"Langfuse has no dataset {self.dataset!r} (deleted?).")
        return f"{langfuse.url}/project/{langfuse.project_id}/datasets/{dataset.id}"

    def _not_found(self) -> str:
        return (
            f"No experiment {self.name!r} on Restate at {self.session.restate.ingress_url}. "
            "Start it with wb.experiments.run(name, documents, variants); "
            "wb.experiments.list() shows the ones there are."
        )

    def _plan(self) -> list[ExperimentItem]:
        return plan(self.name, self.definition)

    # -- progress ----------------------------------------------------------------------------------
    async def _items(self) -> dict[str, ExperimentItem]:
        rows = await self.session.restate.state(
            names.EXPERIMENT, key=self.name, name_prefix=names.ITEM_KEY_PREFIX
        )
        out = {}
        for row in rows:
            item = ExperimentItem.model_validate_json(row["value_utf8"])
            out[item.claim_id] = item
        return out

    async def _claims(self) -> tuple[dict[str, dict[str, Any]], set[str]]:
        """The experiment's claim invocations by claim id, and the claims waiting for a human."""
        restate = self.session.restate
        prefix = f"{self.name}:"
        rows = await restate.invocations(
            service=names.WORKFLOW, key_prefix=prefix, handler=names.RUN
        )
        steps = await restate.state(names.WORKFLOW, key_prefix=prefix, names=[names.STEP_KEY])
        waiting = {
            r["service_key"] for r in steps if json.loads(r["value_utf8"]) == names.AWAITING_REVIEW
        }
        return {str(r["target_service_key"]): r for r in rows}, waiting

    async def _aprogress(self) -> tuple[ExperimentProgress, dict[str, ExperimentItem]]:
        restate = self.session.restate
        self._load(await self._state())
        invocation = await restate.invocation(names.EXPERIMENT, self.name, names.RUN)
        if invocation is None:
            raise ExperimentNotFoundError(self._not_found())
        if self._definition is None:  # accepted, not started yet
            return (
                ExperimentProgress(self.name, "pending", 0, {}, pd.DataFrame(), None),
                {},
            )
        items = await self._items()
        claims, waiting = await self._claims()
        state, error = _workflow_state(invocation)
        rows = []
        for item in self._plan():
            done = items.get(item.claim_id)
            if done is not None:
                status = done.outcome.status if done.outcome is not None else names.FAILED
            else:
                status = _claim_state(claims.get(item.claim_id), item.claim_id in waiting)
            rows.append({"variant": item.variant, "status": status})
        frame = pd.DataFrame(rows, columns=["variant", "status"])
        by_variant = (
            frame.groupby(["variant", "status"], sort=False).size().unstack(fill_value=0)
            if len(frame)
            else pd.DataFrame()
        )
        counts = dict(Counter(frame["status"]))
        return ExperimentProgress(self.name, state, len(rows), counts, by_variant, error), items

    def progress(self) -> ExperimentProgress:
        """Where the experiment stands: its state in Restate and its items by status, overall
        and per variant (one query each for the items, the claims and the workflow).

        Example:
            >>> exp.progress().counts
            {'paid': 31, 'rejected': 14, 'running': 4, 'not started': 11}
        """
        progress, items = run_sync(self._aprogress())
        self._sync_quietly(items)
        return progress

    def resume(self) -> int:
        """Resume what Restate paused of this experiment (after failing for longer than its
        retry policy allows: a stack down for long, an outage): the workflow, its claims, their
        judges and re-judgings. Returns how many invocations were resumed. Attaching with
        `wb.experiments.run` does it too.

        Example:
            >>> exp.resume()
            3
        """
        return run_sync(self._aresume())

    async def _aresume(self) -> int:
        restate = self.session.restate
        rows = await restate.invocations(key_prefix=self.name, status=PAUSED)
        ours = {names.EXPERIMENT, names.WORKFLOW, names.JUDGE, names.REJUDGE}
        paused = [
            row["id"]
            for row in rows
            if row["target_service_name"] in ours
            and (
                row["target_service_key"] == self.name
                or str(row["target_service_key"]).startswith(f"{self.name}:")
            )
        ]
        for invocation_id in paused:
            await restate.resume(invocation_id)
        return len(paused)

    def wait(
        self,
        timeout_s: float | None = None,
        *,
        scores: bool = True,
        progress: bool = True,
        until: int | None = None,
        poll_interval_s: float = POLL_INTERVAL_S,
    ) -> Experiment:
        """Wait until every item ended (then, with `scores`, until the judge scored each one),
        with a live progress bar; returns self. It also returns when nothing runs any more
        but claims waiting for a human (review policy `leave`) or paused by Restate (after a
        long outage: `wb.claims.resume("all")`), saying so; with `until`, once that many items
        ended. ExperimentTimeoutError says where it stands when `timeout_s` runs out; the
        experiment itself goes on.

        Example:
            >>> exp.wait().progress().counts
            {'paid': 38, 'rejected': 22}
        """
        deadline = None if timeout_s is None else time.monotonic() + timeout_s
        now, _ = run_sync(self._aprogress())
        with Progress(max(now.total, 1), "items", enabled=progress) as bar:
            while True:
                now, items = run_sync(self._aprogress())
                bar.total = max(now.total, 1)
                bar.set(now.ended, {s: n for s, n in now.counts.items() if n})
                self._sync_quietly(items)
                if now.state == "failed":
                    raise ExperimentError(
                        f"Experiment {self.name!r} failed: {now.error}. Its name stays taken; "
                        "fix the cause and run it under a new name."
                    )
                if now.finished:
                    break
                if now.stalled:
                    bar.stop("stalled: nothing runs but what waits (below)")
                    break
                if until is not None and now.ended >= until:
                    bar.stop(f"stopped waiting at {until} ended, as asked; it goes on in Restate")
                    break
                _check_deadline(deadline, timeout_s, f"Experiment {self.name!r}", now)
                time.sleep(poll_interval_s)
        if now.stalled:
            print(_stalled(now))
        if scores and now.finished:
            self._wait_judged(deadline, timeout_s, poll_interval_s)
        return self

    def _wait_judged(
        self, deadline: float | None, timeout_s: float | None, poll_interval_s: float
    ) -> None:
        while True:
            items = run_sync(self._items())
            wanted = [
                i.claim_id for i in items.values() if i.outcome is not None and i.outcome.claim
            ]
            judged = run_sync(
                self.session.restate.state(names.JUDGE, keys=wanted, names=[names.JUDGE_RESULT_KEY])
            )
            missing = set(wanted) - {r["service_key"] for r in judged}
            if not missing:
                return
            if deadline is not None and time.monotonic() > deadline:
                shown = ", ".join(sorted(missing)[:5])
                raise ExperimentTimeoutError(
                    f"Experiment {self.name!r} ended, but {len(missing)} of its claims have no "
                    f"judge verdict after {timeout_s:g} s: {shown}. The judge runs after each "
                    "claim; see its invocations in the Restate UI."
                )
            time.sleep(poll_interval_s)

    # -- results -----------------------------------------------------------------------------------
    def results(self, judge: int | None = None, *, tokens: bool = True) -> pd.DataFrame:
        """One row per claim of the experiment (not started and running ones included), in the
        order they run: document, variant, repeat, claim id, status, decision (the analyst's, or
        invalid/failed), expected (decision), correct, score (the judge's `quality`; with
        `judge=N`, the score of a re-judging under judge prompt version N), judge version,
        fields_ok (share of the expected fields the parser read right), analyst version, all
        prompt versions, latency (s), tokens (from Langfuse), amounts, reviewer, reason, trace.

        Example:
            >>> df = exp.results()
            >>> df.groupby("variant")[["correct", "score"]].mean()
        """
        return run_sync(self._aresults(judge, tokens))

    async def _aresults(self, judge: int | None, tokens: bool) -> pd.DataFrame:
        progress, items = await self._aprogress()
        if progress.state == "pending":
            return pd.DataFrame(columns=RESULT_COLUMNS)
        restate = self.session.restate
        claims, waiting = await self._claims()
        planned = self._plan()
        ids = [i.claim_id for i in planned]
        verdict_key = names.JUDGE_RESULT_KEY if judge is None else names.rejudge_state_key(judge)
        verdicts = {
            r["service_key"]: r["value_utf8"]
            for r in await restate.state(names.JUDGE, keys=ids, names=[verdict_key])
        }
        expected = {d.id: d.expected for d in self.definition.documents}
        used = await self._tokens(claims) if tokens else {}
        rows = []
        for item in planned:
            done = items.get(item.claim_id)
            want = expected.get(item.document) or {}
            decision = _decision(done) if done is not None else None
            outcome = done.outcome if done is not None else None
            status = (
                (outcome.status if outcome is not None else names.FAILED)
                if done is not None
                else _claim_state(claims.get(item.claim_id), item.claim_id in waiting)
            )
            score, judge_version = _verdict_score(verdicts.get(item.claim_id))
            versions = outcome.prompt_versions if outcome is not None else {}
            invocation = claims.get(item.claim_id) or {}
            started = epoch_s(invocation.get("created_at"))
            ended = epoch_s(invocation.get("completed_at"))
            trace_id = outcome.trace_id if outcome is not None else None
            rows.append(
                {
                    "document": item.document,
                    "variant": item.variant,
                    "repeat": item.repeat,
                    "claim_id": item.claim_id,
                    "status": status,
                    "decision": decision,
                    "expected": want.get("decision"),
                    "correct": (
                        (decision == want["decision"])
                        if decision is not None and want.get("decision")
                        else None
                    ),
                    "score": score,
                    "judge_version": judge_version,
                    "fields_ok": _fields_ok(done, want) if done is not None else None,
                    "analyst_version": versions.get(ANALYST),
                    "prompt_versions": ", ".join(f"{k} v{v}" for k, v in sorted(versions.items())),
                    "latency_s": ended - started if started and ended and done else None,
                    "tokens": used.get(trace_id) if trace_id else None,
                    "amount_eur": outcome.amount_eur if outcome is not None else None,
                    "paid_eur": outcome.paid_eur if outcome is not None else None,
                    "reviewed_by": outcome.reviewed_by if outcome is not None else None,
                    "reason": outcome.reason
                    if outcome is not None
                    else (done.error if done else None),
                    "trace_id": trace_id,
                }
            )
        frame = pd.DataFrame(rows, columns=RESULT_COLUMNS)
        frame["correct"] = frame["correct"].astype("boolean")
        for column in ("score", "fields_ok", "latency_s", "amount_eur", "paid_eur"):
            frame[column] = pd.to_numeric(frame[column], errors="coerce").astype("float64")
        for column in ("judge_version", "analyst_version", "tokens"):
            frame[column] = pd.to_numeric(frame[column], errors="coerce").astype("Int64")
        return frame

    async def _tokens(self, claims: dict[str, dict[str, Any]]) -> dict[str, int]:
        """Total tokens per trace, from Langfuse's generations in the experiment's time window
        (empty without Langfuse, or when it does not answer)."""
        session = self.session
        times = [epoch_s(r.get("created_at")) for r in claims.values()]
        ends = [epoch_s(r.get("completed_at")) or time.time() for r in claims.values()]
        times = [t for t in times if t]
        if not session.has_langfuse or not times:
            return {}
        since = datetime.fromtimestamp(min(times) - 5, tz=UTC)
        until = datetime.fromtimestamp(max(ends) + 60, tz=UTC)
        from .frames import observations_frame

        try:
            found = session.langfuse.observations(
                {"type": "GENERATION", "from_start_time": since, "to_start_time": until},
                fields="core,basic,usage",
            )
        except LangfuseError:
            return {}
        frame = observations_frame(found)
        if frame.empty:
            return {}
        return {str(k): int(v) for k, v in frame.groupby("trace_id")["total_tokens"].sum().items()}

    def compare(
        self,
        a: str,
        b: str,
        *,
        judge: int | None = None,
        resamples: int = 2000,
        seed: int = 0,
    ) -> Comparison:
        """Variant `b` against variant `a` on the same documents: per document side by side
        (decisions that changed, score difference) and a summary (accuracy against the expected
        outcomes, mean score with a paired bootstrap 95% interval of the difference, wins, ties
        and losses of b). `judge=N` compares the scores of a re-judging under judge version N.

        Example:
            >>> cmp = exp.compare("production", "v3")
            >>> cmp.summary
            >>> cmp.changed                  # the documents whose decision changed
        """
        results = self.results(judge, tokens=False)
        if judge is not None and results["score"].isna().all():
            raise ExperimentError(
                f"Experiment {self.name!r} has no scores from judge version {judge}: re-judge it "
                f"first with exp.rejudge({judge})."
            )
        return compare_results(results, a, b, resamples=resamples, seed=seed, judge=judge)

    def plot_accuracy(self, *, judge: int | None = None, ax: Axes | None = None) -> Axes:
        """Accuracy per variant (with a 95% Wilson interval) beside the mean judge score.

        Example:
            >>> exp.plot_accuracy();
        """
        from .charts import accuracy_bars

        return accuracy_bars(self.results(judge, tokens=False), ax=ax)

    def to_csv(
        self, path: str | os.PathLike[str] | None = None, *, judge: int | None = None
    ) -> str:
        """The results as CSV: written to `path` (returned), or returned as text.

        Example:
            >>> exp.to_csv("receipts-v3.csv")
            'receipts-v3.csv'
        """
        frame = self.results(judge)
        if path is None:
            return frame.to_csv(index=False)
        frame.to_csv(path, index=False)
        return str(path)

    # -- evidence ----------------------------------------------------------------------------------
    def evidence(self) -> pd.DataFrame:
        """Per claim, what really ran, from the services' own records (the fault store and the
        ledger, written before anything can crash): model requests sent by the claim (parser
        and analyst) and by its judge, workflow attempts, payments accepted and refused as
        duplicates. A resumed experiment shows the same counts as an uninterrupted one for every
        claim that had ended before the interruption.

        Example:
            >>> exp.evidence()[["model_requests", "payments"]].sum()
        """
        session = self.session
        ids = [i.claim_id for i in self._plan()]
        wanted = set(ids)
        judge_step = MODEL_STEPS.get("JudgeVerdict", "judge")
        counts: dict[str, Counter[str]] = {i: Counter() for i in ids}
        for event in session.fault_store.events():
            claim_id = event["claim_id"]
            if claim_id not in wanted:
                continue
            if event["event"] == EXECUTED and event["step"] in WORKFLOW_MODEL_STEPS:
                counts[claim_id]["model_requests"] += 1
            elif event["event"] == EXECUTED and event["step"] == judge_step:
                counts[claim_id]["judge_requests"] += 1
            elif event["event"] == ATTEMPT:
                counts[claim_id]["attempts"] += 1
        rows = []
        for claim_id in ids:
            attempts = session.ledger_store.attempts(claim_id)
            accepted = int(attempts["accepted"].sum()) if len(attempts) else 0
            rows.append(
                {
                    "claim_id": claim_id,
                    "model_requests": counts[claim_id]["model_requests"],
                    "judge_requests": counts[claim_id]["judge_requests"],
                    "attempts": counts[claim_id]["attempts"],
                    "payments": accepted,
                    "refused_duplicates": len(attempts) - accepted,
                }
            )
        return pd.DataFrame(rows).set_index("claim_id")

    # -- re-judging --------------------------------------------------------------------------------
    def rejudge(
        self,
        judge_prompt_version: int,
        *,
        concurrency: int = 16,
        wait: bool = True,
        timeout_s: float | None = None,
        progress: bool = True,
    ) -> pd.DataFrame:
        """Score every finished claim again under judge prompt version `judge_prompt_version`,
        without running the claims again: one judge model call per claim, as the durable
        workflow `ExperimentRejudge/<name>:judge-v<N>` (asking again attaches to it). The new
        scores are `quality-judge-v<N>` on the same traces, beside `quality`; `results(judge=N)`
        and `compare(..., judge=N)` use them. Returns `results(judge=N)` once all are scored
        (with `wait`).

        Example:
            >>> exp.rejudge(2)
            >>> exp.compare("production", "v3", judge=2).summary
        """
        if isinstance(judge_prompt_version, bool) or not isinstance(judge_prompt_version, int):
            raise TypeError(
                f"judge_prompt_version is a version number; got {judge_prompt_version!r}."
            )
        if concurrency < 1:
            raise ValueError(f"concurrency must be at least 1; got {concurrency}.")
        self._check_versions({JUDGE: judge_prompt_version})
        now = self.progress()
        if not now.finished:
            raise ExperimentError(
                f"Experiment {self.name!r} has not finished ({now.label()}): re-judge once every "
                "item ended (exp.wait(); decide the claims waiting for a human first)."
            )
        items = run_sync(self._items())
        ids = [i.claim_id for i in items.values() if i.outcome is not None and i.outcome.claim]
        judged = run_sync(
            self.session.restate.state(names.JUDGE, keys=ids, names=[names.JUDGE_REQUEST_KEY])
        )
        missing = sorted(set(ids) - {r["service_key"] for r in judged})
        if missing:
            raise ExperimentError(
                f"{len(missing)} claims of {self.name!r} have not been judged yet "
                f"({', '.join(missing[:3])}...): wait for their scores (exp.wait()), then "
                "re-judge."
            )
        batch = RejudgeBatch(
            experiment=self.name,
            judge_version=judge_prompt_version,
            claim_ids=ids,
            concurrency=concurrency,
        )
        key = names.rejudge_key(self.name, judge_prompt_version)
        run_sync(self.session.restate.send(names.REJUDGE, key, names.RUN, batch))
        if wait:
            self._wait_rejudged(ids, judge_prompt_version, timeout_s, progress)
        return self.results(judge_prompt_version)

    def _wait_rejudged(
        self, ids: list[str], version: int, timeout_s: float | None, progress: bool
    ) -> None:
        deadline = None if timeout_s is None else time.monotonic() + timeout_s
        restate = self.session.restate
        key = names.rejudge_key(self.name, version)
        with Progress(max(len(ids), 1), "re-judged", enabled=progress) as bar:
            while True:
                done = run_sync(
                    restate.state(names.JUDGE, keys=ids, names=[names.rejudge_state_key(version)])
                )
                bar.set(len(done))
                invocation = run_sync(restate.invocation(names.REJUDGE, key, names.RUN))
                if invocation is not None and invocation.get("status") == "completed":
                    if invocation.get("completion_result") != "success":
                        raise ExperimentError(
                            f"Re-judging {self.name!r} with judge v{version} failed: "
                            f"{invocation.get('completion_failure')}"
                        )
                    break
                if deadline is not None and time.monotonic() > deadline:
                    raise ExperimentTimeoutError(
                        f"Re-judging {self.name!r} with judge v{version}: {len(done)} of "
                        f"{len(ids)} scored after {timeout_s:g} s; it goes on (call rejudge "
                        "again to wait for it)."
                    )
                time.sleep(POLL_INTERVAL_S)

    # -- Langfuse ----------------------------------------------------------------------------------
    def _check_versions(self, versions: Mapping[str, int]) -> None:
        _check_prompt_versions(self.session, versions, f"Experiment {self.name!r}")

    def _sync_quietly(self, items: dict[str, ExperimentItem]) -> None:
        """Link the finished items to their runs in Langfuse; an unreachable Langfuse is said
        once per call and tried again next time (the items are not lost: they are in Restate)."""
        try:
            self.sync_langfuse(items)
        except LangfuseError as e:
            print(f"Langfuse not updated yet (tried again on the next call): {e}")

    def sync_langfuse(self, items: dict[str, ExperimentItem] | None = None) -> int:
        """Link every finished item's trace to its dataset item, in the run of its variant
        (idempotent: what is linked already is not linked again); returns how many links were
        written. Called by `progress`, `wait` and `results`; call it yourself after Langfuse
        was down.

        Example:
            >>> exp.sync_langfuse()
            0
        """
        session = self.session
        definition = self.definition
        if not session.has_langfuse or definition.dataset is None:
            return 0
        if items is None:
            items = run_sync(self._items())
        with self._lock:
            langfuse = session.langfuse
            self._ensure_dataset()
            if self._linked is None:
                linked: dict[str, set[tuple[str, str]]] = {}
                for variant in definition.variants:
                    run = langfuse.dataset_run(definition.dataset, self.run_name(variant))
                    links = (run or {}).get("datasetRunItems") or []
                    linked[variant] = {(i["datasetItemId"], i["traceId"]) for i in links}
                self._linked = linked
            item_ids = {d.id: d.dataset_item_id for d in definition.documents}
            expected = {d.id: d.expected for d in definition.documents}
            written = 0
            for item in items.values():
                outcome = item.outcome
                dataset_item = item_ids.get(item.document)
                if outcome is None or not outcome.trace_id or dataset_item is None:
                    continue
                link = (dataset_item, outcome.trace_id)
                if link in self._linked.setdefault(item.variant, set()):
                    continue
                self._link(item.variant, dataset_item, outcome.trace_id, expected[item.document])
                self._linked[item.variant].add(link)
                written += 1
            return written

    def _ensure_dataset(self) -> None:
        """The experiment's documents in its Langfuse dataset, written (idempotently, by item
        id) when this handle has their texts and the dataset lacks some: an experiment started
        while Langfuse was down gets its dataset once Langfuse answers."""
        documents = self._documents
        if documents is None or self._dataset_checked:
            return
        langfuse = self.session.langfuse
        dataset = self.definition.dataset or self.name
        present = (
            {item.id for item in langfuse.dataset_items(dataset)}
            if langfuse.dataset(dataset) is not None
            else set()
        )
        if any(doc.dataset_item_id not in present for doc in documents):
            langfuse.upsert_dataset(
                dataset,
                description=f"The {len(documents)} claim documents of experiment {self.name}, "
                "with the outcome and fields expected of each.",
                metadata={"experiment": self.name, "created_by": "workbench.experiments"},
            )
            langfuse.upsert_dataset_items(
                dataset,
                [
                    {
                        "id": doc.dataset_item_id,
                        "input": doc.text,
                        "expected_output": doc.expected,
                        "metadata": {"document": doc.id, "experiment": self.name},
                    }
                    for doc in documents
                ],
            )
        self._dataset_checked = True

    def _run_metadata(self, variant: str) -> dict[str, Any]:
        definition = self.definition
        return {
            "experiment": self.name,
            "variant": variant,
            "prompt_versions": self.versions.get(variant, {}),
            "variant_spec": definition.variants[variant].model_dump(),
            "repeats": definition.repeats,
            "review": definition.review,
        }

    def _link(self, variant: str, dataset_item: str, trace_id: str, expected: Any) -> None:
        langfuse = self.session.langfuse
        run = self.run_name(variant)
        versions = self.versions.get(variant, {})
        description = f"Experiment {self.name}, variant {variant}: " + ", ".join(
            f"{k} v{v}" for k, v in sorted(versions.items())
        )
        if not self._span_runs:
            try:
                langfuse.link_run_item(
                    run,
                    dataset_item,
                    trace_id,
                    description=description,
                    metadata=self._run_metadata(variant),
                )
                return
            except RunItemsUnsupportedError:
                self._span_runs = True  # Langfuse v4: runs are spans
        dataset = langfuse.dataset(self.definition.dataset or "")
        if dataset is None:
            raise LangfuseError(f"Dataset {self.definition.dataset!r} is gone from Langfuse.")
        langfuse.link_run_item_as_span(
            run_id=hashlib.sha256(f"{dataset.id}\0{run}".encode()).hexdigest()[:32],
            run=run,
            dataset_id=dataset.id,
            dataset_item_id=dataset_item,
            trace_id=trace_id,
            description=description,
            metadata=self._run_metadata(variant),
            expected_output=expected,
        )


def _check_deadline(
    deadline: float | None, timeout_s: float | None, what: str, now: ExperimentProgress
) -> None:
    if deadline is not None and time.monotonic() > deadline:
        raise ExperimentTimeoutError(
            f"{what} did not finish within {timeout_s:g} s: {now.ended}/{now.total} items ended "
            f"({now.label()}). It goes on in Restate: wait again, or attach later with "
            f"wb.experiments.get({now.name!r})."
        )


def _stalled(now: ExperimentProgress) -> str:
    parts = []
    if now.state == PAUSED:
        parts.append(
            f"Restate paused the experiment itself after it failed for long (last error: "
            f"{now.error}): fix the cause, then exp.resume()"
        )
    if now.counts.get(WAITING):
        parts.append(
            f"{now.counts[WAITING]} claims wait for a human (review='leave'): decide them with "
            "wb.claims.approve(...) or wb.claims.reject(...); the experiment ends after"
        )
    if now.counts.get(PAUSED):
        parts.append(
            f"{now.counts[PAUSED]} claims were paused by Restate after failing for long: fix the "
            "cause, then exp.resume()"
        )
    return f"Experiment {now.name!r}: nothing runs now. " + "; ".join(parts) + "."


def _workflow_state(invocation: dict[str, Any]) -> tuple[str, str | None]:
    status = invocation.get("status")
    failure = invocation.get("last_failure") or None
    if status == "completed":
        if invocation.get("completion_result") == "success":
            return "completed", None
        return "failed", str(invocation.get("completion_failure") or failure or "")
    if status == PAUSED:
        return PAUSED, failure
    if status == "backing-off":
        return RETRYING, failure
    if status in ("pending", "scheduled", "ready", "inboxed"):
        return "pending", failure
    return RUNNING, failure


def _claim_state(invocation: dict[str, Any] | None, waiting: bool) -> str:
    if invocation is None:
        return NOT_STARTED
    status = invocation.get("status")
    if status == PAUSED:
        return PAUSED
    if waiting:
        return WAITING
    if status == "backing-off":
        return RETRYING
    if status == "completed":  # ended, not kept by the experiment yet
        return RUNNING
    return RUNNING


def _check_prompt_versions(session: Session, versions: Mapping[str, int], what: str) -> None:
    """Each pinned version exists (in Langfuse, else in data/prompts/)."""
    for name, version in versions.items():
        if session.has_langfuse:
            meta = session.langfuse.prompt_meta(name)
            known = sorted(meta.versions) if meta is not None else []
        else:
            from services.prompts import index

            known = sorted(e["version"] for e in index() if e["name"] == name)
        if version not in known:
            raise ExperimentError(
                f"{what}: prompt {name!r} has no version {version} (it has "
                f"{', '.join(map(str, known)) or 'none'}). Create it with "
                f"wb.prompts.create({name!r}, text), or pick one of those."
            )


# -- the namespace -------------------------------------------------------------------------------
class Experiments(Namespace):
    """Prompt experiments as durable workflows (`wb.experiments`): `run`, `get`, `list`,
    `new_name`."""

    def run(
        self,
        name: str,
        documents: Iterable[Any] | str,
        variants: Mapping[str, Any],
        *,
        repeats: int = 1,
        review: str = "approve",
        concurrency: int = 16,
    ) -> Experiment:
        """Start the experiment `name`, or attach to it: every document under every variant,
        `repeats` times, as the durable workflow `Experiment/<name>`; returns its handle at once
        (`exp.wait()` shows it run).

        Args:
            name: 1-48 letters, digits, '.', '_', '-'; part of every claim id.
            documents: samples (`wb.samples.pick(30)`: their expected outcome and fields come
                along), claim texts, `(id, text)` pairs, dicts with `document` (and `id`,
                `expected`), or the name of a Langfuse dataset (its items' input is the text,
                their expected output what is expected).
            variants: variant name -> a prompt label (`"production"`) or pinned versions
                (`{"claim-analyst": 3}`; prompts not named come from production). The judge is
                the production judge for every variant unless a variant names `claim-judge`.
            repeats: how many times each document runs under each variant.
            review: claims the analyst sends to review are `approve`d or `reject`ed at once,
                or left to a human (`leave`: decide them with `wb.claims.approve/reject`).
            concurrency: at most this many claims at once.

        Calling it again with the same name and arguments attaches to the running or finished
        experiment (after a dead kernel or a restarted stack it continues where it was, and a
        claim that ran is never run again); other arguments raise ExperimentExistsError.

        Example:
            >>> exp = wb.experiments.run("receipts", wb.samples.pick(30),
            ...                          {"production": "production", "v3": {"claim-analyst": 3}})
            >>> exp.wait().compare("production", "v3").summary
        """
        names.check_part("experiment", name)
        if review not in REVIEW_POLICIES:
            raise ValueError(
                f"review={review!r} is not a policy. Use 'approve' or 'reject' (settle at once), "
                "or 'leave' (a human decides)."
            )
        for label, value in (("repeats", repeats), ("concurrency", concurrency)):
            if isinstance(value, bool) or not isinstance(value, int) or value < 1:
                raise ValueError(f"{label} must be a whole number from 1; got {value!r}.")
        session = self.session
        dataset = documents if isinstance(documents, str) else name
        docs = (
            self._dataset_documents(documents)
            if isinstance(documents, str)
            else _documents_from_list(documents)
        )
        if not isinstance(documents, str):
            for doc in docs:
                doc.dataset_item_id = _dataset_item_id(dataset, doc.id)
        request = ExperimentRequest(
            documents=docs,
            variants=_variants(variants),
            repeats=repeats,
            review=review,
            concurrency=concurrency,
            dataset=dataset if session.has_langfuse else None,
        )
        request.fingerprint = _fingerprint(request)
        exp = Experiment(name, session)
        state = run_sync(exp._state())
        if names.DEFINITION_KEY not in state and run_sync(
            session.restate.invocation(names.EXPERIMENT, name, names.RUN)
        ):  # accepted a moment ago: compare once it has started
            state = self._started_state(exp)
            if names.DEFINITION_KEY not in state:
                return exp  # not started yet (the services are down?): it will start as sent
        if names.DEFINITION_KEY in state:
            exp._load(state)
            if exp.definition.fingerprint != request.fingerprint:
                raise ExperimentExistsError(
                    f"Experiment {name!r} exists with other arguments "
                    f"({_differences(exp.definition, request)}). Its name stays taken while "
                    "Restate keeps it: run under a new name, or attach with "
                    f"wb.experiments.get({name!r})."
                )
            resumed = exp.resume()
            if resumed:
                print(f"Experiment {name!r}: resumed {resumed} invocations Restate had paused.")
            if not isinstance(documents, str):
                exp._documents = docs
            exp._sync_quietly(run_sync(exp._items()))
            return exp
        self._validate(request)
        if not isinstance(documents, str):
            exp._documents = docs
        if request.dataset is not None:
            exp._definition = request.definition()
            try:
                with exp._lock:
                    exp._ensure_dataset()
            except LangfuseError as e:  # the experiment does not need Langfuse to run
                print(
                    f"Langfuse did not take the dataset yet ({e}); the experiment starts anyway "
                    "and its dataset and runs are written when Langfuse answers "
                    "(exp.sync_langfuse(), or any exp.wait/progress/results)."
                )
        body = request.model_dump_json()
        run_sync(session.restate.send(names.EXPERIMENT, name, names.RUN, body))
        self._started_state(exp)  # a moment, so that the handle shows it running
        return exp

    @staticmethod
    def _started_state(exp: Experiment, timeout_s: float = 10.0) -> dict[str, str]:
        deadline = time.monotonic() + timeout_s
        while True:
            state = run_sync(exp._state())
            if names.DEFINITION_KEY in state or time.monotonic() > deadline:
                return state
            time.sleep(0.1)

    def _validate(self, request: ExperimentRequest) -> None:
        """Every label and pinned version exists, before anything is sent (the workflow would
        fail on it, and a failed experiment keeps its name)."""
        from .prompts import Prompts

        labels = None
        for variant_name, variant in request.variants.items():
            if variant.label is not None:
                labels = labels if labels is not None else Prompts(self.session).known_labels()
                if variant.label not in labels:
                    raise UnknownPromptLabelError(
                        f"Variant {variant_name!r}: prompt label {variant.label!r} is on no "
                        f"prompt. Known labels: {', '.join(sorted(labels))}."
                    )
            _check_prompt_versions(self.session, variant.versions, f"Variant {variant_name!r}")

    def _dataset_documents(self, dataset: str) -> list[ExperimentDocument]:
        session = self.session
        if not session.has_langfuse:
            raise ExperimentError(
                f"documents={dataset!r} names a Langfuse dataset, and this stack has no "
                "Langfuse: pass the documents themselves (wb.samples.pick(...), texts)."
            )
        if session.langfuse.dataset(dataset) is None:
            raise ExperimentError(
                f"No Langfuse dataset {dataset!r}. Pass an existing dataset's name, or the "
                "documents themselves (wb.samples.pick(...), texts): the experiment then creates "
                "its dataset."
            )
        out = []
        for item in session.langfuse.dataset_items(dataset):
            if getattr(item, "status", "ACTIVE") != "ACTIVE":
                continue
            text = _item_text(item.input)
            doc = ExperimentDocument(
                id=_safe_id(item.id),
                text=_check_text(item.id, text),
                expected=_expected(item.expected_output),
                dataset_item_id=item.id,
            )
            out.append(doc)
        if not out:
            raise ExperimentError(f"Langfuse dataset {dataset!r} has no active items.")
        out.sort(key=lambda d: d.id)
        return out

    @staticmethod
    def new_name(prefix: str = "experiment") -> str:
        """A fresh experiment name such as `receipts-3f9a0c` (names are single-use while Restate
        keeps an experiment; keep the name to attach again).

        Example:
            >>> name = wb.experiments.new_name("receipts")
        """
        import uuid

        return names.check_part("experiment", f"{prefix}-{uuid.uuid4().hex[:6]}")

    def get(self, name: str) -> Experiment:
        """The experiment `name` (running or finished), by name alone: after a dead kernel or in
        another notebook. ExperimentNotFoundError when there is none.

        Example:
            >>> wb.experiments.get("receipts").progress()
        """
        exp = Experiment(name, self.session)
        exp.progress()  # raises ExperimentNotFoundError
        return exp

    def list(self) -> pd.DataFrame:
        """The experiments Restate knows: name, state, items kept, when it started and ended.

        Example:
            >>> wb.experiments.list()
        """
        restate = self.session.restate
        rows = run_sync(restate.invocations(service=names.EXPERIMENT, handler=names.RUN))
        counts = run_sync(restate.state_counts(names.EXPERIMENT, names.ITEM_KEY_PREFIX))
        out = []
        for row in rows:
            state, error = _workflow_state(row)
            key = str(row["target_service_key"])
            out.append(
                {
                    "name": key,
                    "state": state,
                    "items_ended": counts.get(key, 0),
                    "started": pd.to_datetime(row.get("created_at"), utc=True),
                    "ended": pd.to_datetime(row.get("completed_at"), utc=True),
                    "error": error,
                }
            )
        columns = ["name", "state", "items_ended", "started", "ended", "error"]
        return pd.DataFrame(out, columns=columns)


__getattr__, __dir__ = module_namespace(__name__, Experiments)
