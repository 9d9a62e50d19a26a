"""What differs between the versions of the services (the deployable unit, `SERVICE_VERSION`).

v1 is the workflow as the README lists it. v2 adds one durable step, `verify documents`, between
parsing and the conversion to EUR: it checks that the parsed claim is complete and names what is
missing. It changes no decision, but it changes the journal: a claim that started on v1 and is
replayed by v2 code meets `verify documents` where its journal holds `convert to EUR`, which
Restate reports as a journal mismatch. That is why a new version is deployed beside the old one
(a new deployment) instead of replacing its code in place.

`unsafe` is v1 with a deliberately broken payment, to learn from (never deploy it for real): it
pays without an idempotency key (each execution of the step pays under a fresh key), so a crash
after the payment but before the journal recorded it pays the claim twice. The crash-point sweep
(`wb.faults.sweep(..., version="unsafe")`) shows that failure next to the safe version."""

from __future__ import annotations

import uuid

from pydantic import BaseModel

from . import names
from .models import ClaimData

UNSAFE = "unsafe"
VERSIONS = ("v1", "v2", UNSAFE)
"""The versions this code knows; any other value behaves like the latest (v2)."""


class DocumentCheck(BaseModel):
    """The result of `verify documents` (v2): is the parsed claim complete?"""

    complete: bool
    missing: list[str]
    has_receipt: bool


def verifies_documents(version: str) -> bool:
    """Whether this version runs the `verify documents` step (every version after v1; `unsafe`
    is v1 with another payment)."""
    return version not in ("v1", UNSAFE)


def payment_key(version: str, claim_id: str) -> str:
    """The ledger key the `reimburse` step pays under: the claim's own (`names.payment_key`), so
    that the ledger refuses a second payment; in `unsafe`, a fresh one per execution of the step,
    which is the bug the sweep catches."""
    if version == UNSAFE:
        return f"{names.payment_key(claim_id)}/{uuid.uuid4().hex[:12]}"
    return names.payment_key(claim_id)


def verify_documents(claim: ClaimData) -> DocumentCheck:
    fields = ("customer_id", "claim_date", "amount", "currency", "category")
    missing = [name for name in fields if getattr(claim, name) in (None, "")]
    return DocumentCheck(complete=not missing, missing=missing, has_receipt=claim.has_receipt)
