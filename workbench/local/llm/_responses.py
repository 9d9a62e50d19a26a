"""The OpenAI Responses API wire format (`POST /v1/responses`): request validation into a
`Conversation`, `response` objects and the SSE events of a streamed response.

Input items understood: messages (`{"role", "content"}` with a string or `input_text` /
`output_text` parts, with or without `"type": "message"`), `function_call` and
`function_call_output` items; `reasoning` items are accepted and carry nothing this model reads.
This server keeps no state, so `previous_response_id`, `conversation`, `prompt` and
`background` are refused: send the whole conversation in `input`."""

from __future__ import annotations

import hashlib
import json
import time
from collections.abc import Iterator
from typing import Any

from ._protocol import (
    Answer,
    Conversation,
    RequestError,
    check_range,
    check_types,
    choice_of,
    output_chars,
    pieces,
    schema_of,
    text_of,
    tokens,
    tool_of,
)

RESPONSES_PARAMS: dict[str, str | tuple[str, ...]] = {
    "model": "string", "input": ("string", "array"), "instructions": "string", "tools": "array",
    "tool_choice": ("string", "object"), "parallel_tool_calls": "boolean", "text": "object",
    "max_output_tokens": "integer", "temperature": "number", "top_p": "number",
    "stream": "boolean", "stream_options": "object", "store": "boolean", "metadata": "object",
    "include": "array", "previous_response_id": "string", "truncation": "string",
    "user": "string", "reasoning": "object", "prompt_cache_key": "string",
    "prompt_cache_retention": "string", "prompt_cache_options": "object",
    "safety_identifier": "string", "service_tier": "string", "background": "boolean",
    "conversation": ("string", "object"), "prompt": "object", "top_logprobs": "integer",
    "max_tool_calls": "integer", "context_management": ("array", "object"),
}  # fmt: skip
"""The Responses parameters and their JSON types (sampling settings have no effect)."""
_PARTS = ("input_text", "output_text", "text")
_MESSAGE_ROLES = ("user", "system", "developer", "assistant")


def _tools(value: list[Any] | None) -> list:
    tools = []
    for i, tool in enumerate(value or []):
        if not isinstance(tool, dict) or tool.get("type") != "function":
            kind = tool.get("type") if isinstance(tool, dict) else type(tool).__name__
            raise RequestError(
                f"tools[{i}] is a {kind!r} tool; workbench-local serves function tools only, "
                '{"type": "function", "name": "...", "parameters": {...}}.',
                param=f"tools[{i}]",
            )
        tools.append(
            tool_of(
                tool.get("name"), tool.get("description"), tool.get("parameters"), f"tools[{i}]"
            )
        )
    return tools


def _messages(body: dict[str, Any]) -> list[dict[str, Any]]:
    messages: list[dict[str, Any]] = []
    if body.get("instructions"):
        messages.append({"role": "system", "content": body["instructions"]})
    items = body.get("input")
    if isinstance(items, str):
        return [*messages, {"role": "user", "content": items}]
    if not items:
        raise RequestError(
            'input is required: a string or a list of input items such as {"role": "user", '
            '"content": "..."}.',
            param="input",
        )
    for i, item in enumerate(items):
        where = f"input[{i}]"
        if not isinstance(item, dict):
            raise RequestError(f"{where} must be an object (an input item).", param=where)
        kind = item.get("type", "message")
        if kind == "message":
            if item.get("role") not in _MESSAGE_ROLES:
                raise RequestError(
                    f"{where} must have a role among {', '.join(_MESSAGE_ROLES)}.",
                    param=f"{where}.role",
                )
            text = text_of(item.get("content"), where, _PARTS)
            messages.append({"role": item["role"], "content": text})
        elif kind == "function_call":
            for key in ("call_id", "name", "arguments"):
                if not isinstance(item.get(key), str):
                    raise RequestError(f"{where}.{key} must be a string.", param=f"{where}.{key}")
            call = {
                "id": item["call_id"],
                "type": "function",
                "function": {"name": item["name"], "arguments": item["arguments"]},
            }
            last = messages[-1] if messages else None
            if (
                last
                and last["role"] == "assistant"
                and last.get("tool_calls")
                and not last["content"]
            ):
                last["tool_calls"].append(call)
            else:
                messages.append({"role": "assistant", "content": "", "tool_calls": [call]})
        elif kind == "function_call_output":
            if not isinstance(item.get("call_id"), str):
                raise RequestError(f"{where}.call_id must be a string.", param=f"{where}.call_id")
            output = item.get("output")
            text = output if isinstance(output, str) else text_of(output, where, _PARTS)
            messages.append({"role": "tool", "content": text, "tool_call_id": item["call_id"]})
        elif kind == "reasoning":
            continue  # this model produces no reasoning and reads none
        else:
            raise RequestError(
                f"{where} is a {kind!r} item; workbench-local reads messages, function_call and "
                "function_call_output items.",
                param=f"{where}.type",
            )
    return messages


