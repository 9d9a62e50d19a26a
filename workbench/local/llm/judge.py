"""The judge task (`JudgeVerdict`): score a decision against the rubric of the judge's prompt.

Rubric items are read from the system prompt, one per line: `- [id] (weight 3) text` (or
`(3)`). Each item the judge knows is scored from 0 to 1 with a comment; the score is the weighted
mean of the items that could be evaluated, rounded to two decimals. Known items (the evidence is
the JSON of `JudgeInput`):

- `[consistent]` the decision follows from the analyst's own clauses (`analyst_policy`, applied
  again to the evidence): same decision 1, one side "review" 0.5, approve vs reject 0. An invalid
  claim is consistent when its parse really lacks a field, names a problem, is below a cent or is
  dated after its submission (else 0.5). A failed claim scores 0.
- `[amount]` the amount and currency are right against the `document`: 1 when the amount is
  written there in that currency and it is the only amount or the labelled total/claim; 0.75 when
  other amounts compete and nothing marks this one as the claim; 0.5 when only the amount or only
  the currency is found as written (an OCR-damaged document, say); 0 when neither, or when an
  amount in EUR was converted to a different EUR amount.
- `[reason]` the reason cites the deciding clause: for a rejection or review, half for naming a
  clause that matched ("[receipt]") and half for quoting the figures compared; for an approval,
  half for naming the clauses checked and half for the amount.
- `[receipt]` a missing receipt is handled: 1 with a receipt, or when the claim was not approved;
  an approval without a receipt loses credit in proportion to the amount, 1 - amount_eur / 200
  (0 from 200 EUR); a human reviewer's approval loses half as much.
- `[fraud]` the fraud flag is respected: flagged and rejected 1, sent to review 0.5 (0 if then
  paid), approved 0; not flagged but rejected for fraud 0, else 1.

Items with negative weights are penalties, as in earlier rubrics (`- [receipt] (-0.5) text`):
each violated one subtracts its weight (`CHECKS` says when one is violated); with only penalties
the score is 1 minus the violated ones. The score is clamped to [0, 1]. An unknown id is reported
as "not evaluable" and left out.
"""

from __future__ import annotations

import json
import re
from collections.abc import Callable
from typing import Any

from ._lexicon import fold
from ._money import NUMBER_RE, find_money, parse_number
from .analyst import TaskError, assess
from .clauses import parse_clauses
from .parser import clean, money_rank

_RULE_LINE = re.compile(
    r"^\s*[-*•]\s*\[(?P<id>[\w-]+)\]\s*\((?:weight\s*)?(?P<w>[+-]?\d+(?:\.\d+)?)\)\s*(?P<text>\S.*)$",
    re.M | re.I,
)
Evidence = dict[str, Any]
Scored = tuple[float | None, str]


def _decision(e: Evidence) -> str | None:
    return (e.get("assessment") or {}).get("decision")


def _approved(e: Evidence) -> bool:
    return _decision(e) == "approve" or e["final_status"] == "paid"


def _policy(e: Evidence) -> dict[str, Any]:
    return e.get("policy") or {}


def _eur(e: Evidence) -> float:
    return float(e.get("amount_eur") or 0.0)


def _above(e: Evidence, key: str) -> bool:
    limit = _policy(e).get(key)
    return limit is not None and _eur(e) > float(limit)


def _uncovered(e: Evidence) -> bool:
    policy = e.get("policy")
    return policy is not None and not (policy.get("found") and policy.get("covered"))


def _flagged(e: Evidence) -> bool:
    return bool((e.get("fraud") or {}).get("flagged"))


def _missing(e: Evidence) -> list[str]:
    claim = e["claim"]
    keys = ("customer_id", "amount", "currency", "category")
    return [k for k in keys if claim.get(k) in (None, "")]


# --- the items ----------------------------------------------------------------------------------


def _consistent(e: Evidence) -> Scored:
    status = e["final_status"]
    if status == "failed":
        return 0.0, "the workflow failed without reaching a decision"
    claim = e["claim"]
    if status == "invalid":
        missing = _missing(e)
        amount = claim.get("amount")
        future = (claim.get("claim_date") or "") > (e.get("submitted_on") or "9999")
        if missing or claim.get("problems") or future or (amount is not None and amount < 0.01):
            why = f"it lacks {', '.join(missing)}" if missing else "its parse names a problem"
            return 1.0, f"refused as invalid, rightly: {why}"
        return 0.5, "refused as invalid although the parse looks complete"
    decision = _decision(e)
    if decision is None:
        return None, "not evaluable: no analyst decision"
    policy_text = e.get("analyst_policy")
    if not policy_text:
        return None, "not evaluable: the analyst's clauses were not given"
    expected = assess(
        claim,
        _eur(e),
        e.get("fraud"),
        e.get("policy"),
        parse_clauses(policy_text),
        e.get("submitted_on"),
    )["decision"]
    if expected == decision:
        return 1.0, f"{decision} follows from the clauses"
    if "review" in (expected, decision):
        return 0.5, f"{decision}, where the clauses say {expected}"
    return 0.0, f"{decision}, where the clauses say {expected}"


