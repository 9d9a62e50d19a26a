"""The request every endpoint is reduced to (`Conversation`), the answer (`Answer`), and the
OpenAI Chat Completions wire format: request validation, `chat.completion` objects and SSE
`chat.completion.chunk` streams. The Responses API is in `_responses.py`."""

from __future__ import annotations

import hashlib
import json
import math
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import Any

ROLES = ("system", "developer", "user", "assistant", "tool", "function")
MODEL_ID = "workbench-local"
FINGERPRINT = "workbench-local-rules-2"


class RequestError(ValueError):
    """A malformed request: answered with HTTP 400 and an OpenAI-style error body."""

    def __init__(self, message: str, param: str | None = None, code: str | None = None) -> None:
        super().__init__(message)
        self.message, self.param, self.code = message, param, code


def error_body(message: str, param: str | None = None, code: str | None = None,
               kind: str = "invalid_request_error") -> dict[str, Any]:  # fmt: skip
    return {"error": {"message": message, "type": kind, "param": param, "code": code}}


# --- the normalised request and answer ------------------------------------------------------------


@dataclass(frozen=True)
class Tool:
    name: str
    description: str
    parameters: dict[str, Any]


@dataclass
class Conversation:
    """One request to the model, whichever endpoint it came through. `messages` are in the chat
    shape (`role`, text `content`, assistant `tool_calls` as `{"id", "type", "function":
    {"name", "arguments"}}`, tool `tool_call_id`)."""

    model: str
    messages: list[dict[str, Any]]
    tools: list[Tool] = field(default_factory=list)
    tool_choice: str = "auto"  # auto, none, required, or the name of the one tool to call
    parallel_tool_calls: bool = True
    schema: dict[str, Any] | None = None  # the JSON schema the answer must satisfy
    schema_name: str | None = None
    json_object: bool = False  # any JSON object will do
    max_tokens: int | None = None
    stop: list[str] = field(default_factory=list)
    stream: bool = False
    include_usage: bool = False
    extra_chars: int = 0  # tool definitions and schema, counted as prompt tokens

    @property
    def texts(self) -> list[str]:
        return [m.get("content") or "" for m in self.messages]

    @property
    def tool_names(self) -> list[str]:
        return [t.name for t in self.tools]

    def system_prompt(self) -> str:
        return "\n\n".join(
            m["content"] or "" for m in self.messages if m["role"] in ("system", "developer")
        )

    def last_user_text(self) -> str:
        for message in reversed(self.messages):
            if message["role"] == "user":
                return message.get("content") or ""
        raise RequestError(
            "The conversation has no user message; add one, e.g. "
            '{"role": "user", "content": "<the claim document>"}.',
            param="messages",
        )

    def prompt_chars(self) -> int:
        calls = sum(len(json.dumps(m["tool_calls"])) for m in self.messages if m.get("tool_calls"))
        return sum(len(t) for t in self.texts) + calls + self.extra_chars

    def seed(self) -> str:
        """A digest of the request, for deterministic ids."""
        raw = json.dumps([self.model, self.messages, self.tool_names, self.schema], sort_keys=True)
        return hashlib.sha256(raw.encode()).hexdigest()


@dataclass
class Answer:
    content: str | None
    tool_calls: list[dict[str, Any]] = field(default_factory=list)
    finish_reason: str = "stop"  # stop, tool_calls, length


def tokens(chars: int) -> int:
    """Approximate token count: one token per four characters."""
    return max(1, math.ceil(chars / 4))


def output_chars(answer: Answer) -> int:
    if answer.tool_calls:
        return sum(
            len(c["function"]["arguments"]) + len(c["function"]["name"]) for c in answer.tool_calls
        )
    return len(answer.content or "")


def limit(answer: Answer, conversation: Conversation) -> Answer:
    """Apply the stop sequences and the output token budget (`finish_reason: "length"`)."""
    if answer.content is not None and conversation.stop:
        cuts = [answer.content.find(s) for s in conversation.stop if s and s in answer.content]
        if cuts:
            answer = Answer(answer.content[: min(cuts)], answer.tool_calls, answer.finish_reason)
    budget = conversation.max_tokens
    if budget is None or tokens(output_chars(answer)) <= budget:
        return answer
    chars = budget * 4
    if answer.tool_calls:  # the arguments are cut where the budget ends, as a real model's are
        calls, left = [], chars
        for call in answer.tool_calls:
            arguments = call["function"]["arguments"][: max(0, left)]
            left -= len(arguments)
            calls.append({**call, "function": {**call["function"], "arguments": arguments}})
            if left <= 0:
                break
        return Answer(None, calls, "length")
    return Answer((answer.content or "")[:chars], [], "length")


# --- type checks ----------------------------------------------------------------------------------

