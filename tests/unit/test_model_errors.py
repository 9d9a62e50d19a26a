"""What a failed model call means for a claim: the classification of `services.model_errors`,
driven through the real OpenAI client (so the errors must pass it unwrapped), in-process."""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Iterator

import httpx2
import openai
import pytest
from restate import TerminalError
from restate.exceptions import RetryableError

from services import faults, model_errors
from services.llm import configure_model_client


def _completion(content: str) -> dict:
    return {
        "id": "x",
        "object": "chat.completion",
        "created": 0,
        "model": "m",
        "choices": [
            {
                "index": 0,
                "message": {"role": "assistant", "content": content},
                "finish_reason": "stop",
            }
        ],
    }


class Scripted(httpx2.AsyncBaseTransport):
    """Answers (or raises) from a script; afterwards a valid answer."""

    def __init__(self, *script: httpx2.Response | Exception) -> None:
        self.script = list(script)
        self.sent = 0

    async def handle_async_request(self, request: httpx2.Request) -> httpx2.Response:
        self.sent += 1
        step = self.script.pop(0) if self.script else None
        if isinstance(step, Exception):
            raise step
        return step or httpx2.Response(200, json=_completion('{"ok": true}'))


@pytest.fixture
def in_handler(monkeypatch) -> Iterator[None]:
    """The transport believes it runs inside the Restate invocation 'inv-1' (no faults planned)."""
    monkeypatch.setattr(model_errors, "_invocation_id", lambda: "inv-1")
    monkeypatch.setattr(faults, "_claim_id", lambda: None)
    monkeypatch.setenv("OPENAI_BASE_URL", "http://model.test/v1")
    monkeypatch.setenv("WORKBENCH_MODEL", "tiny-model")
    yield


def _client(model: Scripted) -> openai.AsyncOpenAI:
    transport = model_errors.ModelErrors(faults.ModelTransport(model))
    return openai.AsyncOpenAI(
        base_url="http://model.test/v1",
        api_key="k",
        max_retries=0,
        http_client=openai.DefaultAsyncHttpxClient(transport=transport),
    )


async def _ask(client: openai.AsyncOpenAI) -> object:
    return await client.chat.completions.create(
        model="m",
        messages=[{"role": "user", "content": "hi"}],
        response_format={
            "type": "json_schema",
            "json_schema": {"name": "final_output", "schema": {"title": "ClaimData"}},
        },
    )


def _call(model: Scripted) -> object:
    return asyncio.run(_ask(_client(model)))


@pytest.mark.parametrize(
    "failure",
    [
        httpx2.ConnectError("[Errno 111] Connection refused"),
        httpx2.ReadTimeout("timed out"),
        httpx2.RemoteProtocolError("Server disconnected without sending a response."),
        httpx2.Response(500, json={"error": {"message": "boom"}}),
        httpx2.Response(503, text="upstream unavailable"),
        httpx2.Response(408, json={"error": {"message": "slow"}}),
    ],
    ids=["refused", "timeout", "reset", "500", "503", "408"],
)
def test_an_outage_is_retried_by_restate_not_failed(in_handler, failure) -> None:
    with pytest.raises(model_errors.ModelUnavailableError, match="http://model.test/v1") as e:
        _call(Scripted(failure))
    assert isinstance(e.value, RetryableError) and not isinstance(e.value, TerminalError)
    assert e.value.retry_after is None, "the invocation's capped backoff applies"


def test_429_without_retry_after_backs_off_doubling_and_capped(in_handler) -> None:
    too_many = [httpx2.Response(429, json={"error": {"message": "slow down"}}) for _ in range(8)]
    delays = []
    client = _client(Scripted(*too_many))
    for _ in range(8):
        with pytest.raises(model_errors.ModelUnavailableError, match="slow down") as e:
            asyncio.run(_ask(client))
        delays.append(e.value.retry_after.total_seconds())
    assert delays == [1, 2, 4, 8, 16, 30, 30, 30]


@pytest.mark.parametrize(
    ("header", "seconds"),
    [({"retry-after": "3"}, 3), ({"retry-after-ms": "1500"}, 1.5), ({"retry-after": "9999"}, 60)],
    ids=["seconds", "openai-ms", "capped"],
)
def test_429_with_retry_after_waits_that_long(in_handler, header, seconds) -> None:
    with pytest.raises(model_errors.ModelUnavailableError, match="Retry-After") as e:
        _call(Scripted(httpx2.Response(429, headers=header, json={})))
    assert isinstance(e.value, RetryableError) and e.value.retry_after.total_seconds() == seconds


