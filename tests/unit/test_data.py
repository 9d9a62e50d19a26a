"""The data in data/ and the embedded model's rules agree: every claim parses as the manifest says
and ends with the manifest's status under both analyst prompt versions."""

from __future__ import annotations

import json
from collections import Counter
from datetime import date
from pathlib import Path
from statistics import mean, quantiles
from typing import Any

import pytest

from services.flow import nonsense
from services.models import (
    CATEGORIES,
    ClaimAssessment,
    ClaimData,
    FraudCheck,
    JudgeVerdict,
    PolicyInfo,
    Valuation,
)
from workbench.local.llm import analyst, judge, parser

DATA = Path(__file__).resolve().parents[2] / "data"
MANIFEST: list[dict[str, Any]] = json.loads(
    (DATA / "claims" / "manifest.json").read_text(encoding="utf-8")
)
FX: dict[str, float] = json.loads((DATA / "fx.json").read_text(encoding="utf-8"))["rates"]
POLICIES: dict[str, Any] = json.loads((DATA / "policies.json").read_text(encoding="utf-8"))
FLAGGED: dict[str, str] = json.loads((DATA / "fraud.json").read_text(encoding="utf-8"))["flagged"]
PROMPTS: list[dict[str, Any]] = json.loads(
    (DATA / "prompts" / "index.json").read_text(encoding="utf-8")
)
IDS = [entry["id"] for entry in MANIFEST]
TODAY = date.today().isoformat()


def prompt(name: str, version: int) -> str:
    entry = next(p for p in PROMPTS if p["name"] == name and p["version"] == version)
    return (DATA / "prompts" / entry["file"]).read_text(encoding="utf-8")


def document(entry: dict[str, Any]) -> str:
    return (DATA / "claims" / entry["file"]).read_text(encoding="utf-8")


def invalid_reason(claim: ClaimData) -> str | None:
    """The workflow's invalid-input convention (data/README.md): what makes a claim invalid."""
    if claim.customer_id is None:
        return "customer id missing"
    if claim.amount is None or claim.amount <= 0:
        return "amount missing or unreadable"
    if claim.currency is None:
        return "currency missing"
    if claim.currency not in FX:
        return f"unknown currency {claim.currency}"
    if claim.category is None:
        return "category missing"
    customer = POLICIES["customers"].get(claim.customer_id) or {}
    valuation = Valuation(
        amount_eur=amount_eur(claim),
        rate=FX[claim.currency],
        today=TODAY,
        policy_start=customer.get("since"),
    )
    return nonsense(claim, valuation)  # the workflow's own check: cents, future, policy window


def amount_eur(claim: ClaimData) -> float:
    assert claim.amount is not None and claim.currency is not None
    return round(claim.amount * FX[claim.currency], 2)


def fraud_check(customer_id: str) -> FraudCheck:
    reason = FLAGGED.get(customer_id)
    return FraudCheck(customer_id=customer_id, flagged=reason is not None, reason=reason)


def lookup_policy(customer_id: str, category: str) -> PolicyInfo:
    customer = POLICIES["customers"].get(customer_id)
    if customer is None:
        return PolicyInfo(
            customer_id=customer_id,
            found=False,
            plan=None,
            covered=False,
            per_claim_limit_eur=None,
            review_threshold_eur=None,
        )
    plan = POLICIES["plans"][customer["plan"]]
    return PolicyInfo(
        customer_id=customer_id,
        found=True,
        plan=customer["plan"],
        covered=category in plan["covered"],
        per_claim_limit_eur=plan["per_claim_limit_eur"],
        review_threshold_eur=plan["review_threshold_eur"],
    )


def run_claim(entry: dict[str, Any], version: int) -> tuple[str, dict[str, Any] | None]:
    """(status before any human decision, judge input) of a claim under analyst version N."""
    claim = ClaimData.model_validate(parser.parse_claim(document(entry)))
    if invalid_reason(claim):
        return "invalid", None
    assert claim.customer_id and claim.category
    eur = amount_eur(claim)
    fraud = fraud_check(claim.customer_id).model_dump()
    policy = lookup_policy(claim.customer_id, claim.category).model_dump()
    clauses = analyst.parse_clauses(prompt("claim-analyst", version))
    raw = analyst.assess(claim.model_dump(), eur, fraud, policy, clauses, TODAY)
    assessment = ClaimAssessment.model_validate(raw)
    status = {"approve": "paid", "reject": "rejected", "review": "review"}[assessment.decision]
    evidence = {
        "claim": claim.model_dump(),
        "amount_eur": eur,
        "assessment": raw,
        "fraud": fraud,
        "policy": policy,
        "final_status": status,
        "document": document(entry),
        "analyst_policy": prompt("claim-analyst", version),
        "submitted_on": TODAY,
    }
    return status, evidence


@pytest.mark.parametrize("entry", MANIFEST, ids=IDS)
def test_parser_reads_the_expected_fields(entry: dict[str, Any]) -> None:
    parsed = parser.parse_claim(document(entry))
    ClaimData.model_validate(parsed)
    assert {key: parsed[key] for key in entry["expected"]} == entry["expected"]


@pytest.mark.parametrize("version", [1, 2], ids=["analyst-v1", "analyst-v2"])
@pytest.mark.parametrize("entry", MANIFEST, ids=IDS)
def test_claim_ends_with_the_expected_status(entry: dict[str, Any], version: int) -> None:
    status, _ = run_claim(entry, version)
    assert status == entry[f"status_v{version}"], entry["notes"]


INVALID = [e for e in MANIFEST if e["status_v1"] == "invalid"]


