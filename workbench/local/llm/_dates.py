"""Dates as people write them, in English, German, French, Spanish and Italian.

Forms: ISO `2026-10-12` (also `/` and `.`), numeric `12.10.2026`, `12/10/2026`, `12-10-2026`
(and two-digit years, `12.10.26`), month names and abbreviations in the five languages
("Oct 12 2026", "October 12th, 2026", "12 October 2026", "12. Oktober 2026", "1er mars 2026",
"12 de octubre de 2026", "12 ottobre 2026", "14-Feb-2026"), and ranges, whose first day is taken
("3-5 March 2026", "vom 3. bis 5. März 2026", "du 3 au 5 mars 2026").

**The ambiguity rule for numeric dates** such as "3/4/2026", where either number could be the
month: the order is day-first (3 April 2026), as in every one of the five languages outside the
United States, unless
1. the second number is above 12 ("03/27/2026" can only be 27 March), or
2. another numeric date in the same document can only be read month-first (then the document's
   writer uses month-first throughout), or
3. the date is written with slashes in an English document whose money is US dollars
   ("$", "US$", "USD", "dollars"), the one common month-first convention.
Dotted and dashed numeric dates are always day-first."""

from __future__ import annotations

import re
from dataclasses import dataclass
from datetime import date

from ._lexicon import MONTH_NUMBER, MONTH_RE

_MON = rf"(?P<mon>{MONTH_RE})\.?"
_DAY = r"(?P<d>[0-3]?\d)(?:st|nd|rd|th|er|eme|e|º|°|\.)?"
_YEAR = r"(?P<y>(?:19|20)\d{2})"
_RANGE_TAIL = (
    r"(?:\s*(?:-|–|—|to|till|until|bis|au|al|a|y|e|et|and|und)\s*"
    r"(?:[0-3]?\d)(?:st|nd|rd|th|er|º|°|\.)?)?"
)
DATE_RES: list[tuple[str, re.Pattern[str]]] = [
    (
        "iso",
        re.compile(r"(?<![\d.,])(?P<y>(?:19|20)\d{2})([-/.])(?P<m>[01]?\d)\2(?P<d>[0-3]?\d)(?!\d)"),
    ),
    (
        "numeric",
        re.compile(
            r"(?<![\d.,/-])(?P<a>[0-3]?\d)(?P<sep>[./-])(?P<b>[0-3]?\d)(?P=sep)"
            r"(?P<y>(?:19|20)\d{2}|\d{2})(?![\d]|[.,]\d)"
        ),
    ),
    (
        "day-month",
        re.compile(
            rf"(?<![\w.,]){_DAY}{_RANGE_TAIL}"
            rf"(?:\s+of|\s+de)?[\s-]+{_MON}(?:[\s,-]+(?:de(?:l)?\s+)?|\s*-\s*){_YEAR}(?!\d)"
        ),
    ),
    (
        "month-day",
        re.compile(rf"(?<![a-z]){_MON}\s+{_DAY}{_RANGE_TAIL},?\s+{_YEAR}(?!\d)"),
    ),
]
"""Each date form with its regex, applied to FOLDED text (see `_lexicon.fold`)."""

NOT_EXPENSE_DATE = re.compile(
    r"^\W*(?:from|to|cc|bcc|von|an|de|a|da|para|per)\s*:"  # e-mail header lines
    r"|^\W*(?:sent|submitted|received|printed|filed|gesendet|empfangen|versendet|envoye"
    r"|recu le|enviado|recibido|inviato|ricevuto)\b"
    r"|\b(?:sent|submitted|received|written|printed) on\b|\bwrote:|\bschrieb\b|\ba ecrit\b"
    r"|\bescribio\b|\bha scritto\b"
    r"|\b(?:date of birth|dob|born|birthday|geburtsdatum|geboren|date de naissance|ne le"
    r"|nee le|fecha de nacimiento|nacido|nacida|data di nascita|nato il|nata il)\b"
    r"|\bdue (?:date|by|on)\b|\bpayable (?:by|before)\b|\bzahlbar bis\b|\bfallig\b"
    r"|\ba payer avant\b|\becheance\b|\bvencimiento\b|\bscadenza\b|\bpagare entro\b"
    r"|\b(?:member|customer|insured|client|policy) since\b|\bkunde seit\b|\bversichert seit\b"
    r"|^\W*(?:date|datum|fecha|data)\s*:\s*(?:mon|tue|wed|thu|fri|sat|sun|mo|di|mi|do|fr|sa|so"
    r"|lun|mar|mer|jeu|ven|sam|dim|mie|jue|vie|sab|dom|gio)[a-z]*\.?,"  # an e-mail Date: header
    r"|\d{1,2}:\d{2}(?::\d{2})?\s*[+-]\d{4}\b",  # a clock time with a time zone
)
"""A line on which a date is not the expense's (e-mail headers, birth dates, due dates)."""

