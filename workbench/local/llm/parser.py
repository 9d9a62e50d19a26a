"""The parser task (`ClaimData`): read the fields of a claim document with fixed rules, in
English, German, French, Spanish and Italian (the vocabulary is in `_lexicon.py`).

Before reading, the text is cleaned the way a reader's eye does it: OCR slips inside numbers and
label words are repaired ("C-10O1" -> "C-1001", "Tota1" -> "Total", "Arnount" -> "Amount"), and an
e-mail thread is cut into its newest message and the quoted ones ("> ...", "On ... wrote:",
"-----Original Message-----", "Am ... schrieb", "Le ... a écrit", ...). Each field is read from
the newest message first and from the quoted ones only when the newer ones do not give it, so a
correction in a reply wins over the original.

- customer_id: after a customer label in any of the five languages ("Customer ID", "customer no.",
  "Kundennr.", "N° client", "n.º de cliente", "codice cliente", "policy holder", ...) the first
  token with a digit, or an unlabelled `C-1001`/`CUST-4411`-style id. The house form `C-NNNN` is
  normalised ("c1001", "C 1001", "customer number 1001" -> "C-1001"); any other id is returned as
  written, upper-cased ("CUST-4411", "K-77", "12345", "AB123").
- claim_date: the date labelled as the service/treatment/purchase date, else the first date that
  is not an e-mail header, a birth date or a due date (see `_dates.py`, with its documented rule
  for ambiguous numeric dates like "3/4/2026").
- amount/currency: every money mention is ranked; the highest rank wins, the earliest among equals:
  the amount claimed (a "claimed"/"Erstattungsbetrag"/"montant réclamé" label or a sentence that
  claims it: "I claim the remaining 150 EUR") > a total ("Total", "Gesamtbetrag", "Total TTC",
  "importe total", "totale") > an amount field ("Amount", "Betrag", "montant", "importe",
  "importo") > any other mention. Subtotals, taxes, deductibles, discounts and what another payer
  covered are never the claim, nor are thresholds ("claims above 200 EUR need a receipt"). A
  labelled number without a currency takes the word after it ("150 doubloons" -> "DOUBLOONS"), a
  "(EUR)" in the label or a "Currency:" field. A labelled amount without digits ("Amount: a lot")
  is unreadable.
- category: a stated category field in any of the five languages, mapped by keywords; a stated
  category none of them covers is returned as written, lower case ("wellness", "fertility
  treatment"), never squashed to "other". Without a field, the category whose keywords occur most
  (ties: the earliest). Besides medical, dental, pharmacy, vision, travel and other, the parser
  names wellness, cosmetic, veterinary and hearing expenses.
- has_receipt: a negative phrase ("no receipt", "kein Beleg", "sans reçu", "sin recibo", "senza
  ricevuta", "receipt to follow", "Receipt: none") wins over a positive one ("receipt attached",
  "Rechnung anbei", "facture jointe", "recibo adjunto", "ricevuta allegata", "Receipt: yes");
  default false.
"""

from __future__ import annotations

import math
import re
import unicodedata
from dataclasses import dataclass, field
from typing import Any

from ._dates import date_spans, find_dates
from ._lexicon import (
    AMOUNT_LABELS,
    ATTACHED,
    CATEGORY_LABELS,
    CATEGORY_STEMS,
    CLAIM_VERBS,
    CLAIMED_LABELS,
    CUSTOMER_LABELS,
    CUSTOMER_PREFIXES,
    INCLUDING_TAX,
    ISO_CODES,
    NEGATIVE_RECEIPT,
    NO,
    NOT_CLAIMED,
    POSITIVE_RECEIPT,
    RECEIPT_NOUN_RE,
    TOTAL_LABELS,
    alternation,
    fold,
)
from ._money import MAX_AMOUNT, NUMBER, Money, currency_code, find_money, parse_number

# --- cleaning: OCR slips and e-mail threads ------------------------------------------------------

