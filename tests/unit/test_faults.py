"""Fault planning, the plan store, the step hook and the model transport, in-process."""

from __future__ import annotations

import asyncio
import json
import multiprocessing
import time
from pathlib import Path

import httpx2
import openai
import pytest
from restate import TerminalError

from services import faults as hooks
from services.fault_store import FaultStore
from workbench import evidence
from workbench.faults import Fault, kinds, steps
from workbench.frames import journaled_results


# -- planning ------------------------------------------------------------------------------------
@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"step": "pay", "kind": "crash"}, r"Fault step 'pay' is not one of: fetch prompts"),
        ({"step": "parse", "kind": "explode"}, r"Fault kind 'explode' is not one of: error"),
        ({"step": "reimburse", "kind": "rate_limit"}, r"'rate_limit' happens on a model call"),
        ({"step": "model call 0", "kind": "error"}, r"'model call 0' is not one of"),
        ({"step": "parse", "kind": "error", "times": 0}, r"times 0 is not valid"),
        ({"step": "parse", "kind": "terminal", "times": 2}, r"Use times=1"),
        ({"step": "parse", "kind": "crash", "seconds": 1}, r"takes no seconds"),
        ({"step": "parse", "kind": "delay", "seconds": -1}, r"not within 0-300"),
    ],
    ids=lambda v: v if isinstance(v, str) else None,
)
def test_a_fault_that_cannot_fire_is_refused_saying_why(kwargs, message) -> None:
    with pytest.raises(ValueError, match=message):
        Fault(**kwargs)


def test_faults_describe_themselves() -> None:
    assert str(Fault("model call 2", "rate_limit", times=2, seconds=1.5)) == (
        "rate_limit x2 at 'model call 2', 1.5 s"
    )
    assert set(kinds()["kind"]) == set(hooks.KINDS)
    assert steps()[: len(hooks.STEPS)] == list(hooks.STEPS)


def test_env_int_reads_whole_numbers_and_names_bad_values(monkeypatch) -> None:
    monkeypatch.setenv("WB_TEST_MS", "250")
    assert hooks.env_int("WB_TEST_MS", 5) == 250
    monkeypatch.setenv("WB_TEST_MS", "soon")
    with pytest.raises(ValueError, match=r"WB_TEST_MS='soon' is not a whole number"):
        hooks.env_int("WB_TEST_MS", 5)
    monkeypatch.delenv("WB_TEST_MS")
    assert hooks.env_int("WB_TEST_MS", 5) == 5


# -- the store -----------------------------------------------------------------------------------
@pytest.fixture
def store(tmp_path: Path) -> FaultStore:
    db = FaultStore(tmp_path / "faults.sqlite3")
    yield db
    db.close()


def _fire(store: FaultStore, claim: str, step: str, kinds=("error",)) -> list[str]:
    return [p.kind for p in store.take(claim, (step,), kinds, where=step, exclusive=kinds)]


def test_a_claims_fault_fires_exactly_times_then_never(store) -> None:
    store.add(claim_id="c1", step="parse", kind="error", times=2)
    assert [_fire(store, "c1", "parse") for _ in range(4)] == [["error"], ["error"], [], []]
    assert _fire(store, "c2", "parse") == [], "another claim is not touched"
    fired = [e for e in store.events("c1") if e["event"] == "fault"]
    assert [e["detail"] for e in fired] == ["1 of 2", "2 of 2"]


def test_an_armed_fault_is_taken_by_the_next_claims_once_each(store) -> None:
    store.add(claims=2, step="reimburse", kind="crash", times=1)
    kinds = ("crash",)
    assert _fire(store, "a", "reimburse", kinds) == ["crash"]
    assert _fire(store, "a", "reimburse", kinds) == [], "a claim takes one copy, not two"
    assert _fire(store, "b", "reimburse", kinds) == ["crash"]
    assert _fire(store, "c", "reimburse", kinds) == [], "armed for two claims only"
    armed = store.plans(armed=True)[0]
    assert armed.claims_left == 0
    assert [p.claim_id for p in store.plans(armed=False)] == ["a", "b"]


