"""Text helpers for the rule-based parser: numbers, money, dates, whitespace.

Each function is small, pure and deterministic; the rules are documented where they live so the
behaviour can be read off the code (and off `README.md`)."""

from __future__ import annotations

import re
from dataclasses import dataclass
from datetime import date

# --- numbers ------------------------------------------------------------------------------------

NUMBER = (
    r"(?<![\w.,'/-])"  # not in the middle of a word, a number or a date
    r"(?:\d{1,3}(?:(?:[.,']|[ \u00a0\u202f](?=\d{3}(?!\d)))\d{3})+(?:[.,]\d{1,2})?"  # grouped
    r"|\d+(?:[.,]\d{1,2})?)"  # plain
    r"(?!\d)"
)
"""A number as people write amounts: 1234.56, 1,234.56, 1.234,56, 1'234.56, 1 234,56, 12000."""


def parse_number(token: str) -> float:
    """Read a number token. The last separator is the decimal point when both `.` and `,` occur,
    or when it is followed by one or two digits; otherwise separators group thousands."""
    digits = re.sub(r"[\s'\u00a0\u202f]", "", token)
    seps = [c for c in digits if c in ".,"]
    if not seps:
        return float(digits)
    last = max(digits.rfind("."), digits.rfind(","))
    decimals = len(digits) - last - 1
    mixed = "." in digits and "," in digits
    if mixed or (len(seps) == 1 and decimals != 3):
        whole = re.sub(r"[.,]", "", digits[:last])
        return float(f"{whole}.{digits[last + 1 :]}")
    return float(re.sub(r"[.,]", "", digits))


# --- currencies ---------------------------------------------------------------------------------

SYMBOLS = {"US$": "USD", "CA$": "CAD", "C$": "CAD", "AU$": "AUD", "A$": "AUD", "$": "USD"}
SYMBOLS |= {"€": "EUR", "£": "GBP", "¥": "JPY"}
WORDS = {
    "euro": "EUR", "euros": "EUR", "dollar": "USD", "dollars": "USD", "pound": "GBP",
    "pounds": "GBP", "sterling": "GBP", "franc": "CHF", "francs": "CHF", "yen": "JPY",
    "krona": "SEK", "kronor": "SEK", "kr": "SEK", "kr.": "SEK",
}  # fmt: skip
ISO_CODES = frozenset(
    "EUR USD GBP CHF JPY SEK NOK DKK ISK PLN CZK HUF RON BGN HRK CAD AUD NZD CNY HKD SGD KRW "
    "INR BRL MXN ZAR ILS AED THB".split()
)
"""ISO 4217 codes the parser recognises; another three-letter upper-case code is kept as written."""
_MONTH_ABBR = frozenset("JAN FEB MAR APR MAY JUN JUL AUG SEP OCT NOV DEC".split())

_SYMBOL_RE = r"(?:\b(?:US|CA|AU|C|A)\$|[$€£¥])"
_CODE_RE = r"\b(?:" + "|".join(sorted(ISO_CODES)) + r")\b"
_WORD_RE = r"\b(?i:euros?|dollars?|pounds?|sterling|francs?|yen|kronor|krona|kr\b\.?)"
_PREFIX = rf"(?P<pre>{_SYMBOL_RE}|(?i:{_CODE_RE})|\b(?i:kr)\b\.?)[ \t\u00a0]{{0,3}}(?P<n1>{NUMBER})"
_SUFFIX = (
    rf"(?P<n2>{NUMBER})[ \t\u00a0]{{0,3}}"
    rf"(?P<suf>[$€£¥]|(?i:{_CODE_RE})|{_WORD_RE}|\b[A-Z]{{3}}\b(?![-\w]))"
)
MONEY_RE = re.compile(f"{_PREFIX}|{_SUFFIX}")


def currency_code(token: str) -> str:
    """Map a symbol, word or code to an upper-case code; unknown tokens are upper-cased as is."""
    token = token.strip()
    if token in SYMBOLS:
        return SYMBOLS[token]
    return WORDS.get(token.lower(), token.upper())


@dataclass(frozen=True)
class Money:
    amount: float
    currency: str | None
    start: int


