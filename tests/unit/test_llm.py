"""The embedded model, driven in-process by the real `openai` client and the OpenAI Agents SDK."""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any, Literal

import agents
import httpx
import jsonschema
import openai
import pytest
from agents.agent_output import AgentOutputSchema
from pydantic import BaseModel
from starlette.testclient import TestClient

from services.models import ClaimAssessment, ClaimData, JudgeVerdict
from workbench.local.llm import create_app

PROMPTS = Path(__file__).resolve().parents[2] / "data" / "prompts"
ANALYST_V1 = (PROMPTS / "claim-analyst.v1.md").read_text(encoding="utf-8")
ANALYST_V2 = (PROMPTS / "claim-analyst.v2.md").read_text(encoding="utf-8")
JUDGE = (PROMPTS / "claim-judge.v1.md").read_text(encoding="utf-8")
PARSER = (PROMPTS / "claim-parser.v1.md").read_text(encoding="utf-8")

TOOLS = [
    {
        "type": "function",
        "function": {
            "name": "check_fraud",
            "description": "Whether the fraud database flags the customer.",
            "parameters": {
                "type": "object",
                "properties": {"customer_id": {"type": "string"}},
                "required": ["customer_id"],
            },
        },
    },
    {
        "type": "function",
        "function": {
            "name": "lookup_policy",
            "description": "The customer's plan for a category.",
            "parameters": {
                "type": "object",
                "properties": {"customer_id": {"type": "string"}, "category": {"type": "string"}},
                "required": ["customer_id", "category"],
            },
        },
    },
]
CLEAN_FRAUD = {"customer_id": "C-1001", "flagged": False, "reason": None}
STANDARD = {
    "customer_id": "C-1001",
    "found": True,
    "plan": "standard",
    "covered": True,
    "per_claim_limit_eur": 3000.0,
    "review_threshold_eur": 1500.0,
}


def schema_format(output_type: type[BaseModel]) -> dict[str, Any]:
    """`response_format` exactly as the OpenAI Agents SDK sends it for an output type."""
    schema = AgentOutputSchema(output_type).json_schema()
    return {
        "type": "json_schema",
        "json_schema": {"name": "final_output", "strict": True, "schema": schema},
    }


def claim(**changes: Any) -> dict[str, Any]:
    base = {
        "customer_id": "C-1001",
        "claim_date": "2026-03-22",
        "amount": 45.0,
        "currency": "EUR",
        "category": "pharmacy",
        "has_receipt": False,
        "description": "Pharmacy expense of 45.00 EUR.",
        "problems": [],
    }
    return base | changes


@pytest.fixture
def client() -> Iterator[openai.OpenAI]:
    with TestClient(create_app()) as http:
        yield openai.OpenAI(base_url="http://testserver/v1", api_key="x", http_client=http)


def complete(client: openai.OpenAI, **kwargs: Any) -> Any:
    return client.chat.completions.create(model=kwargs.pop("model", "any-model"), **kwargs)


def analyst_messages(system: str, amount_eur: float, **changes: Any) -> list[dict[str, Any]]:
    user = json.dumps({"claim": claim(**changes), "amount_eur": amount_eur})
    return [{"role": "system", "content": system}, {"role": "user", "content": user}]


def with_tool_results(
    messages: list[dict[str, Any]], calls: list[Any], fraud: dict, policy: dict
) -> list[dict[str, Any]]:
    results = {"check_fraud": fraud, "lookup_policy": policy}
    assistant = {
        "role": "assistant",
        "content": None,
        "tool_calls": [c.model_dump(exclude_none=True) for c in calls],
    }
    tools = [
        {"role": "tool", "tool_call_id": c.id, "content": json.dumps(results[c.function.name])}
        for c in calls
    ]
    return [*messages, assistant, *tools]


def decide(client: openai.OpenAI, system: str, amount_eur: float, **changes: Any) -> Any:
    """Run the analyst's two turns (tool calls, then decision); the parsed ClaimAssessment."""
    messages = analyst_messages(system, amount_eur, **changes)
    first = complete(
        client, messages=messages, tools=TOOLS, response_format=schema_format(ClaimAssessment)
    )
    calls = first.choices[0].message.tool_calls
    assert calls, "the analyst must call the tools first"
    final = complete(
        client,
        messages=with_tool_results(messages, calls, CLEAN_FRAUD, STANDARD),
        tools=TOOLS,
        response_format=schema_format(ClaimAssessment),
    )
    assert final.choices[0].finish_reason == "stop"
    return ClaimAssessment.model_validate_json(final.choices[0].message.content)


# --- endpoints ----------------------------------------------------------------------------------


def test_health_and_unknown_routes() -> None:
    with TestClient(create_app()) as http:
        assert http.get("/health").json() == {"status": "ok"}
        missing = http.post("/v1/embeddings", json={})
        assert missing.status_code == 404
        assert missing.json()["error"]["type"] == "invalid_request_error"
        assert "POST /v1/responses" in missing.json()["error"]["message"]
        assert http.get("/v1/chat/completions").status_code == 405


def test_models_list_and_any_model_name(client: openai.OpenAI) -> None:
    assert [m.id for m in client.models.list().data] == ["workbench-local"]
    assert client.models.retrieve("gpt-4o-mini").id == "gpt-4o-mini"
    reply = complete(client, model="llama3.1:8b", messages=[{"role": "user", "content": "hi"}])
    assert reply.model == "llama3.1:8b"


def test_plain_chat_says_what_it_is(client: openai.OpenAI) -> None:
    reply = complete(client, messages=[{"role": "user", "content": "Who are you?"}])
    assert reply.object == "chat.completion"
    assert reply.choices[0].finish_reason == "stop"
    assert "rule-based stand-in" in reply.choices[0].message.content