_PY_TYPES: dict[str, type | tuple[type, ...]] = {
    "string": str,
    "integer": int,
    "number": (int, float),
    "boolean": bool,
    "object": dict,
    "array": list,
}
_ARTICLE = {"integer": "an", "object": "an", "array": "an"}


def _type_name(value: Any) -> str:
    if value is None:
        return "null"
    return {bool: "a boolean", int: "an integer", float: "a number", str: "a string",
            list: "an array", dict: "an object"}.get(type(value), type(value).__name__)  # fmt: skip


def check_types(
    body: dict[str, Any], spec: dict[str, str | tuple[str, ...]], where: str = ""
) -> None:
    """Every known parameter has its type (null is allowed); unknown parameters are refused."""
    for name, value in body.items():
        if name not in spec:
            raise RequestError(
                f"Unrecognized request argument supplied: {where}{name}. Remove it; "
                "workbench-local accepts the OpenAI parameters listed in "
                "workbench/local/llm/README.md.",
                param=f"{where}{name}",
                code="unknown_parameter",
            )
        if value is None:
            continue
        kinds = spec[name] if isinstance(spec[name], tuple) else (spec[name],)
        ok = any(
            isinstance(value, _PY_TYPES[k])
            and not (k in ("integer", "number") and isinstance(value, bool))  # fmt: skip
            for k in kinds
        )
        if not ok:
            expected = " or ".join(f"{_ARTICLE.get(k, 'a')} {k}" for k in kinds)
            raise RequestError(
                f"Invalid type for '{where}{name}': expected {expected}, but got "
                f"{_type_name(value)} instead.",
                param=f"{where}{name}",
                code="invalid_type",
            )


def check_range(body: dict[str, Any], name: str, low: float, high: float | None = None) -> None:
    value = body.get(name)
    if value is None:
        return
    if value < low or (high is not None and value > high):
        bound = f"between {low:g} and {high:g}" if high is not None else f"at least {low:g}"
        raise RequestError(
            f"Invalid value for '{name}': {value!r}; it must be {bound}.",
            param=name,
            code="invalid_value",
        )


def text_of(content: Any, where: str, kinds: tuple[str, ...] = ("text",)) -> str:
    """The text of a message content: a string, null, or a list of text parts."""
    if content is None or isinstance(content, str):
        return content or ""
    if isinstance(content, list):
        texts = []
        for i, part in enumerate(content):
            ok = isinstance(part, dict) and isinstance(part.get("text"), str)
            if not ok or part.get("type", kinds[0]) not in kinds:
                raise RequestError(
                    f"{where}.content[{i}] must be a text part like "
                    f'{{"type": "{kinds[0]}", "text": "..."}}; this model reads text only.',
                    param=f"{where}.content",
                )
            texts.append(part["text"])
        return "\n".join(texts)
    raise RequestError(
        f"{where}.content must be a string or a list of text parts, got {_type_name(content)}.",
        param=f"{where}.content",
    )


def tool_of(name: Any, description: Any, parameters: Any, where: str) -> Tool:
    if not isinstance(name, str) or not name:
        raise RequestError(f"{where} needs a function name (a non-empty string).", param=where)
    if parameters is not None and not isinstance(parameters, dict):
        raise RequestError(
            f"{where} parameters must be a JSON schema object, got {_type_name(parameters)}.",
            param=f"{where}.parameters",
        )
    return Tool(name, description if isinstance(description, str) else "", parameters or {})


def choice_of(value: Any, tools: list[Tool], where: str) -> str:
    """tool_choice as "auto", "none", "required" or the name of the one tool to call."""
    if value is None:
        return "auto"
    if isinstance(value, str) and value in ("auto", "none", "required"):
        name = value
    elif isinstance(value, dict) and value.get("type") == "function":
        function = value.get("function") if "function" in value else value
        name = function.get("name") if isinstance(function, dict) else None
        if not isinstance(name, str) or name not in [t.name for t in tools]:
            raise RequestError(
                f"{where} names the tool {name!r}, which is not among the tools offered "
                f"({', '.join(t.name for t in tools) or 'none'}).",
                param=where,
            )
    else:
        raise RequestError(
            f'{where} must be "auto", "none", "required" or a function tool choice.', param=where
        )
    if name == "required" and not tools:
        raise RequestError(f'{where} is "required" but no tools are offered.', param=where)
    return name


def schema_of(spec: Any, where: str) -> tuple[dict[str, Any], str | None]:
    if not isinstance(spec, dict) or not isinstance(spec.get("schema"), dict):
        raise RequestError(
            f"{where} must be an object with a 'schema' object, e.g. "
            '{"name": "final_output", "strict": true, "schema": {"type": "object", ...}}.',
            param=where,
        )
    name = spec.get("name")
    return spec["schema"], name if isinstance(name, str) else None


# --- chat completions -----------------------------------------------------------------------------