# --- dates --------------------------------------------------------------------------------------

MONTHS = {
    "jan": 1, "feb": 2, "mar": 3, "apr": 4, "may": 5, "jun": 6,
    "jul": 7, "aug": 8, "sep": 9, "oct": 10, "nov": 11, "dec": 12,
}  # fmt: skip
_MON = (
    r"(?P<mon>jan(?:uary)?|feb(?:ruary)?|mar(?:ch)?|apr(?:il)?|may|june?|july?|aug(?:ust)?"
    r"|sep(?:t(?:ember)?)?|oct(?:ober)?|nov(?:ember)?|dec(?:ember)?)"
)
_DATE_RES = [
    re.compile(r"\b(?P<y>\d{4})[-/.](?P<m>\d{1,2})[-/.](?P<d>\d{1,2})\b"),
    re.compile(r"\b(?P<a>\d{1,2})[./-](?P<b>\d{1,2})[./-](?P<y>\d{4})\b"),
    re.compile(
        rf"\b(?P<d>\d{{1,2}})(?:st|nd|rd|th)?(?:\s+of)?[\s-]+{_MON}\.?[\s,-]+(?P<y>\d{{4}})\b",
        re.I,
    ),
    re.compile(rf"\b{_MON}\.?\s+(?P<d>\d{{1,2}})(?:st|nd|rd|th)?,?\s+(?P<y>\d{{4}})\b", re.I),
]
_NOT_EXPENSE_DATE = re.compile(
    r"^\W*(?:sent|submitted|received|printed|filed|date of birth|dob|born)\b"
    r"|\b(?:sent|submitted|received) on\b",
    re.I,
)


def _to_iso(groups: dict[str, str | None]) -> str | None:
    year = int(groups["y"] or 0)
    if groups.get("mon"):
        month = MONTHS[(groups["mon"] or "")[:3].lower()]
        day = int(groups["d"] or 0)
    elif groups.get("a"):
        first, second = int(groups["a"] or 0), int(groups["b"] or 0)
        day, month = (second, first) if second > 12 else (first, second)  # day-first unless US
    else:
        month, day = int(groups["m"] or 0), int(groups["d"] or 0)
    try:
        return date(year, month, day).isoformat()
    except ValueError:
        return None


def find_date(text: str) -> str | None:
    """The first date in the document that is not on a Sent:/Submitted:/Received: line, as ISO."""
    hits: list[tuple[int, str]] = []
    offset = 0
    for line in text.splitlines(keepends=True):
        if not _NOT_EXPENSE_DATE.search(line):
            for regex in _DATE_RES:
                for m in regex.finditer(line):
                    iso = _to_iso(m.groupdict())
                    if iso:
                        hits.append((offset + m.start(), iso))
        offset += len(line)
    return min(hits)[1] if hits else None


def collapse(text: str) -> str:
    """All whitespace runs (newlines included) as single spaces."""
    return " ".join(text.split())


def line_at(text: str, pos: int) -> str:
    """The line of `text` that contains position `pos`."""
    start = text.rfind("\n", 0, pos) + 1
    end = text.find("\n", pos)
    return text[start : end if end >= 0 else len(text)]


def date_spans(text: str) -> list[tuple[int, int]]:
    """Where dates are written, so that a year or a day is never read as an amount."""
    return [m.span() for regex in _DATE_RES for m in regex.finditer(text)]


def find_money(text: str) -> list[Money]:
    """Every amount written next to a currency symbol, word or code, in document order.
    A three-letter upper-case word after a number counts as a (possibly unknown) code, except
    month abbreviations; numbers inside dates are skipped."""
    found: list[Money] = []
    dates = date_spans(text)
    pos = 0
    while m := MONEY_RE.search(text, pos):
        pos = m.start() + 1
        group = "n1" if m.group("n1") else "n2"
        start, end = m.span(group)
        token = m.group("pre") or m.group("suf")
        if token.upper() in _MONTH_ABBR or any(a < end and start < b for a, b in dates):
            continue
        found.append(Money(parse_number(m.group(group)), currency_code(token), m.start()))
        pos = m.end()
    return found
