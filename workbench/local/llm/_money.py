"""Numbers and money as people write them, in the conventions of the five languages.

Numbers: `1234.56`, `1,234.56`, `1.234,56`, `1'234.56`, `15’400.00`, `1 234,56` (space,
no-break or thin space), `150,-`, `0.001`. The rule for one separator that could be either kind:
it is the decimal point when one or two digits follow it, or when the whole part is zero
(`0.001`); otherwise it groups thousands (`1.234` and `12,000` are twelve hundred and twelve
thousand). With both `.` and `,`, the last one is the decimal point.

Money: a number next to a currency symbol (`€ $ £ ¥ US$ A$ C$ Fr. Kč zł kr`...), an ISO 4217 code
(before or after), or a currency name in English, German, French, Spanish or Italian ("342.80
euros", "1.250 Schweizer Franken", "560,00 kr", "250 francs suisses"). An unknown upper-case
three-letter code after a number ("300 XYZ") is kept as written, so the caller can say it is
unknown instead of guessing."""

from __future__ import annotations

import re
from dataclasses import dataclass

from ._lexicon import ISO_CODES, MONTH_NUMBER, SYMBOLS, WORD_RE, WORDS, alternation, fold

_SPACE = "[ \u00a0\u202f\u2009]"
NUMBER = (
    r"(?<![\w.,'’/-])"  # not in the middle of a word, a number or a date
    rf"(?:\d{{1,3}}(?:(?:[.,'’]|{_SPACE}(?=\d{{3}}(?!\d)))\d{{3}})+(?:[.,]\d{{1,2}})?"  # grouped
    r"|\d+(?:[.,]\d{1,3})?)"  # plain, up to three decimals (0.001)
    r"(?:[.,][-–])?"  # 150,- and 150.– (no cents)
    r"(?![\d'’])(?![.,]\d)"
)
"""A number as people write amounts (see the module docstring)."""
NUMBER_RE = re.compile(NUMBER)

MAX_AMOUNT = 1e12
"""A larger number is not an amount anyone claims; the parser reports it as unreadable."""


def parse_number(token: str) -> float:
    """The value of a NUMBER token (see the module docstring for the separator rule)."""
    digits = re.sub(r"[\s'’\u00a0\u202f\u2009]", "", token)
    digits = re.sub(r"[.,][-–]$", "", digits)
    seps = [c for c in digits if c in ".,"]
    if not seps:
        return float(digits)
    last = max(digits.rfind("."), digits.rfind(","))
    whole, decimals = digits[:last], len(digits) - last - 1
    mixed = "." in digits and "," in digits
    zero = re.fullmatch(r"0+", whole) is not None
    if mixed or (len(seps) == 1 and (decimals != 3 or zero)):
        return float(f"{re.sub(r'[.,]', '', whole)}.{digits[last + 1 :]}")
    return float(re.sub(r"[.,]", "", digits))


# --- currencies ---------------------------------------------------------------------------------

_FOLDED_SYMBOLS = {fold(symbol): code for symbol, code in SYMBOLS.items() if symbol != "Ft"}
_SYMBOL_RE = (
    r"(?:(?<![a-z])(?:" + alternation([s for s in _FOLDED_SYMBOLS if s[-1] == "$"]) + r")"
    r"|[€£¥₣₹₩₺₪$]|(?<![a-z])(?:kc|zl)(?![a-z]))"
)
_CODE_RE = r"(?<![a-z])(?:" + "|".join(sorted(c.lower() for c in ISO_CODES)) + r")(?![a-z])"
_WORDS_RE = rf"(?<![a-z])(?:{WORD_RE})(?![a-z])"
_GAP = r"[ \t\u00a0\u202f]{0,24}"  # receipts and tables leave wide gaps
MONEY_RE = re.compile(
    rf"(?P<pre>{_SYMBOL_RE}|{_CODE_RE}|{_WORDS_RE}){_GAP}(?P<n1>{NUMBER})"
    rf"|(?P<n2>{NUMBER}){_GAP}(?P<suf>{_SYMBOL_RE}|{_CODE_RE}|{_WORDS_RE}|(?<![a-z])[a-z]{{3}}(?![\w-]))"
)
"""Money in FOLDED text (see `_lexicon.fold`): positions are the same in the original."""
_MONTHS_3 = frozenset(name for name in MONTH_NUMBER if len(name) == 3)


def currency_code(token: str) -> str:
    """An upper-case code for a symbol, code or currency name; unknown tokens upper-cased."""
    token = token.strip()
    if token in SYMBOLS:
        return SYMBOLS[token]
    folded = re.sub(r"\s+", " ", fold(token))
    if folded in _FOLDED_SYMBOLS:
        return _FOLDED_SYMBOLS[folded]
    return WORDS.get(folded, token.upper())


@dataclass(frozen=True)
class Money:
    amount: float
    currency: str | None
    start: int
    end: int


def find_money(
    text: str, folded: str | None = None, skip: list[tuple[int, int]] = ()
) -> list[Money]:
    """Every amount written next to a currency in `text`, in document order. `folded` is
    `fold(text)` when the caller has it; numbers overlapping a span of `skip` (dates) are not
    amounts. An unknown code counts only when it is upper case in the original ("300 XYZ", not
    "300 new")."""
    folded = fold(text) if folded is None else folded
    found: list[Money] = []
    pos = 0
    while m := MONEY_RE.search(folded, pos):
        pos = m.start() + 1
        group = "n1" if m.group("n1") else "n2"
        start, end = m.span(group)
        token_group = "pre" if group == "n1" else "suf"
        token = text[m.start(token_group) : m.end(token_group)]
        if any(a < end and start < b for a, b in skip):
            continue
        if token_group == "suf" and re.fullmatch(r"[a-z]{3}", m.group("suf")):
            code = m.group("suf").upper()
            is_unknown_code = code not in ISO_CODES and fold(token) not in WORDS
            if is_unknown_code and (not token.isupper() or m.group("suf") in _MONTHS_3):
                continue
        found.append(Money(parse_number(m.group(group)), currency_code(token), m.start(), m.end()))
        pos = m.end()
    return found
