"""The parser reads claims written the way people write them, in English, German, French,
Spanish and Italian (data/claims holds the sample set; these are the rules one by one)."""

from __future__ import annotations

from typing import Any

import pytest

from services.models import ClaimData
from workbench.local.llm import parser
from workbench.local.llm._money import parse_number


def parse(document: str) -> dict[str, Any]:
    data = parser.parse_claim(document)
    ClaimData.model_validate(data)
    return data


def fields(document: str, *names: str) -> tuple[Any, ...]:
    data = parse(document)
    return tuple(data[name] for name in names)


CUSTOMER_IDS = {
    "house-form": ("Customer ID: C-1001, dentist, 40 EUR", "C-1001"),
    "house-without-hyphen": ("c1001 dentist 40 EUR", "C-1001"),
    "customer-number": ("my customer number is 1021, 40 EUR dentist", "C-1021"),
    "cust-prefix": ("Hi, CUST-4411 here: dentist, 40 EUR", "CUST-4411"),
    "customer-no-digits": ("customer no. 12345 - dentist 40 EUR", "12345"),
    "kundennr": ("Kundennr. K-77, Zahnarzt 40 EUR", "K-77"),
    "policy-holder": ("policy holder AB123, dentist 40 EUR", "AB123"),
    "name-then-id": ("Policyholder: Yuki Tanaka (C-1006), 40 EUR", "C-1006"),
    "numero-client": ("Numéro client : FR-2231, dentiste, 40 €", "FR-2231"),
    "numero-de-cliente": ("N.º de cliente: ES-77, médico, 40 €", "ES-77"),
    "cliente-es": ("El número de cliente es 4471, médico, 40 €", "C-4471"),
    "codice-cliente": ("Codice cliente IT-9001, dentista, 40 €", "IT-9001"),
    "lower-case-written": ("cust-4411 dentist 40 EUR", "CUST-4411"),
    "not-a-year": ("Kunde seit 2015, Zahnarzt 40 €", None),
    "kd-nr": ("Kd.-Nr.: 55-123, Krankengymnastik 162,00 €", "55-123"),
    "member-id": ("Policyholder: Jane Doe\nMember ID: MBR-55120\nTotal: GBP 180.00", "MBR-55120"),
    "not-a-claim-number": ("Dear customer, your claim CLM-2026-881 is open.", None),
}


@pytest.mark.parametrize(
    ("document", "expected"), list(CUSTOMER_IDS.values()), ids=list(CUSTOMER_IDS)
)
def test_customer_ids_in_any_common_shape(document: str, expected: str | None) -> None:
    (customer_id,) = fields(document, "customer_id")
    assert customer_id == expected


DATES = {
    "iso": ("C-1001 2026-10-12 40 EUR", "2026-10-12"),
    "month-day-year": ("C-1001 Oct 12 2026 40 EUR", "2026-10-12"),
    "month-day-comma": ("C-1001 October 12th, 2026 40 EUR", "2026-10-12"),
    "day-month-year": ("C-1001 12 October 2026 40 EUR", "2026-10-12"),
    "dotted": ("C-1001 12.10.2026 40 EUR", "2026-10-12"),
    "two-digit-year": ("C-1001 Datum: 12.10.26, 40 EUR", "2026-10-12"),
    "abbreviated": ("C-1001 14-Feb-2026 40 EUR", "2026-02-14"),
    "german": ("C-1001 am 3. März 2026, 40 EUR", "2026-03-03"),
    "german-abbr": ("C-1001 am 3. Dez. 2026, 40 EUR", "2026-12-03"),
    "french": ("C-1001 le 1er février 2026, 40 €", "2026-02-01"),
    "french-accentless": ("C-1001 le 15 aout 2026, 40 €", "2026-08-15"),
    "spanish": ("C-1001 el 12 de octubre de 2026, 40 €", "2026-10-12"),
    "spanish-ordinal": ("C-1001 el 1º de marzo de 2026, 40 €", "2026-03-01"),
    "italian": ("C-1001 il 12 ottobre 2026, 40 €", "2026-10-12"),
    "italian-abbr": ("C-1001 il 5 gen 2026, 40 €", "2026-01-05"),
    "range-first-day": ("C-1001 du 3 au 5 mars 2026, 40 €", "2026-03-03"),
    "service-label-wins": (
        "Geburtsdatum: 01.01.1980\nBehandlungsdatum: 02.02.2026\nC-1001 40 €",
        "2026-02-02",
    ),  # fmt: skip
    "sent-line-skipped": (
        "Sent: 2 April 2026\nC-1001 saw a doctor on 21 March 2026, 40 EUR",
        "2026-03-21",
    ),  # fmt: skip
    "email-date-header-skipped": (
        "Date: Mon, 16 Mar 2026 10:22:01 +0100\nC-1001 on 2026-03-12, 40 EUR",
        "2026-03-12",
    ),  # fmt: skip
    "till-receipt-time-kept": (
        "Datum: 07.02.2026 14:32\nSUMME EUR 15,44\nKunde C-1001",
        "2026-02-07",
    ),  # fmt: skip
    "due-date-skipped": ("C-1001 due date 30.04.2026\nvisit 02.04.2026, 40 EUR", "2026-04-02"),
}


