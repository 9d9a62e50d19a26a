"""The analyst task (`ClaimAssessment`): call the tools, then apply the prompt's policy clauses.

Clauses are read from the system prompt, one per line: `N. [id] text` (or `- [id] text`). Known
ids and when they match (amounts in EUR, from the user message's `amount_eur`):

- `[fraud]`    the fraud check flags the customer;
- `[coverage]` no policy was found, or the plan does not cover the category;
- `[limit]`    amount_eur > the plan's per-claim limit;
- `[receipt]`  the claim has no receipt and amount_eur >= N when the text says "N EUR or more",
               > N when it says "above/over/more than N EUR", any amount otherwise ("any claim");
- `[review]`   amount_eur > the plan's review threshold.

The action of a clause is the first verb its text uses: reject/decline/deny -> "reject",
review/human/refer/escalate -> "review", approve/accept -> "approve" (default: reject, and review
for `[review]`). Clauses are applied in the prompt's order; the first that matches decides, and
`clauses` lists every clause that matched. A clause absent from the prompt is not applied; an
unknown id is ignored. When no clause matches the claim is approved. Clauses whose tool result is
missing cannot be checked: if nothing else matched, the decision is "review".
"""

from __future__ import annotations

import hashlib
import json
import re
from dataclasses import dataclass
from typing import Any

from ._text import parse_number

TOOLS = ("check_fraud", "lookup_policy")
KNOWN_CLAUSES = ("fraud", "coverage", "limit", "receipt", "review")

_CLAUSE_LINE = re.compile(r"^\s*(?:\d+[.)]|[-*•])\s*\[(?P<id>[\w-]+)\]\s*(?P<text>\S.*)$", re.M)
_AMOUNT = r"(?P<n>\d[\d.,']*)\s*(?:EUR|€|euros?)"
_OR_MORE = re.compile(rf"{_AMOUNT}\s+or\s+(?:more|above|higher)", re.I)
_ABOVE = re.compile(rf"\b(?:above|over|more than|exceeding|greater than)\s+{_AMOUNT}", re.I)
_VERBS = re.compile(
    r"\b(?P<reject>reject|decline|deny)|\b(?P<review>review|human|refer|escalate)"
    r"|\b(?P<approve>approve|accept)",
    re.I,
)


class TaskError(ValueError):
    """The request cannot be answered as asked; the message says how to fix it (HTTP 400)."""


@dataclass(frozen=True)
class Clause:
    id: str
    text: str
    action: str
    threshold: float = 0.0  # only [receipt]: the amount from which a missing receipt matters
    inclusive: bool = True


def _action(clause_id: str, text: str) -> str:
    m = _VERBS.search(text)
    if m:
        return next(name for name, value in m.groupdict().items() if value)
    return "review" if clause_id == "review" else "reject"


def parse_clauses(system_prompt: str) -> list[Clause]:
    """The known policy clauses of a prompt, in the prompt's order."""
    clauses: list[Clause] = []
    for m in _CLAUSE_LINE.finditer(system_prompt):
        clause_id, text = m["id"].lower(), m["text"].strip()
        if clause_id not in KNOWN_CLAUSES:
            continue
        threshold, inclusive = 0.0, True
        if clause_id == "receipt":
            if found := _OR_MORE.search(text):
                threshold = parse_number(found["n"].rstrip(".,"))
            elif found := _ABOVE.search(text):
                threshold, inclusive = parse_number(found["n"].rstrip(".,")), False
        clauses.append(Clause(clause_id, text, _action(clause_id, text), threshold, inclusive))
    return clauses