def _amount(e: Evidence) -> Scored:
    claim = e["claim"]
    amount, currency = claim.get("amount"), claim.get("currency")
    if amount is None or currency is None:
        if e["final_status"] == "invalid":
            return 1.0, "no amount or currency read, and the claim was refused"
        return 0.0, "paid or decided without an amount or currency"
    if currency == "EUR" and e.get("amount_eur") is not None and abs(_eur(e) - amount) > 0.005:
        return 0.0, f"{amount:.2f} EUR was converted to {_eur(e):.2f} EUR"
    document = e.get("document")
    if not document:
        return None, "not evaluable: the document was not given"
    raw = fold(document)
    written = {parse_number(m.group(0)) for m in NUMBER_RE.finditer(raw)}
    found_amount = any(abs(n - amount) < 0.005 for n in written)
    text = clean(document)
    folded = fold(text)
    money = find_money(text, folded)
    found_currency = any(m.currency == currency for m in money) or currency.lower() in raw
    if not (found_amount and found_currency):
        if found_amount or found_currency:
            part = "amount" if found_amount else "currency"
            return 0.5, f"only the {part} is written as such in the document"
        return 0.0, f"{amount:g} {currency} is not in the document"
    ranks = [(money_rank(folded, m), m.amount) for m in money]
    ours = max((r for r, a in ranks if a == amount), default=0)
    rivals = {a for r, a in ranks if a != amount and r >= 2}
    if not rivals:
        return 1.0, f"{amount:g} {currency} is the document's only amount"
    if ours > max(r for r, a in ranks if a in rivals):
        return 1.0, f"{amount:g} {currency} is the marked total among {len(rivals) + 1} amounts"
    return 0.75, f"{amount:g} {currency} among {len(rivals) + 1} amounts, none marked as the claim"


def _reason(e: Evidence) -> Scored:
    assessment = e.get("assessment")
    if not assessment:
        return None, "not evaluable: no analyst decision"
    reason, ids = assessment.get("reason") or "", assessment.get("clauses") or []
    figures = bool(re.search(r"\d", reason))
    if assessment.get("decision") == "approve":
        named = "clause" in reason.lower() or bool(re.search(r"\[[\w-]+\]", reason))
        score = 0.5 * named + 0.5 * figures
        return score, "names the clauses checked and the amount" if score == 1 else (
            f"approval reason {'names no clause' if not named else 'quotes no figure'}"
        )
    cited = any(f"[{i}]" in reason for i in ids) or "unknown customer" in reason.lower()
    if cited and not _compares_figures(e, ids[0] if ids else ""):
        return 1.0, "cites the deciding clause (which compares no figures)"
    score = 0.5 * cited + 0.5 * figures
    if score == 1:
        return 1.0, "cites the deciding clause with its figures"
    missing = [w for w, ok in (("the deciding clause", cited), ("the figures", figures)) if not ok]
    return score, f"the reason lacks {' and '.join(missing)}"


_FIGURES = frozenset(
    {"at_least", "above", "at_most", "below", "above_limit", "above_review", "age"}
)


def _compares_figures(e: Evidence, clause_id: str) -> bool:
    """Whether the analyst's clause `clause_id` compares amounts or ages (so its reason must
    quote them); True when the clause cannot be found."""
    for clause in parse_clauses(e.get("analyst_policy") or ""):
        if clause.id == clause_id:
            return any(c.kind in _FIGURES for group in clause.groups for c in group)
    return True


def _receipt(e: Evidence) -> Scored:
    if e["claim"].get("has_receipt"):
        return 1.0, "receipt attached"
    decision = _decision(e)
    if decision is None and e["final_status"] != "paid":
        return None, "not evaluable: no decision"
    if not _approved(e):
        return 1.0, "no receipt, and the claim was not approved"
    eur = _eur(e)
    loss = min(1.0, eur / RECEIPT_FREE_EUR)
    if decision == "review":
        loss /= 2
        return round(1 - loss, 2), f"a human approved {eur:.2f} EUR without a receipt"
    return round(1 - loss, 2), f"approved {eur:.2f} EUR without a receipt"


def _fraud(e: Evidence) -> Scored:
    if e.get("fraud") is None:
        return None, "not evaluable: no fraud check"
    decision, status = _decision(e), e["final_status"]
    if _flagged(e):
        if decision == "reject" or (decision is None and status != "paid"):
            return 1.0, "flagged and not paid"
        if decision == "review":
            return (
                (0.0, "flagged, reviewed, then paid")
                if status == "paid"
                else (0.5, "flagged and sent to a human instead of rejected")
            )
        return 0.0, "flagged but approved"
    reason = (e.get("assessment") or {}).get("reason") or ""
    if decision == "reject" and reason.startswith("[fraud]"):
        return 0.0, "rejected for fraud although the customer is not flagged"
    return 1.0, "not flagged"