_OCR_NUMBER = re.compile(r"(?<![A-Za-z])[0-9OolI][0-9OolI.,'’/-]*[0-9OolI](?![A-Za-z])")
_OCR_DIGITS = str.maketrans("OolI", "0011")
_LABEL_WORDS = frozenset(
    w
    for phrase in (
        *CUSTOMER_LABELS,
        *TOTAL_LABELS,
        *AMOUNT_LABELS,
        *CLAIMED_LABELS,
        *CATEGORY_LABELS,
        *ATTACHED,
    )  # fmt: skip
    for w in phrase.split()
    if len(w) >= 4 and w.isalpha()
) | {"receipt", "date", "datum", "fecha", "data", "claim", "pharmacy", "dental", "medical"}
_OCR_WORD = re.compile(r"\b(?=[A-Za-z]*[015]|[A-Za-z]*rn)[A-Za-z015]{4,}\b")
_OCR_SWAPS = (("0", "o"), ("1", "l"), ("1", "i"), ("5", "s"), ("rn", "m"))


def _fix_ocr_number(m: re.Match[str]) -> str:
    token = m.group(0)
    digits = sum(c.isdigit() for c in token)
    letters = sum(c in "OolI" for c in token)
    return token.translate(_OCR_DIGITS) if letters and digits >= 2 and digits >= letters else token


def _fix_ocr_word(m: re.Match[str]) -> str:
    word = m.group(0)
    if word.isdigit() or word.lower() in _LABEL_WORDS:
        return word
    candidates = [word]
    for old, new in _OCR_SWAPS:
        candidates += [c.replace(old, new) for c in candidates if old in c]
    for candidate in candidates[1:]:
        if candidate.lower() in _LABEL_WORDS and not any(c.isdigit() for c in candidate):
            return candidate
    return word


def clean(text: str) -> str:
    """The text with OCR slips in numbers and label words repaired (see the module docstring)."""
    text = unicodedata.normalize("NFC", text).replace("\r\n", "\n").replace("\t", " ")
    return _OCR_WORD.sub(_fix_ocr_word, _OCR_NUMBER.sub(_fix_ocr_number, text))


_QUOTE_START = re.compile(
    r"^[ \t]*>"
    r"|^[ \t]*-{2,}[ \t]*(?:original message|urspr.ngliche nachricht|message d'origine"
    r"|mensaje original|messaggio originale|forwarded message|weitergeleitete nachricht"
    r"|message transfere|mensaje reenviado|messaggio inoltrato)"
    r"|^[ \t]*(?:on|am|le|el|il)\b[^\n]{0,160}(?:wrote|schrieb|a ecrit|escribio|ha scritto)[ \t]*:?"
    r"[ \t]*$",
    re.M,
)
_HEADER_BLOCK = re.compile(
    r"^[ \t]*(?:from|von|de|da)[ \t]*:[^\n]*\n"
    r"[ \t]*(?:sent|gesendet|envoye|enviado|inviato|date|datum)[ \t]*:",
    re.M,
)


def messages(text: str) -> list[str]:
    """The newest message of an e-mail thread first, then the quoted ones ('>' marks removed);
    a document that is not a thread is one message."""
    folded = fold(text)
    cuts = [m.start() for m in _QUOTE_START.finditer(folded)]
    cuts += [m.start() for m in _HEADER_BLOCK.finditer(folded) if m.start() > 0]
    if not cuts:
        return [text]
    first = min(cuts)
    newest, quoted = text[:first], text[first:]
    unquoted = re.sub(r"(?m)^[ \t]*(?:>[ \t]?)+", "", quoted)
    return [part for part in (newest, unquoted) if part.strip()] or [text]


# --- customer ids --------------------------------------------------------------------------------

