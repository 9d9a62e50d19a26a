"""Which task a request asks for, and its answer: routed by the response schema's title."""

from __future__ import annotations

import json
from typing import Any

from . import analyst, judge, parser
from ._protocol import MODEL_ID, ChatRequest, RequestError

TASKS = ("ClaimData", "ClaimAssessment", "JudgeVerdict")
_SIGNATURES = {  # when a schema has no title: a property that only that task's schema has
    "has_receipt": "ClaimData",
    "decision": "ClaimAssessment",
    "score": "JudgeVerdict",
}
ABOUT = (
    f"I am {MODEL_ID}, a deterministic rule-based stand-in for a language model (not a language "
    "model). I answer three structured tasks, chosen by the title of response_format's JSON "
    "schema: ClaimData (parse a claim document), ClaimAssessment (decide a claim under the policy "
    "clauses of the system prompt, calling check_fraud and lookup_policy first) and JudgeVerdict "
    "(score a decision against the rubric of the system prompt). Point OPENAI_BASE_URL at a real "
    "model for anything else."
)


def task_of(response_format: dict[str, Any] | None) -> str | None:
    """The task name, or None for a plain chat request."""
    if not response_format or response_format.get("type") != "json_schema":
        return None
    spec = response_format["json_schema"]
    schema = spec["schema"]
    for name in (schema.get("title"), spec.get("name")):
        if name in TASKS:
            return str(name)
    for prop, name in _SIGNATURES.items():
        if prop in (schema.get("properties") or {}):
            return name
    raise RequestError(
        f"workbench-local answers only the schemas {', '.join(TASKS)}; got a schema titled "
        f"{schema.get('title')!r}. Use one of those output types, or point OPENAI_BASE_URL at a "
        "real model.",
        param="response_format.json_schema.schema.title",
        code="unsupported_schema",
    )


def answer(request: ChatRequest) -> tuple[str | None, list[dict[str, Any]] | None]:
    """(content, tool_calls) answering the request."""
    task = task_of(request.response_format)
    try:
        if task == "ClaimData":
            return json.dumps(parser.parse_claim(request.last_user_text())), None
        if task == "ClaimAssessment":
            claim, amount_eur = analyst.read_input(request.last_user_text())
            fraud, policy, called = analyst.tool_results(request.messages)
            calls = analyst.tool_calls(claim, request.tools, called)
            if calls:
                return None, calls if request.parallel_tool_calls else calls[:1]
            clauses = analyst.parse_clauses(request.system_prompt())
            result = analyst.assess(claim, amount_eur, fraud, policy, clauses)
            return json.dumps(result), None
        if task == "JudgeVerdict":
            evidence = judge.read_input(request.last_user_text())
            return json.dumps(judge.judge(evidence, request.system_prompt())), None
    except analyst.TaskError as exc:
        raise RequestError(str(exc), param="messages", code="invalid_task_input") from exc
    if request.response_format and request.response_format.get("type") == "json_object":
        return json.dumps({"message": ABOUT}), None
    return ABOUT, None
