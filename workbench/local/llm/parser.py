"""The parser task (`ClaimData`): read the fields of a claim document with fixed rules.

- customer_id: `C-1001`, `C1001`, `c-1001`, or "customer number/id/no. 1001" -> "C-1001".
- claim_date: the first date not on a Sent:/Submitted:/Received: line (see `_text.find_date`).
- amount/currency: a labelled value ("Total ...:" before "Amount:"), else the money mention on a
  line saying "total", else on a line saying amount/paid/cost/bill, else the first one. A labelled
  number without a currency takes the word after it ("150 doubloons" -> "DOUBLOONS") or a
  "Currency:" field. A labelled amount without digits ("Amount: a lot") is unreadable.
- category: a "Category:"/"Claim type:" field (mapped by keywords, anything else is "other"), else
  the category with the most keyword hits in the text (ties: the earliest hit).
- has_receipt: a negative phrase ("no receipt", "lost the receipt", "receipt: none", "receipt to
  follow", ...) wins over a positive one ("receipt attached", "receipt: yes", ...); default false.
"""

from __future__ import annotations

import math
import re
from typing import Any

from ._text import (
    ISO_CODES,
    NUMBER,
    collapse,
    currency_code,
    find_date,
    find_money,
    line_at,
    parse_number,
)

CATEGORY_KEYWORDS: dict[str, re.Pattern[str]] = {
    name: re.compile(rf"\b(?:{pattern})\b", re.I)
    for name, pattern in {
        "dental": r"dental|dentists?|tooth|teeth|fillings?|orthodont\w*|root canal|hygienists?"
        r"|crowns?|implants?|zahnarzt\w*",
        "pharmacy": r"pharmac\w*|prescriptions?|medications?|medicines?|drugstores?|chemists?"
        r"|apote\w*|apothek\w*|antibiotics?|insulin|painkillers?|cough syrup|allerg\w*",
        "vision": r"vision|optic\w*|optometr\w*|glasses|spectacles|contact lens\w*|lens\w*"
        r"|eyes?|eyewear|varifocals?|frames",
        "travel": r"travel\w*|flights?|fly|hotels?|trips?|airlines?|airports?|luggage|baggage"
        r"|ferry|ferries|trains?|tickets?|cancel\w*|abroad|evacuation",
        "medical": r"medical|doctors?|physicians?|gp|general practitioner|hospitals?|clinics?"
        r"|physio\w*|x-rays?|mri|blood tests?|consultations?|emergency|surg\w*|specialists?"
        r"|dermatolog\w*|appendectomy|arthroscopy|injury|injuries",
        "other": r"miscellaneous|hearing aids?",
    }.items()
}

MAX_AMOUNT = 1e12
"""A larger number is not an amount anyone claims; it is reported as unreadable."""

_CUSTOMER_RES = [
    re.compile(r"\b[Cc]-?\s?(\d{4})\b"),
    re.compile(r"\bcustomer\s*(?:id|number|no\.?|#)\s*(?:is|:|=)?\s*(\d{4})\b", re.I),
]
_FIELD_END = re.compile(r"\s+[\w-]+\s*=")  # the next key of a key=value line
_AMOUNT_LABEL = re.compile(
    r"\b(?P<label>total(?:\s+(?:amount|paid|claimed|due))?"
    r"|(?:claim(?:ed)?\s+)?amount(?:\s+(?:claimed|paid|due))?|sum)\b"
    r"[ \t]*(?:\((?P<paren>[^)\n]{1,12})\))?[ \t]*(?P<sep>[:=|])[ \t]*(?P<value>[^\n|;]*)",
    re.I,
)
_CURRENCY_LABEL = re.compile(r"\bcurrency\b[ \t]*[:=|][ \t]*(?P<value>[^\s|;,]+)", re.I)
_CATEGORY_LABEL = re.compile(
    r"\b(?:category|claim type|expense type)\b[ \t]*[:=|][ \t]*(?P<value>[^\n|;]*)", re.I
)
_NUMBER_RE = re.compile(NUMBER)
_WORD_AFTER = re.compile(r"[ \t]*([A-Za-z][A-Za-z.]+)")
_NOT_A_CURRENCY = frozenset(
    "and at by for from in incl including on paid plus the to total via was were with".split()
)
_AMOUNT_LINE = re.compile(r"\b(?:amount|paid|cost|bill|price|charged|came to|sum)\b", re.I)

_NEGATIVE_RECEIPT = [
    re.compile(p, re.I)
    for p in (
        r"\bno\s+receipts?\b",
        r"\bwithout\s+(?:a\s+|the\s+|any\s+)?receipts?\b",
        r"\b(?:lost|misplaced|threw away)\s+(?:the\s+|my\s+|a\s+|our\s+)?receipts?\b",
        r"\b(?:don't|do not|didn't|did not|can't|cannot|couldn't|could not)\s+"
        r"(?:have|find|get|keep)\s+(?:the\s+|a\s+|my\s+|any\s+)?receipts?\b",
        r"\bnever\s+(?:received|got|had|kept)\s+(?:a\s+|the\s+|any\s+)?receipts?\b",
    )
]
_NEGATIVE_RECEIPT_FIELD = re.compile(
    r"\breceipts?\b[^.;,\n]{0,20}?\b(?:no|none|missing|not attached|not available|not included"
    r"|to follow|lost|n/a|unavailable)\b",
    re.I,
)
_POSITIVE_RECEIPT = [
    re.compile(p, re.I)
    for p in (
        r"\b(?:receipts?|invoices?)\s+(?:is\s+|are\s+|was\s+|were\s+)?"
        r"(?:attached|enclosed|included|uploaded)\b",
        r"\battach(?:ed)?\s+(?:is\s+|are\s+)?(?:the\s+|my\s+|a\s+|all\s+)?receipts?\b",
        r"\bwith\s+(?:the\s+|a\s+)?receipts?\b",
    )
]
_POSITIVE_RECEIPT_FIELD = re.compile(
    r"\breceipts?\b[^;\n]{0,25}?\b(?:yes|ja|oui|attached|enclosed|included|provided|uploaded)\b",
    re.I,
)


