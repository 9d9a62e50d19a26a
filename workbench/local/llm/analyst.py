"""The analyst task (`ClaimAssessment`): call the tools, then apply the prompt's policy clauses.

The clauses and the wording the analyst understands are documented in `clauses.py` (and the
README): fraud, plan coverage, per-claim cap, review above an amount, receipt required above an
amount, per-category review or exclusion, claim-age window. They are applied in the prompt's order;
the first that matches decides, and `clauses` lists every one that matched. When no clause matches
the claim is approved, except for a customer the policy table does not know, which is always
rejected ("unknown customer CUST-4411"): no clause can approve a claim without a policy. A clause
whose tool result is missing cannot be checked: if nothing else matched, the decision is "review".

A clause the analyst cannot apply is never silently ignored: it is listed in
`unrecognized_clauses` ("[id] text (why)") and named at the end of the reason.
"""

from __future__ import annotations

import json
from typing import Any

from .clauses import Clause, Facts, matches, parse_clauses

__all__ = ["TaskError", "assess", "parse_clauses", "read_input", "tool_arguments", "tool_results"]

TOOLS = ("check_fraud", "lookup_policy")


class TaskError(ValueError):
    """The request cannot be answered as asked; the message says how to fix it (HTTP 400)."""


def assess(
    claim: dict[str, Any],
    amount_eur: float,
    fraud: dict[str, Any] | None,
    policy: dict[str, Any] | None,
    clauses: list[Clause],
    submitted_on: str | None = None,
) -> dict[str, Any]:
    """The `ClaimAssessment` JSON object for a claim under the given clauses."""
    facts = Facts(claim, amount_eur, fraud, policy, submitted_on)
    applied = [c for c in clauses if c.understood]
    unrecognized = [f"{c.written} ({c.problem})" for c in clauses if not c.understood]
    matched: list[tuple[Clause, str]] = []
    unchecked: list[Clause] = []
    for clause in applied:
        hit, compared = matches(clause, facts)
        if hit is None:
            unchecked.append(clause)
        elif hit:
            matched.append((clause, compared))
    if matched:
        first, compared = matched[0]
        decision = str(first.action)
        reason = f"[{first.id}] {first.text.rstrip('.')} ({compared})."
        ids = [clause.id for clause, _ in matched]
    elif unchecked:
        decision = "review"
        reason = (
            f"{', '.join(f'[{c.id}]' for c in unchecked)} could not be checked (tool results or "
            "dates missing); a human must decide."
        )
        ids = [c.id for c in unchecked]
    else:
        decision = "approve"
        checked = ", ".join(f"[{c.id}]" for c in applied) or "none"
        reason = f"No policy clause matched (checked: {checked}); {amount_eur:.2f} EUR approved."
        ids = []
    if policy is not None and not policy.get("found") and decision != "reject":
        customer = policy.get("customer_id") or claim.get("customer_id")
        decision = "reject"
        reason = (
            f"Unknown customer {customer}: no policy is found for this customer, so no clause "
            "can approve the claim."
        )
    if unrecognized:
        names = ", ".join(text.split("]")[0] + "]" for text in unrecognized)
        reason += f" Not applied (not understood): {names}."
    return {
        "decision": decision,
        "reason": reason,
        "clauses": ids,
        "unrecognized_clauses": unrecognized,
    }


def read_input(user_message: str) -> tuple[dict[str, Any], float, str | None]:
    """The claim, amount_eur and submitted_on of an `AnalystInput` user message."""
    try:
        data = json.loads(user_message)
        claim, amount_eur = data["claim"], float(data["amount_eur"])
        if not isinstance(claim, dict):
            raise TypeError("claim is not an object")
        submitted_on = data.get("submitted_on")
        if not isinstance(submitted_on, str | None):
            raise TypeError("submitted_on must be an ISO date string or null")
    except (ValueError, KeyError, TypeError) as exc:
        raise TaskError(
            "The analyst expects the last user message to be the JSON of AnalystInput, "
            '{"claim": {...ClaimData...}, "amount_eur": 123.45, "submitted_on": "2026-03-01"}; '
            f"could not read it ({exc.__class__.__name__}: {exc})."
        ) from exc
    return claim, amount_eur, submitted_on


def tool_results(messages: list[dict[str, Any]]) -> tuple[dict | None, dict | None, set[str]]:
    """(fraud check, policy info, names of tools already called) found in the conversation."""
    fraud: dict | None = None
    policy: dict | None = None
    called: set[str] = set()
    for message in messages:
        for call in message.get("tool_calls") or []:
            called.add(str(call["function"]["name"]))  # shape checked by _protocol
        if message.get("role") != "tool":
            continue
        try:
            result = json.loads(message.get("content") or "")
        except (TypeError, ValueError):
            continue
        if isinstance(result, dict) and "flagged" in result:
            fraud = result
        elif isinstance(result, dict) and "found" in result:
            for key in ("per_claim_limit_eur", "review_threshold_eur"):
                if not isinstance(result.get(key), int | float | None):
                    raise TaskError(
                        f"The lookup_policy result has {key}={result.get(key)!r}; it must be a "
                        "number of EUR or null (the PolicyInfo shape)."
                    )
            policy = result
    return fraud, policy, called


def tool_arguments(name: str, claim: dict[str, Any]) -> dict[str, Any]:
    """The arguments of a call to `check_fraud` or `lookup_policy` for the claim."""
    if name == "check_fraud":
        return {"customer_id": claim.get("customer_id")}
    return {"customer_id": claim.get("customer_id"), "category": claim.get("category") or "other"}
