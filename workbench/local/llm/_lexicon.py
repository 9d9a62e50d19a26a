"""The words the rule-based parser knows, in English, German, French, Spanish and Italian.

Only tables live here (month names, currency names, category keywords, field labels, receipt
phrases); the rules that use them are in `_numbers.py`, `_money.py`, `_dates.py` and
`parser.py`. Matching is case-insensitive and accent-tolerant where the tables say so (`fold`)."""

from __future__ import annotations

import re
import unicodedata

LANGUAGES = ("en", "de", "fr", "es", "it")


def _fold_table() -> dict[int, str]:
    table = {}
    for code in range(0x80, 0x250):
        base = unicodedata.normalize("NFD", chr(code))[0].lower()
        if len(base) == 1 and ord(base) < 128:
            table[code] = base
    return table | {ord("ł"): "l", ord("Ł"): "l", ord("ø"): "o", ord("Ø"): "o", ord("’"): "'"}


_FOLD = _fold_table()


def fold(text: str) -> str:
    """Lower case without accents ("Février" -> "fevrier", "März" -> "marz", "złoty" -> "zloty"),
    character for character, so a position found in the folded text is the same position in the
    original."""
    return text.translate(_FOLD).lower()


def alternation(words: list[str] | tuple[str, ...] | set[str]) -> str:
    """A regex alternation of literal words, longest first (so "sept" wins over "sep")."""
    return "|".join(re.escape(w) for w in sorted(set(words), key=lambda w: (-len(w), w)))


# --- months -------------------------------------------------------------------------------------

MONTHS: dict[int, tuple[str, ...]] = {
    1: ("january", "jan", "januar", "janner", "janvier", "janv", "enero", "ene", "gennaio", "gen"),
    2: ("february", "feb", "februar", "feber", "fevrier", "fevr", "fev", "febrero", "febbraio"),
    3: ("march", "mar", "marz", "maerz", "mrz", "mars", "marzo"),
    4: ("april", "apr", "avril", "avr", "abril", "abr", "aprile"),
    5: ("may", "mai", "mayo", "maggio", "mag"),
    6: ("june", "jun", "juni", "juin", "junio", "giugno", "giu"),
    7: ("july", "jul", "juli", "juillet", "juil", "julio", "luglio", "lug"),
    8: ("august", "aug", "aout", "agosto", "ago"),
    9: ("september", "sep", "sept", "septembre", "septiembre", "setiembre", "settembre", "set"),
    10: ("october", "oct", "oktober", "okt", "octobre", "octubre", "ottobre", "ott"),
    11: ("november", "nov", "novembre", "noviembre"),
    12: ("december", "dec", "dezember", "dez", "decembre", "diciembre", "dic", "dicembre"),
}
"""Month names and abbreviations, folded (no accents, lower case)."""
MONTH_NUMBER = {name: number for number, names in MONTHS.items() for name in names}
MONTH_RE = alternation(MONTH_NUMBER)

# --- currencies ---------------------------------------------------------------------------------

ISO_CODES = frozenset(
    "EUR USD GBP CHF JPY SEK NOK DKK ISK PLN CZK HUF RON BGN HRK CAD AUD NZD CNY HKD SGD KRW "
    "INR BRL MXN ZAR ILS AED THB TRY".split()
)
"""ISO 4217 codes the parser recognises; another three-letter upper-case code is kept as written."""

SYMBOLS = {
    "US$": "USD", "U$S": "USD", "CA$": "CAD", "C$": "CAD", "AU$": "AUD", "A$": "AUD",
    "NZ$": "NZD", "HK$": "HKD", "S$": "SGD", "R$": "BRL", "CN¥": "CNY", "$": "USD", "€": "EUR",
    "£": "GBP", "¥": "JPY", "₣": "CHF", "₹": "INR", "₩": "KRW", "zł": "PLN", "Kč": "CZK",
    "Ft": "HUF", "₺": "TRY", "₪": "ILS",
}  # fmt: skip
"""Currency symbols, as written (case matters: "Ft" is a forint, "ft" is feet)."""