def find_customer(text: str) -> str | None:
    for regex in _CUSTOMER_RES:
        m = regex.search(text)
        if m:
            return f"C-{m.group(1)}"
    return None


def _read_labelled(value: str, paren: str | None) -> tuple[float, str | None] | None:
    """A labelled amount's value: money with its currency, or a bare number."""
    money = find_money(value)
    if money:
        return money[0].amount, money[0].currency
    number = _NUMBER_RE.search(value)
    if not number:
        return None
    amount = parse_number(number.group(0))
    word = _WORD_AFTER.match(value, number.end())
    if word and word.group(1).lower() not in _NOT_A_CURRENCY:
        return amount, currency_code(word.group(1))
    if paren and paren.strip():
        return amount, currency_code(paren)
    return amount, None


def find_amount(text: str) -> tuple[float | None, str | None, str | None]:
    """(amount, currency, unreadable value); see the module docstring for the order of rules."""
    unreadable: str | None = None
    labelled = sorted(
        _AMOUNT_LABEL.finditer(text), key=lambda m: not m["label"].lower().startswith("total")
    )
    for m in labelled:
        value = _FIELD_END.split(m["value"].replace("*", ""), maxsplit=1)[0].strip()
        read = _read_labelled(value, m["paren"])
        if read:
            return read[0], read[1], None
        if value and m["sep"] != "|" and unreadable is None:
            unreadable = value
    mentions = find_money(text)
    if mentions:

        def rank(money: Any) -> tuple[int, int]:
            line = line_at(text, money.start).lower()
            level = 3 if "total" in line else 2 if _AMOUNT_LINE.search(line) else 1
            return level, -money.start

        best = max(mentions, key=rank)
        return best.amount, best.currency, None
    return None, None, unreadable


def find_currency_field(text: str) -> str | None:
    m = _CURRENCY_LABEL.search(text)
    return currency_code(m["value"]) if m else None


def _best_category(text: str) -> tuple[str | None, str | None]:
    """(category, the first keyword seen for it) by hit count, ties broken by earliest hit."""
    best: tuple[int, int, str, str] | None = None
    for name, regex in CATEGORY_KEYWORDS.items():
        hits = list(regex.finditer(text))
        if hits:
            key = (len(hits), -hits[0].start(), name, hits[0].group(0).lower())
            if best is None or key[:2] > best[:2]:
                best = key
    return (best[2], best[3]) if best else (None, None)


def find_category(text: str) -> tuple[str | None, str | None]:
    m = _CATEGORY_LABEL.search(text)
    if m:
        value = _FIELD_END.split(m["value"], maxsplit=1)[0].strip()
        if value:
            category, keyword = _best_category(value)
            return (category, keyword) if category else ("other", re.split(r"[(,]", value)[0])
    return _best_category(text)


def find_receipt(text: str) -> bool:
    flat = collapse(text)
    if any(r.search(flat) for r in _NEGATIVE_RECEIPT) or _NEGATIVE_RECEIPT_FIELD.search(text):
        return False
    return any(r.search(flat) for r in _POSITIVE_RECEIPT) or bool(
        _POSITIVE_RECEIPT_FIELD.search(text)
    )


def parse_claim(text: str) -> dict[str, Any]:
    """The `ClaimData` JSON object for one claim document."""
    customer_id = find_customer(text)
    claim_date = find_date(text)
    amount, currency, unreadable = find_amount(text)
    if amount is not None and not (math.isfinite(amount) and amount < MAX_AMOUNT):
        amount, currency, unreadable = None, None, "a number too large to be an amount"
    if amount is not None and currency is None:
        currency = find_currency_field(text)
    category, keyword = find_category(text)
    has_receipt = find_receipt(text)

    problems: list[str] = []
    if customer_id is None:
        problems.append("customer id missing")
    if claim_date is None:
        problems.append("date missing")
    if amount is None:
        problems.append(f"amount unreadable: {unreadable!r}" if unreadable else "amount missing")
    if currency is None:
        problems.append("currency missing")
    elif currency not in ISO_CODES:
        problems.append(f"currency {currency!r} is not a known ISO 4217 code")
    if category is None:
        problems.append("category missing")

    what = f"{category.capitalize()} expense" if category else "Expense"
    keyword = (keyword or "").strip().lower()
    if keyword and keyword != category:
        what += f" ({keyword})"
    money = f"{amount:.2f} {currency or '(no currency)'}" if amount is not None else "no amount"
    description = (
        f"{what} of {money} on {claim_date or 'an unknown date'} "
        f"for customer {customer_id or 'unknown'}, "
        f"{'receipt attached' if has_receipt else 'no receipt'}."
    )
    return {
        "customer_id": customer_id,
        "claim_date": claim_date,
        "amount": round(amount, 2) if amount is not None else None,
        "currency": currency,
        "category": category,
        "has_receipt": has_receipt,
        "description": description,
        "problems": problems,
    }
