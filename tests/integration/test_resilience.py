"""Claims survive what goes wrong outside the demo, on a real stack, through the protocols only
(ingress, admin API, the ledger file, Langfuse's API): bad bodies, a model outage, Langfuse
down, a model that refuses the key, and the home's permissions."""

from __future__ import annotations

import re
import stat
import warnings
from collections.abc import Iterator
from pathlib import Path

import psutil
import pytest

from workbench import Session
from workbench.bench_outage import model_outage_recovery
from workbench.stack import Stack, StackWarning

from ..protocol import (
    SHELL_SETTINGS,
    Claims,
    refusing_server,
    running_stack,
    samples,
    wait_for,
)

pytestmark = pytest.mark.integration

WINDOW_S = 20
"""The services' outage window in this module: an outage longer than this pauses the claim (long
enough that a 1 s outage plus the model's restart on a loaded machine stays within it)."""


@pytest.fixture(scope="module")
def stack(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Stack]:
    with pytest.MonkeyPatch.context() as env:
        for name in SHELL_SETTINGS:
            env.delenv(name, raising=False)
        services = {"WORKBENCH_OUTAGE_WINDOW_S": str(WINDOW_S)}
        with running_stack(tmp_path_factory.mktemp("resilience"), env={"services": services}) as s:
            yield s


@pytest.fixture(scope="module")
def claims(stack: Stack) -> Iterator[Claims]:
    with Claims(stack) as c:
        yield c


def _paid_document() -> str:
    return samples("paid")[0].document


BAD_BODIES = {
    "truncated": (b"{", r"not valid JSON"),
    "null": (b"null", r"must be a JSON object, not null"),
    "number-document": (b'{"document": 5}', r"document: Input should be a valid string"),
    "not-utf8": (b"\xff\xfe\x00{", r"not UTF-8 text \(byte 0xff at offset 0\)"),
    "empty-document": (b'{"document": ""}', r"document: The claim document is empty"),
    "oversized": (
        b'{"document": "' + b"claim " * 4000 + b'"}',
        r"has 24,000 characters; the limit is 20,000",
    ),
}


@pytest.mark.parametrize("case", BAD_BODIES, ids=str)
def test_a_bad_body_is_400_and_its_id_usable_once_purged(stack, claims, case) -> None:
    body, reason = BAD_BODIES[case]
    claim_id = f"bad-{case}"
    refused = claims.post(claim_id, "run", body)
    assert refused.status_code == 400, refused.text
    assert re.search(reason, refused.json()["message"]), refused.text
    assert refused.json()["message"].endswith(
        'Send a JSON object like {"document": "<the claim text>", "prompt_label": "production"}.'
    )
    # Restate keeps the refused run: the id answers 409 until that invocation is purged
    assert claims.post(claim_id, "run", {"document": _paid_document()}).status_code == 409
    assert stack.purge(refused.headers["x-restate-id"]) is True
    accepted = claims.post(claim_id, "run", {"document": _paid_document()})
    assert accepted.status_code == 200 and accepted.json()["status"] == "paid", accepted.text
    assert claims.payments(claim_id) == {claim_id: 1}


def test_an_empty_body_is_refused_by_restate_and_burns_nothing(claims) -> None:
    refused = claims.post("bad-empty", "run", b"")
    assert refused.status_code == 400 and "Empty body" in refused.text
    assert "x-restate-id" not in refused.headers
    assert claims.post("bad-empty", "run", {"document": _paid_document()}).status_code == 200


def test_bad_review_bodies_are_400_and_the_claim_keeps_waiting(claims) -> None:
    claim_id = "review-bodies"
    claims.submit(claim_id, samples("review")[0].document)
    claims.wait_step(claim_id, "awaiting review")
    for handler in ("approve", "reject"):
        for body, reason in [
            (b"[", r"not valid JSON"),
            (b'"yes"', r"must be a JSON object, not a string"),
            (b'{"reviewer": 3}', r"reviewer: Input should be a valid string"),
            (b"\xc3\x28", r"not UTF-8"),
        ]:
            refused = claims.post(claim_id, handler, body)
            assert refused.status_code == 400, refused.text
            assert re.search(reason, refused.json()["message"]), refused.text
    assert claims.step(claim_id) == "awaiting review"
    assert claims.approve(claim_id).status_code == 200
    assert claims.outcome(claim_id)["status"] == "paid"
    assert claims.payments(claim_id) == {claim_id: 1}


def _mode(path: Path) -> int:
    return stat.S_IMODE(path.stat().st_mode)