def parse_responses(body: Any) -> tuple[Conversation, dict[str, Any]]:
    """(the conversation, the request settings echoed in the response object)."""
    if not isinstance(body, dict):
        raise RequestError(
            "The request body must be a JSON object. Send "
            '{"model": "workbench-local", "input": "..."}.'
        )
    check_types(body, RESPONSES_PARAMS)
    model = body.get("model")
    if not isinstance(model, str) or not model:
        raise RequestError(
            "model is required and must be a string (any name works, e.g. 'workbench-local').",
            param="model",
        )
    check_range(body, "temperature", 0, 2)
    check_range(body, "top_p", 0, 1)
    check_range(body, "max_output_tokens", 1)
    for name in ("previous_response_id", "conversation", "prompt", "background"):
        if body.get(name):
            raise RequestError(
                f"workbench-local keeps no state and does not support '{name}'; send the whole "
                "conversation in input instead.",
                param=name,
                code="unsupported_value",
            )
    tools = _tools(body.get("tools"))
    choice = body.get("tool_choice")
    if isinstance(choice, dict) and choice.get("type") == "allowed_tools":
        allowed = {t.get("name") for t in choice.get("tools") or [] if isinstance(t, dict)}
        tools = [t for t in tools if t.name in allowed]
        choice = choice.get("mode", "auto")
    schema, schema_name, json_object = None, None, False
    text = body.get("text") or {}
    check_types(text, {"format": "object", "verbosity": "string"}, "text.")
    fmt = text.get("format")
    if fmt is not None:
        kinds = ("text", "json_object", "json_schema")
        if fmt.get("type") not in kinds:
            raise RequestError(
                f"text.format.type must be one of {', '.join(kinds)}.", param="text.format"
            )
        if fmt["type"] == "json_schema":
            schema, schema_name = schema_of(fmt, "text.format")
        json_object = fmt["type"] == "json_object"
    conversation = Conversation(
        model=model,
        messages=_messages(body),
        tools=tools,
        tool_choice=choice_of(choice, tools, "tool_choice"),
        parallel_tool_calls=body.get("parallel_tool_calls") is not False,
        schema=schema,
        schema_name=schema_name,
        json_object=json_object,
        max_tokens=body.get("max_output_tokens"),
        stream=bool(body.get("stream")),
        extra_chars=len(json.dumps(body.get("tools"))) if body.get("tools") else 0,
    )
    echo = {
        "instructions": body.get("instructions"),
        "metadata": body.get("metadata") or {},
        "temperature": body.get("temperature", 1.0),
        "top_p": body.get("top_p", 1.0),
        "tool_choice": body.get("tool_choice") or "auto",
        "tools": body.get("tools") or [],
        "text": {"format": fmt or {"type": "text"}},
        "max_output_tokens": body.get("max_output_tokens"),
        "parallel_tool_calls": conversation.parallel_tool_calls,
        "store": body.get("store", True),
        "truncation": body.get("truncation") or "disabled",
        "user": body.get("user"),
    }
    return conversation, echo


def _digest(*parts: Any) -> str:
    return hashlib.sha256(json.dumps(parts, sort_keys=True).encode()).hexdigest()