@pytest.mark.parametrize(("document", "expected"), list(DATES.values()), ids=list(DATES))
def test_dates_in_the_five_languages(document: str, expected: str) -> None:
    (claim_date,) = fields(document, "claim_date")
    assert claim_date == expected


AMBIGUOUS = {
    "day-first-by-default": ("C-1001, hotel in Tokyo 3/4/2026, ¥42,000", "2026-04-03"),
    "day-first-in-french": ("C-1001, médecin le 3/4/2026, 40 $ payés", "2026-04-03"),
    "month-first-in-english-with-dollars": (
        "C-1001, clinic in Boston 3/4/2026, $420.00",
        "2026-03-04",
    ),  # fmt: skip
    "another-date-decides": ("C-1001 visits 03/27/2026 and 3/4/2026, 40 EUR", "2026-03-27"),
    "dotted-always-day-first": ("C-1001 3.4.2026, $40", "2026-04-03"),
    "second-above-twelve": ("C-1001 on 03/27/2026, 40 EUR", "2026-03-27"),
}


@pytest.mark.parametrize(("document", "expected"), list(AMBIGUOUS.values()), ids=list(AMBIGUOUS))
def test_the_documented_ambiguity_rule_for_numeric_dates(document: str, expected: str) -> None:
    (claim_date,) = fields(document, "claim_date")
    assert claim_date == expected


def test_the_us_rule_applies_to_slashes_only_in_english() -> None:
    later = parse("C-1001, clinic in Boston 3/4/2026, $420.00")
    assert later["claim_date"] == "2026-03-04"
    other = parse("Cliente C-1001, clínica en Miami el 3/4/2026, 420,00 dólares")
    assert (other["claim_date"], other["currency"]) == ("2026-04-03", "USD")


@pytest.mark.parametrize(
    ("token", "value"),
    [
        ("15'400.00", 15400.0),
        ("15’400.00", 15400.0),
        ("1 234,50", 1234.5),
        ("1\u202f234,50", 1234.5),
        ("1,250.00", 1250.0),
        ("1.250,00", 1250.0),
        ("77,50", 77.5),
        ("42,000", 42000.0),
        ("1.234", 1234.0),
        ("0.001", 0.001),
        ("0,005", 0.005),
        ("150,-", 150.0),
        ("2'480.–", 2480.0),
        ("1.234.567,89", 1234567.89),
    ],
)
def test_every_grouping_and_decimal_convention(token: str, value: float) -> None:
    assert parse_number(token) == value


