"""Experiments without a stack: documents and variants checked before anything is sent, claim ids,
the plan, the fingerprint that refuses a changed experiment, the comparison's statistics, the
charts, the services' prompt pinning and review policy."""

from __future__ import annotations

import asyncio
import json
from typing import Any

import matplotlib
import numpy as np
import pandas as pd
import pytest

from services import names
from services.experiment import resolve_variants
from services.experiment_types import ExperimentItem, ExperimentRequest, Variant, plan
from services.models import ClaimOutcome, ClaimRequest, Review
from services.prompts import prompt_set
from services.workflow import DurableEnv
from workbench import samples
from workbench.charts import accuracy_bars, decision_matrix, paired_scores
from workbench.charts.experiments import wilson
from workbench.experiments import (
    ExperimentProgress,
    _claim_state,
    _decision,
    _differences,
    _documents_from_list,
    _expected,
    _fields_ok,
    _fingerprint,
    _variants,
    _workflow_state,
    compare_results,
    expected_of,
    paired_bootstrap,
)

matplotlib.use("Agg")


# -- documents, variants, ids ----------------------------------------------------------------------
def test_samples_bring_what_is_expected_of_them() -> None:
    picked = samples.pick(3)
    docs = _documents_from_list(picked)
    assert [d.id for d in docs] == [s.id for s in picked]
    first = docs[0].expected
    assert first == {
        "status": picked[0].status_v1,
        "decision": {"paid": "approve", "rejected": "reject", "review": "review"}.get(
            picked[0].status_v1, picked[0].status_v1
        ),
        "fields": picked[0].expected,
    }


def test_texts_get_ids_from_their_content() -> None:
    text = "Customer ID: C-1001\nAmount: 120 EUR\nCategory: pharmacy"
    once, again = _documents_from_list([text]), _documents_from_list([text])
    assert once[0].id == again[0].id and once[0].id.startswith("doc-")
    assert once[0].expected is None
    pairs = _documents_from_list([("mine-1", text), {"id": "mine-2", "document": text}])
    assert [d.id for d in pairs] == ["mine-1", "mine-2"]


@pytest.mark.parametrize(
    ("documents", "error", "match"),
    [
        ([], ValueError, "needs documents"),
        (["same text here", "same text here"], ValueError, "appear twice"),
        ([42], TypeError, "samples .* claim texts"),
        (["   "], ValueError, "cannot be a claim: The claim document is empty"),
        (["x" * 20_001], ValueError, "20,001 characters"),
        ([("bad id!", "a claim")], ValueError, "Document name 'bad id!' cannot be used"),
    ],
    ids=["empty", "duplicate", "not-a-document", "blank", "too-long", "bad-id"],
)
def test_bad_documents_are_refused_with_the_reason(documents, error, match) -> None:
    with pytest.raises(error, match=match):
        _documents_from_list(documents)


def test_variants_are_labels_or_pinned_versions() -> None:
    found = _variants({"prod": "production", "v3": {"claim-analyst": 3}})
    assert found == {
        "prod": Variant(label="production"),
        "v3": Variant(versions={"claim-analyst": 3}),
    }


@pytest.mark.parametrize(
    ("variants", "match"),
    [
        ({}, "maps each variant's name"),
        ({"a b": "production"}, "Variant name 'a b' cannot be used"),
        ({"v": {"claim-analyst": 0}}, "'claim-analyst': 0 is not a prompt version"),
        ({"v": {"analyst": 3}}, "'analyst': 3 is not a prompt version"),
        ({"v": {"claim-analyst": True}}, "is not a prompt version"),
        ({"v": 3}, "give a prompt label"),
    ],
    ids=["none", "bad-name", "version-0", "unknown-prompt", "bool", "number"],
)
def test_bad_variants_are_refused_with_the_reason(variants, match) -> None:
    with pytest.raises(ValueError, match=match):
        _variants(variants)


def test_claim_ids_derive_from_experiment_variant_document_and_repeat() -> None:
    assert names.experiment_claim_id("exp", "v3", "claim-001", 2) == "exp:v3:claim-001:2"
    with pytest.raises(ValueError, match="Experiment name 'a:b' cannot be used"):
        names.experiment_claim_id("a:b", "v3", "claim-001", 1)
    with pytest.raises(ValueError, match="1-48 letters"):
        names.experiment_claim_id("x" * 49, "v", "d", 1)