@pytest.mark.parametrize(
    ("status", "hint"),
    [
        (401, r"refused the request \(HTTP 401: bad key\)\. Check OPENAI_API_KEY"),
        (403, r"HTTP 403.*Check OPENAI_API_KEY"),
        (404, r"Check OPENAI_BASE_URL .* and WORKBENCH_MODEL=tiny-model"),
        (400, r"HTTP 400.*WORKBENCH_MODEL=tiny-model supports tools"),
        (422, r"HTTP 422"),
    ],
)
def test_what_no_retry_fixes_is_terminal_and_names_the_setting(in_handler, status, hint) -> None:
    model = Scripted(httpx2.Response(status, json={"error": {"message": "bad key"}}))
    with pytest.raises(model_errors.ModelRefusedError, match=hint) as e:
        _call(model)
    assert isinstance(e.value, TerminalError) and e.value.status_code == status
    assert "OPENAI_BASE_URL=http://model.test/v1" in e.value.message
    assert model.sent == 1


def test_nonsense_is_retried_then_terminal_after_n_in_a_row(in_handler, monkeypatch) -> None:
    monkeypatch.setenv("WORKBENCH_MODEL_NONSENSE_TRIES", "3")
    garbage = [httpx2.Response(200, json=_completion("Sure! Here it is.")) for _ in range(5)]
    client = _client(Scripted(*garbage))
    for _ in range(2):
        with pytest.raises(faults.ModelOutputUnparsableError):
            asyncio.run(_ask(client))
    with pytest.raises(model_errors.ModelNonsenseError, match="3 times in a row") as e:
        asyncio.run(_ask(client))
    assert isinstance(e.value, TerminalError)
    # the count starts again: two more pieces of nonsense, then a good answer resets it
    for _ in range(2):
        with pytest.raises(faults.ModelOutputUnparsableError):
            asyncio.run(_ask(client))
    assert asyncio.run(_ask(client)).choices[0].message.content == '{"ok": true}'


def test_a_good_answer_resets_the_nonsense_count(in_handler, monkeypatch) -> None:
    monkeypatch.setenv("WORKBENCH_MODEL_NONSENSE_TRIES", "2")
    bad = httpx2.Response(200, json=_completion("nope"))
    good = httpx2.Response(200, json=_completion("{}"))
    client = _client(Scripted(bad, good, bad, good))
    for expected in (faults.ModelOutputUnparsableError, None) * 2:
        if expected is None:
            asyncio.run(_ask(client))
        else:
            with pytest.raises(expected):
                asyncio.run(_ask(client))


def test_outside_a_handler_nothing_is_changed(monkeypatch) -> None:
    monkeypatch.setattr(model_errors, "_invocation_id", lambda: None)
    with pytest.raises(openai.APIConnectionError):
        _call(Scripted(httpx2.ConnectError("refused")))
    with pytest.raises(openai.AuthenticationError):
        _call(Scripted(httpx2.Response(401, json={"error": {"message": "x"}})))


def test_an_outage_is_logged_once_and_its_end_once(in_handler, caplog) -> None:
    client = _client(Scripted(*[httpx2.ConnectError("refused")] * 5))
    with caplog.at_level(logging.WARNING, logger="services.model"):
        for _ in range(5):
            with pytest.raises(model_errors.ModelUnavailableError):
                asyncio.run(_ask(client))
        asyncio.run(_ask(client))
    lines = [r.getMessage() for r in caplog.records if r.name == "services.model"]
    assert len(lines) == 2, lines
    assert "http://model.test/v1 is unreachable (ConnectError: refused)" in lines[0]
    assert "answers again" in lines[1]


def test_the_model_client_classifies_above_the_fault_injection(monkeypatch) -> None:
    monkeypatch.setenv("OPENAI_BASE_URL", "http://model.test/v1")
    client = configure_model_client()
    outer = client._client._transport
    assert isinstance(outer, model_errors.ModelErrors)
    assert isinstance(outer.inner, faults.ModelTransport)


def test_a_compressed_answer_is_checked_and_passed_on_intact(in_handler) -> None:
    import gzip
    import json

    body = gzip.compress(json.dumps(_completion('{"amount": 5}')).encode())
    model = Scripted(
        httpx2.Response(
            200,
            headers={"content-encoding": "gzip", "content-type": "application/json"},
            content=body,
        )
    )
    assert _call(model).choices[0].message.content == '{"amount": 5}'


def test_an_answer_without_choices_is_nonsense(in_handler, monkeypatch) -> None:
    monkeypatch.setenv("WORKBENCH_MODEL_NONSENSE_TRIES", "1")
    empty = httpx2.Response(200, json={"id": "x", "object": "chat.completion", "choices": []})
    with pytest.raises(model_errors.ModelNonsenseError, match="the answer has no choices"):
        _call(Scripted(empty))