MONEY = {
    "swiss-apostrophe": ("C-1001 Arzt 15'400.00 CHF", 15400.0, "CHF"),
    "space-grouping": ("C-1001 Arzt 1 234,50 EUR", 1234.5, "EUR"),
    "us-grouping": ("C-1001 doctor 1,250.00 USD", 1250.0, "USD"),
    "euro-after": ("C-1001 Arzt 77,50 €", 77.5, "EUR"),
    "yen": ("C-1001 clinic ¥42,000", 42000.0, "JPY"),
    "kronor": ("C-1001 apotek 560,00 kr", 560.0, "SEK"),
    "code-before": ("C-1001 doctor EUR 342.80", 342.8, "EUR"),
    "name-after": ("C-1001 doctor 342.80 euros", 342.8, "EUR"),
    "pfund": ("C-1001 Arzt 80,00 Pfund", 80.0, "GBP"),
    "franken": ("C-1001 Arzt 250 Schweizer Franken", 250.0, "CHF"),
    "francs-suisses": ("C-1001 médecin 250 francs suisses", 250.0, "CHF"),
    "fr-dot": ("C-1001 médecin Fr. 150.–", 150.0, "CHF"),
    "libras": ("C-1001 médico 80 libras esterlinas", 80.0, "GBP"),
    "dolares": ("C-1001 médico 120 dólares", 120.0, "USD"),
    "sterline": ("C-1001 medico 420 sterline", 420.0, "GBP"),
    "corone-ceche": ("C-1001 ottico 2.450 corone ceche", 2450.0, "CZK"),
    "kc": ("C-1001 Optiker 2.450 Kč", 2450.0, "CZK"),
    "zloty": ("C-1001 lekarz 5 000 zł", 5000.0, "PLN"),
    "danske-kroner": ("C-1001 hospital 900 danske kroner", 900.0, "DKK"),
    "canadian": ("C-1001 doctor CA$145.00", 145.0, "CAD"),
    "australian": ("C-1001 dentist A$890.00", 890.0, "AUD"),
    "german-no-cents": ("C-1001 Arzt 150,- €", 150.0, "EUR"),
    "one-tenth-cent": ("C-1001 paid 0.001 EUR for a pill", 0.001, "EUR"),
    "unknown-code-kept": ("Customer ID: C-1008\nAmount: 300 XYZ", 300.0, "XYZ"),
    "unknown-word-kept": ("Customer ID: C-1008\nAmount: 150 doubloons", 150.0, "DOUBLOONS"),
}


@pytest.mark.parametrize(("document", "amount", "currency"), list(MONEY.values()), ids=list(MONEY))
def test_amounts_with_codes_symbols_and_names_in_five_languages(
    document: str, amount: float, currency: str
) -> None:
    assert fields(document, "amount", "currency") == (amount, currency)


SEVERAL_AMOUNTS = {
    "remaining-is-claimed": (
        "C-1001. Treatment cost 450 EUR, my other insurer paid 300 EUR, so I claim the "
        "remaining 150 EUR.",
        150.0,
    ),
    "threshold-is-not-a-claim": (
        "C-1001 physio. Claims above 200 EUR need a receipt. I paid 180 EUR on 2026-03-01.",
        180.0,
    ),
    "gross-total-beats-net-and-tax": (
        "Kunde: C-1001, Arzt\nZwischensumme: 100,00 €\nMwSt 19%: 19,00 €\n"
        "Gesamtbetrag inkl. MwSt.: 119,00 €",
        119.0,
    ),
    "claimed-label-beats-total": (
        "C-1001 Reise\nTotal: 1.500,00 €\nErstattungsbetrag: 1.104,00 €",
        1104.0,
    ),
    "correction-in-newest-message": (
        "Correction: the amount was 59 EUR, not 95.\n\n-----Original Message-----\nFrom: x\n"
        "Sent: 3 March 2026\n\nC-1004 pharmacy 2026-02-27 95 EUR receipt attached",
        59.0,
    ),
    "not-this-one": ("C-1028 dentiste : le montant est de 168,50 €, et non 186,50 €.", 168.5),
    "uber-is-not-a-threshold": ("Kunde C-1001: Die Rechnung über 89,90 EUR vom Hausarzt.", 89.9),
    "cash-and-change-are-not-claimed": (
        "C-1001 Apotheke\nSUMME EUR   15,44\nBar EUR   20,00\nRückgeld EUR   4,56",
        15.44,
    ),
}


@pytest.mark.parametrize(
    ("document", "amount"), list(SEVERAL_AMOUNTS.values()), ids=list(SEVERAL_AMOUNTS)
)
def test_several_amounts_of_which_one_is_the_claim(document: str, amount: float) -> None:
    (found,) = fields(document, "amount")
    assert found == amount


