"""Bad arguments raise before anything is sent (no stack is running in these tests)."""

from __future__ import annotations

from pathlib import Path

import pytest

import workbench as wb
from services.models import MAX_DOCUMENT_CHARS, ClaimRequest
from workbench import session as session_module
from workbench.claims import AsyncClaims, claim_ids


@pytest.fixture
def offline(tmp_path: Path) -> wb.Session:
    """A session whose Restate and Langfuse are not there: anything sent would fail loudly.
    Labels are checked against the seed prompts (data/prompts), as without a Langfuse."""
    endpoints = session_module.Endpoints("http://127.0.0.1:9", "http://127.0.0.1:9")
    return wb.Session(endpoints, home=tmp_path)


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
def test_bad_claims_raise_before_sending(offline, document, kwargs, error, message) -> None:
    with pytest.raises(error, match=message):
        offline.claims.submit(document, **kwargs)


def test_unknown_label_is_a_workbench_error(offline) -> None:
    with pytest.raises(wb.UnknownPromptLabelError, match="Known labels: .*production"):
        offline.claims.submit("claim text", prompt_label="gold")


def test_batch_is_validated_whole_before_the_first_send(offline) -> None:
    with pytest.raises(ValueError, match="empty"):
        offline.claims.submit_many(["a fine claim", "   "], progress=False)


def test_without_a_stack_the_error_says_to_start_one(monkeypatch, tmp_path) -> None:
    monkeypatch.delenv("RESTATE_INGRESS_URL", raising=False)
    monkeypatch.delenv("RESTATE_ADMIN_URL", raising=False)
    monkeypatch.setenv("WORKBENCH_HOME", str(tmp_path / "nothing-runs-here"))
    monkeypatch.setattr(session_module, "_current", None)
    with pytest.raises(wb.NoSessionError, match=r"call workbench.start\(\) first"):
        wb.submit_claim("Customer C-1001 claims 10 EUR")


def test_sample_documents_become_requests(offline) -> None:
    sample = wb.samples.pick(1)[0]
    request = AsyncClaims(offline).request(sample)
    assert isinstance(request, ClaimRequest)
    assert request.document == sample.document
    assert request.prompt_label == "production"


@pytest.mark.parametrize(
    ("claims", "ids"),
    [
        ("c-1", ["c-1"]),
        (wb.Claim("c-1", "paid"), ["c-1"]),
        (wb.ClaimBatch([wb.Claim("c-1", "paid"), wb.Claim("c-2", "paid")]), ["c-1", "c-2"]),
        (["c-1", wb.Claim("c-2", "running")], ["c-1", "c-2"]),
    ],
    ids=["id", "claim", "batch", "mixed-list"],
)
def test_every_helper_takes_claims_in_any_form(claims, ids) -> None:
    assert claim_ids(claims) == ids


def test_claims_in_an_unknown_form_are_refused() -> None:
    with pytest.raises(TypeError, match="Claim objects, claim ids, or a list of them; got int"):
        claim_ids([1])
    with pytest.raises(ValueError, match="Claim id 'no spaces' is not valid"):
        claim_ids(["no spaces"])
