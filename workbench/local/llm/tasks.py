"""What a request asks for, and the answer, whichever endpoint it came through.

The claim workflow's three agents are recognised by the title of the JSON schema of their
structured output (the OpenAI Agents SDK sends the output type's class name), by the schema's
name, or by a property only that schema has: `ClaimData` (parser), `ClaimAssessment` (analyst),
`JudgeVerdict` (judge). Any other request is a user's agent: its function tools are called once
each, with schema-valid arguments filled from the conversation, before it answers (as far as
`tool_choice` allows: "none" calls nothing, a named tool is always called, "required" always calls
one, one call per turn with `parallel_tool_calls: false`); then a JSON schema is answered with a
deterministic valid instance (`_schema.py`), JSON mode with a JSON object, and plain text with a
short note on what the tools returned."""

from __future__ import annotations

import hashlib
import json
from typing import Any

from . import analyst, judge, parser
from ._protocol import MODEL_ID, Answer, Conversation, RequestError, limit
from ._schema import facts_of, instance

TASKS = ("ClaimData", "ClaimAssessment", "JudgeVerdict")
_SIGNATURES = {  # when a schema has no title: the properties that task's schema has
    "ClaimData": {"customer_id", "claim_date", "amount", "currency", "category", "has_receipt"},
    "ClaimAssessment": {"decision", "reason", "clauses"},
    "JudgeVerdict": {"score", "reason"},
}
ABOUT = (
    f"I am {MODEL_ID}, a deterministic rule-based stand-in for a language model (not a language "
    "model). I read claims (ClaimData), decide them under the policy clauses of the system prompt "
    "(ClaimAssessment), judge decisions against a rubric (JudgeVerdict), and for any other agent "
    "I call each offered function tool once, then answer its JSON schema with values taken from "
    "the conversation. Point OPENAI_BASE_URL at a real model for anything else."
)


def task_of(conversation: Conversation) -> tuple[str | None, bool]:
    """(the claim task the request asks for or None, whether its schema names it). A schema
    without the task's title that merely has the task's properties is a guess: when its input is
    not the task's, the request is answered as any other agent's, not refused."""
    schema = conversation.schema
    if schema is None:
        return None, False
    for name in (schema.get("title"), conversation.schema_name):
        if name in TASKS:
            return str(name), True
    properties = set(schema.get("properties") or {})
    for name, signature in _SIGNATURES.items():
        if signature <= properties:
            return name, False
    return None, False


def _call_id(conversation: Conversation, name: str, arguments: str) -> str:
    earlier = sum(len(m.get("tool_calls") or []) for m in conversation.messages)
    raw = f"{conversation.seed()}:{earlier}:{name}:{arguments}"
    return "call_" + hashlib.sha256(raw.encode()).hexdigest()[:24]


def _call(conversation: Conversation, name: str, arguments: dict[str, Any]) -> dict[str, Any]:
    args = json.dumps(arguments, sort_keys=True)
    return {
        "id": _call_id(conversation, name, args),
        "type": "function",
        "function": {"name": name, "arguments": args},
    }


def _called(conversation: Conversation) -> set[str]:
    return {
        str(call["function"]["name"])
        for message in conversation.messages
        for call in message.get("tool_calls") or []
    }


def _to_call(conversation: Conversation, candidates: list[str]) -> list[str]:
    """The tools to call now under `tool_choice`, in the order offered."""
    choice = conversation.tool_choice
    if choice == "none" or not conversation.tools:
        return []
    if choice not in ("auto", "required"):
        return [choice]
    called = _called(conversation)
    pending = [name for name in candidates if name not in called]
    if not pending and choice == "required":
        pending = candidates[:1] or conversation.tool_names[:1]
    return pending if conversation.parallel_tool_calls else pending[:1]


def _summary(conversation: Conversation) -> str:
    try:
        text = " ".join(conversation.last_user_text().split())
    except RequestError:
        text = ""
    return f"Based on the conversation: {text[:160]}" if text else "No details were given."


def _tool_outputs(conversation: Conversation) -> list[tuple[str, str]]:
    names = {
        call["id"]: call["function"]["name"]
        for message in conversation.messages
        for call in message.get("tool_calls") or []
    }
    return [
        (names.get(m.get("tool_call_id") or "", "a tool"), m.get("content") or "")
        for m in conversation.messages
        if m["role"] == "tool"
    ]


def _generic(conversation: Conversation) -> Answer:
    claim_fields: dict[str, Any] = {}
    wants_claim_facts = conversation.schema is not None or conversation.tools
    if wants_claim_facts:
        try:
            claim_fields = parser.parse_claim(conversation.last_user_text())
        except RequestError:
            claim_fields = {}
    facts = facts_of(conversation, claim_fields)
    summary = _summary(conversation)
    by_name = {tool.name: tool for tool in conversation.tools}
    names = _to_call(conversation, conversation.tool_names)
    if names:
        calls = [
            _call(conversation, name, instance(by_name[name].parameters, facts, summary=summary))
            for name in names
        ]
        return Answer(None, calls, "tool_calls")
    if conversation.schema is not None:
        return Answer(json.dumps(instance(conversation.schema, facts, summary=summary)))
    outputs = _tool_outputs(conversation)
    if conversation.json_object:
        return Answer(json.dumps({"message": ABOUT, "tool_outputs": dict(outputs)}))
    if outputs:
        said = "; ".join(f"{name} returned {output[:200]}" for name, output in outputs)
        return Answer(f"{said}. ({MODEL_ID}, a rule-based stand-in, summarises tool results.)")
    return Answer(ABOUT)


def _claim_task(task: str, conversation: Conversation) -> Answer:
    if task == "ClaimData":
        return Answer(json.dumps(parser.parse_claim(conversation.last_user_text())))
    if task == "ClaimAssessment":
        claim, amount_eur, submitted_on = analyst.read_input(conversation.last_user_text())
        fraud, policy, _ = analyst.tool_results(conversation.messages)
        offered = [name for name in analyst.TOOLS if name in conversation.tool_names]
        names = _to_call(conversation, offered) if claim.get("customer_id") else []
        if names:
            calls = [_call(conversation, n, analyst.tool_arguments(n, claim)) for n in names]
            return Answer(None, calls, "tool_calls")
        clauses = analyst.parse_clauses(conversation.system_prompt())
        result = analyst.assess(claim, amount_eur, fraud, policy, clauses, submitted_on)
        return Answer(json.dumps(result))
    evidence = judge.read_input(conversation.last_user_text())
    return Answer(json.dumps(judge.judge(evidence, conversation.system_prompt())))


def answer(conversation: Conversation) -> Answer:
    """The answer to a request, within its stop sequences and token budget."""
    task, named = task_of(conversation)
    try:
        result = _claim_task(task, conversation) if task else _generic(conversation)
    except analyst.TaskError as exc:
        if named:
            raise RequestError(str(exc), param="messages", code="invalid_task_input") from exc
        result = _generic(conversation)
    return limit(result, conversation)
