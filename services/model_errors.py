"""What a failed model call means for the claim: wait, or fail for good.

Every model call runs inside Restate's journaled step "call LLM" (`restate.ext.openai`). What the
step does with an exception decides the claim's fate: a `TerminalError` ends it (the claim becomes
`failed` with the reason), a `RetryableError` (or any other exception) ends only the attempt, and
Restate retries the invocation under its retry policy (`retries.py`: capped backoff, then a pause,
never a failure). `ModelErrors`, an HTTP transport under the OpenAI client (above the fault
injection, so injected faults are classified the same way as real ones), sorts the outcomes:

- an outage (connection refused or reset, a timeout, HTTP 5xx, 408, 409, 425) and HTTP 429 are
  retried: with the delay the endpoint asks for (Retry-After), else the policy's backoff (a 429
  without Retry-After backs off on its own, 1 s doubling up to 30 s). One log line per outage;
- what no retry can fix is terminal at once: HTTP 400/401/403/404/422 and the other 4xx, with a
  message naming OPENAI_BASE_URL, OPENAI_API_KEY or WORKBENCH_MODEL;
- an answer that does not parse (checked by `faults.ModelTransport`) is retried, and becomes
  terminal when the model answers nonsense `WORKBENCH_MODEL_NONSENSE_TRIES` (default 4) times
  in a row for the same invocation (counted in this process).

Outside a Restate handler (the in-process baseline) nothing is changed."""

from __future__ import annotations

import json
import logging
import os
import threading
from dataclasses import dataclass
from datetime import timedelta
from typing import Any

import httpx2
from openai import OpenAIError
from restate import TerminalError
from restate.exceptions import RetryableError

from .faults import ModelOutputUnparsableError, env_int, retry_after_s, unparsable
from .outage import Outage, describe

log = logging.getLogger("services.model")

TRANSIENT_STATUS = frozenset({408, 409, 425, 429})
"""4xx answers that a later try can change (plus every 5xx)."""
RATE_LIMIT_BACKOFF_S = (1.0, 30.0)
"""A 429 without Retry-After: the first retry after 1 s, doubling up to 30 s."""
_MAX_TRACKED = 10_000


class ModelUnavailableError(RetryableError, OpenAIError):
    """The endpoint is down or overloaded: Restate retries the call (an OpenAIError passes the
    OpenAI client unwrapped)."""

    def __init__(self, message: str, retry_after_s: float | None = None) -> None:
        delay = timedelta(seconds=retry_after_s) if retry_after_s is not None else None
        RetryableError.__init__(self, message, status_code=503, retry_after=delay)


class ModelRefusedError(TerminalError, OpenAIError):
    """The endpoint refused the request in a way no retry changes (wrong key, model, URL)."""

    def __init__(self, message: str, status_code: int) -> None:
        TerminalError.__init__(self, message, status_code=status_code)


class ModelNonsenseError(TerminalError, OpenAIError):
    """The model kept answering with output that does not parse."""

    def __init__(self, message: str) -> None:
        TerminalError.__init__(self, message, status_code=502)


@dataclass
class _Streak:
    nonsense: int = 0
    rate_limited: int = 0


def nonsense_tries() -> int:
    return max(env_int("WORKBENCH_MODEL_NONSENSE_TRIES", 4), 1)


def base_url() -> str:
    return os.environ.get("OPENAI_BASE_URL") or "https://api.openai.com/v1"