_CUSTOMER_LABEL = re.compile(
    rf"(?<![a-z])(?:{alternation(CUSTOMER_LABELS)})(?![a-z])"
    r"(?P<sep>(?:[ \t]*(?:[:#=|/.\-]|(?:n[°ºo]\.?|nr\.?|no\.?|num(?:ber|mer|ero)?\.?|id|is|ist"
    r"|est|es|e|ref\.?)(?=[\s:#]|$)))*[ \t]*)"
)
_ID_AFTER_LABEL = re.compile(
    r"(?P<gap>[ \t,(]*(?:[A-ZÀ-Þ][^\W\d_]*\.?[ \t,]+){0,3}\(?)"  # at most a name before the id
    r"(?<![\w-])(?P<id>(?:[A-Z]{1,8}|(?i:c|cust|kd))?[-/]?\d[\dA-Za-z/-]*|(?i:c)[ ]\d{4})"
    r"(?![\w-])(?![.,]\d)"
)
_HOUSE_ID = re.compile(r"(?<![\w-])C[- ]?(\d{4})(?![\w-])", re.I)
_PREFIXED_ID = re.compile(
    rf"(?<![\w-])(?:{'|'.join(CUSTOMER_PREFIXES)})[-_ ]?\d{{2,}}(?![\w-])", re.I
)


def _normalise_id(token: str) -> str:
    token = token.strip().rstrip(".,;:)").upper()
    house = re.fullmatch(r"C[- ]?(\d{4})|(\d{4})", token)
    if house:
        return f"C-{house.group(1) or house.group(2)}"
    return re.sub(r"\s+", "", token)


def find_customer(text: str, folded: str) -> str | None:
    for label in _CUSTOMER_LABEL.finditer(folded):
        m = _ID_AFTER_LABEL.match(text, label.end())
        if not m:
            continue
        token, gap = m["id"], m["gap"]
        if not any(c.isalpha() for c in token) and gap.strip(" \t("):
            continue  # a bare number follows its label directly ("customer no. 12345")
        return _normalise_id(token)
    for regex in (_HOUSE_ID, _PREFIXED_ID):
        if m := regex.search(text):
            return _normalise_id(m.group(0))
    return None


# --- amounts -------------------------------------------------------------------------------------

_CLAIMED = re.compile(rf"(?<![a-z])(?:{alternation(CLAIMED_LABELS)})(?![a-z])")
_TOTAL = re.compile(rf"(?<![a-z-])(?:{alternation(TOTAL_LABELS)})(?![a-z])")
_AMOUNT = re.compile(rf"(?<![a-z])(?:{alternation(AMOUNT_LABELS)})(?![a-z])")
_NOT_CLAIMED = re.compile(
    rf"(?<![a-z])(?:{alternation(NOT_CLAIMED)}|excl|exkl|netto|hors taxes|ht|sin iva|senza iva"
    r"|imponibile|insurer paid|insurance paid|krankenkasse|mutuelle|other insurer)(?![a-z])"
)
_PAID_BY = re.compile(
    r"(?<![a-z])(?:paid by|covered by|reimbursed by|erstattet von|bezahlt von|ubernommen von"
    r"|rembourse par|pris en charge par|paye par|pagado por|reembolsado por|cubierto por"
    r"|pagato da|rimborsato da|coperto da)(?![a-z])"
)
_INCLUDING = re.compile(rf"(?<![a-z])(?:{alternation(INCLUDING_TAX)})")
_CLAIM_VERB = re.compile(rf"(?<![a-z])(?:{alternation(CLAIM_VERBS)})(?![a-z])")
_THRESHOLD_BEFORE = re.compile(
    r"(?:above|over|more than|exceeding|greater than|up to|under|below|less than|at least"
    r"|ab|unter|bis zu|mehr als|weniger als|hoher als|plus de|moins de|jusqu'a|au-dela de"
    r"|superieur a|mas de|menos de|hasta|superior a|oltre|piu di|meno di|fino a|superiore a)"
    r"[ \t]*$"
)
_LABELLED = re.compile(
    rf"(?<![a-z])(?P<label>{alternation(CLAIMED_LABELS + TOTAL_LABELS + AMOUNT_LABELS)})(?![a-z])"
    r"[ \t]*(?:\((?P<paren>[^)\n]{1,12})\))?[ \t]*(?P<sep>[:=|]|\.{2,})[ \t.]*(?P<value>[^\n|;]*)"
)
_FIELD_END = re.compile(r"\s+[\w-]+\s*=")  # the next key of a key=value line
_CURRENCY_FIELD = re.compile(
    r"(?<![a-z])(?:currency|wahrung|devise|monnaie|moneda|divisa|valuta)[ \t]*[:=|][ \t]*"
    r"(?P<value>[^\s|;,]+)"
)
_WORD_AFTER = re.compile(r"[ \t]*([A-Za-z][A-Za-z.]+)")
_NOT_A_CURRENCY = frozenset(
    "and at by for from in incl including on paid plus the to total via was were with und fur "
    "et pour y para e per con".split()
)
_NUMBER_RE = re.compile(NUMBER)
_SENTENCE_END = re.compile(r"[.!?](?=\s)|\n")