def test_only_one_ending_fault_fires_per_try(store) -> None:
    store.add(claim_id="c", step="parse", kind="delay", times=1)
    store.add(claim_id="c", step="parse", kind="error", times=1)
    store.add(claim_id="c", step="parse", kind="crash", times=1)
    fired = store.take(
        "c", ("parse",), {"delay", "error", "crash"}, where="parse", exclusive={"error", "crash"}
    )
    assert [p.kind for p in fired] == ["delay", "error"]
    fired = store.take(
        "c", ("parse",), {"delay", "error", "crash"}, where="parse", exclusive={"error", "crash"}
    )
    assert [p.kind for p in fired] == ["crash"]


def test_disarm_and_clear(store) -> None:
    store.add(claims=3, step="parse", kind="error", times=1)
    store.add(claim_id="x", step="parse", kind="error", times=4)
    assert store.disarm() == 1
    assert _fire(store, "y", "parse") == []
    assert store.clear("x") == 1
    assert _fire(store, "x", "parse") == []


def _race(path: str, n: int, out) -> None:
    db = FaultStore(path)
    out.put(sum(len(_fire(db, "race", "parse")) for _ in range(n)))


def test_firing_is_atomic_across_processes(tmp_path: Path) -> None:
    path = str(tmp_path / "faults.sqlite3")
    FaultStore(path).add(claim_id="race", step="parse", kind="error", times=25)
    context = multiprocessing.get_context("fork")
    out = context.Queue()
    workers = [context.Process(target=_race, args=(path, 20, out)) for _ in range(3)]
    for w in workers:
        w.start()
    total = sum(out.get(timeout=60) for _ in workers)
    for w in workers:
        w.join(30)
    assert total == 25


# -- the step hook -------------------------------------------------------------------------------
@pytest.fixture
def in_claim(monkeypatch, tmp_path: Path) -> FaultStore:
    """Hooks that believe they run inside the Restate handler of claim 'c'."""
    db = FaultStore(tmp_path / "faults.sqlite3")
    monkeypatch.setattr(hooks, "store", lambda: db)
    monkeypatch.setattr(hooks, "_claim_id", lambda: "c")
    return db


def _events(db: FaultStore) -> list[tuple]:
    return [(e["step"], e["event"], e["kind"]) for e in db.events("c")]


def _step_body() -> int:
    return 7


def test_the_step_hook_records_and_injects(in_claim) -> None:
    in_claim.add(claim_id="c", step="convert to EUR", kind="error", times=1)
    in_claim.add(
        claim_id="c", step="convert to EUR", kind="delay", times=1, params={"seconds": 0.05}
    )
    body = hooks.observed("convert to EUR", _step_body)
    assert body is hooks.observed("convert to EUR", _step_body), "one wrapper per step and fn"
    started = time.monotonic()
    with pytest.raises(
        hooks.InjectedError, match=r"Injected error in 'convert to EUR' \(fault 1 of 1"
    ):
        asyncio.run(body())
    assert time.monotonic() - started >= 0.05
    assert asyncio.run(body()) == 7
    assert _events(in_claim) == [
        ("convert to EUR", "fault", "error"),
        ("convert to EUR", "fault", "delay"),
        ("convert to EUR", "executed", None),
        ("convert to EUR", "completed", None),
    ]


def test_terminal_in_a_step_is_a_terminal_error(in_claim) -> None:
    in_claim.add(claim_id="c", step="reimburse", kind="terminal", times=1)
    with pytest.raises(TerminalError, match="Injected terminal in 'reimburse'"):
        asyncio.run(hooks.observed("reimburse", _step_body)())


def test_crash_after_effect_marks_the_result_lost_then_kills(in_claim, monkeypatch) -> None:
    crashed = []
    monkeypatch.setattr(hooks, "crash_self", lambda: crashed.append(True))
    in_claim.add(claim_id="c", step="reimburse", kind="crash_after_effect", times=1)
    assert asyncio.run(hooks.observed("reimburse", _step_body)()) == 7
    assert crashed == [True]
    lost = [e for e in in_claim.events("c") if e["detail"] == "lost"]
    assert [(e["step"], e["event"]) for e in lost] == [("reimburse", "completed")]