def output_items(conversation: Conversation, answer: Answer) -> list[dict[str, Any]]:
    seed = _digest(conversation.seed(), answer.content, answer.tool_calls)
    done = "incomplete" if answer.finish_reason == "length" else "completed"
    if answer.tool_calls:
        return [
            {
                "id": f"fc_{_digest(seed, i)[:40]}",
                "type": "function_call",
                "status": done,
                "call_id": call["id"],
                "name": call["function"]["name"],
                "arguments": call["function"]["arguments"],
            }
            for i, call in enumerate(answer.tool_calls)
        ]
    part = {"type": "output_text", "text": answer.content or "", "annotations": [], "logprobs": []}
    return [
        {
            "id": f"msg_{seed[:40]}",
            "type": "message",
            "status": done,
            "role": "assistant",
            "content": [part],
        }
    ]


def response_object(
    conversation: Conversation,
    answer: Answer | None,
    echo: dict[str, Any],
    created_at: float,
) -> dict[str, Any]:
    """A `response` object; `answer` None is the in-progress response of a stream's start."""
    status, incomplete, output, usage = "in_progress", None, [], None
    if answer is not None:
        output = output_items(conversation, answer)
        status = "incomplete" if answer.finish_reason == "length" else "completed"
        if answer.finish_reason == "length":
            incomplete = {"reason": "max_output_tokens"}
        prompt, completion = tokens(conversation.prompt_chars()), tokens(output_chars(answer))
        usage = {
            "input_tokens": prompt,
            "input_tokens_details": {"cached_tokens": 0},
            "output_tokens": completion,
            "output_tokens_details": {"reasoning_tokens": 0},
            "total_tokens": prompt + completion,
        }
    return {
        "id": f"resp_{_digest(conversation.seed())[:40]}",
        "object": "response",
        "created_at": created_at,
        "status": status,
        "error": None,
        "incomplete_details": incomplete,
        "model": conversation.model,
        "output": output,
        "usage": usage,
        "reasoning": {"effort": None, "summary": None},
        "background": False,
        "previous_response_id": None,
        "service_tier": "default",
        **echo,
    }


def response(conversation: Conversation, answer: Answer, echo: dict[str, Any]) -> dict[str, Any]:
    return response_object(conversation, answer, echo, time.time())


def response_events(
    conversation: Conversation, answer: Answer, echo: dict[str, Any]
) -> Iterator[dict[str, Any]]:
    """The SSE events of a streamed response, in order, with their sequence numbers."""
    created = time.time()
    start = response_object(conversation, None, echo, created)
    final = response_object(conversation, answer, echo, created)
    events: list[dict[str, Any]] = []

    def add(kind: str, **fields: Any) -> None:
        events.append({"type": kind, **fields, "sequence_number": len(events)})

    add("response.created", response=start)
    add("response.in_progress", response=start)
    for index, item in enumerate(final["output"]):
        if item["type"] == "function_call":
            add("response.output_item.added", output_index=index,
                item={**item, "status": "in_progress", "arguments": ""})  # fmt: skip
            ids = {"item_id": item["id"], "output_index": index}
            for piece in pieces(item["arguments"]):
                add("response.function_call_arguments.delta", **ids, delta=piece)
            add("response.function_call_arguments.done", **ids, name=item["name"],
                arguments=item["arguments"])  # fmt: skip
        else:
            part = item["content"][0]
            ids = {"item_id": item["id"], "output_index": index, "content_index": 0}
            add("response.output_item.added", output_index=index,
                item={**item, "status": "in_progress", "content": []})  # fmt: skip
            add("response.content_part.added", **ids, part={**part, "text": ""})
            for piece in pieces(part["text"]):
                add("response.output_text.delta", **ids, delta=piece, logprobs=[])
            add("response.output_text.done", **ids, text=part["text"], logprobs=[])
            add("response.content_part.done", **ids, part=part)
        add("response.output_item.done", output_index=index, item=item)
    ending = "incomplete" if final["status"] == "incomplete" else "completed"
    add(f"response.{ending}", response=final)
    return iter(events)