@dataclass
class _Amount:
    amount: float | None = None
    currency: str | None = None
    unreadable: str | None = None


def _line(folded: str, pos: int) -> tuple[int, int]:
    start = folded.rfind("\n", 0, pos) + 1
    end = folded.find("\n", pos)
    return start, end if end >= 0 else len(folded)


def _sentence_before(folded: str, pos: int) -> str:
    """The words of the same sentence just before `pos` (at most 40 characters)."""
    start = max((m.end() for m in _SENTENCE_END.finditer(folded, max(0, pos - 40), pos)), default=0)
    return folded[max(start, pos - 40) : pos]


def money_rank(folded: str, money: Money) -> int:
    """How surely a money mention is the claimed amount (see the module docstring); < 0: never."""
    if _THRESHOLD_BEFORE.search(folded, max(0, money.start - 30), money.start):
        return -1
    line_start, line_end = _line(folded, money.start)
    line = folded[line_start:line_end]
    clause = re.split(r"[,;(]", folded[line_start : money.start])[-1]
    after = re.split(r"[,;)\n]", folded[money.end : money.end + 40])[0]
    if (_NOT_CLAIMED.search(clause) or _PAID_BY.search(after)) and not _INCLUDING.search(clause):
        return 0
    if _CLAIMED.search(line) or _CLAIM_VERB.search(_sentence_before(folded, money.start)):
        return 5
    if _TOTAL.search(line):
        return 4
    if _AMOUNT.search(line):
        return 3
    return 2


def labelled_amount(text: str, folded: str) -> _Amount | None:
    """A labelled amount whose value has no recognised currency next to it, or no number."""
    unreadable = None
    for m in sorted(
        _LABELLED.finditer(folded),
        key=lambda m: (
            0 if _CLAIMED.fullmatch(m["label"]) else 1 if _TOTAL.fullmatch(m["label"]) else 2,
            m.start(),
        ),
    ):
        value_start = m.start("value")
        raw = text[value_start : m.end("value")]
        value = _FIELD_END.split(raw.replace("*", ""), maxsplit=1)[0].strip()
        number = _NUMBER_RE.search(value)
        if not number:
            if value and m["sep"] != "|" and unreadable is None:
                unreadable = value
            continue
        amount = parse_number(number.group(0))
        word = _WORD_AFTER.match(value, number.end())
        if word and fold(word.group(1)) not in _NOT_A_CURRENCY:
            return _Amount(amount, currency_code(word.group(1)))
        if m["paren"] and m["paren"].strip():
            return _Amount(amount, currency_code(m["paren"]))
        return _Amount(amount, None)
    return _Amount(unreadable=unreadable) if unreadable else None


def find_amount(text: str, folded: str) -> _Amount:
    mentions = find_money(text, folded, skip=date_spans(folded))
    ranked = [(rank, -m.start, m) for m in mentions if (rank := money_rank(folded, m)) >= 0]
    if ranked:
        best = max(ranked, key=lambda r: r[:2])[2]
        if max(r[0] for r in ranked) >= 2:
            return _Amount(best.amount, best.currency)
    labelled = labelled_amount(text, folded)
    if labelled and labelled.amount is not None:
        if labelled.currency is None:
            field = _CURRENCY_FIELD.search(folded)
            labelled.currency = (
                currency_code(text[field.start("value") : field.end("value")]) if field else None
            )
        return labelled
    if ranked:  # only a part, a tax or what someone else paid: still the best reading there is
        best = max(ranked, key=lambda r: r[:2])[2]
        return _Amount(best.amount, best.currency)
    return labelled or _Amount()


