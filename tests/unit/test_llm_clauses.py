"""The clauses the analyst applies by their wording, and the ones it reports instead of ignoring."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest
from starlette.testclient import TestClient

from services.models import ClaimAssessment
from workbench.local.llm import clauses, create_app, unrecognized_clauses
from workbench.local.llm.analyst import assess

PROMPTS = Path(__file__).resolve().parents[2] / "data" / "prompts"
ANALYST_V1 = (PROMPTS / "claim-analyst.v1.md").read_text(encoding="utf-8")
ANALYST_V2 = (PROMPTS / "claim-analyst.v2.md").read_text(encoding="utf-8")
CLEAN = {"customer_id": "C-1001", "flagged": False, "reason": None}
FLAGGED = {"customer_id": "C-1001", "flagged": True, "reason": "case F-1"}
STANDARD = {
    "customer_id": "C-1001",
    "found": True,
    "plan": "standard",
    "covered": True,
    "per_claim_limit_eur": 3000.0,
    "review_threshold_eur": 1500.0,
}
UNKNOWN = {
    "customer_id": "CUST-4411",
    "found": False,
    "plan": None,
    "covered": False,
    "per_claim_limit_eur": None,
    "review_threshold_eur": None,
}


def claim(**changes: Any) -> dict[str, Any]:
    base = {
        "customer_id": "C-1001",
        "claim_date": "2026-03-01",
        "amount": 100.0,
        "currency": "EUR",
        "category": "pharmacy",
        "has_receipt": True,
        "description": "",
        "problems": [],
    }
    return base | changes


def decide(prompt: str, eur: float = 100.0, fraud: dict = CLEAN, policy: dict = STANDARD,
           submitted_on: str = "2026-03-10", **changes: Any) -> dict[str, Any]:  # fmt: skip
    result = assess(
        claim(**changes), eur, fraud, policy, clauses.parse_clauses(prompt), submitted_on
    )
    ClaimAssessment.model_validate(result)
    return result


def test_the_shipped_prompts_are_understood_completely() -> None:
    for prompt in (ANALYST_V1, ANALYST_V2):
        read = clauses.parse_clauses(prompt)
        assert [c.id for c in read] == ["fraud", "coverage", "limit", "receipt", "review"]
        assert all(c.understood for c in read), [c.problem for c in read]
        assert unrecognized_clauses(prompt) == []


FORMS = {
    # clause text, changes to the claim, amount in EUR, expected decision
    "fraud": ("Reject the claim when the fraud check flags the customer.", {}, 100.0, "approve"),
    "receipt-above-amount": (
        "Reject claims of 200 EUR or more that have no receipt.",
        {"has_receipt": False},
        200.0,
        "reject",
    ),  # fmt: skip
    "receipt-below-amount": (
        "Reject claims of 200 EUR or more that have no receipt.",
        {"has_receipt": False},
        199.99,
        "approve",
    ),  # fmt: skip
    "receipt-any-amount": (
        "Reject any claim that has no receipt, whatever its amount.",
        {"has_receipt": False},
        5.0,
        "reject",
    ),  # fmt: skip
    "receipt-above-words": (
        "Send claims above €100 without a receipt to human review.",
        {"has_receipt": False},
        150.0,
        "review",
    ),  # fmt: skip
    "review-above-amount": ("Send claims above 1,000 EUR to human review.", {}, 1000.01, "review"),
    "review-not-above": ("Send claims above 1,000 EUR to human review.", {}, 1000.0, "approve"),
    "review-plan-threshold": (
        "Send the claim to human review when amount_eur is above the plan's review threshold.",
        {},
        1600.0,
        "review",
    ),  # fmt: skip
    "cap-plan-limit": (
        "Reject the claim when amount_eur is above the plan's per-claim limit.",
        {},
        3100.0,
        "reject",
    ),  # fmt: skip
    "cap-fixed": ("Decline claims over 500 euros.", {}, 500.5, "reject"),
    "category-review": (
        "Send every travel claim to human review.",
        {"category": "travel"},
        50.0,
        "review",
    ),  # fmt: skip
    "category-review-other-category": (
        "Send every travel claim to human review.",
        {},
        50.0,
        "approve",
    ),  # fmt: skip
    "category-exclusion": (
        "Cosmetic claims are not covered.",
        {"category": "cosmetic"},
        50.0,
        "reject",
    ),  # fmt: skip
    "category-list": (
        "Reject travel or dental claims above EUR 500.",
        {"category": "dental"},
        600.0,
        "reject",
    ),  # fmt: skip
    "age-window": (
        "Reject claims older than 90 days.",
        {"claim_date": "2025-11-01"},
        50.0,
        "reject",
    ),  # fmt: skip
    "age-window-inside": (
        "Reject claims older than 90 days.",
        {"claim_date": "2026-01-01"},
        50.0,
        "approve",
    ),  # fmt: skip
    "age-months": (
        "Reject claims not submitted within 6 months of the expense.",
        {"claim_date": "2025-09-01"},
        50.0,
        "reject",
    ),  # fmt: skip
    "approve-small": ("Approve claims below 50 EUR.", {"has_receipt": False}, 49.0, "approve"),
    "coverage": (
        "Reject the claim when the plan does not cover the claim's category.",
        {"category": "veterinary"},
        50.0,
        "approve",
    ),  # covered flag comes from the tool  # fmt: skip
}


@pytest.mark.parametrize(
    ("text", "changes", "eur", "decision"), list(FORMS.values()), ids=list(FORMS)
)
def test_each_clause_form_is_applied_by_its_wording(
    text: str, changes: dict[str, Any], eur: float, decision: str
) -> None:
    clause = clauses.read_clause("x", text)
    assert clause.understood, clause.problem
    result = decide(f"1. [x] {text}", eur, **changes)
    assert result["decision"] == decision, result["reason"]
    assert result["unrecognized_clauses"] == []
    if decision != "approve" or "approve" in text.lower():
        assert result["clauses"] == ["x"] and result["reason"].startswith("[x] ")


def test_the_first_matching_clause_decides_and_every_match_is_listed() -> None:
    result = decide(ANALYST_V1, 3100.0)
    assert (result["decision"], result["clauses"]) == ("reject", ["limit", "review"])
    assert result["reason"].startswith("[limit] ") and "3100.00 EUR" in result["reason"]
    flagged = decide(ANALYST_V1, 3100.0, fraud=FLAGGED, has_receipt=False)
    assert flagged["clauses"][0] == "fraud" and flagged["decision"] == "reject"


def test_a_users_new_clause_changes_the_decision() -> None:
    prompt = ANALYST_V1.replace(
        "5. [review]", "5. [travel] Send every travel claim to human review.\n6. [review]"
    )
    assert decide(ANALYST_V1, 80.0, category="travel")["decision"] == "approve"
    result = decide(prompt, 80.0, category="travel")
    assert (result["decision"], result["clauses"]) == ("review", ["travel"])
    assert "category travel" in result["reason"]


def test_an_unknown_customer_is_rejected_by_name_with_or_without_a_coverage_clause() -> None:
    with_clause = decide(ANALYST_V1, 95.0, policy=UNKNOWN, customer_id="CUST-4411")
    assert with_clause["decision"] == "reject" and with_clause["clauses"][0] == "coverage"
    assert "unknown customer CUST-4411" in with_clause["reason"]
    only_review = "1. [review] Send claims above 1,000 EUR to human review."
    without = decide(only_review, 95.0, policy=UNKNOWN, customer_id="CUST-4411")
    assert without["decision"] == "reject"
    assert without["reason"].startswith("Unknown customer CUST-4411")


def test_a_clause_it_cannot_apply_is_reported_never_silently_ignored() -> None:
    prompt = ANALYST_V1 + (
        "\n6. [weekend] Reject claims submitted on a weekend."
        "\n7. [cap] Pay at most 500 EUR per claim."
        "\n8. [tone] Be polite."
    )
    result = decide(prompt, 100.0)
    assert result["decision"] == "approve"  # the understood clauses still apply
    assert result["unrecognized_clauses"] == [
        "[weekend] Reject claims submitted on a weekend. (not understood: submitted, weekend)",
        "[cap] Pay at most 500 EUR per claim. (caps and partial payments are not supported "
        "(only reject/review/approve))",
        "[tone] Be polite. (no action (reject, review or approve))",
    ]
    assert result["reason"].endswith("Not applied (not understood): [weekend], [cap], [tone].")
    assert unrecognized_clauses(prompt) == result["unrecognized_clauses"]


@pytest.mark.parametrize(
    ("text", "why"),
    [
        ("Reject claims from customers in Germany.", "not understood: from, customers, germany"),
        ("Reject claims above 500.", "not understood: above, 500"),
        ("Reject claims for vision above 300 dollars.", "not understood: above, 300, dollars"),
        ("Escalate claims with a doctor's note.", "not understood: doctor's, note"),
        ("Travel claims.", "no action"),
    ],
)
def test_partly_understood_clauses_are_not_applied(text: str, why: str) -> None:
    clause = clauses.read_clause("x", text)
    assert not clause.understood and why in str(clause.problem)
    result = decide(f"1. [x] {text}", 600.0, category="vision")
    assert result["decision"] == "approve" and len(result["unrecognized_clauses"]) == 1


def test_numbered_instructions_are_not_clauses_but_numbered_rules_are() -> None:
    prompt = "Steps:\n1. Call both tools.\n2. Reject claims above 900 EUR.\n3. Be concise."
    read = clauses.parse_clauses(prompt)
    assert [(c.id, c.understood) for c in read] == [("2", True)]
    assert decide(prompt, 950.0)["clauses"] == ["2"]


def test_an_age_clause_without_dates_sends_the_claim_to_a_human() -> None:
    result = decide("1. [age] Reject claims older than 90 days.", 50.0, claim_date=None)
    assert result["decision"] == "review" and "could not be checked" in result["reason"]


def test_the_analyst_reports_unrecognized_clauses_over_http() -> None:
    prompt = ANALYST_V1 + "\n6. [weekend] Reject claims submitted on a weekend."
    user = json.dumps({"claim": claim(), "amount_eur": 100.0, "submitted_on": "2026-03-10"})
    tool_messages = [
        {"role": "system", "content": prompt},
        {"role": "user", "content": user},
        {
            "role": "assistant",
            "tool_calls": [
                {
                    "id": "a",
                    "type": "function",
                    "function": {"name": "check_fraud", "arguments": "{}"},
                },  # fmt: skip
                {
                    "id": "b",
                    "type": "function",
                    "function": {"name": "lookup_policy", "arguments": "{}"},
                },  # fmt: skip
            ],
        },
        {"role": "tool", "tool_call_id": "a", "content": json.dumps(CLEAN)},
        {"role": "tool", "tool_call_id": "b", "content": json.dumps(STANDARD)},
    ]
    schema = {"title": "ClaimAssessment", "type": "object", "properties": {}}
    body = {
        "model": "m",
        "messages": tool_messages,
        "response_format": {"type": "json_schema", "json_schema": {"name": "o", "schema": schema}},
    }
    with TestClient(create_app()) as http:
        answer = http.post("/v1/chat/completions", json=body).json()
    assessment = json.loads(answer["choices"][0]["message"]["content"])
    assert assessment["unrecognized_clauses"] == [
        "[weekend] Reject claims submitted on a weekend. (not understood: submitted, weekend)"
    ]
