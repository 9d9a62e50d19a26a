"""One claim = one trace in the embedded Langfuse, read back with the real langfuse SDK; prompts
by label; the judge's score on the claim's trace; claims complete with Langfuse down."""

from __future__ import annotations

import re

import pytest
from langfuse import Langfuse

import workbench as wb

pytestmark = pytest.mark.integration

STEP_SPANS = {"fetch prompts", "convert to EUR", "check fraud", "lookup policy", "reimburse"}


@pytest.fixture(scope="module")
def stack(tmp_path_factory):
    session = wb.start(home=tmp_path_factory.mktemp("tracing-home"), persistent=False)
    try:
        yield session.stack
    finally:
        session.stop()


@pytest.fixture(scope="module")
def langfuse(stack):
    public, secret = stack.langfuse_keys
    client = Langfuse(
        public_key=public, secret_key=secret, base_url=stack.langfuse_url, tracing_enabled=False
    )
    try:
        yield client
    finally:
        client.shutdown()


@pytest.fixture
def production_v1(stack):
    wb.prompts.promote("claim-analyst", 1, "production")
    yield
    wb.prompts.promote("claim-analyst", 1, "production")


def test_a_claim_leaves_one_trace_with_restate_agent_and_step_spans(stack, langfuse) -> None:
    c = wb.submit_claim(wb.samples.pick(status="paid")[0])
    trace_id = c.outcome.trace_id
    assert trace_id and len(trace_id) == 32
    wb.traces.wait(
        trace_id=trace_id, expect=["reimburse", "invocation-end ClaimWorkflow/{key}/run"]
    )
    observations = langfuse.api.observations.get_many(
        trace_id=trace_id, limit=100, fields="core,basic,time,model,usage,prompt,metadata"
    ).data
    names = {o.name for o in observations}
    assert {
        "ingress ClaimWorkflow/{key}/run",
        "invocation-attempt ClaimWorkflow/{key}/run",
    } <= names
    assert {"Parser", "Analyst", "generation", "check_fraud"} <= names
    agents = sorted(o.name for o in observations if o.type == "AGENT")
    assert agents == ["Analyst", "Parser"], "one span per agent run, no run-root span beside it"
    assert "turn" not in names, "the SDK's turn spans are not recorded"
    assert STEP_SPANS <= names
    assert {o.trace_id for o in observations} == {trace_id}
    generations = [o for o in observations if o.type == "GENERATION"]
    assert len(generations) == 3  # parse, analyst's tool call turn, analyst's decision
    assert {(g.prompt_name, g.prompt_version) for g in generations} == {
        ("claim-parser", 1),
        ("claim-analyst", 1),
    }
    assert all(g.usage_details and g.usage_details.get("input", 0) > 0 for g in generations)
    service_spans = [o for o in observations if o.name in STEP_SPANS]
    assert {o.version for o in service_spans} == {"v1"}


def test_the_judge_scores_the_claim_trace(stack, langfuse) -> None:
    c = wb.submit_claim(wb.samples.pick(status="rejected")[0])
    wb.scores.wait(c, timeout_s=20)
    scores = langfuse.api.scores.get_many(
        trace_id=c.outcome.trace_id, name="quality", fields="details,subject"
    ).data
    assert len(scores) == 1
    score = scores[0]
    assert 0.0 <= score.value <= 1.0
    assert score.comment
    assert score.metadata["claim_id"] == c.id


def test_new_claims_follow_the_label_and_a_waiting_claim_keeps_its_versions(
    stack, production_v1
) -> None:
    no_receipt = next(s for s in wb.samples.pick(status="paid") if s.status_v2 == "rejected")
    waiting = wb.submit_claim(wb.samples.pick(status="review")[0])
    assert waiting.status == "awaiting review"

    wb.prompts.promote("claim-analyst", 2, "production")
    after = wb.submit_claim(no_receipt)
    assert after.outcome.prompt_versions["claim-analyst"] == 2
    assert after.status == "rejected"

    done = wb.claims.approve(waiting.id)
    assert done.status == "paid"
    assert done.outcome.prompt_versions["claim-analyst"] == 1, "replay reuses the fetched prompts"


def test_a_label_known_only_to_langfuse_is_accepted_and_an_unknown_one_refused(
    stack, production_v1
) -> None:
    wb.prompts.promote("claim-analyst", 2, "candidate")
    c = wb.submit_claim(wb.samples.pick(status="paid")[1], prompt_label="candidate")
    assert c.outcome.prompt_versions["claim-analyst"] == 2
    assert c.outcome.prompt_versions["claim-parser"] == 1  # falls back to production
    with pytest.raises(ValueError, match="label 'nonexistent' is on no prompt"):
        wb.submit_claim("Customer C-1001 claims 20 EUR", prompt_label="nonexistent")


def test_claims_complete_while_langfuse_is_down(stack) -> None:
    with stack.stopped("langfuse"):
        c = wb.submit_claim(wb.samples.pick(status="paid")[2])
        assert c.status == "paid"
        assert c.outcome.prompt_versions["claim-analyst"] == 1  # the seed prompts stood in
    log = stack.logs("services", 400)
    assert re.search(r"Langfuse at \S+ is unreachable", log), log  # one line per outage