# --- categories ----------------------------------------------------------------------------------

_STEM_CATEGORY = {stem: name for name, stems in CATEGORY_STEMS.items() for stem in stems}
_KEYWORDS = re.compile(
    r"(?<![a-z])(?:"
    + "|".join(
        f"{re.escape(stem)}{'' if len(stem) >= 5 else '(?![a-z])'}"
        for stem in sorted(_STEM_CATEGORY, key=lambda s: (-len(s), s))
    )
    + r")"
)
_CATEGORY_FIELD = re.compile(
    rf"(?<![a-z])(?:{alternation(CATEGORY_LABELS)})(?![a-z])[ \t]*(?:/[^:=|\n]{{0,30}})?"
    r"[ \t]*(?:[:=|]|\.{2,})[ \t.]*(?P<value>[^\n|;]*)"
)


def _keyword_category(folded: str) -> tuple[str | None, str | None]:
    """(category, its first keyword) by keyword count, ties broken by the earliest keyword."""
    counts: dict[str, list[Any]] = {}
    for m in _KEYWORDS.finditer(folded):
        name = _STEM_CATEGORY[m.group(0)]
        entry = counts.setdefault(name, [0, m.start(), m.group(0)])
        entry[0] += 1
    if not counts:
        return None, None
    name, (_, _, keyword) = max(counts.items(), key=lambda kv: (kv[1][0], -kv[1][1]))
    return name, keyword


def find_category(text: str, folded: str) -> tuple[str | None, str | None]:
    for m in _CATEGORY_FIELD.finditer(folded):
        value = _FIELD_END.split(m["value"], maxsplit=1)[0].strip(" *")
        if not value:
            continue
        category, keyword = _keyword_category(value)
        if category:
            return category, keyword
        written = text[m.start("value") : m.start("value") + len(value)]
        name = re.split(r"[(,/]", written)[0].strip().lower()
        name = " ".join(re.findall(r"[^\W\d_]+", name)[:3])
        if name:
            return name, None
    return _keyword_category(folded)


# --- receipts ------------------------------------------------------------------------------------

_NEGATIVE = re.compile("|".join(f"(?:{p})" for p in NEGATIVE_RECEIPT))
_POSITIVE = re.compile("|".join(f"(?:{p})" for p in POSITIVE_RECEIPT))
_NO_WORDS = alternation([w for w in NO if w not in ("no", "-")])
_RECEIPT_FIELD_NO = re.compile(
    rf"(?<![a-z])(?:{RECEIPT_NOUN_RE})(?![a-z])[^.;,\n]{{0,24}}?(?:(?<![a-z])(?:{_NO_WORDS})"
    r"(?![a-z])|(?<![a-z])no(?![a-z])(?!\.?\s*\d)|[:|][ \t]*-[ \t]*$)",
    re.M,
)
_RECEIPT_FIELD_YES = re.compile(
    rf"(?<![a-z])(?:{RECEIPT_NOUN_RE})(?![a-z])[^;\n]{{0,50}}?(?<![a-z])"
    rf"(?:yes|ja|oui|si(?=\s*(?:$|[,.;/)(]))|\[x\]|✓|✔|{alternation(ATTACHED)})(?![a-z])",
    re.M,
)


_BARE_ATTACHED = re.compile(
    rf"(?:^|[.!?\n])\s*(?:(?:it\s+is|it's|here\s+it\s+is|now|ist|est|esta|e)\s+)?"
    rf"(?:{alternation(ATTACHED)})(?:\s+(?:now|jetzt|maintenant|ahora|ora))?\s*(?:[.!]|$)",
    re.M,
)
_ASKED_FOR_RECEIPT = re.compile(rf"(?<![a-z])(?:{RECEIPT_NOUN_RE})(?![a-z])")