def test_the_home_is_private_and_the_keys_are_its_own(stack, claims) -> None:
    claims.post("private-1", "run", {"document": _paid_document()}).raise_for_status()
    home = stack.home
    assert _mode(home) == 0o700 and _mode(home / "logs") == 0o700
    files = [
        *home.glob("*.sqlite3"),
        *home.glob("*.json"),
        home / "supervisord.conf",
        *(home / "logs").glob("*.log"),
    ]
    assert {p.name for p in files} >= {"ledger.sqlite3", "langfuse.sqlite3", "home.json"}
    assert {p.name: oct(_mode(p)) for p in files if _mode(p) != 0o600} == {}
    public, secret = stack.langfuse_keys
    assert (public, secret) != ("pk-lf-local", "sk-lf-local") and public.startswith("pk-lf-")
    for pid in stack.pids():
        command = " ".join(psutil.Process(pid).cmdline())
        assert secret not in command and public not in command, command


def _status(claims: Claims, claim_id: str) -> str | None:
    rows = claims.invocations(claim_id)
    return rows[0]["status"] if rows else None


def test_a_model_outage_pauses_the_claim_never_fails_it_and_resume_finishes_it(
    stack, claims
) -> None:
    claim_id = "outage-paused"
    with stack.stopped("llm"):
        claims.submit(claim_id, _paid_document())
        wait_for("the claim to pause", lambda: _status(claims, claim_id) == "paused", timeout_s=90)
        assert claims.step(claim_id) == "parse"
    # (a judge that needed the model meanwhile paused too, and is resumed with it)
    assert claims.invocations(claim_id)[0]["id"] in stack.resume()
    assert claims.outcome(claim_id)["status"] == "paid"
    assert claims.payments(claim_id) == {claim_id: 1}
    assert stack.resume() == [], "nothing left paused"


def test_a_short_model_outage_is_waited_out(stack, claims) -> None:
    session = Session.of_stack(stack)
    try:
        result = model_outage_recovery(session, _paid_document(), outage_s=1.0)
    finally:
        session.close()
    assert result.status == "paid" and result.outage_s >= 1.0
    assert result.attempts_during_outage >= 1
    assert claims.payments(result.claim_id) == {result.claim_id: 1}


def _score_of(claims: Claims, trace_id: str) -> float | None:
    return claims.scores().get(trace_id)


def test_with_langfuse_down_claims_complete_and_scores_land_when_it_is_back(stack, claims) -> None:
    log = stack.log_path("services")
    before = log.stat().st_size
    ids = [f"lf-down-{i}" for i in range(3)]
    with stack.stopped("langfuse"):
        outcomes = claims.many(
            lambda cid: claims.post(cid, "run", {"document": _paid_document()}), ids, 3
        )
        assert [o.json()["status"] for o in outcomes] == ["paid"] * 3
    trace_ids = [o.json()["trace_id"] for o in outcomes]

    def scored() -> bool:
        stack.resume()  # a judge paused by the outage window continues
        return all(_score_of(claims, t) is not None for t in trace_ids)

    wait_for("every claim's score", scored, timeout_s=120, poll_s=1.0)
    written = log.read_bytes()[before:].decode(errors="replace")
    assert "Traceback" not in written
    langfuse_lines = [line for line in written.splitlines() if "Langfuse at" in line]
    assert 1 <= len(langfuse_lines) <= 4, langfuse_lines


@pytest.fixture
def refusing_model() -> Iterator[str]:
    with refusing_server() as url:
        yield f"{url}/v1"


def test_up_warns_and_a_refused_key_fails_the_claim_at_once(
    tmp_path, monkeypatch, refusing_model
) -> None:
    for name in SHELL_SETTINGS:
        monkeypatch.delenv(name, raising=False)
    dead = "http://127.0.0.1:9"  # discard port: nothing answers
    monkeypatch.setenv("LANGFUSE_PUBLIC_KEY", "pk-lf-test")
    monkeypatch.setenv("LANGFUSE_SECRET_KEY", "sk-lf-test")
    monkeypatch.setenv("OPENAI_API_KEY", "sk-wrong")
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        with (
            running_stack(
                tmp_path / "home", openai_base_url=refusing_model, langfuse_base_url=dead
            ) as stack,
            Claims(stack) as claims,
        ):
            messages = [str(w.message) for w in caught if issubclass(w.category, StackWarning)]
            assert any(m.startswith(f"Langfuse at {dead} does not answer") for m in messages)
            assert any(
                f"the model endpoint {refusing_model} does not answer" in m
                and "HTTP 401 (check OPENAI_API_KEY)" in m
                for m in messages
            ), messages
            outcome = claims.post("refused-1", "run", {"document": _paid_document()}).json()
            assert outcome["status"] == "failed"
            assert (
                f"OPENAI_BASE_URL={refusing_model} refused the request (HTTP 401"
                in (outcome["reason"])
            )
            assert "Check OPENAI_API_KEY" in outcome["reason"]
            assert claims.payments("refused-") == {}
            rows = claims.invocations("refused-1")
            assert rows[0]["status"] == "completed", "failed once, not retried"
    assert all("\n" not in m for m in messages), "each warning is one line"
