"""The workflow's handlers check their bodies themselves: every bad body becomes a readable
reason (answered HTTP 400), never an exception inside the SDK (answered 500)."""

from __future__ import annotations

import json

import pytest
from restate import TerminalError

from services.bodies import MAX_BODY_BYTES, Checked, InvalidBody, accepted
from services.models import ClaimRequest, Review

CLAIM = Checked(ClaimRequest, example='{"document": "..."}')
APPROVAL = Checked(Review, example='{"reviewer": "..."}', defaults={"approved": True})


@pytest.mark.parametrize(
    ("body", "reason"),
    [
        (b"{", r"not valid JSON \(Expecting property name"),
        (b"null", r"must be a JSON object, not null"),
        (b"[1, 2]", r"must be a JSON object, not an array"),
        (b'"text"', r"must be a JSON object, not a string"),
        (b"5", r"must be a JSON object, not a number"),
        (b'{"document": 5}', r"document: Input should be a valid string \(got 5\)"),
        (b'{"document": null}', r"document: Input should be a valid string \(got null\)"),
        (b'{"docs": "x"}', r"document: Field required"),
        (b'{"document": "   "}', r"document: The claim document is empty"),
        (b'{"document": "x", "prompt_label": "two words"}', r"prompt_label: Prompt label"),
        (b'{"document": "x", "prompt_label": 7}', r"prompt_label: Input should be a valid string"),
        (b"\xff\xfe{}", r"not UTF-8 text \(byte 0xff at offset 0\)"),
        (b'{"document": "caf\xe9"}', r"not UTF-8 text \(byte 0xe9 at offset 17\)"),
        (b"   ", r"the body is empty"),
    ],
    ids=lambda v: v.decode("latin-1")[:30] if isinstance(v, bytes) else None,
)
def test_every_bad_claim_body_gets_a_reason(body: bytes, reason: str) -> None:
    checked = CLAIM.deserialize(body)
    assert isinstance(checked, InvalidBody)
    assert checked.reason.startswith("Bad ClaimRequest body: ")
    assert checked.reason.endswith('Send a JSON object like {"document": "..."}.')
    with pytest.raises(TerminalError, match=reason) as raised:
        accepted(checked)
    assert raised.value.status_code == 400


def test_a_document_over_the_limit_is_refused_with_both_numbers() -> None:
    checked = CLAIM.deserialize(json.dumps({"document": "x" * 20_001}).encode())
    with pytest.raises(TerminalError, match=r"has 20,001 characters; the limit is 20,000"):
        accepted(checked)


def test_a_body_over_the_byte_limit_is_refused_before_parsing() -> None:
    huge = b'{"document": "' + b"x" * MAX_BODY_BYTES + b'"}'
    with pytest.raises(TerminalError, match=rf"has {len(huge):,} bytes; the limit is 262,144"):
        accepted(CLAIM.deserialize(huge))


def test_a_good_body_is_the_model_and_round_trips() -> None:
    request = accepted(CLAIM.deserialize(b'{"document": "a claim", "extra": 1}'))
    assert request == ClaimRequest(document="a claim")
    assert CLAIM.deserialize(CLAIM.serialize(request)) == request


def test_review_bodies_get_their_decision_filled_in() -> None:
    assert accepted(APPROVAL.deserialize(b'{"reviewer": "ann"}')) == Review(
        approved=True, reviewer="ann"
    )
    assert accepted(APPROVAL.deserialize(b"{}")).approved is True
    with pytest.raises(TerminalError, match=r"reviewer: Input should be a valid string"):
        accepted(APPROVAL.deserialize(b'{"reviewer": ["ann"]}'))