def find_receipt(folded: str) -> bool | None:
    """True, False, or None when the text says nothing about a receipt."""
    flat = " ".join(folded.split())
    if _NEGATIVE.search(flat) or _RECEIPT_FIELD_NO.search(folded):
        return False
    if _POSITIVE.search(flat) or _RECEIPT_FIELD_YES.search(folded):
        return True
    return None


# --- the whole document --------------------------------------------------------------------------

_LANGUAGE_WORDS = {
    "en": re.compile(r"(?<![a-z])(?:the|and|of|to|for|my|was|is|i|with|on)(?![a-z])"),
    "other": re.compile(
        r"(?<![a-z])(?:der|die|das|und|ich|mit|fur|le|la|les|et|je|pour|avec|el|los|las|y|por"
        r"|con|il|di|per|sono|ho)(?![a-z])"
    ),
}


def _english(folded: str) -> bool:
    words = {lang: len(regex.findall(folded)) for lang, regex in _LANGUAGE_WORDS.items()}
    return words["en"] >= words["other"]


@dataclass
class _Fields:
    customer_id: str | None = None
    claim_date: str | None = None
    amount: _Amount = field(default_factory=_Amount)
    category: tuple[str | None, str | None] = (None, None)
    has_receipt: bool | None = None


def _read(text: str) -> _Fields:
    folded = fold(text)
    amount = find_amount(text, folded)
    us = amount.currency == "USD" and _english(folded)
    dates = find_dates(folded, us_money=us)
    labelled = [d for d in dates if d.labelled]
    return _Fields(
        customer_id=find_customer(text, folded),
        claim_date=(labelled or dates)[0].iso if dates else None,
        amount=amount,
        category=find_category(text, folded),
        has_receipt=find_receipt(folded),
    )


def parse_claim(text: str) -> dict[str, Any]:
    """The `ClaimData` JSON object for one claim document."""
    texts = messages(clean(text))
    parts = [_read(part) for part in texts]
    first = parts[0]
    newest_receipt = first.has_receipt
    for later in parts[1:]:
        first.customer_id = first.customer_id or later.customer_id
        first.claim_date = first.claim_date or later.claim_date
        if first.amount.amount is None and (
            later.amount.amount is not None or not first.amount.unreadable
        ):
            first.amount = later.amount
        if first.category[0] is None:
            first.category = later.category
        if first.has_receipt is None:
            first.has_receipt = later.has_receipt
    if newest_receipt is None and len(texts) > 1:
        # "Attached now." answering a quoted request for the receipt
        asked = any(_ASKED_FOR_RECEIPT.search(fold(t)) for t in texts[1:])
        if asked and _BARE_ATTACHED.search(fold(texts[0])):
            first.has_receipt = True
    return _claim_data(first)


def _claim_data(f: _Fields) -> dict[str, Any]:
    amount, currency, unreadable = f.amount.amount, f.amount.currency, f.amount.unreadable
    if amount is not None and not (math.isfinite(amount) and amount < MAX_AMOUNT):
        amount, currency, unreadable = None, None, "a number too large to be an amount"
    category, keyword = f.category
    has_receipt = bool(f.has_receipt)

    problems: list[str] = []
    if f.customer_id is None:
        problems.append("customer id missing")
    if f.claim_date is None:
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
        f"{what} of {money} on {f.claim_date or 'an unknown date'} "
        f"for customer {f.customer_id or 'unknown'}, "
        f"{'receipt attached' if has_receipt else 'no receipt'}."
    )
    return {
        "customer_id": f.customer_id,
        "claim_date": f.claim_date,
        "amount": _round_amount(amount),
        "currency": currency,
        "category": category,
        "has_receipt": has_receipt,
        "description": description,
        "problems": problems,
    }


def _round_amount(amount: float | None) -> float | None:
    """Cents, except for amounts below one cent, which keep their digits (0.001 stays 0.001, so
    the workflow can say it is less than a cent instead of paying 0.00 or 1.00)."""
    if amount is None:
        return None
    return round(amount, 2) if amount >= 0.01 or amount == 0 else round(amount, 6)
