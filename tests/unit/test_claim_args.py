"""Bad arguments raise before anything is sent (no stack is running in these tests)."""

from __future__ import annotations

import pytest

import workbench as wb
from services.models import MAX_DOCUMENT_CHARS, ClaimRequest
from workbench.claims import as_request


@pytest.fixture(autouse=True)
def no_stack(monkeypatch):
    """Any attempt to reach Restate would fail loudly."""
    monkeypatch.delenv("RESTATE_INGRESS_URL", raising=False)
    monkeypatch.delenv("RESTATE_ADMIN_URL", raising=False)
    monkeypatch.setattr(wb.session, "_current", None)


@pytest.mark.parametrize(
    ("document", "kwargs", "error", "message"),
    [
        ("", {}, ValueError, "empty"),
        ("x" * (MAX_DOCUMENT_CHARS + 1), {}, ValueError, "limit is 20,000"),
        ("claim text", {"prompt_label": "nope"}, ValueError, "label 'nope' is on no prompt"),
        ("claim text", {"prompt_label": "two words"}, ValueError, "not a label"),
        ("claim text", {"id": "bad id!"}, ValueError, "Claim id 'bad id!' is not valid"),
        (42, {}, TypeError, "got int"),
    ],
    ids=["empty", "huge", "unknown-label", "label-with-space", "bad-id", "not-text"],
)
def test_bad_claims_raise_before_sending(document, kwargs, error, message) -> None:
    with pytest.raises(error, match=message):
        wb.submit_claim(document, **kwargs)


def test_batch_is_validated_whole_before_the_first_send() -> None:
    with pytest.raises(ValueError, match="empty"):
        wb.submit_claims(["a fine claim", "   "], progress=False)


def test_without_a_stack_the_error_says_to_start_one() -> None:
    with pytest.raises(RuntimeError, match=r"call workbench.start\(\) first"):
        wb.submit_claim("Customer C-1001 claims 10 EUR")


def test_sample_documents_become_requests() -> None:
    sample = wb.samples(1)[0]
    request = as_request(sample)
    assert isinstance(request, ClaimRequest)
    assert request.document == sample.document
    assert request.prompt_label == "production"
