"""The policy clauses the analyst applies, read from its prompt, and the ones it cannot apply.

A clause is one line of the prompt: `N. [id] text`, `- [id] text`, `[id] text`, or a numbered line
`N. text` that uses an action verb (its id is then its number). Its meaning comes from its
WORDING, not from its id, so a user can add "[travel] Send every travel claim to human review"
and see it applied. A clause is an action plus conditions (all must hold; "or" between conditions
means either):

- action, reject: "Reject", "Decline", "Deny", "Refuse", "... are excluded", "... are not
  covered"; review: "Send ... to (human/manual) review", "Refer ... to a human", "Escalate",
  "... need human review"; approve: "Approve", "Accept", "Pay".
- fraud: "the fraud check flags the customer", "flagged for fraud", "flagged".
- plan coverage: "no policy is found (for the customer)", "the plan does not cover the claim's
  category", "not covered by the plan", "the customer is unknown".
- per-claim cap: "amount_eur is above the plan's per-claim limit", "above/over/more than/exceeding
  N EUR".
- review above an amount: "above the plan's review threshold", "above N EUR".
- receipt required above an amount: "(that have) no receipt", "without a receipt", "missing
  receipt", with "of N EUR or more", "at least N EUR", "above N EUR" or "whatever its amount".
- per-category review or exclusion: "travel claims", "every dental claim", "claims for vision",
  "in the wellness category", "travel or dental claims" (the category names of the parser).
- claim-age window: "older than N days/weeks/months/years", "submitted more than N days after
  the expense", "not submitted within N days of the expense" (the age is counted from the
  expense date to `submitted_on`, the day the workflow took the claim).
- amounts: "N EUR", "EUR N", "€N", "N euros"; "N or more", "at least N" (>=); "below/under/less
  than N" (<), "up to N", "N or less" (<=).

Clauses apply in the prompt's order; the first that matches decides, and every one that matched
is listed. A clause the grammar cannot read completely is NOT applied and is reported: words
outside the grammar ("Reject claims submitted on a weekend": "submitted on a weekend"), a missing
action, or a form this stand-in does not do (partial payments: "pay at most 500 EUR per claim").
`unrecognized_clauses(prompt)` lists them for any prompt text without running a claim.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from datetime import date
from functools import lru_cache
from typing import Any

from ._lexicon import CATEGORY_STEMS, CORE_CATEGORIES, fold
from ._money import parse_number

_LINE = re.compile(
    r"^[ \t]*(?:(?P<num>\d+)[.)][ \t]*|[-*•][ \t]*)?"
    r"\[(?P<id>[^\]\n]{1,40})\][ \t]*(?P<text>\S[^\n]*)$"
    r"|^[ \t]*(?P<num2>\d+)[.)][ \t]+(?P<text2>\S[^\n]*)$",
    re.M,
)

# --- the grammar ----------------------------------------------------------------------------------

_EUR = r"(?:euros?|eur|€)(?![a-z])"
_NUM = r"\d[\d.,'’ ]*\d|\d"


def _money(tag: str) -> str:
    """N EUR, EUR N, €N, N euros; the number in group `n<tag>a` or `n<tag>b`."""
    return rf"(?:{_EUR}\s*(?P<n{tag}a>{_NUM})|(?P<n{tag}b>{_NUM})\s*{_EUR})"


_AMOUNT_SUBJECT = (
    r"(?:(?:the\s+)?(?:claim(?:'s)?\s+)?(?:amount(?:_eur)?|total|sum)(?:\s+in\s+eur)?"
    r"\s+(?:is\s+|are\s+)?)?"
)
_ABOVE = (
    r"(?:above|over|more\s+than|exceeding|exceeds|greater\s+than|higher\s+than|in\s+excess\s+of)"
)
_BELOW = r"(?:below|under|less\s+than|lower\s+than)"
_PLAN_LIMIT = (
    r"(?:the\s+)?(?:plan's\s+|policy's\s+|customer's\s+)?"
    r"(?:per[-\s]claim\s+limit|claim\s+limit|limit)"
)
_PLAN_REVIEW = r"(?:the\s+)?(?:plan's\s+|policy's\s+)?review\s+threshold"


def _unit(tag: str = "") -> str:
    return rf"(?P<unit{tag}>days?|weeks?|months?|years?)"


_CATEGORY_NAMES = sorted(
    {*CORE_CATEGORIES, *CATEGORY_STEMS} - {"other"}, key=lambda w: (-len(w), w)
)
_CAT = "(?<![a-z])(?:" + "|".join(_CATEGORY_NAMES) + ")(?![a-z])"

CONDITIONS: list[tuple[str, re.Pattern[str]]] = [
    (
        "fraud",
        re.compile(
            r"(?:the\s+)?fraud\s+(?:check|database|db|system)\s+flags\s+(?:the\s+)?(?:customer|claim)"
            r"|(?:the\s+customer\s+)?(?:is\s+)?flagged(?:\s+(?:for\s+fraud|by\s+the\s+fraud\s+"
            r"(?:check|database)|in\s+the\s+fraud\s+database))?|(?:a\s+)?fraud\s+flag"
        ),
    ),
    (
        "no_policy",
        re.compile(
            r"no\s+policy\s+(?:is\s+|was\s+)?(?:found|exists)(?:\s+for\s+(?:the\s+)?customer)?"
            r"|(?:the\s+)?customer\s+is\s+unknown|(?:an?\s+)?unknown\s+customers?"
        ),
    ),
    (
        "uncovered",
        re.compile(
            r"(?:the\s+)?(?:plan|policy)\s+does\s+not\s+cover\s+(?:the\s+)?(?:claim's\s+)?"
            r"(?:category|it|them|the\s+claim)|not\s+covered\s+by\s+(?:the\s+)?(?:plan|policy)"
            r"|(?:an?\s+)?uncovered\s+categor(?:y|ies)"
        ),
    ),
    ("above_limit", re.compile(rf"{_AMOUNT_SUBJECT}{_ABOVE}\s+{_PLAN_LIMIT}")),
    ("above_review", re.compile(rf"{_AMOUNT_SUBJECT}{_ABOVE}\s+{_PLAN_REVIEW}")),
    (
        "at_least",
        re.compile(
            rf"(?:of\s+)?{_money('1')}\s+or\s+(?:more|above|higher)"
            rf"|{_AMOUNT_SUBJECT}(?:at\s+least|from)\s+{_money('2')}"
        ),
    ),
    ("above", re.compile(rf"{_AMOUNT_SUBJECT}{_ABOVE}\s+{_money('1')}")),
    (
        "at_most",
        re.compile(
            rf"(?:of\s+)?{_money('1')}\s+or\s+(?:less|below|lower)"
            rf"|{_AMOUNT_SUBJECT}up\s+to\s+{_money('2')}"
        ),
    ),
    ("below", re.compile(rf"{_AMOUNT_SUBJECT}{_BELOW}\s+{_money('1')}")),
    (
        "no_receipt",
        re.compile(
            r"(?:that\s+|which\s+|when\s+(?:it|they|the\s+claim)\s+)?(?:ha(?:s|ve)\s+no|lacks?|lacking)"
            r"\s+(?:a\s+|any\s+)?receipts?|without\s+(?:a\s+|any\s+)?receipts?"
            r"|(?:with\s+)?(?:a\s+)?missing\s+receipts?|(?:the\s+)?receipts?\s+(?:is|are)\s+missing"
            r"|no\s+receipts?"
        ),
    ),
    (
        "age",
        re.compile(
            rf"(?:(?:that\s+|which\s+)?(?:are|is)\s+)?older\s+than\s+(?P<age>\d+)\s+{_unit()}"
            rf"|(?:submitted|filed|made|sent)\s+more\s+than\s+(?P<age2>\d+)\s+{_unit('2')}"
            r"\s+after\s+(?:the\s+)?(?:expense|treatment|service|purchase|claim\s+date)(?:\s+date)?"
            rf"|not\s+(?:submitted|filed|made|sent)\s+within\s+(?P<age3>\d+)\s+{_unit('3')}"
            r"\s+(?:of|after)\s+(?:the\s+)?(?:expense|treatment|service|purchase|claim\s+date)(?:\s+date)?"
            rf"|(?:expense|claim|service)\s+date\s+(?:is\s+)?more\s+than\s+(?P<age4>\d+)\s+{_unit('4')}"
            r"\s+(?:before\s+(?:the\s+)?submission|ago|old)"
        ),
    ),
    (
        "category",
        re.compile(
            rf"(?:(?:in\s+)?the\s+)?(?P<cats>{_CAT}(?:\s*(?:,|or|and|/)\s*{_CAT})*)"
            r"(?:\s+(?:claims?|expenses?|treatments?|costs?|category|categories))?"
            rf"|(?:claims?|expenses?)\s+(?:for|in\s+the\s+category)\s+(?P<cats2>{_CAT}(?:\s*(?:,|or|and)\s*{_CAT})*)"
            rf"|(?:the\s+)?category\s+(?:is\s+)?(?P<cats3>{_CAT}(?:\s*(?:,|or)\s*{_CAT})*)"
        ),
    ),
]
"""Each condition form and its wording, on the clause's folded text. Order matters: a longer,
more specific form is consumed first."""

_ACTIONS = [
    ("review", re.compile(r"\b(?:send|sent|route|refer|forward|escalate|hold|flag|put|queue)\b"
                          r"|\b(?:human|manual)\s+review|\breview(?:er|ed)?\b|\bhuman\b")),
    ("reject", re.compile(r"\b(?:reject|decline|deny|refuse)\b|\bexclude[ds]?\b|\bnot\s+covered\b"
                          r"|\bnever\s+(?:pay|reimburse)\b")),
    ("approve", re.compile(r"\b(?:approve|accept|pay|reimburse)\b")),
]  # fmt: skip
_UNSUPPORTED = re.compile(r"\b(?:at\s+most|no\s+more\s+than|cap(?:ped)?|maximum|partial(?:ly)?)\b")
_ACTION_WORDS = frozenset(
    "send sent route refer referred forward escalate escalated hold flag put queue human manual "
    "review reviewer reviewed reject rejected decline declined deny denied refuse refused exclude "
    "excluded excludes not covered never approve approved accept accepted pay paid reimburse "
    "reimbursed decide decides decision".split()
)
_FILLER = frozenset(
    "a an the this that these those which who whose when whenever where if it its they them "
    "their is are be been being has have had of for to in on by with and or as any every all each "
    "claim claims claim's customer customer's always also automatically immediately please only "
    "then otherwise else must should shall will directly straight instead whatever regardless "
    "amount amount_eur eur euros its whatever case cases one ones plan policy person someone "
    "must needs need require requires required sure so".split()
)


@dataclass(frozen=True)
class Condition:
    kind: str
    value: Any = None  # the amount in EUR, the categories, the age in days


@dataclass(frozen=True)
class Clause:
    id: str
    text: str
    action: str | None
    groups: tuple[tuple[Condition, ...], ...]  # OR of ANDs
    unknown: tuple[str, ...] = field(default=())  # words outside the grammar
    problem: str | None = None  # why the clause cannot be applied, when it cannot

    @property
    def understood(self) -> bool:
        return self.problem is None

    @property
    def written(self) -> str:
        return f"[{self.id}] {self.text}"


def _amount(m: re.Match[str]) -> float:
    token = next(v for k, v in m.groupdict().items() if k.startswith("n") and v)
    token = token.replace(" ", "")
    return parse_number(token.rstrip(".,"))


def _days(number: str, unit: str) -> int:
    per = {"d": 1, "w": 7, "m": 30, "y": 365}[unit[0]]
    return int(number) * per


def _categories(text: str) -> frozenset[str]:
    return frozenset(re.findall(_CAT, text))


def _condition(kind: str, m: re.Match[str]) -> Condition:
    if kind in ("at_least", "above", "at_most", "below"):
        return Condition(kind, _amount(m))
    if kind == "age":
        for n, u in (("age", "unit"), ("age2", "unit2"), ("age3", "unit3"), ("age4", "unit4")):
            if m.group(n):
                return Condition("age", _days(m.group(n), m.group(u)))
    if kind == "category":
        return Condition(
            "category", _categories(m.group("cats") or m.group("cats2") or m.group("cats3"))
        )
    return Condition(kind)


def read_clause(clause_id: str, text: str) -> Clause:
    """The meaning of one clause's text, or why it has none this stand-in can apply."""
    folded = fold(text).rstrip(" .;")
    found: list[tuple[int, Condition]] = []
    rest = folded
    for kind, regex in CONDITIONS:

        def take(m: re.Match[str], kind: str = kind) -> str:
            found.append((m.start(), _condition(kind, m)))
            return f" <{len(found) - 1}> "

        rest = regex.sub(take, rest)
    action = _action(rest)
    words = re.findall(r"[a-z_']+|\d+", re.sub(r"<\d+>", " ", rest))
    unknown = tuple(w for w in words if w not in _FILLER and w not in _ACTION_WORDS)
    groups = _groups(rest, [c for _, c in found])
    problem = None
    if _UNSUPPORTED.search(folded):
        problem = "caps and partial payments are not supported (only reject/review/approve)"
    elif action is None:
        problem = "no action (reject, review or approve)"
    elif unknown:
        problem = "not understood: " + ", ".join(dict.fromkeys(unknown))
    return Clause(clause_id, text.strip(), action, groups, unknown, problem)


