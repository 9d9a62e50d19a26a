"""The OpenAI Chat Completions wire format: request validation and response shapes."""

from __future__ import annotations

import hashlib
import json
import math
import time
from dataclasses import dataclass, field
from typing import Any

ROLES = ("system", "developer", "user", "assistant", "tool", "function")
MODEL_ID = "workbench-local"


class RequestError(ValueError):
    """A malformed request: answered with HTTP 400 and an OpenAI-style error body."""

    def __init__(self, message: str, param: str | None = None, code: str | None = None) -> None:
        super().__init__(message)
        self.message, self.param, self.code = message, param, code


def error_body(message: str, param: str | None = None, code: str | None = None,
               kind: str = "invalid_request_error") -> dict[str, Any]:  # fmt: skip
    return {"error": {"message": message, "type": kind, "param": param, "code": code}}


def _text_of(content: Any, where: str) -> str:
    """The text of a message content: a string, null, or a list of text parts."""
    if content is None or isinstance(content, str):
        return content or ""
    if isinstance(content, list):
        texts = []
        for i, part in enumerate(content):
            if not isinstance(part, dict) or not isinstance(part.get("text"), str):
                raise RequestError(
                    f"{where}.content[{i}] must be a text part like "
                    '{"type": "text", "text": "..."}; this model reads text only.',
                    param=f"{where}.content",
                )
            texts.append(part["text"])
        return "\n".join(texts)
    raise RequestError(
        f"{where}.content must be a string or a list of text parts, got {type(content).__name__}.",
        param=f"{where}.content",
    )


@dataclass
class ChatRequest:
    model: str
    messages: list[dict[str, Any]]
    texts: list[str]  # the text of each message, same order
    tools: list[str] = field(default_factory=list)  # names of the offered function tools
    tools_chars: int = 0
    response_format: dict[str, Any] | None = None
    parallel_tool_calls: bool = True

    def system_prompt(self) -> str:
        return "\n\n".join(
            t for m, t in zip(self.messages, self.texts, strict=True)
            if m["role"] in ("system", "developer")
        )  # fmt: skip

    def last_user_text(self) -> str:
        for message, text in zip(reversed(self.messages), reversed(self.texts), strict=True):
            if message["role"] == "user":
                return text
        raise RequestError(
            "messages has no user message; add one, e.g. "
            '{"role": "user", "content": "<the claim document>"}.',
            param="messages",
        )

    def prompt_chars(self) -> int:
        calls = sum(len(json.dumps(m["tool_calls"])) for m in self.messages if m.get("tool_calls"))
        return sum(len(t) for t in self.texts) + calls + self.tools_chars


def _check_tool_calls(value: Any, where: str) -> None:
    calls = value if isinstance(value, list) else [None] if value is not None else []
    for call in calls:
        function = call.get("function") if isinstance(call, dict) else None
        if not isinstance(function, dict) or not isinstance(function.get("name"), str):
            raise RequestError(
                f"{where} must be a list of "
                '{"id": "call_...", "type": "function", "function": {"name": ..., '
                '"arguments": "{...}"}} objects.',
                param=where,
            )


def _tools(value: Any) -> list[str]:
    if value is None:
        return []
    if not isinstance(value, list):
        raise RequestError("tools must be a list of tool definitions.", param="tools")
    names = []
    for i, tool in enumerate(value):
        function = tool.get("function") if isinstance(tool, dict) else None
        if not isinstance(function, dict) or not isinstance(function.get("name"), str):
            raise RequestError(
                f"tools[{i}] must look like "
                '{"type": "function", "function": {"name": "...", "parameters": {...}}}.',
                param=f"tools[{i}]",
            )
        names.append(function["name"])
    return names


def _response_format(value: Any) -> dict[str, Any] | None:
    if value is None:
        return None
    kinds = ("text", "json_object", "json_schema")
    if not isinstance(value, dict) or value.get("type") not in kinds:
        raise RequestError(
            f"response_format must be an object whose type is one of {', '.join(kinds)}.",
            param="response_format",
        )
    if value["type"] == "json_schema":
        spec = value.get("json_schema")
        if not isinstance(spec, dict) or not isinstance(spec.get("schema"), dict):
            raise RequestError(
                "response_format.json_schema must be an object with a 'schema' object, e.g. "
                '{"name": "final_output", "strict": true, "schema": {"title": "ClaimData", ...}}.',
                param="response_format.json_schema",
            )
    return value


def parse_request(body: Any) -> ChatRequest:
    """Validate a decoded chat completions body; raise RequestError saying what to fix."""
    if not isinstance(body, dict):
        raise RequestError(
            f"The request body must be a JSON object, got {type(body).__name__}. "
            'Send {"model": "workbench-local", "messages": [...]}.'
        )
    model = body.get("model")
    if not isinstance(model, str) or not model:
        raise RequestError(
            "model is required and must be a string (any name works, e.g. 'workbench-local').",
            param="model",
        )
    if body.get("stream"):
        raise RequestError(
            "Streaming is not supported by workbench-local; send stream=false (or omit it).",
            param="stream",
            code="unsupported_value",
        )
    if body.get("n") not in (None, 1):
        raise RequestError("Only n=1 is supported; omit n.", param="n", code="unsupported_value")
    messages = body.get("messages")
    if not isinstance(messages, list) or not messages:
        raise RequestError(
            "messages is required and must be a non-empty list of "
            '{"role": ..., "content": ...} objects.',
            param="messages",
        )
    texts = []
    for i, message in enumerate(messages):
        if not isinstance(message, dict) or message.get("role") not in ROLES:
            raise RequestError(
                f"messages[{i}] must be an object with a role among {', '.join(ROLES)}.",
                param=f"messages[{i}].role",
            )
        texts.append(_text_of(message.get("content"), f"messages[{i}]"))
        _check_tool_calls(message.get("tool_calls"), f"messages[{i}].tool_calls")
    tools = body.get("tools")
    return ChatRequest(
        model=model,
        messages=messages,
        texts=texts,
        tools=_tools(tools),
        tools_chars=len(json.dumps(tools)) if tools else 0,
        response_format=_response_format(body.get("response_format")),
        parallel_tool_calls=body.get("parallel_tool_calls") is not False,
    )


def tokens(chars: int) -> int:
    """Approximate token count: one token per four characters."""
    return max(1, math.ceil(chars / 4))


def completion(
    request: ChatRequest, content: str | None, tool_calls: list[dict[str, Any]] | None
) -> dict[str, Any]:
    """A `chat.completion` object answering the request."""
    message: dict[str, Any] = {"role": "assistant", "content": content}
    if tool_calls:
        message["tool_calls"] = tool_calls
        message["content"] = None
        out_chars = len(json.dumps(tool_calls))
    else:
        out_chars = len(content or "")
    prompt_tokens, completion_tokens = tokens(request.prompt_chars()), tokens(out_chars)
    seed = json.dumps([request.messages, content, tool_calls], sort_keys=True, default=str)
    return {
        "id": "chatcmpl-" + hashlib.sha256(seed.encode()).hexdigest()[:29],
        "object": "chat.completion",
        "created": int(time.time()),
        "model": request.model,
        "system_fingerprint": "workbench-local-rules-1",
        "choices": [
            {
                "index": 0,
                "message": message,
                "logprobs": None,
                "finish_reason": "tool_calls" if tool_calls else "stop",
            }
        ],
        "usage": {
            "prompt_tokens": prompt_tokens,
            "completion_tokens": completion_tokens,
            "total_tokens": prompt_tokens + completion_tokens,
        },
    }