def _request(**changes: Any) -> ExperimentRequest:
    base: dict[str, Any] = {
        "documents": _documents_from_list(samples.pick(3)),
        "variants": _variants({"a": "production", "b": {"claim-analyst": 2}}),
        "repeats": 2,
    }
    return ExperimentRequest(**{**base, **changes})


def test_the_plan_pairs_variants_document_by_document() -> None:
    request = _request()
    items = plan("exp", request)
    docs = [d.id for d in request.documents]
    assert [(i.repeat, i.document, i.variant) for i in items[:4]] == [
        (1, docs[0], "a"),
        (1, docs[0], "b"),
        (1, docs[1], "a"),
        (1, docs[1], "b"),
    ]
    assert len(items) == 3 * 2 * 2 and len({i.claim_id for i in items}) == 12
    assert plan("exp", request.definition()) == items  # the same from what the state keeps


def test_the_fingerprint_changes_with_what_defines_the_experiment() -> None:
    base = _fingerprint(_request())
    assert _fingerprint(_request(concurrency=2)) == base  # how fast is not what
    assert _fingerprint(_request(repeats=1)) != base
    assert _fingerprint(_request(review="leave")) != base
    assert _fingerprint(_request(variants=_variants({"a": "production"}))) != base
    other_docs = _documents_from_list(samples.pick(4))
    assert _fingerprint(_request(documents=other_docs)) != base
    said = _differences(_request().definition(), _request(documents=other_docs, repeats=1))
    assert "3 documents there, 4 given" in said and "repeats 2 there, 1 given" in said


def test_request_problems_are_found_before_the_workflow_starts() -> None:
    request = _request(repeats=0)
    request.documents.append(request.documents[0])
    problems = request.problems()
    assert any("document ids repeat" in p for p in problems)
    assert any("at least 1" in p for p in problems)


# -- expected outcomes and result pieces ----------------------------------------------------------
@pytest.mark.parametrize(
    ("raw", "decision"),
    [
        ("paid", "approve"),
        ("rejected", "reject"),
        ({"status": "review"}, "review"),
        ({"decision": "reject", "fields": {"amount": 1}}, "reject"),
        ({"status": "invalid", "amount": 5}, "invalid"),
    ],
)
def test_expected_outputs_name_the_decision_they_expect(raw, decision) -> None:
    assert _expected(raw)["decision"] == decision


def test_expected_fields_are_compared_with_the_parse() -> None:
    sample = samples.get("claim-001")
    outcome = ClaimOutcome.model_validate(
        {
            "claim_id": "x",
            "status": "paid",
            "reason": "ok",
            "decision": "approve",
            "claim": {**sample.expected, "description": "d", "problems": []},
        }
    )
    item = ExperimentItem(claim_id="x", document="claim-001", variant="a", repeat=1)
    item.outcome = outcome
    assert _fields_ok(item, expected_of(sample)) == 1.0
    wrong = outcome.model_copy(update={"claim": outcome.claim.model_copy(update={"amount": 1.0})})
    item.outcome = wrong
    assert _fields_ok(item, expected_of(sample)) == pytest.approx(5 / 6)
    assert _decision(item) == "approve"
    killed = ExperimentItem(claim_id="x", document="d", variant="a", repeat=1, error="killed")
    assert _decision(killed) == "failed"


def test_states_from_restate_rows() -> None:
    assert _workflow_state({"status": "completed", "completion_result": "success"}) == (
        "completed",
        None,
    )
    assert _workflow_state(
        {"status": "completed", "completion_result": "failure", "completion_failure": "boom"}
    ) == ("failed", "boom")
    assert _workflow_state({"status": "backing-off", "last_failure": "down"}) == (
        "retrying",
        "down",
    )
    assert _claim_state(None, False) == "not started"
    assert _claim_state({"status": "suspended"}, True) == "awaiting review"
    assert _claim_state({"status": "paused"}, True) == "paused"