_PHRASES = {
    "EUR": ["euro", "euros", "eur"],
    "USD": [
        "dollar", "dollars", "us dollars", "us dollar", "u.s. dollars", "american dollars",
        "dolar", "dolares", "dollari", "dollaro", "dollars americains", "dollars us",
        "dolares estadounidenses", "dollari americani", "us-dollar", "us-dollars",
    ],
    "GBP": [
        "pound", "pounds", "pound sterling", "pounds sterling", "sterling", "british pounds",
        "pfund", "pfund sterling", "britische pfund", "livre sterling", "livres sterling",
        "libra", "libras", "libra esterlina", "libras esterlinas", "sterlina", "sterline",
        "lira sterlina", "lire sterline",
    ],
    "CHF": [
        "franc", "francs", "swiss franc", "swiss francs", "franken", "schweizer franken",
        "franc suisse", "francs suisses", "franco suizo", "francos suizos", "franco svizzero",
        "franchi svizzeri", "fr.", "sfr.", "sfr",
    ],
    "JPY": ["yen", "yens", "japanese yen", "yen giapponesi"],
    "SEK": [
        "krona", "kronor", "swedish krona", "swedish kronor", "schwedische krone",
        "schwedische kronen", "couronne suedoise", "couronnes suedoises", "corona sueca",
        "coronas suecas", "corona svedese", "corone svedesi", "kr", "kr.", "kronen", "krone",
        "crowns",
    ],
    "NOK": [
        "norwegian krone", "norwegian kroner", "norske kroner", "norwegische krone",
        "norwegische kronen", "couronne norvegienne", "couronnes norvegiennes",
        "corona noruega", "coronas noruegas", "corona norvegese", "corone norvegesi", "kroner",
    ],
    "DKK": [
        "danish krone", "danish kroner", "danske kroner", "danische krone", "danische kronen",
        "couronne danoise", "couronnes danoises", "corona danesa", "coronas danesas",
        "corona danese", "corone danesi",
    ],
    "CZK": [
        "czech koruna", "czech korunas", "czech crowns", "koruna", "korun", "korunas",
        "tschechische krone", "tschechische kronen", "couronne tcheque", "couronnes tcheques",
        "corona checa", "coronas checas", "corona ceca", "corone ceche",
    ],
    "PLN": [
        "zloty", "zlotys", "zlotych", "zloties", "polish zloty", "polnische zloty",
        "zloty polonais", "esloti", "eslotis", "zloty polacco",
    ],
    "CAD": [
        "canadian dollar", "canadian dollars", "kanadische dollar", "dollar canadien",
        "dollars canadiens", "dolar canadiense", "dolares canadienses", "dollaro canadese",
        "dollari canadesi",
    ],
    "AUD": [
        "australian dollar", "australian dollars", "australische dollar", "dollar australien",
        "dollars australiens", "dolar australiano", "dolares australianos",
        "dollaro australiano", "dollari australiani",
    ],
    "CNY": ["yuan", "renminbi", "rmb"],
    "HUF": ["forint", "forints"],
    "INR": ["rupee", "rupees"],
}  # fmt: skip
WORDS: dict[str, str] = {phrase: code for code, phrases in _PHRASES.items() for phrase in phrases}
"""Currency names (folded) in the five languages, singular and plural, with their codes."""
WORD_RE = alternation(WORDS)

# --- categories ---------------------------------------------------------------------------------

CORE_CATEGORIES = ("medical", "dental", "pharmacy", "vision", "travel", "other")
"""The categories the policies are written for."""