def test_outside_a_handler_the_hook_does_nothing(tmp_path, monkeypatch) -> None:
    monkeypatch.setattr(hooks, "store", lambda: pytest.fail("no store outside a handler"))
    assert asyncio.run(hooks.observed("parse", _step_body)()) == 7


# -- the model transport -------------------------------------------------------------------------
def _completion(content: str | None, tool_calls: list | None = None) -> dict:
    message = {"role": "assistant", "content": content}
    if tool_calls:
        message["tool_calls"] = tool_calls
    return {
        "id": "x",
        "object": "chat.completion",
        "created": 0,
        "model": "m",
        "choices": [{"index": 0, "message": message, "finish_reason": "stop"}],
    }


class FakeModel(httpx2.AsyncBaseTransport):
    def __init__(self, *responses: httpx2.Response) -> None:
        self.responses = list(responses)
        self.sent = 0

    async def handle_async_request(self, request: httpx2.Request) -> httpx2.Response:
        self.sent += 1
        return (
            self.responses.pop(0)
            if self.responses
            else httpx2.Response(200, json=_completion('{"ok": true}'))
        )


def _request(schema: str | None = "ClaimData") -> httpx2.Request:
    body: dict = {"model": "m", "messages": []}
    if schema:
        body["response_format"] = {
            "type": "json_schema",
            "json_schema": {"name": "final_output", "schema": {"title": schema}},
        }
    return httpx2.Request(
        "POST", "http://model/v1/chat/completions", content=json.dumps(body).encode()
    )


def _send(transport: hooks.ModelTransport, schema: str | None = "ClaimData") -> httpx2.Response:
    return asyncio.run(transport.handle_async_request(_request(schema)))


def test_model_calls_are_numbered_in_journal_order_and_counted(in_claim) -> None:
    model = FakeModel()
    transport = hooks.ModelTransport(model)
    _send(transport, "ClaimData")
    _send(transport, "ClaimAssessment")
    _send(transport, "JudgeVerdict")
    calls = [(e["step"], e["event"], e["call"]) for e in in_claim.events("c")]
    assert calls == [
        ("parse", "executed", 1),
        ("parse", "completed", 1),
        ("analyze", "executed", 2),
        ("analyze", "completed", 2),
        ("judge", "executed", None),
        ("judge", "completed", None),
    ]


def test_rate_limit_is_a_restate_retry_after_the_delay(in_claim) -> None:
    in_claim.add(
        claim_id="c", step="model call 1", kind="rate_limit", times=1, params={"seconds": 3}
    )
    model = FakeModel()
    with pytest.raises(hooks.ModelRateLimitedError) as raised:
        _send(hooks.ModelTransport(model))
    error = raised.value
    assert isinstance(error, openai.RateLimitError) and error.status_code == 429
    assert error.retry_after.total_seconds() == 3 and model.sent == 0


def test_a_real_429_with_retry_after_is_honoured_too(in_claim) -> None:
    model = FakeModel(httpx2.Response(429, headers={"retry-after-ms": "1500"}, json={"error": {}}))
    with pytest.raises(hooks.ModelRateLimitedError, match=r"Retry-After 1\.5 s"):
        _send(hooks.ModelTransport(model))


def test_server_error_timeout_and_terminal_pass_the_client_as_intended(in_claim) -> None:
    in_claim.add(claim_id="c", step="parse", kind="server_error", times=1)
    in_claim.add(claim_id="c", step="parse", kind="timeout", times=1, params={"seconds": 0.01})
    in_claim.add(claim_id="c", step="parse", kind="terminal", times=1)
    model = FakeModel()
    transport = hooks.ModelTransport(model)
    assert _send(transport).status_code == 500
    with pytest.raises(httpx2.ReadTimeout, match="Injected timeout"):
        _send(transport)
    with pytest.raises(TerminalError) as raised:
        _send(transport)
    assert isinstance(raised.value, openai.OpenAIError), "so the OpenAI client does not wrap it"
    assert model.sent == 0
    assert _send(transport).status_code == 200 and model.sent == 1