def test_a_stalled_experiment_is_one_where_nothing_runs() -> None:
    def progress(**counts: int) -> ExperimentProgress:
        return ExperimentProgress("e", "running", sum(counts.values()), counts, pd.DataFrame())

    assert progress(paid=3, **{"awaiting review": 2}).stalled
    assert progress(paid=3, paused=3, **{"not started": 4}).stalled  # slots held by paused ones
    assert not progress(paid=3, running=1, **{"awaiting review": 2}).stalled
    assert not progress(paid=3, **{"not started": 1}).stalled  # between two claims
    paused = progress(paid=3, **{"not started": 4})
    paused.state = "paused"
    assert paused.stalled


# -- the comparison --------------------------------------------------------------------------------
def _results(rows: list[tuple[str, str, int, str, str, float]]) -> pd.DataFrame:
    frame = pd.DataFrame(
        [
            {
                "document": doc,
                "variant": variant,
                "repeat": repeat,
                "claim_id": f"e:{variant}:{doc}:{repeat}",
                "status": "paid" if decision == "approve" else "rejected",
                "decision": decision,
                "expected": expected,
                "correct": decision == expected,
                "score": score,
            }
            for doc, variant, repeat, decision, expected, score in rows
        ]
    )
    frame["correct"] = frame["correct"].astype("boolean")
    return frame


def test_compare_counts_wins_ties_losses_and_changed_decisions() -> None:
    rows = [
        ("d1", "a", 1, "approve", "approve", 1.0),
        ("d1", "b", 1, "approve", "approve", 1.0),
        ("d2", "a", 1, "approve", "reject", 0.5),
        ("d2", "b", 1, "reject", "reject", 1.0),
        ("d3", "a", 1, "reject", "reject", 1.0),
        ("d3", "b", 1, "approve", "reject", 0.3),
        ("d4", "a", 1, "approve", "approve", 0.8),
        ("d4", "b", 1, "approve", "approve", 0.9),
    ]
    cmp = compare_results(_results(rows), "a", "b")
    assert (cmp.wins, cmp.ties, cmp.losses) == (2, 1, 1)
    assert cmp.changed["document"].tolist() == ["d2", "d3"]
    accuracy = cmp.summary.loc["accuracy"]
    assert (accuracy["a"], accuracy["b"], accuracy["b - a"]) == (0.75, 0.75, 0.0)
    score = cmp.summary.loc["mean score"]
    assert score["a"] == pytest.approx(0.825) and score["b"] == pytest.approx(0.8)
    assert score["b - a"] == pytest.approx(-0.025)
    assert score["95% CI low"] <= score["b - a"] <= score["95% CI high"]
    again = compare_results(_results(rows), "a", "b")
    assert again.summary.equals(cmp.summary)  # the bootstrap is seeded
    assert "2 wins, 1 ties, 1 losses" in repr(cmp)


def test_compare_averages_repeats_per_document() -> None:
    rows = [
        ("d1", "a", 1, "approve", "approve", 1.0),
        ("d1", "a", 2, "reject", "approve", 0.0),
        ("d1", "a", 3, "approve", "approve", 1.0),
        ("d1", "b", 1, "approve", "approve", 1.0),
        ("d1", "b", 2, "approve", "approve", 1.0),
        ("d1", "b", 3, "approve", "approve", 1.0),
    ]
    cmp = compare_results(_results(rows), "a", "b")
    row = cmp.table.iloc[0]
    assert row["decision_a"] == "approve" and not row["changed"]
    assert row["correct_a"] == pytest.approx(2 / 3) and row["score_a"] == pytest.approx(2 / 3)
    assert np.isnan(cmp.summary.loc["mean score", "95% CI low"])  # one document: no interval


def test_compare_refuses_unknown_or_equal_variants() -> None:
    frame = _results([("d1", "a", 1, "approve", "approve", 1.0)])
    with pytest.raises(ValueError, match="Variant 'z' is not in this experiment; its variants"):
        compare_results(frame, "a", "z")
    with pytest.raises(ValueError, match="two different variants"):
        compare_results(frame, "a", "a")


def test_the_paired_bootstrap_interval_covers_a_known_shift() -> None:
    rng = np.random.default_rng(1)
    differences = 0.2 + rng.normal(0, 0.1, size=200)
    low, high = paired_bootstrap(differences, seed=3)
    assert low < differences.mean() < high
    assert 0.17 < low < 0.2 < high < 0.23
    assert all(np.isnan(paired_bootstrap(np.array([0.5]))))


