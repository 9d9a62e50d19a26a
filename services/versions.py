"""What differs between the versions of the services (the deployable unit, `SERVICE_VERSION`).

v1 is the workflow as the README lists it. v2 adds one durable step, `verify documents`, between
parsing and the conversion to EUR: it checks that the parsed claim is complete and names what is
missing. It changes no decision, but it changes the journal: a claim that started on v1 and is
replayed by v2 code meets `verify documents` where its journal holds `convert to EUR`, which
Restate reports as a journal mismatch. That is why a new version is deployed beside the old one
(a new deployment) instead of replacing its code in place."""

from __future__ import annotations

from pydantic import BaseModel

from .models import ClaimData

VERSIONS = ("v1", "v2")
"""The versions this code knows; any other value behaves like the latest."""


class DocumentCheck(BaseModel):
    """The result of `verify documents` (v2): is the parsed claim complete?"""

    complete: bool
    missing: list[str]
    has_receipt: bool


def verifies_documents(version: str) -> bool:
    """Whether this version runs the `verify documents` step (every version after v1)."""
    return version != "v1"


def verify_documents(claim: ClaimData) -> DocumentCheck:
    fields = ("customer_id", "claim_date", "amount", "currency", "category")
    missing = [name for name in fields if getattr(claim, name) in (None, "")]
    return DocumentCheck(complete=not missing, missing=missing, has_receipt=claim.has_receipt)