SERVICE_LABEL = re.compile(
    r"\b(?:date of (?:service|treatment|purchase|expense|visit|loss|travel|the (?:visit|"
    r"treatment|trip|incident))|service date|treatment date|purchase date|visit date"
    r"|behandlungsdatum|leistungsdatum|behandlungstag|datum der (?:behandlung|leistung)|kaufdatum"
    r"|date (?:des soins|de (?:la )?(?:consultation|traitement|soin|l'achat|visite)|d'achat)"
    r"|fecha (?:del (?:tratamiento|servicio)|de (?:la )?(?:consulta|compra|visita|atencion))"
    r"|data (?:della (?:visita|prestazione)|del (?:trattamento|servizio)|di acquisto))"
)
"""Labels that name the date of the expense itself; such a date wins over other dates."""


@dataclass(frozen=True)
class FoundDate:
    iso: str
    start: int
    end: int
    labelled: bool  # on a line that names it as the date of the service


def _iso(year: int, month: int, day: int) -> str | None:
    try:
        return date(year, month, day).isoformat()
    except ValueError:
        return None


def _year(text: str) -> int:
    return int(text) + 2000 if len(text) == 2 else int(text)


def month_first(folded: str, us_money: bool) -> bool:
    """Whether the document writes numeric dates month-first (see the module docstring)."""
    unambiguous = []
    for m in DATE_RES[1][1].finditer(folded):
        first, second = int(m["a"]), int(m["b"])
        if first > 12 >= second:
            unambiguous.append(False)
        elif second > 12 >= first:
            unambiguous.append(True)
    if unambiguous:
        return unambiguous[0]
    return us_money


def date_spans(folded: str) -> list[tuple[int, int]]:
    """Where dates are written, so that a year or a day is never read as an amount."""
    return [m.span() for _, regex in DATE_RES for m in regex.finditer(folded)]


def find_dates(folded: str, us_money: bool = False) -> list[FoundDate]:
    """Every expense date candidate of the folded document, in document order, skipping dates
    on lines that are not about the expense (e-mail headers, birth and due dates)."""
    order_month_first = month_first(folded, us_money)
    found: list[FoundDate] = []
    taken: list[tuple[int, int]] = []
    lines: dict[int, tuple[bool, bool]] = {}  # line start -> (skipped, labelled)
    for kind, regex in DATE_RES:
        for m in regex.finditer(folded):
            if any(a < m.end() and m.start() < b for a, b in taken):
                continue
            start = folded.rfind("\n", 0, m.start()) + 1
            if start not in lines:
                end = folded.find("\n", m.start())
                line = folded[start : end if end >= 0 else len(folded)]
                skip, label = NOT_EXPENSE_DATE.search(line), SERVICE_LABEL.search(line)
                lines[start] = (skip is not None, label is not None)
            skipped, labelled = lines[start]
            iso = None if skipped else _read(kind, m, order_month_first)
            if iso:
                taken.append(m.span())
                found.append(FoundDate(iso, m.start(), m.end(), labelled))
    found.sort(key=lambda d: d.start)
    return found


def _read(kind: str, m: re.Match[str], order_month_first: bool) -> str | None:
    if kind == "iso":
        return _iso(int(m["y"]), int(m["m"]), int(m["d"]))
    if kind == "numeric":
        first, second = int(m["a"]), int(m["b"])
        if second > 12:
            day, month = second, first
        elif first > 12:
            day, month = first, second
        elif m["sep"] == "/" and order_month_first:
            day, month = second, first
        else:
            day, month = first, second
        return _iso(_year(m["y"]), month, day)
    return _iso(int(m["y"]), MONTH_NUMBER[m["mon"]], int(m["d"]))