CATEGORIES = {
    "zahnarzt": ("C-1001 Zahnarzt, 40 €", "dental"),
    "dentiste": ("C-1001 chez le dentiste, 40 €", "dental"),
    "muela": ("C-1001 me sacaron una muela, 40 €", "dental"),
    "apotheke": ("C-1001 Apotheke, Medikamente, 40 €", "pharmacy"),
    "ordonnance": ("C-1001 pharmacie, médicaments sur ordonnance, 40 €", "pharmacy"),
    "farmaci": ("C-1001 farmaci in farmacia, 40 €", "pharmacy"),
    "brille": ("C-1001 neue Brille beim Optiker, 40 €", "vision"),
    "gafas": ("C-1001 gafas nuevas en la óptica, 40 €", "vision"),
    "occhiali": ("C-1001 occhiali dall'ottico, 40 €", "vision"),
    "flug": ("C-1001 Flug storniert, Hotel gebucht, 40 €", "travel"),
    "equipaje": ("C-1001 perdieron mi equipaje en el vuelo, 40 €", "travel"),
    "krankenhaus": ("C-1001 Krankenhaus, Notaufnahme, 40 €", "medical"),
    "hopital": ("C-1001 urgences à l'hôpital, 40 €", "medical"),
    "ospedale": ("C-1001 pronto soccorso in ospedale, 40 €", "medical"),
    "oculista": ("C-1001 visita oculistica, 40 €", "vision"),
    "hearing": ("Customer C-1014, Sept 1 2026: new hearing aids, $2,980.00", "hearing"),
    "veterinary": ("C-1001 Tierarzt für meinen Hund, 90 €", "veterinary"),
    "cosmetic": ("C-1002 Botox injection at an aesthetic clinic, 300 EUR", "cosmetic"),
    "stated-wellness": ("Customer: C-1002\nCategory: wellness (gym)\nAmount: 90 EUR", "wellness"),
    "stated-unknown-kept": (
        "Customer: C-1002\nCategory: fertility treatment\nAmount: 90 EUR",
        "fertility treatment",
    ),
    "stated-other-in-german": ("Kunde: C-1002\nKategorie: Sonstiges\nBetrag: 90 €", "other"),
    "stated-beats-keywords": (
        "Kunde: C-1002\nKategorie: Wellness (Hotel)\nBetrag: 90 €",
        "wellness",
    ),
}


@pytest.mark.parametrize(("document", "category"), list(CATEGORIES.values()), ids=list(CATEGORIES))
def test_categories_by_keywords_in_five_languages(document: str, category: str) -> None:
    (found,) = fields(document, "category")
    assert found == category


RECEIPTS = {
    "attached": ("C-1001 doctor 40 EUR, receipt attached", True),
    "rechnung-anbei": ("C-1001 Arzt 40 €, Rechnung anbei", True),
    "facture-jointe": ("C-1001 médecin 40 €, la facture est jointe", True),
    "adjunto-recibo": ("C-1001 médico 40 €. Adjunto el recibo.", True),
    "ricevuta-allegata": ("C-1001 medico 40 €. In allegato la ricevuta.", True),
    "field-ja": ("Kunde: C-1001\nBetrag: 40 €\nQuittung: ja", True),
    "field-si": ("Cliente: C-1001\nImporto: 40 €\nRicevuta: sì", True),
    "attachment-file": ("C-1001 doctor 40 EUR\nAttachment: receipt_0412.pdf", True),
    "receipt-number-is-not-no": ("C-1001 Receipt no. 4711 attached, 20 EUR doctor", True),
    "german-compound": ("C-1001, anbei meine Zahnarztrechnung über 1.180,00 €", True),
    "si-allega": ("C-1030, visita oculistica, € 150,00. Si allega fattura.", True),
    "lost": ("C-1001 doctor 40 EUR, I lost the receipt", False),
    "kein-beleg": ("C-1001 Arzt 40 €, kein Beleg", False),
    "reiche-nach": ("C-1001 Arzt 40 €. Die Quittung reiche ich nach.", False),
    "sans-recu": ("C-1001 médecin 40 €, sans reçu", False),
    "plus-le-ticket": ("C-1001 pharmacie 40 €. Je n'ai plus le ticket de caisse.", False),
    "sin-recibo": ("C-1001 farmacia 40 € sin recibo", False),
    "scontrino-perso": ("C-1001 farmacia 40 €. Ho perso lo scontrino.", False),
    "to-follow": ("C-1001 doctor 640 EUR. Receipt to follow next week.", False),
    "field-none": ("Customer ID: C-1001\nAmount: 80 GBP\nReceipt: none (paid cash)", False),
    "silence": ("C-1001 doctor 40 EUR", False),
}