def _action(text: str) -> str | None:
    """The action whose verb comes first in the text."""
    hits = [(m.start(), name) for name, regex in _ACTIONS if (m := regex.search(text))]
    return min(hits)[1] if hits else None


def _groups(rest: str, conditions: list[Condition]) -> tuple[tuple[Condition, ...], ...]:
    """Conditions joined by "or" are alternatives; all others must hold together."""
    markers = [int(i) for i in re.findall(r"<(\d+)>", rest)]
    if not markers:
        return ((),)
    parts = re.split(r"\bor\b", rest)
    groups = [tuple(conditions[int(i)] for i in re.findall(r"<(\d+)>", p)) for p in parts]
    if len(groups) > 1 and all(groups):
        return tuple(groups)
    return (tuple(conditions[i] for i in markers),)


def parse_clauses(prompt: str) -> list[Clause]:
    """Every clause line of a prompt, understood or not, in the prompt's order."""
    return list(_parse_clauses(prompt))


@lru_cache(maxsize=64)
def _parse_clauses(prompt: str) -> tuple[Clause, ...]:
    """(Cached: the same prompt comes with every claim.)"""
    clauses = []
    for m in _LINE.finditer(prompt):
        if m["id"] is not None:
            clause_id, text = m["id"].strip().lower(), m["text"]
        else:
            clause_id, text = m["num2"], m["text2"]
            if _action(fold(text)) is None:
                continue  # a numbered instruction, not a clause ("1. Call both tools.")
        clauses.append(read_clause(clause_id, text))
    return tuple(clauses)