def test_unparsable_answers_are_refused_and_bad_output_is_injected(in_claim) -> None:
    model = FakeModel(httpx2.Response(200, json=_completion("Sure, here you go: {...}")))
    transport = hooks.ModelTransport(model)
    with pytest.raises(hooks.ModelOutputUnparsableError, match="does not parse"):
        _send(transport)
    in_claim.add(claim_id="c", step="analyze", kind="bad_output", times=1)
    tool_call = [{"id": "t", "type": "function", "function": {"name": "f", "arguments": "{}"}}]
    model.responses.append(httpx2.Response(200, json=_completion(None, tool_call)))
    with pytest.raises(hooks.ModelOutputUnparsableError):
        _send(transport, "ClaimAssessment")
    assert _send(transport, "ClaimAssessment").status_code == 200
    assert model.sent == 3


def test_answers_without_a_schema_are_not_checked(in_claim) -> None:
    model = FakeModel(httpx2.Response(200, json=_completion("plain text is fine here")))
    assert _send(hooks.ModelTransport(model), schema=None).status_code == 200
    assert hooks.unparsable(json.dumps(_completion('{"a": 1}'))) is None


def test_the_model_transport_wraps_the_network_once() -> None:
    from services.llm import model_http_client

    client = model_http_client()
    transport = client._transport  # reading the built client, to check how it was built
    assert isinstance(transport.inner, hooks.ModelTransport)
    assert isinstance(transport.inner.inner, httpx2.AsyncHTTPTransport)


def test_terminal_failures_are_collected_for_the_agent_run() -> None:
    async def run() -> list[str]:
        failed = hooks.terminal_failures()

        async def tool() -> None:
            hooks.note_terminal("check fraud", TerminalError("fraud db gone"))

        await asyncio.gather(asyncio.ensure_future(tool()))
        return failed

    assert asyncio.run(run()) == ["fraud db gone"]


# -- evidence ------------------------------------------------------------------------------------
def _entry(index: int, body: dict, at: float) -> dict:
    stamp = time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime(at)) + f".{int(at % 1 * 1000):03d}Z"
    return {"index": index, "entry_json": json.dumps(body), "appended_at": stamp}


def _state(step: str) -> dict:
    return {"Command": {"SetState": {"key": "step", "value": list(json.dumps(step).encode())}}}


def _run(name: str, n: int) -> dict:
    return {"Command": {"Run": {"completion_id": n, "name": name}}}


def _done(n: int, ok: bool = True) -> dict:
    result = {"Success": [49]} if ok else {"Failure": {"code": 500, "message": "x"}}
    return {"Notification": {"Completion": {"Run": {"completion_id": n, "result": result}}}}


def test_the_journal_names_model_calls_after_the_workflow_step() -> None:
    t = 1_700_000_000.0
    entries = [
        _entry(0, _state("parse"), t),
        _entry(1, _run("call LLM", 1), t),
        _entry(2, _done(1), t + 1),
        _entry(3, _state("analyze"), t + 1),
        _entry(4, _run("call LLM", 2), t + 1),
        _entry(5, _done(2), t + 2),
        _entry(6, _run("check fraud", 3), t + 2),
        _entry(7, _done(3, ok=False), t + 3),
    ]
    results = journaled_results(entries, None)
    assert [(r["step"], r["ok"]) for r in results] == [
        ("parse", True),
        ("analyze", True),
        ("check fraud", False),
    ]
    assert results[0]["at"] == pytest.approx(t + 1, abs=0.01)