CATEGORY_STEMS: dict[str, tuple[str, ...]] = {
    "dental": (
        # en
        "dental", "dentist", "tooth", "teeth", "filling", "orthodont", "root canal", "hygienist",
        "crown", "implant", "wisdom tooth", "molar", "scale and polish", "aligner",
        # de
        "zahn", "zahne", "zahnarzt", "zahnarzt", "zahnreinigung", "kieferorthop", "fullung",
        "wurzelbehandlung", "zahnkrone",
        # fr
        "dentaire", "dentiste", "dent", "dents", "plombage", "detartrage", "orthodont",
        "couronne dentaire", "carie",
        # es
        "dentista", "dientes", "diente", "muela", "empaste", "ortodoncia", "limpieza dental",
        "endodoncia", "odontolog",
        # it
        "dentale", "denti", "dente", "otturazione", "ortodonzia", "igiene dentale", "odontoiatr",
        "devitalizzazione",
    ),
    "pharmacy": (
        "pharmac", "prescription", "medication", "medicine", "drugstore", "chemist", "antibiotic",
        "insulin", "painkiller", "cough syrup", "allerg", "apotek", "apotheke", "medikament",
        "arznei", "rezept", "pharmazie", "antibiotika", "pharmacie", "medicament", "ordonnance",
        "farmacia", "medicamento", "receta", "antibiotico", "farmaci", "farmaco", "medicinal",
        "ricetta",
    ),
    "vision": (
        "vision", "optic", "optometr", "oculist", "ophthalmolog", "ophtalmolog", "glasses",
        "spectacles", "contact lens", "lens", "lenses", "eye", "eyes", "eyewear", "varifocal",
        "frames", "optiker", "brille", "kontaktlinse",
        "sehtest", "brillenglas", "augenoptik", "opticien", "lunettes", "lentilles", "verres",
        "monture", "optique", "optica", "gafas", "lentillas", "lentes", "graduacion",
        "ottico", "ottica", "occhiali", "lenti", "montatura",
    ),
    "travel": (
        "travel", "flight", "fly", "hotel", "trip", "airline", "airport", "luggage", "baggage",
        "ferry", "ferries", "train", "ticket", "cancel", "abroad", "evacuation", "reise",
        "flug", "gepack", "storn", "urlaub", "fahrkarte", "voyage", "vol", "hotel", "bagage",
        "annulation", "billet", "sejour", "viaje", "vuelo", "equipaje", "cancelacion",
        "billete", "vacaciones", "viaggio", "volo", "albergo", "bagaglio", "cancellazione",
        "biglietto", "vacanza",
    ),
    "medical": (
        "medical", "doctor", "physician", "gp", "general practitioner", "hospital", "clinic",
        "physio", "x-ray", "mri", "blood test", "consultation", "emergency", "surg",
        "specialist", "dermatolog", "appendectomy", "arthroscopy", "injury", "injuries",
        "urgent care", "walk-in clinic",
        "arzt", "arztin", "hausarzt", "krankenhaus", "klinik", "physiotherap",
        "krankengymnastik", "notaufnahme", "rontgen", "facharzt", "operation", "behandlung",
        "medecin", "hopital", "clinique", "kinesitherap", "urgences", "radiographie",
        "generaliste", "chirurg", "medico", "clinica", "fisioterap", "urgencias", "radiografia",
        "consulta", "cirug", "ospedale", "pronto soccorso", "visita medica", "chirurgi",
        "analisi del sangue", "analisis de sangre", "bluttest", "blutabnahme", "prise de sang",
    ),
    "wellness": (
        "wellness", "gym", "fitness", "spa", "yoga", "sauna", "fitnessstudio", "salle de sport",
        "thalasso", "gimnasio", "balneario", "palestra", "terme",
    ),
    "cosmetic": (
        "cosmetic", "aesthetic", "botox", "liposuction", "facelift", "teeth whitening",
        "schonheits", "asthetisch", "kosmetisch", "esthetique", "estetica", "estetico",
        "chirurgie esthetique", "cirugia estetica", "chirurgia estetica",
    ),
    "veterinary": (
        "vet", "veterinary", "veterinarian", "tierarzt", "tierarztin", "tierklinik",
        "veterinaire", "veterinario", "veterinaria",
    ),
    "hearing": (
        "hearing aid", "audiolog", "horgerat", "horakustik", "appareil auditif", "audioprothes",
        "audifono", "apparecchio acustico", "protesi acustica",
    ),
    "other": ("miscellaneous", "sonstiges", "sonstige", "divers", "autre", "autres", "otros",
              "otro", "altro", "altri", "varie"),
}  # fmt: skip
"""Keywords (folded) that name what an expense was for. A keyword matches at the start of a word
("zahn" matches "Zahnarzt"); stems shorter than five letters match whole words only."""

