"""The judge task (`JudgeVerdict`): score a decision against the rubric of the judge's prompt.

Rubric rules are read from the system prompt, one per line: `- [id] (-0.5) text`. The score is
1.0 plus the weights of the violated rules, clamped to [0, 1] and rounded to 2 decimals. Known
ids and when they are violated ("approved" = the analyst said approve, or the claim was paid):

- `[fraud]`    approved although the fraud check flags the customer;
- `[coverage]` approved although no policy was found or the plan does not cover the category;
- `[limit]`    approved although amount_eur > the per-claim limit;
- `[receipt]`  approved although the claim has no receipt (any amount);
- `[review]`   the analyst approved although amount_eur > the review threshold;
- `[grounded]` the analyst rejected a claim that is unflagged, covered, within the limit and has
               a receipt;
- `[reason]`   the analyst rejected or escalated with no clause id in `clauses`;
- `[invalid]`  paid although customer id, amount or currency is missing;
- `[outcome]`  the final status is "failed".

An unknown id is reported as "not evaluable" and not applied.
"""

from __future__ import annotations

import json
import re
from collections.abc import Callable
from typing import Any

from .analyst import TaskError

_RULE_LINE = re.compile(
    r"^\s*[-*•]\s*\[(?P<id>[\w-]+)\]\s*\((?P<w>[+-]?\d+(?:\.\d+)?)\)\s*(?P<text>\S.*)$", re.M
)
Evidence = dict[str, Any]


def _approved(e: Evidence) -> bool:
    return (e.get("assessment") or {}).get("decision") == "approve" or e["final_status"] == "paid"


def _analyst(e: Evidence) -> str | None:
    return (e.get("assessment") or {}).get("decision")


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


def _grounded_violation(e: Evidence) -> bool:
    return (
        _analyst(e) == "reject"
        and not _flagged(e)
        and e.get("policy") is not None
        and not _uncovered(e)
        and not _above(e, "per_claim_limit_eur")
        and bool(e["claim"].get("has_receipt"))
    )


def _incomplete(e: Evidence) -> bool:
    claim = e["claim"]
    return any(claim.get(k) in (None, "") for k in ("customer_id", "amount", "currency"))


CHECKS: dict[str, Callable[[Evidence], bool]] = {
    "fraud": lambda e: _approved(e) and _flagged(e),
    "coverage": lambda e: _approved(e) and _uncovered(e),
    "limit": lambda e: _approved(e) and _above(e, "per_claim_limit_eur"),
    "receipt": lambda e: _approved(e) and not e["claim"].get("has_receipt"),
    "review": lambda e: _analyst(e) == "approve" and _above(e, "review_threshold_eur"),
    "grounded": _grounded_violation,
    "reason": lambda e: (
        _analyst(e) in ("reject", "review") and not (e.get("assessment") or {}).get("clauses")
    ),
    "invalid": lambda e: e["final_status"] == "paid" and _incomplete(e),
    "outcome": lambda e: e["final_status"] == "failed",
}


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
    except (ValueError, KeyError, TypeError) as exc:
        raise TaskError(
            "The judge expects the last user message to be the JSON of JudgeInput, "
            '{"claim": {...}, "amount_eur": ..., "assessment": {...}, "fraud": {...}, '
            f'"policy": {{...}}, "final_status": "paid"}}; could not read it ({exc!r}).'
        ) from exc
    return data


def judge(evidence: Evidence, system_prompt: str) -> dict[str, Any]:
    """The `JudgeVerdict` JSON object for the evidence under the prompt's rubric."""
    total = 1.0
    lines: list[str] = []
    for m in _RULE_LINE.finditer(system_prompt):
        rule_id, weight = m["id"].lower(), float(m["w"])
        check = CHECKS.get(rule_id)
        if check is None:
            lines.append(f"[{rule_id}] not evaluable")
        elif check(evidence):
            total += weight
            lines.append(f"[{rule_id}] violated ({weight:+g})")
        else:
            lines.append(f"[{rule_id}] ok")
    if not lines:
        return {"score": 1.0, "reason": "No rubric rules found in the judge prompt; score 1.0."}
    score = round(min(1.0, max(0.0, total)), 2)
    return {"score": score, "reason": "; ".join(lines) + f". Score {score:g}."}