def test_wilson_interval() -> None:
    low, high = wilson(8, 10)
    assert 0.49 < low < 0.5 and 0.94 < high < 0.95
    assert all(np.isnan(wilson(0, 0)))


def test_charts_draw_a_comparison() -> None:
    rows = [
        ("d1", "a", 1, "approve", "approve", 1.0),
        ("d1", "b", 1, "reject", "approve", 0.7),
        ("d2", "a", 1, "reject", "reject", 1.0),
        ("d2", "b", 1, "reject", "reject", 1.0),
    ]
    results = _results(rows)
    cmp = compare_results(results, "a", "b")
    ax = paired_scores(cmp.table, "a", "b", summary=cmp.summary)
    assert "mean difference" in ax.get_title()
    ax = decision_matrix(cmp.table, "a", "b")
    assert ax.get_title() == "1 of 2 decisions changed"
    assert sorted(t.get_text() for t in ax.texts) == ["0", "0", "1", "1"]
    ax = accuracy_bars(results)
    assert [t.get_text() for t in ax.get_xticklabels()] == ["a", "b"]
    with pytest.raises(ValueError, match="pass exp.compare"):
        paired_scores(cmp.table, "a", "c")
    import matplotlib.pyplot as plt

    plt.close("all")


# -- the services' side ----------------------------------------------------------------------------
@pytest.fixture
def seed_prompts(monkeypatch: pytest.MonkeyPatch) -> None:
    """Prompts from data/prompts/ (no Langfuse keys in the environment)."""
    monkeypatch.delenv("LANGFUSE_PUBLIC_KEY", raising=False)
    monkeypatch.delenv("LANGFUSE_SECRET_KEY", raising=False)


def test_pinned_versions_win_over_the_label(seed_prompts) -> None:
    prompts = asyncio.run(prompt_set("production", {"claim-analyst": 2}))
    assert prompts.versions() == {"claim-parser": 1, "claim-analyst": 2, "claim-judge": 1}
    assert prompts.analyst.label == "pinned"
    with pytest.raises(LookupError, match="Prompt 'claim-analyst' has no version 9"):
        asyncio.run(prompt_set("production", {"claim-analyst": 9}))
    with pytest.raises(LookupError, match="'claim-writer' is not a prompt of the claim agents"):
        asyncio.run(prompt_set("production", {"claim-writer": 1}))


def test_variants_resolve_to_versions_with_one_judge(seed_prompts) -> None:
    resolved = asyncio.run(
        resolve_variants({"prod": Variant(label="production"), "staging": Variant(label="staging")})
    )
    assert resolved["prod"] == {"claim-parser": 1, "claim-analyst": 1, "claim-judge": 1}
    assert resolved["staging"]["claim-analyst"] == 2
    assert resolved["staging"]["claim-judge"] == resolved["prod"]["claim-judge"]


def test_claim_requests_check_pinned_versions() -> None:
    with pytest.raises(ValueError, match="'claim-analyst': 0 is not a version"):
        ClaimRequest(document="a claim", prompt_versions={"claim-analyst": 0})


class _FakeContext:
    def __init__(self) -> None:
        self.sent: list[tuple[Any, ...]] = []

    def key(self) -> str:
        return "exp:v:doc:1"

    def generic_send(self, service: str, handler: str, arg: bytes, key: str) -> None:
        self.sent.append((service, handler, json.loads(arg), key))

    def promise(self, name: str, type_hint: Any = None) -> Any:
        class Promise:
            async def value(self) -> Review:
                return Review(approved=False, reviewer="human")

        return Promise()


@pytest.mark.parametrize(
    ("policy", "approved", "reviewer"),
    [
        ("approve", True, "experiment exp"),
        ("reject", False, "experiment exp"),
        (None, False, "human"),
    ],
)
def test_the_review_policy_settles_or_tells_the_experiment(policy, approved, reviewer) -> None:
    ctx = _FakeContext()
    request = ClaimRequest(document="a claim", review_policy=policy, experiment="exp")
    review = asyncio.run(DurableEnv(ctx, request).await_review())  # type: ignore[arg-type]
    assert (review.approved, review.reviewer) == (approved, reviewer)
    expected = [] if policy else [(names.EXPERIMENT, names.ITEM_WAITING, ctx.key(), "exp")]
    assert ctx.sent == expected