# words that look like a keyword but are not one ("vol" in "volume", "set" is not "sept", ...)
CATEGORY_STOPWORDS = frozenset({"event", "prevent", "vetted", "veto", "dentro", "dental floss"})

CATEGORY_LABELS = (
    "category", "claim type", "expense type", "type of claim", "type of expense", "kategorie",
    "leistungsart", "art der leistung", "art", "categorie", "type de soins", "type de depense",
    "nature des soins", "nature", "categoria", "tipo de gasto", "tipo de siniestro", "tipo",
    "tipo di spesa", "tipologia",
)  # fmt: skip

# --- customer ids -------------------------------------------------------------------------------

CUSTOMER_LABELS = (
    # en
    "customer id", "customer no", "customer number", "customer nr", "customer ref",
    "customer reference", "customer #", "customer", "cust", "client id", "client no",
    "client number", "client", "member id", "member no", "member number", "membership number",
    "policy holder", "policyholder", "policy-holder", "insured person", "insured",
    # de
    "kundennr", "kunden-nr", "kundennummer", "kunden-id", "kunden id", "kunde", "kd.-nr",
    "kd-nr", "kd.nr", "kdnr",
    "versichertennummer", "versicherten-nr", "versichertennr", "versicherungsnehmer",
    "mitgliedsnummer", "mitglieds-nr",
    # fr
    "n° client", "no client", "numero client", "numero de client", "identifiant client",
    "ref client", "ref. client", "reference client", "n° d'assure", "numero d'assure",
    "numero d'adherent", "n° adherent", "adherent", "assure",
    # es
    "n.º de cliente", "nº de cliente", "nº cliente", "n.º cliente", "numero de cliente",
    "num. cliente", "id de cliente", "cliente n.º", "cliente nº", "cliente", "asegurado",
    "n.º de asegurado", "numero de asegurado", "socio",
    # it
    "codice cliente", "cod. cliente", "n. cliente", "numero cliente", "id cliente",
    "assicurato", "n. assicurato", "codice assicurato",
)  # fmt: skip
"""Labels (folded) before a customer id; the id is the first token with a digit after them."""

CUSTOMER_PREFIXES = ("CUST", "CUS", "CUSTOMER", "CLIENT", "CLI", "KD", "KUNDE", "MBR", "MEMBER")
"""Id prefixes recognised without a label ("CUST-4411")."""

# --- amounts ------------------------------------------------------------------------------------