def unrecognized_clauses(prompt: str) -> list[str]:
    """The clauses of an analyst prompt that the embedded model would NOT apply, each as
    "[id] text (why)". Empty when it understands every clause. Pure: no model, no claim."""
    return [f"{c.written} ({c.problem})" for c in parse_clauses(prompt) if not c.understood]


# --- applying them --------------------------------------------------------------------------------


@dataclass(frozen=True)
class Facts:
    """What a clause is checked against (amounts in EUR). None: that tool result is missing."""

    claim: dict[str, Any]
    amount_eur: float
    fraud: dict[str, Any] | None
    policy: dict[str, Any] | None
    submitted_on: str | None = None


def _age_days(facts: Facts) -> int | None:
    try:
        expense = date.fromisoformat(str(facts.claim.get("claim_date")))
        submitted = date.fromisoformat(str(facts.submitted_on))
    except ValueError:
        return None
    return (submitted - expense).days


def check(condition: Condition, facts: Facts) -> tuple[bool | None, str]:
    """(holds, the facts compared); holds is None when a needed fact is missing."""
    eur, kind = facts.amount_eur, condition.kind
    policy, fraud = facts.policy, facts.fraud
    if kind == "fraud":
        if fraud is None:
            return None, "no fraud check result"
        return bool(fraud.get("flagged")), f"fraud flag: {fraud.get('reason') or 'none'}"
    if kind in ("at_least", "above", "at_most", "below"):
        n = float(condition.value)
        holds = {"at_least": eur >= n, "above": eur > n, "at_most": eur <= n, "below": eur < n}
        return holds[kind], f"{eur:.2f} EUR vs {n:.2f} EUR"
    if kind == "no_receipt":
        return not facts.claim.get("has_receipt"), (
            "receipt attached" if facts.claim.get("has_receipt") else "no receipt"
        )
    if kind == "category":
        category = facts.claim.get("category")
        names = "/".join(sorted(condition.value))
        return category in condition.value, f"category {category} ({names} named)"
    if kind == "age":
        age = _age_days(facts)
        if age is None:
            return None, "claim date or submission date missing"
        return age > condition.value, f"{age} days old vs {condition.value} days"
    if policy is None:
        return None, "no policy lookup result"
    customer = policy.get("customer_id") or facts.claim.get("customer_id")
    if not policy.get("found"):
        holds = kind in ("no_policy", "uncovered")
        return holds, f"unknown customer {customer}: no policy found"
    if kind == "no_policy":
        return False, f"policy {policy.get('plan')} found"
    if kind == "uncovered":
        covered = bool(policy.get("covered"))
        verb = "covers" if covered else "does not cover"
        return not covered, f"plan {policy.get('plan')} {verb} {facts.claim.get('category')}"
    key = "per_claim_limit_eur" if kind == "above_limit" else "review_threshold_eur"
    limit = policy.get(key)
    if limit is None:
        return False, f"no {key}"
    name = "per-claim limit" if kind == "above_limit" else "review threshold"
    return eur > float(limit), f"{eur:.2f} EUR vs {name} {float(limit):.2f} EUR"


def matches(clause: Clause, facts: Facts) -> tuple[bool | None, str]:
    """(matched, the facts compared): any group whose conditions all hold."""
    unknown = False
    notes: list[str] = []
    for group in clause.groups:
        results = [check(c, facts) for c in group]
        notes += [note for _, note in results]
        if all(holds for holds, _ in results):
            return True, "; ".join(note for _, note in results) or "always"
        if any(holds is None for holds, _ in results) and not any(h is False for h, _ in results):
            unknown = True
    return (None if unknown else False), "; ".join(dict.fromkeys(notes))
