"""An experiment end to end on a real stack: 2 variants x 20 documents, the services killed
mid-run and the whole stack stopped and started again; then every item ran exactly once (model
requests and payments counted by the services' own records), Langfuse holds one dataset run of 20
items per variant, and a re-judging scores every claim once more without running it again."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pandas as pd
import pytest

import workbench as wb
from services import names
from workbench.stack.config import DEFAULT_PORTS
from workbench.stack.ports import free_ports

pytestmark = pytest.mark.integration

VARIANTS = {"production": "production", "v2": {"claim-analyst": 2}}
STRICT = "- [receipt] (weight 2)"


def _ended(exp: wb.Experiment) -> set[str]:
    frame = exp.results(tokens=False)
    return set(frame.loc[frame["status"].isin(names.FINAL_STATUSES), "claim_id"])


def _journaled_model_calls(claim_id: str) -> int:
    journal = wb.claims.get(claim_id).journal_entries
    runs = journal[journal["entry_type"] == "Command: Run"]
    return int((runs["name"] == names.CALL_LLM).sum())


@pytest.fixture
def stack_options(home: Path) -> Iterator[dict[str, Any]]:
    """The same ports for both starts (Restate finds the services where it left them)."""
    ports = dict(zip(DEFAULT_PORTS, free_ports(len(DEFAULT_PORTS)), strict=True))
    yield {
        "home": home,
        "persistent": False,
        "timeout_s": 180,  # a shared machine may be slow to start five processes
        "llm_latency_ms": 200,
        **{f"{name}_port": port for name, port in ports.items()},
    }


def test_an_interrupted_experiment_runs_every_item_exactly_once(stack_options) -> None:
    docs = wb.samples.pick(20)
    session = wb.start(**stack_options)
    try:
        exp = wb.experiments.run("resume", docs, VARIANTS, concurrency=3)
        assert exp.wait(until=6, progress=False, timeout_s=180).progress().ended >= 6
        before_kill = _ended(exp)
        counts_at_kill = exp.evidence()
        session.stack.kill("services")  # supervisord restarts it; Restate retries

        exp.wait(until=len(before_kill) + 6, progress=False, timeout_s=180)
        before_restart = _ended(exp)
        counts_at_restart = exp.evidence()
        every = set(exp.results(tokens=False)["claim_id"])
        assert before_restart < every, "the experiment finished before the restart"
        session.stop()  # the whole stack down (python -m workbench down), then up again

        session = wb.start(**stack_options)
        exp = wb.experiments.run("resume", docs, VARIANTS, concurrency=3)  # attaches
        exp.wait(progress=False, timeout_s=300)
        results = exp.results()
        evidence = exp.evidence()

        # every item ended, each claim id ran as one workflow invocation
        assert len(results) == 40 and results["status"].isin(names.FINAL_STATUSES).all()
        runs = wb.current().restate
        from workbench._aio import run_sync

        invocations = run_sync(
            runs.invocations(service=names.WORKFLOW, key_prefix="resume:", handler=names.RUN)
        )
        assert sorted(r["target_service_key"] for r in invocations) == sorted(results["claim_id"])

        # nothing that had ended ran again: the same model requests before and after
        for snapshot, ended in ((counts_at_kill, before_kill), (counts_at_restart, before_restart)):
            for claim_id in ended:
                assert (
                    evidence.loc[claim_id, "model_requests"]
                    == (snapshot.loc[claim_id, "model_requests"])
                ), claim_id
        # a claim sends each journaled model call once; one interrupted by a crash at most once
        # more per extra attempt (the call in flight when it died)
        for claim_id, row in evidence.iterrows():
            journaled = _journaled_model_calls(str(claim_id))
            extra = row["model_requests"] - journaled
            assert 0 <= extra <= max(0, row["attempts"] - 1), (claim_id, journaled, dict(row))
        assert (evidence["attempts"] == 1).sum() >= 20  # most never noticed the interruptions

        # one payment per paid claim, none for the others
        paid = set(results.loc[results["status"] == "paid", "claim_id"])
        assert paid and (evidence.loc[sorted(paid), "payments"] == 1).all()
        assert (evidence.drop(index=sorted(paid))["payments"] == 0).all()
        assert len(wb.ledger(sorted(results["claim_id"]))) == len(paid)

        # scores for every claim the judge could score; the comparison reads them
        scored = results.dropna(subset=["score"])
        assert len(scored) >= 36 and results["expected"].notna().all()
        cmp = exp.compare("production", "v2")
        assert cmp.wins + cmp.ties + cmp.losses == 20

        # Langfuse: one dataset run per variant, 20 items each, linked to the claims' traces
        langfuse = session.langfuse
        for variant in VARIANTS:
            run = langfuse.dataset_run("resume", exp.run_name(variant))
            assert run is not None
            items = run["datasetRunItems"]
            assert len(items) == 20 and len({i["datasetItemId"] for i in items}) == 20
            mine = results[results["variant"] == variant]
            assert {i["traceId"] for i in items} == set(mine["trace_id"])
        assert exp.sync_langfuse() == 0  # linked once: attaching again adds nothing

        # re-judging: one judge call per judged claim, none for a second request
        judge = wb.prompts.get("claim-judge", version=1).as_text()
        assert STRICT in judge
        stricter = wb.prompts.ensure(
            "claim-judge", judge.replace(STRICT, STRICT.replace("weight 2", "weight 6"))
        )
        judged_before = evidence["judge_requests"].copy()
        rejudged = exp.rejudge(stricter.version, progress=False, timeout_s=120)
        assert rejudged["score"].notna().sum() == len(scored)
        assert (rejudged.dropna(subset=["score"])["judge_version"] == stricter.version).all()
        after = exp.evidence()["judge_requests"]
        assert ((after - judged_before)[scored["claim_id"]] == 1).all()
        exp.rejudge(stricter.version, progress=False, timeout_s=60)
        assert exp.evidence()["judge_requests"].equals(after)  # asked again: nothing re-ran
        new_name = names.rejudge_score_name(stricter.version)
        in_langfuse = wb.scores.get(trace_ids=list(scored["trace_id"]), name=new_name, join=False)
        assert len(in_langfuse) == len(scored)
        stricter_cmp = exp.compare("production", "v2", judge=stricter.version)
        assert isinstance(stricter_cmp.summary, pd.DataFrame)
    finally:
        session.stop()


def test_a_changed_experiment_is_refused_and_a_missing_one_said(home: Path) -> None:
    session = wb.start(home=home, persistent=False, timeout_s=180)
    try:
        docs = wb.samples.pick(2)
        exp = wb.experiments.run("small", docs, {"p": "production"}, review="reject")
        with pytest.raises(wb.ExperimentExistsError, match="2 documents there, 3 given"):
            wb.experiments.run("small", wb.samples.pick(3), {"p": "production"})
        with pytest.raises(wb.ExperimentExistsError, match="review 'reject' there, 'approve'"):
            wb.experiments.run("small", docs, {"p": "production"})
        with pytest.raises(wb.ExperimentNotFoundError, match="No experiment 'nope'"):
            wb.experiments.get("nope")
        with pytest.raises(wb.UnknownPromptLabelError, match="label 'nolabel' is on no prompt"):
            wb.experiments.run("bad-label", docs, {"p": "nolabel"})
        with pytest.raises(wb.ExperimentError, match="has no version 99"):
            wb.experiments.run("bad-version", docs, {"p": {"claim-analyst": 99}})
        exp.wait(progress=False, timeout_s=120)
        assert wb.experiments.list().set_index("name").loc["small", "items_ended"] == 2
        assert "bad-label" not in set(wb.experiments.list()["name"])  # nothing was started
    finally:
        session.stop()