CLAIMED_LABELS = (
    "amount claimed", "claimed amount", "claim amount", "total claimed", "amount to reimburse",
    "reimbursement requested", "refund requested", "amount requested", "requested amount",
    "erstattungsbetrag", "beantragter betrag", "geltend gemachter betrag", "zu erstatten",
    "montant reclame", "montant demande", "montant a rembourser", "remboursement demande",
    "importe reclamado", "importe solicitado", "importe a reembolsar", "reembolso solicitado",
    "importo richiesto", "importo da rimborsare", "rimborso richiesto",
)  # fmt: skip
TOTAL_LABELS = (
    "grand total", "invoice total", "total amount", "total due", "amount due", "total paid",
    "total", "gesamtbetrag", "gesamtsumme", "rechnungsbetrag", "endbetrag", "summe", "gesamt",
    "zu zahlen", "total ttc", "montant total", "total a payer", "net a payer", "montant ttc",
    "importe total", "total a pagar", "total factura", "importo totale", "totale",
    "totale fattura", "totale da pagare",
)  # fmt: skip
AMOUNT_LABELS = (
    "amount", "sum", "cost", "costs", "price", "fee", "fees", "charge", "betrag", "kosten",
    "preis", "rechnung", "montant", "cout", "prix", "somme", "importe", "coste", "precio",
    "cantidad", "importo", "costo", "prezzo", "spesa",
)  # fmt: skip
NOT_CLAIMED = (
    "subtotal", "sub-total", "sub total", "zwischensumme", "sous-total", "sous total",
    "subtotale", "vat", "tax", "mwst", "ust", "umsatzsteuer", "tva", "iva", "deductible",
    "excess", "selbstbeteiligung", "eigenanteil", "franchise", "deducible", "franquicia",
    "franchigia", "already reimbursed", "already paid by", "paid by my", "covered by",
    "bereits erstattet", "bereits bezahlt von", "von der krankenkasse", "deja rembourse",
    "pris en charge", "rembourse par", "ya reembolsado", "cubierto por", "reembolsado por",
    "gia rimborsato", "rimborsato da", "coperto da", "discount", "rabatt", "remise",
    "descuento", "sconto", "deposit", "anzahlung", "acompte", "senal", "anticipo", "tip",
    "trinkgeld", "pourboire", "propina", "mancia", "previous claim", "last year", "not",
    "and not", "et non", "nicht", "statt", "anstatt", "instead of", "au lieu de",
    "en lugar de", "invece di", "me reembolso", "me reembolsaron", "already", "bereits",
    "deja", "ya", "gia", "rueckgeld", "ruckgeld", "change", "cash given", "bar", "gegeben",
)  # fmt: skip
"""Words that mark a money mention as not the claimed amount (a part, a tax, what someone else
paid). A line saying "incl. VAT"/"TTC"/"IVA incluido" still holds the claim."""
INCLUDING_TAX = ("incl", "inkl", "including", "ttc", "iva incluid", "iva inclus", "inclusa")
CLAIM_VERBS = (
    "i claim", "i am claiming", "i'm claiming", "please reimburse", "reimburse me",
    "i would like to claim", "claiming", "refund of", "reimbursement of", "erstattung von",
    "remboursement de", "reembolso de", "rimborso di", "the remaining", "remaining", "balance of",
    "ich beantrage", "bitte erstatten", "erstatten sie", "restbetrag", "restbetrags",
    "des restbetrags von", "je reclame",
    "je demande le remboursement", "merci de rembourser", "reste", "solicito", "reclamo",
    "el resto", "restante", "chiedo il rimborso", "richiedo", "residuo", "restanti",
)  # fmt: skip

# --- receipts -----------------------------------------------------------------------------------