RECEIPT_FREE_EUR = 200.0
"""From this amount, an approval without a receipt scores 0 on `[receipt]`."""

ITEMS: dict[str, Callable[[Evidence], Scored]] = {
    "consistent": _consistent,
    "amount": _amount,
    "reason": _reason,
    "receipt": _receipt,
    "fraud": _fraud,
}
"""Rubric items with a positive weight: each scores the evidence from 0 to 1."""

CHECKS: dict[str, Callable[[Evidence], bool]] = {
    "fraud": lambda e: _approved(e) and _flagged(e),
    "coverage": lambda e: _approved(e) and _uncovered(e),
    "limit": lambda e: _approved(e) and _above(e, "per_claim_limit_eur"),
    "receipt": lambda e: _approved(e) and not e["claim"].get("has_receipt"),
    "review": lambda e: _decision(e) == "approve" and _above(e, "review_threshold_eur"),
    "grounded": lambda e: (
        _decision(e) == "reject"
        and not _flagged(e)
        and e.get("policy") is not None
        and not _uncovered(e)
        and not _above(e, "per_claim_limit_eur")
        and bool(e["claim"].get("has_receipt"))
    ),
    "reason": lambda e: (
        _decision(e) in ("reject", "review") and not (e.get("assessment") or {}).get("clauses")
    ),
    "invalid": lambda e: e["final_status"] == "paid" and bool(_missing(e)),
    "outcome": lambda e: e["final_status"] == "failed",
}
"""Penalty rules (negative weight): when each is violated."""


def read_input(user_message: str) -> Evidence:
    """The evidence of a `JudgeInput` user message."""
    try:
        data = json.loads(user_message)
        if not isinstance(data, dict) or not isinstance(data.get("claim"), dict):
            raise TypeError("claim is missing or not an object")
        if "final_status" not in data:
            raise KeyError("final_status")
        for key in ("assessment", "fraud", "policy"):
            if not isinstance(data.get(key), dict | None):
                raise TypeError(f"{key} must be an object or null")
        if not isinstance(data.get("amount_eur"), int | float | None):
            raise TypeError("amount_eur must be a number or null")
        for key in ("per_claim_limit_eur", "review_threshold_eur"):
            if not isinstance((data.get("policy") or {}).get(key), int | float | None):
                raise TypeError(f"policy.{key} must be a number or null")
        for key in ("document", "analyst_policy", "submitted_on"):
            if not isinstance(data.get(key), str | None):
                raise TypeError(f"{key} must be a string or null")
    except (ValueError, KeyError, TypeError) as exc:
        raise TaskError(
            "The judge expects the last user message to be the JSON of JudgeInput, "
            '{"claim": {...}, "amount_eur": ..., "assessment": {...}, "fraud": {...}, '
            f'"policy": {{...}}, "final_status": "paid"}}; could not read it ({exc!r}).'
        ) from exc
    return data


def judge(evidence: Evidence, system_prompt: str) -> dict[str, Any]:
    """The `JudgeVerdict` JSON object for the evidence under the prompt's rubric."""
    items: list[dict[str, Any]] = []
    weighted = total_weight = penalty = 0.0
    for m in _RULE_LINE.finditer(system_prompt):
        item_id, weight = m["id"].lower(), float(m["w"])
        if weight >= 0:
            scorer = ITEMS.get(item_id)
            score, comment = scorer(evidence) if scorer else (None, "not evaluable")
            if score is not None and weight > 0:
                weighted += weight * score
                total_weight += weight
        else:
            check = CHECKS.get(item_id)
            violated = check(evidence) if check else None
            score = None if violated is None else 0.0 if violated else 1.0
            comment = (
                "not evaluable"
                if check is None
                else f"violated ({weight:+g})"
                if violated
                else "ok"
            )
            penalty += -weight if violated else 0.0
        items.append({"id": item_id, "weight": weight, "score": score, "comment": comment})
    if not items:
        return {
            "score": 1.0,
            "reason": "No rubric items found in the judge prompt; score 1.0.",
            "items": [],
        }
    base = weighted / total_weight if total_weight else 1.0
    score = round(min(1.0, max(0.0, base - penalty)), 2)
    parts = [
        f"[{i['id']}] {i['comment']}"
        if i["weight"] < 0 or i["score"] is None
        else f"[{i['id']}] {i['score']:g} x {i['weight']:g}: {i['comment']}"
        for i in items
    ]
    return {"score": score, "reason": "; ".join(parts) + f". Score {score:g}.", "items": items}