class ModelErrors(httpx2.AsyncBaseTransport):
    """Turns the failures of model requests made inside a Restate handler into retryable or
    terminal errors (see the module docstring)."""

    def __init__(self, inner: httpx2.AsyncBaseTransport) -> None:
        self.inner = inner
        self.outage = Outage("The model endpoint", log)
        self._streaks: dict[str, _Streak] = {}
        self._lock = threading.Lock()

    async def aclose(self) -> None:
        await self.inner.aclose()

    async def handle_async_request(self, request: httpx2.Request) -> httpx2.Response:
        invocation = _invocation_id()
        if invocation is None or request.method != "POST":
            return await self.inner.handle_async_request(request)
        where = base_url()
        try:
            response = await self.inner.handle_async_request(request)
        except (TerminalError, RetryableError):
            raise
        except ModelOutputUnparsableError as e:
            raise self._nonsense(invocation, e) from e
        except httpx2.TransportError as e:  # refused, reset, timed out, DNS
            self.outage.failed(where, e, _WAITING)
            raise ModelUnavailableError(
                f"The model endpoint {where} did not answer ({describe(e)}); Restate retries "
                "the call until it does."
            ) from e
        status = response.status_code
        if status < 400:
            self.outage.answered(where)
            if _asks_for_json(request):
                response, problem = await _parsed(response, request)
                if problem:
                    raise self._nonsense(
                        invocation,
                        ModelOutputUnparsableError(
                            f"The model's structured answer does not parse ({problem}); "
                            "Restate retries the call instead of journaling it."
                        ),
                    )
            self._streak(invocation, reset=True)
            return response
        detail = await _error_detail(response)
        if status == 429:
            delay = retry_after_s(response.headers)
            asked = delay is not None
            if delay is None:
                streak = self._streak(invocation)
                streak.rate_limited += 1
                low, high = RATE_LIMIT_BACKOFF_S
                delay = min(low * 2 ** (streak.rate_limited - 1), high)
            raise ModelUnavailableError(
                f"The model endpoint {where} is rate-limiting (HTTP 429"
                f"{', Retry-After' if asked else ', no Retry-After'}): {detail}; retried in "
                f"{delay:g} s.",
                retry_after_s=delay,
            )
        if status >= 500 or status in TRANSIENT_STATUS:
            self.outage.failed(where, f"HTTP {status}: {detail}", _WAITING)
            raise ModelUnavailableError(
                f"The model endpoint {where} answered HTTP {status}: {detail}; Restate retries "
                "the call until it answers."
            )
        raise ModelRefusedError(_refusal(where, status, detail), status_code=status)

    def _nonsense(self, invocation: str, error: Exception) -> Exception:
        streak = self._streak(invocation)
        streak.nonsense += 1
        limit = nonsense_tries()
        if streak.nonsense < limit:
            return error  # retried by Restate (a plain exception: the policy's backoff)
        self._streak(invocation, reset=True)
        return ModelNonsenseError(
            f"The model answered {limit} times in a row with output that does not parse; "
            f"last: {getattr(error, 'message', None) or error}. Check that WORKBENCH_MODEL="
            f"{os.environ.get('WORKBENCH_MODEL', 'gpt-4o-mini')} supports structured output."
        )

    def _streak(self, invocation: str, *, reset: bool = False) -> _Streak:
        with self._lock:
            if reset:
                return self._streaks.pop(invocation, None) or _Streak()
            streak = self._streaks.get(invocation)
            if streak is None:
                if len(self._streaks) >= _MAX_TRACKED:  # forget the oldest (crashed elsewhere)
                    self._streaks.pop(next(iter(self._streaks)))
                streak = self._streaks[invocation] = _Streak()
            return streak


_WAITING = (
    "claims wait (their model calls are retried, and paused after WORKBENCH_OUTAGE_WINDOW_S) "
    "until it answers"
)


def _refusal(where: str, status: int, detail: str) -> str:
    model = os.environ.get("WORKBENCH_MODEL", "gpt-4o-mini")
    hint = {
        401: "Check OPENAI_API_KEY: the endpoint does not accept it.",
        403: "Check OPENAI_API_KEY: it may not have access to this model or endpoint.",
        404: f"Check OPENAI_BASE_URL (it should end in /v1 for most servers) and "
        f"WORKBENCH_MODEL={model} (a model this endpoint serves).",
    }.get(
        status,
        f"The endpoint does not accept this request; check OPENAI_BASE_URL and that "
        f"WORKBENCH_MODEL={model} supports tools and structured output.",
    )
    return (
        f"The model endpoint OPENAI_BASE_URL={where} refused the request "
        f"(HTTP {status}: {detail}). {hint}"
    )


async def _error_detail(response: httpx2.Response) -> str:
    """The error message of an OpenAI-style error body, short; the body is kept readable."""
    try:
        raw = await response.aread()
    except Exception:  # noqa: BLE001 - only for the message
        return "no body"
    text = raw.decode("utf-8", errors="replace")
    try:
        body: Any = json.loads(text)
        error = body.get("error") if isinstance(body, dict) else None
        message = error.get("message") if isinstance(error, dict) else None
        text = str(message or (error if isinstance(error, str) else None) or text)
    except ValueError:
        pass
    return " ".join(text.split())[:300] or "no body"


def _asks_for_json(request: httpx2.Request) -> bool:
    """A chat completion that asks for structured output (not streamed)."""
    if not request.url.path.endswith("/chat/completions"):
        return False
    try:
        body = json.loads(request.content or b"{}")
    except (ValueError, httpx2.RequestNotRead):
        return False
    response_format = body.get("response_format") or {}
    return response_format.get("type") == "json_schema" and not body.get("stream")


async def _parsed(
    response: httpx2.Response, request: httpx2.Request
) -> tuple[httpx2.Response, str | None]:
    """The response (re-readable) and why its structured answer does not parse, if it does not."""
    raw = b"".join([part async for part in response.stream])  # type: ignore[union-attr]
    await response.aclose()

    def copy() -> httpx2.Response:  # as received (still content-encoded)
        return httpx2.Response(
            response.status_code,
            headers=response.headers,
            stream=httpx2.ByteStream(raw),
            extensions=response.extensions,
            request=request,
        )

    probe = copy()
    text = (await probe.aread()).decode("utf-8", errors="replace")
    return copy(), unparsable(text) or _without_choices(text)


def _without_choices(text: str) -> str | None:
    """A completion without any choice (some providers answer errors that way): nonsense too."""
    try:
        data = json.loads(text)
    except ValueError:
        return None
    if isinstance(data, dict) and not data.get("choices"):
        return "the answer has no choices"
    return None


def _invocation_id() -> str | None:
    from restate.server_context import current_context

    try:
        ctx = current_context()
    except LookupError:
        return None
    if ctx is None:
        return None
    try:
        return str(ctx.request().id)
    except Exception:  # noqa: BLE001 - not a handler context
        return None