@pytest.mark.parametrize(("document", "has_receipt"), list(RECEIPTS.values()), ids=list(RECEIPTS))
def test_receipts_in_five_languages(document: str, has_receipt: bool) -> None:
    (found,) = fields(document, "has_receipt")
    assert found is has_receipt


def test_a_complete_claim_in_each_language_parses_completely() -> None:
    claims = {
        "en": "Customer C-1001: eye test at the optician on 6 March 2026, paid 164.00 EUR, "
        "receipt attached.",
        "de": "Kundennummer C-1001. Am 6. März 2026 beim Optiker Sehtest, 164,00 €, Beleg anbei.",
        "fr": "N° client C-1001. Le 6 mars 2026 chez l'opticien, 164,00 €, facture jointe.",
        "es": "Número de cliente C-1001. El 6 de marzo de 2026 en la óptica, 164,00 €. "
        "Adjunto el recibo.",
        "it": "Codice cliente C-1001. Il 6 marzo 2026 dall'ottico, 164,00 €. Ricevuta allegata.",
    }
    for language, document in claims.items():
        data = parse(document)
        got = [data[k] for k in ("customer_id", "claim_date", "amount", "currency", "category")]
        assert got == ["C-1001", "2026-03-06", 164.0, "EUR", "vision"], language
        assert data["has_receipt"] is True and data["problems"] == [], language


def test_ocr_slips_are_repaired() -> None:
    data = parse("Cust0mer ID: C-10O1\nDate: 2O26-O3-14\nTota1: l20.50 EUR\nCategory: dental")
    assert [data[k] for k in ("customer_id", "claim_date", "amount", "currency")] == [
        "C-1001",
        "2026-03-14",
        120.5,
        "EUR",
    ]


def test_an_email_thread_is_read_newest_first_then_the_quotes() -> None:
    thread = (
        "Subject: Re: claim\n\nSorry, forgot: my customer id is C-1004.\n\n"
        "On Mon, 2 Mar 2026, Ana <a@b.c> wrote:\n"
        "> I paid 95 EUR at the pharmacy on 2026-02-27. Receipt attached.\n"
    )
    data = parse(thread)
    assert [data[k] for k in ("customer_id", "claim_date", "amount", "category")] == [
        "C-1004",
        "2026-02-27",
        95.0,
        "pharmacy",
    ]
    assert data["has_receipt"] is True


def test_attached_now_answers_the_quoted_request_for_the_receipt() -> None:
    thread = (
        "RE: RE: claim\n\nAttached now.\n\n-----Original Message-----\nFrom: Claims Desk\n"
        "Sent: 10 September 2026 09:00\n\nPlease send the receipt.\n\n"
        "-----Original Message-----\nFrom: Ana Lima\nSent: 9 September 2026 18:00\n\n"
        "Customer C-1001. Dentist 8 Sep 2026, EUR 140."
    )
    data = parse(thread)
    assert (data["claim_date"], data["amount"], data["has_receipt"]) == ("2026-09-08", 140.0, True)
    assert parse(thread.replace("Attached now.", "Thanks."))["has_receipt"] is False


def test_what_cannot_be_read_is_null_and_a_problem() -> None:
    data = parse("Hello, I would like some money back please. Thanks!")
    assert (data["customer_id"], data["amount"], data["currency"]) == (None, None, None)
    assert {"customer id missing", "amount missing", "currency missing"} <= set(data["problems"])
    unreadable = parse("Customer ID: C-1005\nAmount: a lot\nCategory: medical")
    assert "amount unreadable: 'a lot'" in unreadable["problems"]