CHAT_PARAMS: dict[str, str | tuple[str, ...]] = {
    "model": "string", "messages": "array", "temperature": "number", "top_p": "number",
    "n": "integer", "stream": "boolean", "stream_options": "object", "stop": ("string", "array"),
    "max_tokens": "integer", "max_completion_tokens": "integer", "presence_penalty": "number",
    "frequency_penalty": "number", "logit_bias": "object", "logprobs": "boolean",
    "top_logprobs": "integer", "user": "string", "seed": "integer", "tools": "array",
    "tool_choice": ("string", "object"), "parallel_tool_calls": "boolean",
    "response_format": "object", "metadata": "object", "store": "boolean",
    "service_tier": "string", "modalities": "array", "prediction": "object", "audio": "object",
    "reasoning_effort": "string", "web_search_options": "object", "prompt_cache_key": "string",
    "prompt_cache_retention": "string", "safety_identifier": "string", "verbosity": "string",
    "functions": "array", "function_call": ("string", "object"),
}  # fmt: skip
"""The Chat Completions parameters and their JSON types. Sampling settings (temperature, top_p,
seed, penalties) are accepted and have no effect: the answers are deterministic."""


def _chat_tools(value: list[Any] | None) -> list[Tool]:
    tools = []
    for i, tool in enumerate(value or []):
        function = tool.get("function") if isinstance(tool, dict) else None
        if (
            not isinstance(tool, dict)
            or tool.get("type", "function") != "function"
            or not isinstance(function, dict)
        ):
            raise RequestError(
                f"tools[{i}] must look like "
                '{"type": "function", "function": {"name": "...", "parameters": {...}}}; '
                "workbench-local serves function tools only.",
                param=f"tools[{i}]",
            )
        tools.append(
            tool_of(
                function.get("name"),
                function.get("description"),
                function.get("parameters"),
                f"tools[{i}]",
            )  # fmt: skip
        )
    return tools


def _chat_messages(messages: Any) -> list[dict[str, Any]]:
    if not isinstance(messages, list) or not messages:
        raise RequestError(
            "messages is required and must be a non-empty list of "
            '{"role": ..., "content": ...} objects.',
            param="messages",
        )
    out = []
    for i, message in enumerate(messages):
        if not isinstance(message, dict) or message.get("role") not in ROLES:
            raise RequestError(
                f"messages[{i}] must be an object with a role among {', '.join(ROLES)}.",
                param=f"messages[{i}].role",
            )
        text = text_of(message.get("content"), f"messages[{i}]")
        calls = message.get("tool_calls")
        if calls is not None:
            if not isinstance(calls, list) or not all(
                isinstance(c, dict) and isinstance(c.get("function"), dict)
                and isinstance(c["function"].get("name"), str)
                for c in calls
            ):  # fmt: skip
                raise RequestError(
                    f"messages[{i}].tool_calls must be a list of "
                    '{"id": "call_...", "type": "function", "function": {"name": ..., '
                    '"arguments": "{...}"}} objects.',
                    param=f"messages[{i}].tool_calls",
                )
            calls = [
                {
                    "id": str(c.get("id") or ""),
                    "type": "function",
                    "function": {
                        "name": c["function"]["name"],
                        "arguments": str(c["function"].get("arguments") or ""),
                    },
                }
                for c in calls
            ]
        normalised: dict[str, Any] = {"role": message["role"], "content": text}
        if calls:
            normalised["tool_calls"] = calls
        if message.get("tool_call_id") is not None:
            normalised["tool_call_id"] = str(message["tool_call_id"])
        out.append(normalised)
    return out