def _matches(
    clause: Clause, claim: dict[str, Any], eur: float, fraud: dict | None, policy: dict | None
) -> tuple[bool | None, str]:
    """(matched, the facts compared); matched is None when a needed tool result is missing."""
    if clause.id == "fraud":
        if fraud is None:
            return None, "no fraud check result"
        return bool(fraud.get("flagged")), f"fraud flag: {fraud.get('reason') or 'none'}"
    if clause.id == "receipt":
        if claim.get("has_receipt"):
            return False, "receipt attached"
        hit = eur >= clause.threshold if clause.inclusive else eur > clause.threshold
        return hit, f"no receipt, {eur:.2f} EUR"
    if policy is None:
        return None, "no policy lookup result"
    if clause.id == "coverage":
        if not policy.get("found"):
            return True, f"no policy found for {policy.get('customer_id')}"
        plan, category = policy.get("plan"), claim.get("category")
        covered = bool(policy.get("covered"))
        return not covered, f"plan {plan} {'covers' if covered else 'does not cover'} {category}"
    key = "per_claim_limit_eur" if clause.id == "limit" else "review_threshold_eur"
    limit = policy.get(key)
    if limit is None:
        return False, f"no {key}"
    name = "per-claim limit" if clause.id == "limit" else "review threshold"
    return eur > float(limit), f"{eur:.2f} EUR vs {name} {float(limit):.2f} EUR"


def assess(
    claim: dict[str, Any],
    amount_eur: float,
    fraud: dict[str, Any] | None,
    policy: dict[str, Any] | None,
    clauses: list[Clause],
) -> dict[str, Any]:
    """The `ClaimAssessment` JSON object for a claim under the given clauses."""
    matched: list[tuple[Clause, str]] = []
    unchecked: list[Clause] = []
    for clause in clauses:
        hit, facts = _matches(clause, claim, amount_eur, fraud, policy)
        if hit is None:
            unchecked.append(clause)
        elif hit:
            matched.append((clause, facts))
    if matched:
        first, facts = matched[0]
        return {
            "decision": first.action,
            "reason": f"[{first.id}] {first.text.rstrip('.')} ({facts}).",
            "clauses": [clause.id for clause, _ in matched],
        }
    if unchecked:
        ids = ", ".join(f"[{c.id}]" for c in unchecked)
        return {
            "decision": "review",
            "reason": f"{ids} could not be checked (tool results missing); a human must decide.",
            "clauses": [c.id for c in unchecked],
        }
    checked = ", ".join(f"[{c.id}]" for c in clauses) or "none"
    return {
        "decision": "approve",
        "reason": f"No policy clause matched (checked: {checked}); {amount_eur:.2f} EUR approved.",
        "clauses": [],
    }


def read_input(user_message: str) -> tuple[dict[str, Any], float]:
    """The claim and amount_eur of an `AnalystInput` user message."""
    try:
        data = json.loads(user_message)
        claim, amount_eur = data["claim"], float(data["amount_eur"])
        if not isinstance(claim, dict):
            raise TypeError("claim is not an object")
    except (ValueError, KeyError, TypeError) as exc:
        raise TaskError(
            "The analyst expects the last user message to be the JSON of AnalystInput, "
            '{"claim": {...ClaimData...}, "amount_eur": 123.45}; '
            f"could not read it ({exc.__class__.__name__}: {exc})."
        ) from exc
    return claim, amount_eur


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


def tool_calls(claim: dict[str, Any], offered: list[str], called: set[str]) -> list[dict]:
    """The tool calls still to make: every offered known tool not yet called."""
    customer_id = claim.get("customer_id")
    if not customer_id:
        return []
    arguments = {
        "check_fraud": {"customer_id": customer_id},
        "lookup_policy": {"customer_id": customer_id, "category": claim.get("category") or "other"},
    }
    calls = []
    for name in TOOLS:
        if name in offered and name not in called:
            args = json.dumps(arguments[name], sort_keys=True)
            digest = hashlib.sha256(f"{name}:{args}".encode()).hexdigest()[:24]
            calls.append(
                {
                    "id": f"call_{digest}",
                    "type": "function",
                    "function": {"name": name, "arguments": args},
                }
            )
    return calls