@pytest.mark.parametrize("entry", INVALID, ids=[e["id"] for e in INVALID])
def test_invalid_claims_name_their_problem(entry: dict[str, Any]) -> None:
    claim = ClaimData.model_validate(parser.parse_claim(document(entry)))
    reason = invalid_reason(claim)
    assert reason is not None
    if reason.startswith("The "):  # the workflow's date and amount checks say it themselves
        assert any(word in reason for word in ("cent", "after today", "before the policy"))
        return
    assert claim.problems, "the parse must say what is wrong"
    word = reason.split()[0] if not reason.startswith("unknown") else "currency"
    assert any(word in problem for problem in claim.problems), (reason, claim.problems)


def test_an_unknown_customer_is_rejected_naming_it() -> None:
    entry = next(e for e in MANIFEST if e["expected"]["customer_id"] == "CUST-4411")
    _, evidence = run_claim(entry, 1)
    assert evidence is not None
    assert evidence["final_status"] == "rejected"
    assert "unknown customer CUST-4411" in evidence["assessment"]["reason"]


def test_manifest_covers_every_document_and_the_required_cases() -> None:
    files = sorted(p.name for p in (DATA / "claims").glob("*.txt"))
    assert sorted(e["file"] for e in MANIFEST) == files
    assert len(set(IDS)) == len(IDS) >= 87
    v1, v2 = Counter(e["status_v1"] for e in MANIFEST), Counter(e["status_v2"] for e in MANIFEST)
    assert v1["invalid"] >= 6 and v1["review"] >= 5 and v1["paid"] >= 20
    assert v2["rejected"] > v1["rejected"] and v2["paid"] < v1["paid"]
    assert sum(e["expected"]["customer_id"] in FLAGGED for e in MANIFEST) >= 4
    differ = [e for e in MANIFEST if e["status_v1"] != e["status_v2"]]
    assert len(differ) >= 3 and all(e["expected"]["has_receipt"] is False for e in differ)
    currencies = {e["expected"]["currency"] for e in MANIFEST}
    assert {"EUR", "USD", "GBP", "CHF", "JPY", "SEK", "CZK"} <= currencies
    languages = Counter(e["language"] for e in MANIFEST)
    assert all(languages[lang] >= 5 for lang in ("en", "de", "fr", "es", "it")), languages
    categories = {e["expected"]["category"] for e in MANIFEST}
    assert {"wellness", "cosmetic", "veterinary"} <= categories  # kept as written, not "other"


def test_reference_data_is_consistent() -> None:
    assert FX["EUR"] == 1.0 and all(rate > 0 for rate in FX.values())
    for plan in POLICIES["plans"].values():
        assert set(plan["covered"]) <= set(CATEGORIES)
        assert 1000 <= plan["review_threshold_eur"] <= 2500
        assert plan["review_threshold_eur"] < plan["per_claim_limit_eur"]
    for customer in POLICIES["customers"].values():
        assert customer["plan"] in POLICIES["plans"]
        assert date.fromisoformat(customer["since"]) <= date.today()
    assert set(FLAGGED) <= set(POLICIES["customers"])


def test_prompt_index_files_and_labels() -> None:
    for entry in PROMPTS:
        assert (DATA / "prompts" / entry["file"]).is_file()
    production = [(p["name"], p["version"]) for p in PROMPTS if "production" in p["labels"]]
    assert sorted(production) == [("claim-analyst", 1), ("claim-judge", 1), ("claim-parser", 1)]
    v1 = prompt("claim-analyst", 1).splitlines()
    v2 = prompt("claim-analyst", 2).splitlines()
    changed = [(a, b) for a, b in zip(v1, v2, strict=True) if a != b]
    assert len(changed) == 1 and "[receipt]" in changed[0][0]
    ids = [c.id for c in analyst.parse_clauses(prompt("claim-analyst", 1))]
    assert ids == ["fraud", "coverage", "limit", "receipt", "review"]


def judge_scores(version: int) -> list[float]:
    rubric = prompt("claim-judge", 1)
    scores = []
    for entry in MANIFEST:
        _, evidence = run_claim(entry, version)
        if evidence is not None and evidence["final_status"] != "review":
            verdict = JudgeVerdict.model_validate(judge.judge(evidence, rubric))
            assert [item.id for item in verdict.items] == [
                "consistent", "amount", "reason", "receipt", "fraud"
            ]  # fmt: skip
            assert all(item.comment for item in verdict.items)
            scores.append(verdict.score)
    return scores


def test_the_judge_discriminates_between_the_analyst_versions() -> None:
    v1, v2 = judge_scores(1), judge_scores(2)
    assert len(set(v1) | set(v2)) >= 5, (Counter(v1), Counter(v2))
    assert mean(v2) > mean(v1), (mean(v1), mean(v2))
    # not only the mean: the shapes differ (v1 has a tail of unreceipted approvals v2 lacks)
    assert len(set(v1)) >= len(set(v2)) + 3, (Counter(v1), Counter(v2))
    assert quantiles(v1, n=20)[0] < quantiles(v2, n=20)[0]
    assert sorted(set(v1) - set(v2)), "v1 must have scores v2 never gives"


def test_the_judge_scores_each_rubric_item_with_a_comment() -> None:
    entry = next(e for e in MANIFEST if e["id"] == "claim-092")
    _, evidence = run_claim(entry, 1)
    assert evidence is not None
    verdict = JudgeVerdict.model_validate(judge.judge(evidence, prompt("claim-judge", 1)))
    items = {item.id: item for item in verdict.items}
    assert items["receipt"].score == 0.4 and "without a receipt" in items["receipt"].comment
    assert items["amount"].score == 0.75 and "none marked" in items["amount"].comment
    weights = {i.id: i.weight for i in verdict.items}
    expected = sum(weights[i] * items[i].score for i in items) / sum(weights.values())
    assert verdict.score == round(expected, 2)