def parse_chat(body: Any) -> Conversation:
    """Validate a decoded chat completions body; raise RequestError saying what to fix."""
    if not isinstance(body, dict):
        raise RequestError(
            f"The request body must be a JSON object, got {_type_name(body)}. "
            'Send {"model": "workbench-local", "messages": [...]}.'
        )
    check_types(body, CHAT_PARAMS)
    model = body.get("model")
    if not isinstance(model, str) or not model:
        raise RequestError(
            "model is required and must be a string (any name works, e.g. 'workbench-local').",
            param="model",
        )
    check_range(body, "temperature", 0, 2)
    check_range(body, "top_p", 0, 1)
    check_range(body, "max_tokens", 1)
    check_range(body, "max_completion_tokens", 1)
    check_range(body, "presence_penalty", -2, 2)
    check_range(body, "frequency_penalty", -2, 2)
    if body.get("n") not in (None, 1):
        raise RequestError("Only n=1 is supported; omit n.", param="n", code="unsupported_value")
    for name, why in (
        ("logprobs", "log probabilities: this model has no probabilities to report"),
        ("audio", "audio output"),
        ("functions", "the legacy functions parameter: use tools"),
        ("function_call", "the legacy function_call parameter: use tool_choice"),
    ):
        if body.get(name):
            raise RequestError(
                f"workbench-local does not support {why}; remove '{name}'.",
                param=name,
                code="unsupported_value",
            )
    messages = _chat_messages(body.get("messages"))
    tools = _chat_tools(body.get("tools"))
    schema, schema_name, json_object = None, None, False
    response_format = body.get("response_format")
    if response_format is not None:
        kinds = ("text", "json_object", "json_schema")
        if response_format.get("type") not in kinds:
            raise RequestError(
                f"response_format must be an object whose type is one of {', '.join(kinds)}.",
                param="response_format",
            )
        if response_format["type"] == "json_schema":
            schema, schema_name = schema_of(
                response_format.get("json_schema"), "response_format.json_schema"
            )
        json_object = response_format["type"] == "json_object"
    stop = body.get("stop")
    stops = [stop] if isinstance(stop, str) else [s for s in stop or [] if isinstance(s, str)]
    options = body.get("stream_options") or {}
    return Conversation(
        model=model,
        messages=messages,
        tools=tools,
        tool_choice=choice_of(body.get("tool_choice"), tools, "tool_choice"),
        parallel_tool_calls=body.get("parallel_tool_calls") is not False,
        schema=schema,
        schema_name=schema_name,
        json_object=json_object,
        max_tokens=body.get("max_completion_tokens") or body.get("max_tokens"),
        stop=stops,
        stream=bool(body.get("stream")),
        include_usage=bool(options.get("include_usage")),
        extra_chars=len(json.dumps(body.get("tools"))) if body.get("tools") else 0,
    )


def _usage(conversation: Conversation, answer: Answer) -> dict[str, int]:
    prompt, completion = tokens(conversation.prompt_chars()), tokens(output_chars(answer))
    return {
        "prompt_tokens": prompt,
        "completion_tokens": completion,
        "total_tokens": prompt + completion,
    }


def _chat_id(conversation: Conversation, answer: Answer) -> str:
    raw = json.dumps([conversation.seed(), answer.content, answer.tool_calls], sort_keys=True)
    return "chatcmpl-" + hashlib.sha256(raw.encode()).hexdigest()[:29]


def completion(conversation: Conversation, answer: Answer) -> dict[str, Any]:
    """A `chat.completion` object answering the request."""
    message: dict[str, Any] = {"role": "assistant", "content": answer.content, "refusal": None}
    if answer.tool_calls:
        message["tool_calls"] = answer.tool_calls
        message["content"] = None
    return {
        "id": _chat_id(conversation, answer),
        "object": "chat.completion",
        "created": int(time.time()),
        "model": conversation.model,
        "system_fingerprint": FINGERPRINT,
        "choices": [
            {
                "index": 0,
                "message": message,
                "logprobs": None,
                "finish_reason": answer.finish_reason,
            }
        ],
        "usage": _usage(conversation, answer),
    }


def pieces(text: str, size: int = 24) -> list[str]:
    """A text cut into stream deltas (at spaces where it can)."""
    out, start = [], 0
    while start < len(text):
        end = min(len(text), start + size)
        space = text.rfind(" ", start + 1, end)
        if end < len(text) and space > start:
            end = space + 1
        out.append(text[start:end])
        start = end
    return out


def completion_chunks(conversation: Conversation, answer: Answer) -> Iterator[dict[str, Any]]:
    """The `chat.completion.chunk` objects of a streamed answer, in order."""
    base = {
        "id": _chat_id(conversation, answer),
        "object": "chat.completion.chunk",
        "created": int(time.time()),
        "model": conversation.model,
        "system_fingerprint": FINGERPRINT,
    }
    usage: dict[str, Any] = {"usage": None} if conversation.include_usage else {}

    def chunk(delta: dict[str, Any], finish: str | None = None) -> dict[str, Any]:
        choice = {"index": 0, "delta": delta, "logprobs": None, "finish_reason": finish}
        return {**base, "choices": [choice], **usage}

    yield chunk(
        {"role": "assistant", "content": "" if not answer.tool_calls else None, "refusal": None}
    )
    for i, call in enumerate(answer.tool_calls):
        head = {"index": i, "id": call["id"], "type": "function"}
        yield chunk(
            {
                "tool_calls": [
                    head | {"function": {"name": call["function"]["name"], "arguments": ""}}
                ]
            }
        )
        for piece in pieces(call["function"]["arguments"]):
            yield chunk({"tool_calls": [{"index": i, "function": {"arguments": piece}}]})
    if not answer.tool_calls:
        for piece in pieces(answer.content or ""):
            yield chunk({"content": piece})
    yield chunk({}, answer.finish_reason)
    if conversation.include_usage:
        yield {**base, "choices": [], "usage": _usage(conversation, answer)}
