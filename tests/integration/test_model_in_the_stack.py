"""The embedded model's behaviour seen end to end, through the real stack (restate-server, the
services, the embedded model and Langfuse): a clause it cannot apply is kept in the outcome and
shows as a WARNING observation on the claim's trace; claims in other languages, nonsense amounts
and unknown customers end as a careful reader would expect."""

from __future__ import annotations

import warnings
from pathlib import Path

import pytest
from langfuse import Langfuse

import workbench as wb

pytestmark = pytest.mark.integration

ANALYST_V1 = Path(__file__).resolve().parents[2] / "data" / "prompts" / "claim-analyst.v1.md"


@pytest.fixture(scope="module")
def stack(tmp_path_factory):
    session = wb.start(home=tmp_path_factory.mktemp("model-home"), persistent=False)
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


def test_a_clause_the_model_cannot_apply_is_kept_and_traced_as_a_warning(stack, langfuse) -> None:
    text = ANALYST_V1.read_text(encoding="utf-8").replace(
        "5. [review]",
        "5. [weekend] Reject claims submitted on a weekend.\n"
        "6. [travel] Send every travel claim to human review.\n7. [review]",
    )
    langfuse.create_prompt(name="claim-analyst", prompt=text, labels=["weekend-rule"])
    c = wb.submit_claim(
        "Customer C-1003: pharmacy, 2026-03-02, 40 EUR, receipt attached.",
        prompt_label="weekend-rule",
    )
    assert c.status == "paid", c.outcome
    assert c.outcome.unrecognized_clauses == [
        "[weekend] Reject claims submitted on a weekend. (not understood: submitted, weekend)"
    ]
    assert "Not applied (not understood): [weekend]." in c.outcome.reason
    wb.traces.wait(c, expect=["clauses not applied", "reimburse"])
    observations = langfuse.api.observations.get_many(
        trace_id=c.outcome.trace_id, limit=100, fields="core,basic"
    ).data
    [warning] = [o for o in observations if o.name == "clauses not applied"]
    assert warning.level == "WARNING"
    assert "[weekend] Reject claims submitted on a weekend." in (warning.status_message or "")

    travel = wb.submit_claim(
        "Customer C-1003: hotel after a cancelled flight, 2026-02-27, 300 EUR, receipt attached.",
        prompt_label="weekend-rule",
    )
    assert travel.status == "awaiting review"  # the new [travel] clause applies
    assert wb.claims.reject(travel, reviewer="ana").status == "rejected"


def test_a_german_claim_is_paid_and_judged_item_by_item(stack, langfuse) -> None:
    c = wb.submit_claim(
        "Kundennr.: K-77\nDatum der Leistung: 14. Oktober 2026\nneue Brille beim Optiker\n"
        "Betrag: 12.450,00 CZK\nBeleg: liegt bei"
    )
    assert c.status == "paid", c.outcome
    assert (c.outcome.claim.customer_id, c.outcome.amount_eur) == ("K-77", 498.0)
    wb.scores.wait(c, timeout_s=30)
    [score] = langfuse.api.scores.get_many(
        trace_id=c.outcome.trace_id, name="quality", fields="details"
    ).data
    assert score.value == 1.0
    for item in ("[consistent]", "[amount]", "[reason]", "[receipt]", "[fraud]"):
        assert item in score.comment


@pytest.mark.parametrize(
    ("document", "status", "reason"),
    [
        (
            "Customer ID: C-1008\nDate: 2026-02-10\nCategory: pharmacy\nAmount: 0.001 EUR",
            "invalid",
            "less than one cent",
        ),
        (
            "Customer ID: C-1008\nDate of service: 2062-03-14\nCategory: pharmacy\n"
            "Amount: 85.00 EUR",
            "invalid",
            "after today",
        ),
        (
            "Mi número de cliente es CUST-4411. El 5 de noviembre de 2026 pagué 95,00 € en la "
            "farmacia. Adjunto el recibo.",
            "rejected",
            "unknown customer CUST-4411",
        ),
    ],
    ids=["tenth-of-a-cent", "future-date", "unknown-customer"],
)
def test_what_makes_no_sense_ends_with_a_reason(
    stack, document: str, status: str, reason: str
) -> None:
    c = wb.submit_claim(document)
    assert c.status == status and reason in c.outcome.reason, c.outcome
    assert c.outcome.paid_eur is None


def test_creating_a_prompt_with_a_clause_the_model_cannot_apply_warns(stack) -> None:
    text = (
        ANALYST_V1.read_text(encoding="utf-8") + "\n9. [moon] Reject claims filed at full moon.\n"
    )
    with pytest.warns(wb.display.WorkbenchWarning, match=r"will not apply 1 clause.*\[moon\]"):
        created = wb.prompts.create("claim-analyst", text, labels=["moon-rule"])
    assert len(created.unrecognized_clauses) == 1 and "[moon]" in created.unrecognized_clauses[0]
    assert "does not apply these clauses" in created._repr_html_()
    understood = ANALYST_V1.read_text(encoding="utf-8")
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # a prompt it fully understands: no warning
        assert wb.prompts.create("claim-analyst", understood).unrecognized_clauses == ()