def test_usage_is_reported_as_characters_over_four(client: openai.OpenAI) -> None:
    text = "x" * 400
    reply = complete(client, messages=[{"role": "user", "content": text}])
    usage = reply.usage
    assert usage.prompt_tokens == 100
    assert usage.completion_tokens == -(-len(reply.choices[0].message.content) // 4)
    assert usage.total_tokens == usage.prompt_tokens + usage.completion_tokens


def test_latency_is_slept_per_completion(monkeypatch: pytest.MonkeyPatch) -> None:
    slept: list[float] = []

    async def fake_sleep(seconds: float) -> None:
        slept.append(seconds)

    monkeypatch.setattr("workbench.local.llm.app.asyncio.sleep", fake_sleep)
    with TestClient(create_app(latency_ms=250)) as http:
        body = {"model": "m", "messages": [{"role": "user", "content": "hi"}]}
        assert http.post("/v1/chat/completions", json=body).status_code == 200
        assert http.get("/health").status_code == 200
    assert slept == [0.25]


def test_latency_changes_at_runtime_and_bad_values_are_refused(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    slept: list[float] = []

    async def fake_sleep(seconds: float) -> None:
        slept.append(seconds)

    monkeypatch.setattr("workbench.local.llm.app.asyncio.sleep", fake_sleep)
    body = {"model": "m", "messages": [{"role": "user", "content": "hi"}]}
    with TestClient(create_app()) as http:
        assert http.get("/workbench/latency").json() == {"latency_ms": 0.0}
        assert http.post("/v1/chat/completions", json=body).status_code == 200
        assert http.put("/workbench/latency", json={"latency_ms": 100}).json() == {
            "latency_ms": 100.0
        }
        assert http.post("/v1/chat/completions", json=body).status_code == 200
        for bad in ({"latency_ms": -1}, {"latency_ms": "fast"}, {"ms": 5}):
            refused = http.put("/workbench/latency", json=bad)
            assert refused.status_code == 400
            assert "latency_ms" in refused.json()["error"]["message"]
        assert http.get("/workbench/latency").json() == {"latency_ms": 100.0}
    assert slept == [0.1]


# --- parser -------------------------------------------------------------------------------------

PARSER_CASES = {
    "form-usd": (
        "Customer ID: C-1001\nDate of service: 2026-03-14\nAmount: 120.50 USD\n"
        "Category: dental\nReceipt attached: yes",
        {"customer_id": "C-1001", "claim_date": "2026-03-14", "amount": 120.5,
         "currency": "USD", "category": "dental", "has_receipt": True},
    ),
    "chatty-email-euro-symbol": (
        "Hi, I'm customer C-1002. On 3 March 2026 I paid €85.00 at the pharmacy. "
        "The receipt is attached.",
        {"customer_id": "C-1002", "claim_date": "2026-03-03", "amount": 85.0,
         "currency": "EUR", "category": "pharmacy", "has_receipt": True},
    ),
    "european-number-format": (
        "Kunde: C-1009, 14.03.2026, Zahnarzt, Betrag: 1.234,56 EUR, no receipt",
        {"customer_id": "C-1009", "claim_date": "2026-03-14", "amount": 1234.56,
         "currency": "EUR", "category": "dental", "has_receipt": False},
    ),
    "key-value-separate-currency": (
        "customer=C-1003 date=2026-02-20 amount=340.00 currency=GBP category=vision receipt=yes",
        {"customer_id": "C-1003", "amount": 340.0, "currency": "GBP", "has_receipt": True},
    ),
    "markdown-total-row": (
        "| Customer ID | C-1005 |\n| Date | 2026-02-11 |\n| Eye exam | €60.00 |\n"
        "| **Total** | **€240.00** |\n| Receipt | attached |",
        {"amount": 240.0, "currency": "EUR", "category": "vision", "has_receipt": True},
    ),
    "yen-and-lost-receipt": (
        "C-1006, pharmacy, 2 March 2026, ¥12,000 - I lost the receipt",
        {"amount": 12000.0, "currency": "JPY", "has_receipt": False},
    ),
    "swiss-francs-us-date": (
        "C-1010 saw a doctor on 03/27/2026 and paid CHF 1'250.00, receipt enclosed",
        {"claim_date": "2026-03-27", "amount": 1250.0, "currency": "CHF", "category": "medical"},
    ),
    "unknown-currency-kept": (
        "Customer ID: C-1008\nAmount: 300 XYZ\nCategory: medical",
        {"amount": 300.0, "currency": "XYZ"},
    ),
    "unreadable-amount": (
        "Customer ID: C-1005\nAmount: a lot\nCategory: medical",
        {"amount": None, "currency": None},
    ),
    "absurd-number": ("C-1001 Amount: " + "9" * 400 + " EUR", {"amount": None}),
    "date-next-to-code": (
        "C-1004 physio 2026-01-09 EUR 260 receipt attached",
        {"claim_date": "2026-01-09", "amount": 260.0, "currency": "EUR", "category": "medical"},
    ),
    "no-customer-id": (
        "I paid 42 euros for glasses on 2026-01-02.",
        {"customer_id": None, "amount": 42.0, "currency": "EUR", "category": "vision"},
    ),
}  # fmt: skip


@pytest.mark.parametrize(
    ("document", "expected"), list(PARSER_CASES.values()), ids=list(PARSER_CASES)
)
def test_parser_reads_the_fields(
    client: openai.OpenAI, document: str, expected: dict[str, Any]
) -> None:
    reply = complete(
        client,
        messages=[{"role": "system", "content": PARSER}, {"role": "user", "content": document}],
        response_format=schema_format(ClaimData),
    )
    parsed = ClaimData.model_validate_json(reply.choices[0].message.content)
    assert {key: getattr(parsed, key) for key in expected} == expected
    missing = [k for k in ("customer_id", "amount", "currency") if getattr(parsed, k) is None]
    assert all(any(k.split("_")[0] in p for p in parsed.problems) for k in missing)


def test_parser_via_openai_structured_outputs_helper(client: openai.OpenAI) -> None:
    reply = client.chat.completions.parse(
        model="workbench-local",
        messages=[{"role": "user", "content": "C-1004 physio 2026-01-09 EUR 260 receipt attached"}],
        response_format=ClaimData,
    )
    parsed = reply.choices[0].message.parsed
    assert parsed is not None and (parsed.amount, parsed.category) == (260.0, "medical")


# --- analyst ------------------------------------------------------------------------------------


def test_analyst_calls_the_tools_first_then_decides(client: openai.OpenAI) -> None:
    messages = analyst_messages(ANALYST_V1, 45.0, has_receipt=True)
    fmt = schema_format(ClaimAssessment)
    first = complete(client, messages=messages, tools=TOOLS, response_format=fmt)
    choice = first.choices[0]
    assert choice.finish_reason == "tool_calls" and choice.message.content is None
    calls = choice.message.tool_calls
    assert [c.function.name for c in calls] == ["check_fraud", "lookup_policy"]
    assert json.loads(calls[1].function.arguments) == {
        "customer_id": "C-1001",
        "category": "pharmacy",
    }
    assert all(c.id.startswith("call_") for c in calls)
    again = complete(client, messages=messages, tools=TOOLS, response_format=fmt)
    assert [c.id for c in again.choices[0].message.tool_calls] == [c.id for c in calls]

    final = complete(
        client,
        messages=with_tool_results(messages, calls, CLEAN_FRAUD, STANDARD),
        tools=TOOLS,
        response_format=fmt,
    )
    assessment = ClaimAssessment.model_validate_json(final.choices[0].message.content)
    assert assessment.decision == "approve" and assessment.clauses == []


def test_analyst_calls_one_tool_per_turn_without_parallel_tool_calls(
    client: openai.OpenAI,
) -> None:
    messages = analyst_messages(ANALYST_V1, 45.0, has_receipt=True)
    fmt = schema_format(ClaimAssessment)
    kwargs: dict[str, Any] = {"tools": TOOLS, "response_format": fmt, "parallel_tool_calls": False}
    first = complete(client, messages=messages, **kwargs).choices[0].message.tool_calls
    assert [c.function.name for c in first] == ["check_fraud"]
    messages = with_tool_results(messages, first, CLEAN_FRAUD, STANDARD)
    second = complete(client, messages=messages, **kwargs).choices[0].message.tool_calls
    assert [c.function.name for c in second] == ["lookup_policy"]
    messages = with_tool_results(messages, second, CLEAN_FRAUD, STANDARD)
    final = complete(client, messages=messages, **kwargs).choices[0]
    assert final.finish_reason == "stop"
    assert ClaimAssessment.model_validate_json(final.message.content).decision == "approve"


def test_prompt_versions_decide_differently_without_receipt(client: openai.OpenAI) -> None:
    v1 = decide(client, ANALYST_V1, 45.0, has_receipt=False)
    v2 = decide(client, ANALYST_V2, 45.0, has_receipt=False)
    assert v1.decision == "approve"
    assert v2.decision == "reject" and v2.clauses == ["receipt"]
    assert v2.reason.startswith("[receipt]")
    assert decide(client, ANALYST_V1, 250.0, has_receipt=False).decision == "reject"
    assert decide(client, ANALYST_V1, 200.0, has_receipt=False).decision == "reject"


@pytest.mark.parametrize(
    ("amount_eur", "decision", "clauses"),
    [(1600.0, "review", ["review"]), (3100.0, "reject", ["limit", "review"])],
    ids=["above-review-threshold", "above-per-claim-limit"],
)
def test_analyst_limits_and_review(
    client: openai.OpenAI, amount_eur: float, decision: str, clauses: list[str]
) -> None:
    assessment = decide(client, ANALYST_V1, amount_eur, has_receipt=True)
    assert (assessment.decision, assessment.clauses) == (decision, clauses)


def test_only_the_clauses_in_the_prompt_apply(client: openai.OpenAI) -> None:
    only_fraud = "Policy:\n1. [fraud] Reject the claim when the fraud check flags the customer."
    assert decide(client, only_fraud, 5000.0, has_receipt=False).decision == "approve"
    escalate = "1. [receipt] Send claims above 100 EUR without a receipt to human review."
    assert decide(client, escalate, 150.0, has_receipt=False).decision == "review"
    assert decide(client, escalate, 90.0, has_receipt=False).decision == "approve"


def test_analyst_without_tools_sends_to_review(client: openai.OpenAI) -> None:
    reply = complete(
        client,
        messages=analyst_messages(ANALYST_V1, 45.0, has_receipt=True),
        response_format=schema_format(ClaimAssessment),
    )
    assessment = ClaimAssessment.model_validate_json(reply.choices[0].message.content)
    assert assessment.decision == "review" and "could not be checked" in assessment.reason


# --- judge --------------------------------------------------------------------------------------


def judge_input(decision: str, status: str, **changes: Any) -> str:
    clauses = [] if decision == "approve" else ["receipt"]
    reason = (
        "No policy clause matched; 45.00 EUR approved."
        if decision == "approve"
        else ("[receipt] Reject any claim that has no receipt (no receipt).")
    )
    return json.dumps(
        {
            "claim": claim(**changes),
            "amount_eur": 45.0,
            "assessment": {"decision": decision, "reason": reason, "clauses": clauses},
            "fraud": CLEAN_FRAUD,
            "policy": STANDARD,
            "final_status": status,
            "document": "C-1001 pharmacy 2026-03-22, 45.00 EUR",
            "analyst_policy": ANALYST_V2,
        }
    )


@pytest.mark.parametrize(
    ("decision", "status", "changes", "score", "item", "comment"),
    [
        ("approve", "paid", {"has_receipt": True}, 1.0, None, None),
        ("approve", "paid", {"has_receipt": False}, 0.69, "receipt", "without a receipt"),
        ("reject", "rejected", {"has_receipt": False}, 1.0, None, None),
        ("reject", "rejected", {"has_receipt": True}, 0.73, "consistent", "the clauses say"),
        ("approve", "failed", {"has_receipt": True}, 0.73, "consistent", "failed"),
    ],
    ids=["right-approval", "approved-no-receipt", "right-rejection", "unfounded", "failed"],
)
def test_judge_scores_each_rubric_item(
    client: openai.OpenAI,
    decision: str,
    status: str,
    changes: dict[str, Any],
    score: float,
    item: str | None,
    comment: str | None,
) -> None:
    reply = complete(
        client,
        messages=[
            {"role": "system", "content": JUDGE},
            {"role": "user", "content": judge_input(decision, status, **changes)},
        ],
        response_format=schema_format(JudgeVerdict),
    )
    verdict = JudgeVerdict.model_validate_json(reply.choices[0].message.content)
    assert verdict.score == score, verdict.reason
    items = {i.id: i for i in verdict.items}
    assert list(items) == ["consistent", "amount", "reason", "receipt", "fraud"]
    assert items["fraud"].score == 1.0 and items["fraud"].comment == "not flagged"
    if item:
        assert items[item].score is not None and items[item].score < 1
        assert comment in items[item].comment
    assert verdict.reason.endswith(f"Score {score:g}.")


def test_judge_follows_the_weights_of_its_prompt(client: openai.OpenAI) -> None:
    rubric = (
        "- [receipt] (weight 9) Receipt handled.\n- [fraud] (weight 1) Fraud respected.\n"
        "- [tone] (weight 5) Was it polite?"
    )
    reply = complete(
        client,
        messages=[
            {"role": "system", "content": rubric},
            {"role": "user", "content": judge_input("approve", "paid", has_receipt=False)},
        ],
        response_format=schema_format(JudgeVerdict),
    )
    verdict = JudgeVerdict.model_validate_json(reply.choices[0].message.content)
    # receipt 1 - 45/200 = 0.78 (weight 9), fraud 1.0 (weight 1); tone is not evaluable
    assert verdict.score == pytest.approx(round((9 * 0.78 + 1) / 10, 2))
    assert "[tone] not evaluable" in verdict.reason
    assert [i.score for i in verdict.items if i.id == "tone"] == [None]


def test_judge_still_reads_penalty_rubrics(client: openai.OpenAI) -> None:
    rubric = "- [receipt] (-0.9) Approved without receipt.\n- [fraud] (-0.6) Approved if flagged."
    reply = complete(
        client,
        messages=[
            {"role": "system", "content": rubric},
            {"role": "user", "content": judge_input("approve", "paid", has_receipt=False)},
        ],
        response_format=schema_format(JudgeVerdict),
    )
    verdict = JudgeVerdict.model_validate_json(reply.choices[0].message.content)
    assert verdict.score == pytest.approx(0.1)
    assert "[receipt] violated (-0.9)" in verdict.reason and "[fraud] ok" in verdict.reason


# --- malformed requests -------------------------------------------------------------------------


def test_bad_json_is_a_400_with_an_openai_error_body() -> None:
    with TestClient(create_app()) as http:
        response = http.post(
            "/v1/chat/completions",
            content=b"{not json",
            headers={"content-type": "application/json"},
        )
    assert response.status_code == 400
    error = response.json()["error"]
    assert error["type"] == "invalid_request_error"
    assert "not valid JSON" in error["message"] and set(error) == {
        "message",
        "type",
        "param",
        "code",
    }


def test_huge_bodies_are_refused_with_413(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr("workbench.local.llm.app.MAX_BODY_BYTES", 1000)
    body = {"model": "m", "messages": [{"role": "user", "content": "x" * 2000}]}
    with TestClient(create_app()) as http:
        response = http.post("/v1/chat/completions", json=body)
    assert response.status_code == 413
    assert "larger than" in response.json()["error"]["message"]


@pytest.mark.parametrize(
    ("kwargs", "match"),
    [
        ({"messages": []}, "messages is required and must be a non-empty list"),
        ({"messages": "hello"}, "Invalid type for 'messages': expected an array, but got a string"),
        ({"messages": [{"content": "hi"}]}, r"messages\[0\] must be an object with a role"),
        ({"messages": [{"role": "user", "content": 42}]}, "content must be a string"),
        (
            {"messages": [{"role": "user", "content": [{"type": "image_url", "image_url": {}}]}]},
            "this model reads text only",
        ),
        ({"stream": "yes"}, "Invalid type for 'stream': expected a boolean, but got a string"),
        ({"temperature": "hot"}, "Invalid type for 'temperature': expected a number"),
        ({"temperature": 3}, "Invalid value for 'temperature': 3; it must be between 0 and 2"),
        ({"max_tokens": 1.5}, "Invalid type for 'max_tokens': expected an integer"),
        ({"max_tokens": 0}, "Invalid value for 'max_tokens': 0; it must be at least 1"),
        ({"tools": {"name": "x"}}, "Invalid type for 'tools': expected an array, but got an"),
        ({"parallel_tool_calls": "no"}, "Invalid type for 'parallel_tool_calls'"),
        ({"tool_choice": 7}, "Invalid type for 'tool_choice': expected a string or an object"),
        ({"tool_choice": "required"}, 'tool_choice is "required" but no tools are offered'),
        ({"extra_body": {"frobnicate": 1}}, "Unrecognized request argument supplied: frobnicate"),
        ({"logprobs": True}, "does not support log probabilities"),
        ({"n": 2}, "Only n=1 is supported"),
        ({"tools": [{"type": "function"}]}, r"tools\[0\] must look like"),
        ({"response_format": {"type": "yaml"}}, "response_format must be an object"),
        (
            {"messages": [{"role": "assistant", "content": None, "tool_calls": ["x"]}]},
            r"messages\[0\].tool_calls must be a list",
        ),
    ],
    ids=["empty-messages", "messages-not-a-list", "no-role", "content-type", "image-part",
         "stream-type", "temperature-type", "temperature-range", "max-tokens-type",
         "max-tokens-range", "tools-type", "parallel-type", "tool-choice-type",
         "required-without-tools", "unknown-parameter", "logprobs", "n", "tool-shape",
         "response-format-type", "tool-calls-shape"],
)  # fmt: skip
def test_malformed_requests_are_400s_that_say_how_to_fix_them(
    client: openai.OpenAI, kwargs: dict[str, Any], match: str
) -> None:
    kwargs.setdefault("messages", [{"role": "user", "content": "hi"}])
    with pytest.raises(openai.BadRequestError, match=match) as caught:
        complete(client, **kwargs)
    assert caught.value.status_code == 400
    assert caught.value.body["type"] == "invalid_request_error"  # type: ignore[index]


def test_wrong_types_are_400s_through_the_raw_http_api() -> None:
    with TestClient(create_app()) as http:
        for body, param in [
            ({"model": 5, "messages": [{"role": "user", "content": "hi"}]}, "model"),
            (
                {"model": "m", "messages": [{"role": "user", "content": "hi"}], "top_p": "1"},
                "top_p",
            ),
            ({"model": "m", "input": 42}, "input"),
            ({"model": "m", "input": "hi", "max_output_tokens": "10"}, "max_output_tokens"),
            ({"model": "m", "input": "hi", "text": {"format": "json"}}, "text.format"),
        ]:
            path = "/v1/responses" if "input" in body else "/v1/chat/completions"
            response = http.post(path, json=body)
            assert response.status_code == 400, body
            error = response.json()["error"]
            assert error["param"] == param and error["code"] == "invalid_type", error
            assert f"Invalid type for '{param}'" in error["message"]


def test_task_errors_are_400s(client: openai.OpenAI) -> None:
    bad_judge = json.dumps({"claim": claim(), "final_status": "paid", "assessment": "approve"})
    bad_policy = STANDARD | {"per_claim_limit_eur": "lots"}
    calls = (
        complete(
            client,
            messages=analyst_messages(ANALYST_V1, 45.0),
            tools=TOOLS,
            response_format=schema_format(ClaimAssessment),
        )
        .choices[0]
        .message.tool_calls
    )
    with pytest.raises(openai.BadRequestError, match="JSON of AnalystInput"):
        complete(
            client,
            messages=[{"role": "user", "content": "not json"}],
            response_format=schema_format(ClaimAssessment),
        )
    with pytest.raises(openai.BadRequestError, match="assessment must be an object or null"):
        complete(
            client,
            messages=[{"role": "system", "content": JUDGE}, {"role": "user", "content": bad_judge}],
            response_format=schema_format(JudgeVerdict),
        )
    with pytest.raises(openai.BadRequestError, match="per_claim_limit_eur='lots'"):
        complete(
            client,
            messages=with_tool_results(
                analyst_messages(ANALYST_V1, 45.0), calls, CLEAN_FRAUD, bad_policy
            ),
            response_format=schema_format(ClaimAssessment),
        )
    with pytest.raises(openai.BadRequestError, match="has no user message"):
        complete(
            client,
            messages=[{"role": "system", "content": PARSER}],
            response_format=schema_format(ClaimData),
        )


def test_unexpected_failures_are_openai_style_500s(monkeypatch: pytest.MonkeyPatch) -> None:
    def broken(request: Any) -> None:
        raise RuntimeError("boom")

    monkeypatch.setattr("workbench.local.llm.app.answer", broken)
    body = {"model": "m", "messages": [{"role": "user", "content": "hi"}]}
    with TestClient(create_app()) as http:
        response = http.post("/v1/chat/completions", json=body)
    assert response.status_code == 500
    assert response.json()["error"]["type"] == "server_error"
    assert "RuntimeError: boom" in response.json()["error"]["message"]


# --- the OpenAI Agents SDK ----------------------------------------------------------------------


@pytest.fixture
def sdk_model() -> agents.OpenAIChatCompletionsModel:
    agents.set_tracing_disabled(True)
    http = httpx.AsyncClient(
        transport=httpx.ASGITransport(app=create_app()), base_url="http://testserver"
    )
    client = openai.AsyncOpenAI(base_url="http://testserver/v1", api_key="x", http_client=http)
    return agents.OpenAIChatCompletionsModel(model="workbench-local", openai_client=client)


async def test_sdk_parser_agent(sdk_model: agents.OpenAIChatCompletionsModel) -> None:
    agent = agents.Agent(
        name="claim-parser", instructions=PARSER, output_type=ClaimData, model=sdk_model
    )
    document = "Hi, C-1002 here. On 3 March 2026 I paid €85.00 at the pharmacy, receipt attached."
    result = await agents.Runner.run(agent, document)
    parsed = result.final_output
    assert isinstance(parsed, ClaimData)
    assert (parsed.customer_id, parsed.amount, parsed.currency) == ("C-1002", 85.0, "EUR")
    assert result.context_wrapper.usage.total_tokens > 0


async def test_sdk_analyst_agent_round_trips_the_tools(
    sdk_model: agents.OpenAIChatCompletionsModel,
) -> None:
    seen: list[str] = []

    @agents.function_tool
    def check_fraud(customer_id: str) -> str:
        """Whether the fraud database flags the customer."""
        seen.append(f"fraud:{customer_id}")
        return json.dumps({"customer_id": customer_id, "flagged": False, "reason": None})

    @agents.function_tool
    def lookup_policy(customer_id: str, category: str) -> str:
        """The customer's plan for a category."""
        seen.append(f"policy:{customer_id}:{category}")
        return json.dumps(STANDARD | {"customer_id": customer_id})

    agent = agents.Agent(
        name="claim-analyst",
        instructions=ANALYST_V2,
        output_type=ClaimAssessment,
        tools=[check_fraud, lookup_policy],
        model=sdk_model,
    )
    message = json.dumps({"claim": claim(has_receipt=False), "amount_eur": 45.0})
    result = await agents.Runner.run(agent, message)
    assert sorted(seen) == ["fraud:C-1001", "policy:C-1001:pharmacy"]
    assessment = result.final_output
    assert isinstance(assessment, ClaimAssessment)
    assert (assessment.decision, assessment.clauses) == ("reject", ["receipt"])


# --- any agent: JSON schemas, function tools, token budget ---------------------------------------


class Priority(BaseModel):
    level: str
    why: str


class Triage(BaseModel):
    """A user's own output type: not one of the claim tasks."""

    customer_id: str | None
    amount: float
    currency: str
    priority: Literal["low", "medium", "high"]
    urgent: bool
    tags: list[str]
    notes: Priority


LOOKUP = {
    "type": "function",
    "function": {
        "name": "lookup_customer",
        "description": "The customer's record.",
        "parameters": {
            "type": "object",
            "properties": {"customer_id": {"type": "string"}, "limit": {"type": "integer"}},
            "required": ["customer_id", "limit"],
            "additionalProperties": False,
        },
    },
}
NOTIFY = {
    "type": "function",
    "function": {
        "name": "notify",
        "parameters": {
            "type": "object",
            "properties": {
                "channel": {"type": "string", "enum": ["email", "sms"]},
                "when": {"type": "string", "format": "date"},
                "priority": {"type": "integer", "minimum": 1, "maximum": 5},
            },
            "required": ["channel", "when", "priority"],
        },
    },
}
SCHEMAS = {
    "nested-refs-enums": AgentOutputSchema(Triage).json_schema(),
    "arrays-min-items": {
        "type": "object",
        "properties": {
            "items": {"type": "array", "minItems": 2, "items": {"type": "integer", "minimum": 3}},
            "ratio": {"type": "number", "exclusiveMinimum": 0, "maximum": 1},
        },
        "required": ["items", "ratio"],
    },
    "one-of-and-const": {
        "type": "object",
        "properties": {
            "kind": {"const": "claim"},
            "value": {"oneOf": [{"type": "string", "minLength": 4}, {"type": "integer"}]},
            "email": {"type": "string", "format": "email"},
            "when": {"type": ["string", "null"], "format": "date-time"},
        },
        "required": ["kind", "value", "email", "when"],
    },
    "top-level-array": {"type": "array", "items": {"type": "string"}, "minItems": 1},
    "bounds-patterns-unique": {
        "type": "object",
        "properties": {
            "code": {"type": "string", "pattern": "^[0-9]+$", "maxLength": 3},
            "step": {"type": "integer", "minimum": 3, "multipleOf": 5},
            "ids": {
                "type": "array",
                "items": {"type": "integer"},
                "minItems": 3,
                "uniqueItems": True,
            },
            "names": {
                "type": "array",
                "items": {"type": "string"},
                "minItems": 2,
                "uniqueItems": True,
            },
            "ok": {"type": "boolean"},
        },
        "required": ["code", "step", "ids", "names", "ok"],
        "additionalProperties": False,
    },
}


@pytest.mark.parametrize("schema", list(SCHEMAS.values()), ids=list(SCHEMAS))
def test_any_json_schema_gets_a_deterministic_valid_instance(
    client: openai.OpenAI, schema: dict[str, Any]
) -> None:
    fmt = {"type": "json_schema", "json_schema": {"name": "out", "schema": schema}}
    messages = [{"role": "user", "content": "Please triage this."}]
    first = complete(client, messages=messages, response_format=fmt)
    again = complete(client, messages=messages, response_format=fmt)
    value = json.loads(first.choices[0].message.content)
    jsonschema.validate(value, schema)
    assert first.choices[0].message.content == again.choices[0].message.content


def test_schema_fields_are_filled_from_the_conversation(client: openai.OpenAI) -> None:
    user = (
        "Claim from customer C-1004: physio on 2026-01-09, EUR 260, receipt attached.\n"
        "Priority: HIGH\nUrgent: yes\nTags: n/a"
    )
    reply = complete(
        client,
        messages=[{"role": "user", "content": user}],
        response_format=schema_format(Triage),
    )
    triage = Triage.model_validate_json(reply.choices[0].message.content)
    assert (triage.customer_id, triage.amount, triage.currency) == ("C-1004", 260.0, "EUR")
    assert triage.priority == "high" and triage.urgent is True
    assert triage.tags == []


def test_tools_are_called_once_each_with_valid_arguments_then_the_answer(
    client: openai.OpenAI,
) -> None:
    messages: list[dict[str, Any]] = [
        {"role": "user", "content": "Customer C-1001 asks for a callback."}
    ]
    fmt = schema_format(Triage)
    first = complete(client, messages=messages, tools=[LOOKUP, NOTIFY], response_format=fmt)
    choice = first.choices[0]
    assert choice.finish_reason == "tool_calls"
    calls = choice.message.tool_calls
    assert [c.function.name for c in calls] == ["lookup_customer", "notify"]
    for call, tool in zip(calls, (LOOKUP, NOTIFY), strict=True):
        jsonschema.validate(json.loads(call.function.arguments), tool["function"]["parameters"])
    assert json.loads(calls[0].function.arguments)["customer_id"] == "C-1001"
    assistant = {"role": "assistant", "tool_calls": [c.model_dump() for c in calls]}
    outputs = [
        {
            "role": "tool",
            "tool_call_id": calls[0].id,
            "content": '{"amount": 99.5, "tags": ["vip"]}',
        },
        {"role": "tool", "tool_call_id": calls[1].id, "content": "queued"},
    ]
    final = complete(
        client,
        messages=[*messages, assistant, *outputs],
        tools=[LOOKUP, NOTIFY],
        response_format=fmt,
    )
    assert final.choices[0].finish_reason == "stop"
    triage = Triage.model_validate_json(final.choices[0].message.content)
    assert (triage.amount, triage.tags) == (99.5, ["vip"])  # the tool's output, newest facts win


@pytest.mark.parametrize(
    ("tool_choice", "parallel", "expected"),
    [
        ("none", True, []),
        ("auto", False, ["lookup_customer"]),
        ({"type": "function", "function": {"name": "notify"}}, True, ["notify"]),
        ("required", True, ["lookup_customer", "notify"]),
    ],
    ids=["none", "one-per-turn", "named", "required"],
)
def test_tool_choice_is_honoured(
    client: openai.OpenAI, tool_choice: Any, parallel: bool, expected: list[str]
) -> None:
    reply = complete(
        client,
        messages=[{"role": "user", "content": "C-1001"}],
        tools=[LOOKUP, NOTIFY],
        tool_choice=tool_choice,
        parallel_tool_calls=parallel,
    )
    names = [c.function.name for c in reply.choices[0].message.tool_calls or []]
    assert names == expected


def test_required_tool_choice_calls_a_tool_even_when_all_were_called(
    client: openai.OpenAI,
) -> None:
    call = {"id": "call_1", "type": "function", "function": {"name": "notify", "arguments": "{}"}}
    messages = [
        {"role": "user", "content": "C-1001"},
        {"role": "assistant", "tool_calls": [call]},
        {"role": "tool", "tool_call_id": "call_1", "content": "done"},
    ]
    auto = complete(client, messages=messages, tools=[NOTIFY])
    assert auto.choices[0].finish_reason == "stop" and "notify returned done" in (
        auto.choices[0].message.content
    )
    required = complete(client, messages=messages, tools=[NOTIFY], tool_choice="required")
    assert [c.function.name for c in required.choices[0].message.tool_calls] == ["notify"]


def test_max_tokens_cuts_the_answer_with_finish_reason_length(client: openai.OpenAI) -> None:
    whole = complete(client, messages=[{"role": "user", "content": "Who are you?"}])
    cut = complete(client, messages=[{"role": "user", "content": "Who are you?"}], max_tokens=5)
    assert cut.choices[0].finish_reason == "length"
    assert cut.choices[0].message.content == whole.choices[0].message.content[:20]
    assert cut.usage.completion_tokens == 5
    limited = complete(
        client, messages=[{"role": "user", "content": "Who are you?"}], max_completion_tokens=3
    )
    assert limited.choices[0].finish_reason == "length"
    stopped = complete(
        client, messages=[{"role": "user", "content": "Who are you?"}], stop=["stand-in"]
    )
    assert stopped.choices[0].message.content.endswith("rule-based ")


# --- streaming ----------------------------------------------------------------------------------


def test_chat_completions_stream_the_same_answer(client: openai.OpenAI) -> None:
    kwargs: dict[str, Any] = {
        "messages": [{"role": "user", "content": "C-1002 paid €85.00 at the pharmacy."}],
        "response_format": schema_format(ClaimData),
    }
    whole = complete(client, **kwargs)
    chunks = list(complete(client, stream=True, stream_options={"include_usage": True}, **kwargs))
    text = "".join(c.choices[0].delta.content or "" for c in chunks if c.choices)
    assert text == whole.choices[0].message.content
    assert len([c for c in chunks if c.choices and c.choices[0].delta.content]) > 1
    assert [c.choices[0].finish_reason for c in chunks if c.choices][-1] == "stop"
    assert chunks[-1].choices == [] and chunks[-1].usage.total_tokens == whole.usage.total_tokens


def test_chat_completions_stream_tool_calls(client: openai.OpenAI) -> None:
    kwargs: dict[str, Any] = {
        "messages": [{"role": "user", "content": "C-1001"}],
        "tools": [LOOKUP, NOTIFY],
    }
    whole = complete(client, **kwargs).choices[0].message.tool_calls
    calls: dict[int, dict[str, str]] = {}
    finish = None
    for chunk in complete(client, stream=True, **kwargs):
        for delta in chunk.choices[0].delta.tool_calls or []:
            entry = calls.setdefault(delta.index, {"id": "", "name": "", "arguments": ""})
            entry["id"] += delta.id or ""
            entry["name"] += (delta.function.name or "") if delta.function else ""
            entry["arguments"] += (delta.function.arguments or "") if delta.function else ""
        finish = chunk.choices[0].finish_reason or finish
    assert finish == "tool_calls"
    assert [(c["id"], c["name"], c["arguments"]) for c in calls.values()] == [
        (c.id, c.function.name, c.function.arguments) for c in whole
    ]


# --- the Responses API --------------------------------------------------------------------------


def test_responses_plain_text_with_instructions(client: openai.OpenAI) -> None:
    reply = client.responses.create(model="gpt-4.1", instructions="Be brief.", input="Who are you?")
    assert reply.status == "completed" and reply.object == "response"
    assert "rule-based stand-in" in reply.output_text
    assert reply.usage.input_tokens > 0 and reply.usage.output_tokens > 0
    assert reply.model == "gpt-4.1"


def test_responses_structured_output_for_a_claim(client: openai.OpenAI) -> None:
    reply = client.responses.parse(
        model="workbench-local",
        instructions=PARSER,
        input=[
            {
                "role": "user",
                "content": [
                    {
                        "type": "input_text",
                        "text": "C-1004 physio 2026-01-09 EUR 260 receipt attached",
                    }
                ],
            }
        ],
        text_format=ClaimData,
    )
    parsed = reply.output_parsed
    assert parsed is not None and (parsed.customer_id, parsed.amount) == ("C-1004", 260.0)


def test_responses_function_tools_and_their_outputs(client: openai.OpenAI) -> None:
    tools = [{"type": "function", **t["function"]} for t in (LOOKUP, NOTIFY)]
    text = {
        "format": {
            "type": "json_schema",
            "name": "triage",
            "schema": AgentOutputSchema(Triage).json_schema(),
            "strict": True,
        }
    }
    first = client.responses.create(
        model="m", input="Customer C-1001 needs a callback.", tools=tools, text=text
    )
    calls = [item for item in first.output if item.type == "function_call"]
    assert [c.name for c in calls] == ["lookup_customer", "notify"]
    for call, tool in zip(calls, tools, strict=True):
        jsonschema.validate(json.loads(call.arguments), tool["parameters"])
    follow_up = [
        {"role": "user", "content": "Customer C-1001 needs a callback."},
        *[c.model_dump(exclude_none=True) for c in calls],
        {
            "type": "function_call_output",
            "call_id": calls[0].call_id,
            "output": '{"currency": "CHF"}',
        },
        {"type": "function_call_output", "call_id": calls[1].call_id, "output": "ok"},
    ]
    final = client.responses.create(model="m", input=follow_up, tools=tools, text=text)
    assert [item.type for item in final.output] == ["message"]
    triage = Triage.model_validate_json(final.output_text)
    assert (triage.customer_id, triage.currency) == ("C-1001", "CHF")


def test_responses_max_output_tokens_makes_an_incomplete_response(client: openai.OpenAI) -> None:
    reply = client.responses.create(model="m", input="Who are you?", max_output_tokens=4)
    assert reply.status == "incomplete"
    assert reply.incomplete_details is not None
    assert reply.incomplete_details.reason == "max_output_tokens"
    assert len(reply.output_text) == 16


def test_responses_stream_events(client: openai.OpenAI) -> None:
    whole = client.responses.create(model="m", input="Who are you?")
    events = list(client.responses.create(model="m", input="Who are you?", stream=True))
    kinds = [e.type for e in events]
    assert kinds[:4] == [
        "response.created",
        "response.in_progress",
        "response.output_item.added",
        "response.content_part.added",
    ]
    assert kinds[-1] == "response.completed"
    assert [e.sequence_number for e in events] == list(range(len(events)))
    deltas = "".join(e.delta for e in events if e.type == "response.output_text.delta")
    assert deltas == whole.output_text == events[-1].response.output_text
    with client.responses.stream(model="m", input="Who are you?") as stream:
        assert stream.get_final_response().output_text == whole.output_text


def test_responses_refuse_what_a_stateless_server_cannot_do(client: openai.OpenAI) -> None:
    with pytest.raises(openai.BadRequestError, match="keeps no state"):
        client.responses.create(model="m", input="hi", previous_response_id="resp_1")
    with pytest.raises(openai.BadRequestError, match="function tools only"):
        client.responses.create(model="m", input="hi", tools=[{"type": "web_search"}])
    with pytest.raises(openai.BadRequestError, match="reads text only"):
        client.responses.create(
            model="m",
            input=[{"role": "user", "content": [{"type": "input_image", "image_url": "x"}]}],
        )


# --- an agent defined with the SDK's defaults (the Responses API) -------------------------------


@pytest.fixture
def sdk_defaults() -> Iterator[list[str]]:
    """The SDK's default client pointed at the embedded model in-process, with the SDK's default
    API (Responses); the paths requested are recorded. The previous defaults are restored."""
    from agents.models import _openai_shared

    paths: list[str] = []
    app = create_app()

    async def recording(scope: Any, receive: Any, send: Any) -> None:
        if scope["type"] == "http":
            paths.append(scope["path"])
        await app(scope, receive, send)

    saved = (
        _openai_shared.get_default_openai_client(),
        _openai_shared.get_use_responses_by_default(),
    )
    http = httpx.AsyncClient(transport=httpx.ASGITransport(app=recording), base_url="http://t")
    agents.set_default_openai_client(
        openai.AsyncOpenAI(base_url="http://t/v1", api_key="x", http_client=http),
        use_for_tracing=False,
    )
    agents.set_default_openai_api("responses")  # what a fresh process has
    agents.set_tracing_disabled(True)
    try:
        yield paths
    finally:
        if saved[0] is not None:
            agents.set_default_openai_client(saved[0], use_for_tracing=False)
        agents.set_default_openai_api("responses" if saved[1] else "chat_completions")


async def test_an_agent_with_the_sdk_defaults_runs_its_tool_and_answers(
    sdk_defaults: list[str],
) -> None:
    seen: list[tuple[str, int]] = []

    @agents.function_tool
    def lookup_customer(customer_id: str, limit: int) -> str:
        """The customer's record."""
        seen.append((customer_id, limit))
        return json.dumps({"priority": "medium", "tags": ["returning"]})

    agent = agents.Agent(
        name="triage",
        instructions="Triage the customer's message.",
        tools=[lookup_customer],
        output_type=Triage,
    )
    result = await agents.Runner.run(agent, "Customer C-1007 paid GBP 80 and wants it back.")
    triage = result.final_output
    assert isinstance(triage, Triage)
    assert seen == [("C-1007", 0)]
    assert (triage.customer_id, triage.amount, triage.currency) == ("C-1007", 80.0, "GBP")
    assert (triage.priority, triage.tags) == ("medium", ["returning"])
    assert set(sdk_defaults) == {"/v1/responses"}

    streamed = agents.Runner.run_streamed(agent, "Customer C-1007 paid GBP 80 and wants it back.")
    kinds = [event.type async for event in streamed.stream_events()]
    assert "raw_response_event" in kinds and "run_item_stream_event" in kinds
    assert streamed.final_output == triage


def test_a_users_schema_that_looks_like_a_claim_task_is_answered_not_refused(
    client: openai.OpenAI,
) -> None:
    class Rating(BaseModel):  # a judge-like shape, but the user's own agent
        score: float
        reason: str

    reply = complete(
        client,
        messages=[{"role": "user", "content": "Rate this answer.\nScore: 0.8"}],
        response_format={
            "type": "json_schema",
            "json_schema": {
                "name": "rating",
                "schema": Rating.model_json_schema() | {"title": "X"},
            },
        },
    )
    rating = Rating.model_validate_json(reply.choices[0].message.content)
    assert rating.score == 0.8