RECEIPT_NOUNS = (
    "receipts", "receipt", "invoices", "invoice", "bill", "bills", "belege", "beleg",
    "quittungen", "quittung", "rechnungen", "rechnung", "kassenbon", "kassenbons", "recus",
    "recu", "factures", "facture", "quittance", "quittances", "justificatif", "justificatifs",
    "recibos", "recibo", "facturas", "factura", "justificante", "justificantes", "ticket",
    "tickets", "ricevute", "ricevuta", "fatture", "fattura", "scontrino", "scontrini",
)  # fmt: skip
RECEIPT_NOUN_RE = alternation(RECEIPT_NOUNS) + r"|[a-z]{2,}(?:rechnung|quittung|beleg)(?:en|e)?"
"""A receipt noun, German compounds included ("Zahnarztrechnung", "Apothekenquittung")."""
ATTACHED = (
    "attached", "enclosed", "included", "uploaded", "attach", "provided", "beigefugt", "anbei",
    "liegt bei", "liegen bei", "im anhang", "angehangt", "beiliegend", "joint", "jointe",
    "joints", "jointes", "ci-joint", "ci-jointe", "en piece jointe", "adjunto", "adjunta",
    "adjuntos", "adjuntas", "se adjunta", "allegato", "allegata", "allegati", "allegate",
    "in allegato", "allego", "allega", "si allega", "allegasi",
)  # fmt: skip
YES = ("yes", "ja", "oui", "si", "sì", "y", "x", "✓", "✔")
NO = (
    "no", "none", "nein", "keine", "kein", "non", "aucun", "aucune", "ninguno", "n/a", "-",
    "missing", "fehlt", "manquant", "falta", "mancante", "lost", "verloren", "perdu", "perdido",
    "perso", "not attached", "not available", "unavailable", "to follow", "folgt", "suivra",
    "a suivre", "seguira", "a continuacion", "seguira", "in seguito",
)  # fmt: skip
NEGATIVE_RECEIPT = (
    r"\bno\s+(?:receipts?|invoices?)\b",
    r"\bwithout\s+(?:a\s+|the\s+|any\s+)?(?:receipts?|invoices?)\b",
    r"\b(?:lost|misplaced|threw away|thrown away)\s+(?:the\s+|my\s+|a\s+|our\s+)?receipts?\b",
    r"\b(?:don't|do not|didn't|did not|can't|cannot|couldn't|could not)\s+"
    r"(?:have|find|get|keep)\s+(?:the\s+|a\s+|my\s+|any\s+)?receipts?\b",
    r"\bnever\s+(?:received|got|had|kept)\s+(?:a\s+|the\s+|any\s+)?receipts?\b",
    r"\breceipts?\s+(?:will\s+follow|to\s+follow|follows?\s+later)\b",
    # de
    r"\b(?:kein|keine|keinen|ohne)\s+(?:beleg|belege|quittung|quittungen|rechnung|kassenbon)\b",
    r"\b(?:beleg|quittung|rechnung|kassenbon)\s+(?:ist\s+|habe\s+ich\s+)?(?:verloren|folgt)",
    r"\b(?:beleg|quittung|rechnung)\s+(?:wird\s+)?nachgereicht\b",
    r"\b(?:beleg|quittung|rechnung)\s+(?:reiche|reichen)\s+(?:ich|wir)\s+nach\b",
    # fr
    r"\b(?:pas\s+de|sans|aucun|aucune)\s+(?:recu|facture|justificatif|quittance)s?\b",
    r"\bperdu\s+(?:le|la|mon|ma)\s+(?:recu|facture|ticket|quittance)\b",
    r"\bn'ai\s+(?:\w+\s+)?(?:plus|pas)\s+(?:le|la|de|d')\s*(?:recu|facture|ticket|quittance)",
    r"\bne\s+(?:delivre|donne|fournit)\s+pas\s+de\s+(?:recu|facture|ticket)",
    r"\b(?:recu|facture)\s+(?:suivra|a\s+suivre)\b",
    # es
    r"\b(?:sin|ningun|ninguna|no\s+tengo\s+(?:el|la))\s+(?:recibo|factura|justificante|ticket)s?\b",
    r"\bperd[ií]\s+(?:el|la|mi)\s+(?:recibo|factura|ticket)\b",
    r"\b(?:recibo|factura)\s+(?:se\s+enviar[aá]\s+)?(?:m[aá]s\s+tarde|despu[eé]s)\b",
    # it
    r"\b(?:senza|nessuna)\s+(?:ricevuta|fattura|scontrino)\b",
    r"\b(?:perso|smarrito|buttato|gettato)\s+(?:via\s+)?(?:la|lo|il)\s+(?:ricevuta|fattura|scontrino)\b",
    r"\bnon\s+ho\s+(?:la|lo|il|piu\s+la)\s+(?:ricevuta|fattura|scontrino)\b",
    r"\b(?:ricevuta|fattura)\s+(?:seguir[aà]|in\s+seguito)\b",
)
"""Phrases (on folded text) saying there is no receipt now; they win over any positive phrase."""
POSITIVE_RECEIPT = (
    rf"\b(?:{RECEIPT_NOUN_RE})\s+(?:is\s+|are\s+|was\s+|were\s+|ist\s+|sind\s+|est\s+|sont\s+|"
    rf"esta\s+|estan\s+|e\s+|sono\s+)?(?:{alternation(ATTACHED)})\b",
    rf"\b(?:{alternation(ATTACHED)})\s+(?:is\s+|are\s+|you\s+will\s+find\s+)?(?:the\s+|my\s+|a\s+|"
    rf"all\s+|die\s+|der\s+|den\s+|das\s+|meine\s+|le\s+|la\s+|les\s+|mon\s+|ma\s+|mes\s+|el\s+|"
    rf"los\s+|las\s+|mi\s+|il\s+|lo\s+|i\s+|gli\s+|copia\s+de\s+la\s+|copia\s+della\s+)?"
    rf"(?:{RECEIPT_NOUN_RE})\b",
    r"\bwith\s+(?:the\s+|a\s+)?receipts?\b",
    rf"\b(?:attachment|anhang|piece jointe|adjunto|allegato)s?\s*:\s*\S*(?:{RECEIPT_NOUN_RE})",
)
"""Phrases (on folded text) saying a receipt or invoice comes with the claim."""