def test_the_report_counts_executions_replays_and_attempts() -> None:
    t = 1_700_000_000.0
    results = [
        {"step": "parse", "ok": True, "at": t + 1},
        {"step": "reimburse", "ok": True, "at": t + 9},
    ]
    events = [
        {"step": "workflow", "event": "attempt", "at": t, "pid": 1, "kind": None, "detail": None},
        {
            "step": "parse",
            "event": "executed",
            "at": t + 0.5,
            "pid": 1,
            "kind": None,
            "detail": None,
        },
        {
            "step": "parse",
            "event": "completed",
            "at": t + 0.9,
            "pid": 1,
            "kind": None,
            "detail": None,
        },
        {
            "step": "reimburse",
            "event": "executed",
            "at": t + 2,
            "pid": 1,
            "kind": None,
            "detail": None,
        },
        {
            "step": "reimburse",
            "event": "completed",
            "at": t + 2,
            "pid": 1,
            "kind": None,
            "detail": "lost",
        },
        {
            "step": "reimburse",
            "event": "fault",
            "at": t + 2,
            "pid": 1,
            "kind": "crash_after_effect",
            "detail": "1 of 1",
        },
        {
            "step": "workflow",
            "event": "attempt",
            "at": t + 8,
            "pid": 2,
            "kind": None,
            "detail": None,
        },
        {
            "step": "reimburse",
            "event": "executed",
            "at": t + 8.5,
            "pid": 2,
            "kind": None,
            "detail": None,
        },
    ]
    import pandas as pd

    payments = pd.DataFrame({"accepted": [True, False]})
    report = evidence.report_frame("c", results, [], events, payments).set_index("step")
    assert report.loc["parse", ["executed", "journaled", "replayed", "attempts"]].tolist() == [
        1,
        1,
        1,
        1,
    ]
    reimburse = report.loc["reimburse"]
    assert reimburse[["executed", "journaled", "replayed", "attempts"]].tolist() == [2, 1, 0, 2]
    assert "refused as duplicates 1" in reimburse["note"] and "lost in a crash" in reimburse["note"]


def test_the_ledger_client_reads_what_the_flow_pays(tmp_path: Path) -> None:
    """The workflow pays under `services.names.payment_key`; the workbench reads by the same."""
    from services.ledger import Ledger
    from services.names import payment_key
    from workbench.clients import LedgerClient

    ledger = Ledger(tmp_path / "ledger.sqlite3")
    ledger.pay(payment_key("c-1"), "c-1", "C-1001", 10.0)
    ledger.pay(payment_key("c-1"), "c-1", "C-1001", 10.0)  # a retry after a crash
    attempts = LedgerClient(tmp_path).attempts("c-1")
    assert attempts["accepted"].tolist() == [True, False]
    assert LedgerClient(tmp_path).payments(["c-1"])["amount_eur"].tolist() == [10.0]


def test_no_plans_is_remembered_only_until_another_connection_plans(tmp_path) -> None:
    """`has_plans` keeps a "nothing planned" answer (it is asked at every step) only until a
    planner's connection commits: a fault planned, armed or cleared from another process is seen
    at the very next step."""
    services, planner = FaultStore(tmp_path / "f.sqlite3"), FaultStore(tmp_path / "f.sqlite3")
    steps_ = ("parse", "check fraud")
    assert not services.has_plans("c-1", steps_)
    assert not services.has_plans("c-1", steps_)  # remembered
    services.record("c-1", "parse", "executed")  # its own writes do not forget it
    assert not services.has_plans("c-1", steps_)
    planner.add(step="parse", kind="crash", times=1, claim_id="c-1")
    assert services.has_plans("c-1", steps_)
    assert not services.has_plans("c-2", steps_)  # another claim's plan is not this one's
    assert not services.has_plans("c-1", ("reimburse",))
    planner.clear()
    assert not services.has_plans("c-1", steps_)
    planner.add(step="check fraud", kind="crash", times=1, claims=1)
    assert services.has_plans("c-3", steps_)
    services.add(step="parse", kind="crash", times=1, claim_id="c-4")  # its own plans too
    planner.disarm()
    assert services.has_plans("c-4", steps_)
