"""Failure injection, the service side: the hooks that a claim's steps and model calls run.

A fault is planned (by `workbench.faults`) for a claim and a step, and stored in
`faults.sqlite3` in the workbench home (`WORKBENCH_FAULTS` overrides the path), where a process
killed by a fault finds the rest of its plan after its restart. The hooks:

- `observed(name, fn)` wraps the body of a journaled step (`steps.step`): faults fire inside the
  body, so only when the step really executes, never when Restate replays its journaled result;
- `ModelTransport` sits under the OpenAI client (`services.llm.model_http_client`), so model
  faults are injected on the client side of the call and work the same with any provider. The
  transport also turns an HTTP 429 with Retry-After into a Restate retry after exactly that
  delay, and refuses a structured answer that does not parse, so Restate retries the call
  instead of journaling it;
- `attempt_started(claim_id)` notes each attempt of a claim's workflow (a retry or a replay);
- `boundary(name, effect)` wraps the journaled points of the workflow that are not a step body
  (`BOUNDARY_STEPS`: the wait for a review decision, the one-way send to the judge): faults fire
  where the workflow reaches them for real, never while Restate replays them.

Every hook also writes the evidence (which step body ran, which model request was sent and
answered, which fault fired, by which pid) to the same file before anything can crash, so the
evidence survives the crashes that the journal did not see. Outside a Restate handler the hooks do
nothing (the in-process baseline runs no faults).
"""

from __future__ import annotations

import asyncio
import email.utils
import functools
import hashlib
import inspect
import json
import os
import re
import signal
import sys
import time
from collections.abc import Awaitable, Callable, Iterable
from contextvars import ContextVar
from datetime import timedelta
from functools import cache
from pathlib import Path
from typing import Any, TypeVar

import httpx2
from openai import OpenAIError, RateLimitError
from restate import TerminalError
from restate.exceptions import RetryableError

from . import names
from .config import settings
from .fault_store import COMPLETED, CRASHED, EVALUATION, EXECUTED, FAULT, LOST, FaultStore, Plan
from .models import ClaimAssessment, ClaimData, JudgeVerdict

T = TypeVar("T")

# -- the vocabulary -------------------------------------------------------------------------------
MODEL_STEPS: dict[str, str] = {
    ClaimData.__name__: "parse",
    ClaimAssessment.__name__: "analyze",
    JudgeVerdict.__name__: "judge",
}
"""Agent steps, recognised by the output type their model request asks for."""

STEPS: tuple[str, ...] = (
    "fetch prompts",
    "parse",
    "verify documents",
    "convert to EUR",
    "analyze",
    "check fraud",
    "lookup policy",
    "awaiting review",
    "reimburse",
    "evaluate",
    "fetch judge prompt",
    "gather evidence",
    "judge",
    "write score",
)
"""Where a fault can be planned (in the claim's order: the workflow's steps, then the judge's),
besides "model call N". `verify documents` runs in versions after v1 only."""

BOUNDARY_STEPS: tuple[str, ...] = ("awaiting review", "evaluate")
"""Journaled points of the workflow that are not a step body: the wait for the review decision
(`crash_after_effect`: the decision arrived, the process dies before the workflow goes on) and
the one-way send of the evaluation to the judge (`crash_after_effect`: Restate recorded the
send, the process dies right after)."""

WORKFLOW_MODEL_STEPS = ("parse", "analyze")
MODEL_CALL = re.compile(r"^model call ([1-9][0-9]*)$")

KINDS: dict[str, str] = {
    "error": "a transient exception, `times` times in a row: Restate retries the step",
    "terminal": "a non-retryable failure: the claim ends with this reason",
    "crash": "the service process kills itself (SIGKILL) inside the step; supervisord restarts "
    "it and Restate replays the journal",
    "crash_after_effect": "the step's effect happens (the payment is made, the model answers), "
    "then the process dies before the result is journaled; the retry repeats the effect",
    "delay": "the step takes `seconds` longer",
    "kill_restate": "the Restate server is killed (SIGKILL) inside the step, which ends that try; "
    "supervisord brings Restate back and the claim continues",
    "rate_limit": "the model endpoint answers HTTP 429 with Retry-After: `seconds`",
    "server_error": "the model endpoint answers HTTP 500",
    "timeout": "the model call times out after `seconds`",
    "bad_output": "the model answers with text that does not parse",
}
MODEL_KINDS = frozenset({"rate_limit", "server_error", "timeout", "bad_output"})
"""Only at a model step (parse, analyze, judge, model call N)."""

DEFAULT_SECONDS = {"delay": 2.0, "rate_limit": 1.0, "timeout": 1.0}

_ENDING = frozenset(
    {"error", "terminal", "crash", "kill_restate", "rate_limit", "server_error", "timeout"}
)
"""Kinds that end the try they fire in (at most one of them fires per try)."""
_STEP_BEFORE = frozenset({"error", "terminal", "crash", "delay", "kill_restate"})
_MODEL_BEFORE = _STEP_BEFORE | {"rate_limit", "server_error", "timeout"}
_AFTER = frozenset({"crash_after_effect"})
PREVENTING = _ENDING
"""Kinds that stop a try before its work is done (the try counts, the execution does not)."""

MAX_RETRY_AFTER_S = 60.0
"""A longer Retry-After is capped: the model call is retried after at most this long."""


def env_int(name: str, default: int) -> int:
    """A whole-number setting from the environment (e.g. the retry policy's knobs)."""
    value = os.environ.get(name)
    if value is None or value.strip() == "":
        return default
    try:
        number = int(value)
    except ValueError:
        raise ValueError(f"Setting {name}={value!r} is not a whole number.") from None
    if number < 0:
        raise ValueError(f"Setting {name}={number} is negative.")
    return number


def check(step: str, kind: str) -> None:
    """Raise ValueError, saying what is valid, unless a `kind` fault can fire at `step`."""
    if kind not in KINDS:
        raise ValueError(f"Fault kind {kind!r} is not one of: {', '.join(KINDS)}.")
    if step not in STEPS and not MODEL_CALL.match(step):
        raise ValueError(
            f"Fault step {step!r} is not one of: {', '.join(STEPS)}, or 'model call N' "
            "(N = 1 for the parser's model call, 2 and 3 for the analyst's)."
        )
    if kind in MODEL_KINDS and not is_model_step(step):
        raise ValueError(
            f"Fault kind {kind!r} happens on a model call: plan it at parse, analyze, judge or "
            f"'model call N', not at {step!r}."
        )


def is_model_step(step: str) -> bool:
    return step in MODEL_STEPS.values() or MODEL_CALL.match(step) is not None


# -- the errors a fault raises --------------------------------------------------------------------
class InjectedError(RuntimeError):
    """A planned transient failure (Restate retries)."""


class InjectedModelError(InjectedError, OpenAIError):
    """A planned transient failure of a model call (an OpenAIError passes the client unwrapped)."""


class InjectedTerminalError(TerminalError):
    """A planned non-retryable failure."""


class InjectedModelTerminalError(TerminalError, OpenAIError):
    """A planned non-retryable failure of a model call."""


class ModelOutputUnparsableError(OpenAIError):
    """The model's structured answer is not JSON: retried (by Restate) rather than journaled."""


class ModelRateLimitedError(RateLimitError, RetryableError):
    """HTTP 429 with Retry-After: Restate retries the model call after exactly that delay."""

    def __init__(self, message: str, *, response: httpx2.Response, retry_after_s: float) -> None:
        RateLimitError.__init__(self, message, response=response, body=None)  # type: ignore[arg-type]
        self.message = message
        self.status_code = 429
        self.retry_after = timedelta(seconds=retry_after_s)


# -- where plans and evidence live ----------------------------------------------------------------
def store_path() -> Path:
    return Path(os.environ.get("WORKBENCH_FAULTS") or settings().home / "faults.sqlite3")


@cache
def _store(path: Path) -> FaultStore:
    return FaultStore(path)


def store() -> FaultStore:
    return _store(store_path())


def _claim_id() -> str | None:
    """The claim the running handler serves: the key of the workflow or of the judge object."""
    from restate.server_context import current_context

    try:
        ctx = current_context()
    except LookupError:
        return None
    if ctx is None:
        return None
    try:
        return ctx.key()  # type: ignore[attr-defined]
    except Exception:  # a keyless service
        return None


_terminal_failures: ContextVar[list[str] | None] = ContextVar(
    "workbench_terminal_failures", default=None
)


def terminal_failures() -> list[str]:
    """Start collecting the terminal failures of the steps that run from here on (the tools of
    one agent run) and return the list they go to. A tool that fails for good makes Restate's
    tool wrapper cancel the sibling tools waiting for their turn, and that internal cancellation
    can leave the agent run instead of the failure; the flow then still knows why it failed."""
    failures: list[str] = []
    _terminal_failures.set(failures)
    return failures


def note_terminal(step: str, error: TerminalError) -> None:
    """Called by a step whose journaled result is a terminal failure."""
    failures = _terminal_failures.get()
    if failures is not None:
        failures.append(error.message or f"step {step!r} failed for good")


def attempt_started(claim_id: str) -> None:
    """Note an attempt of the claim's workflow (the first run, a retry, or a replay)."""
    if _claim_id() is not None:
        store().record(claim_id, "workflow", "attempt")


def evaluation_started(claim_id: str) -> None:
    """Note an attempt of the judge's evaluation of the claim (the first run, a retry, a replay)."""
    if _claim_id() is not None:
        store().record(claim_id, names.JUDGE, EVALUATION)


def _replaying() -> bool:
    """Whether the running handler is replaying its journal (Restate's own flag, which its
    tracing and logging extensions read too)."""
    from restate.server_context import restate_context_is_replaying

    return bool(restate_context_is_replaying.get(False))


# -- what a fault does ----------------------------------------------------------------------------
def _seconds(plan: Plan) -> float:
    value = plan.params.get("seconds")
    return float(value if value is not None else DEFAULT_SECONDS.get(plan.kind, 1.0))


def _what(plan: Plan, where: str) -> str:
    n = plan.fired + 1
    return f"Injected {plan.kind} in {where!r} (fault {n} of {plan.times}, by workbench.faults)"


def crash_self() -> None:
    """Die the hard way: SIGKILL, no cleanup, as a crashed host would."""
    sys.stdout.flush()
    sys.stderr.flush()
    os.kill(os.getpid(), signal.SIGKILL)
    time.sleep(5)  # never reached: the signal is delivered at once


_waves: dict[str, tuple[int, asyncio.Event]] = {}
"""Per wave of faults planned together (`wb.faults.plan_together`): how many fired in this
process so far, and the event set once all of them did."""


def _arrive(plan: Plan) -> asyncio.Event | None:
    """Count a killing fault that fired towards its wave; the event is set once all fired."""
    wave, size = plan.params.get("wave"), int(plan.params.get("wave_size") or 0)
    if not wave or size <= 1:
        return None
    fired, all_fired = _waves.get(wave) or (0, asyncio.Event())
    _waves[wave] = (fired + 1, all_fired)
    if fired + 1 >= size:
        all_fired.set()
        del _waves[wave]
    return all_fired


async def _hold(plan: Plan, all_fired: asyncio.Event | None) -> None:
    """Hold a killing fault that fired: not at all, or until its whole wave fired, at most the
    plan's `linger_s` seconds."""
    linger = max(float(plan.params.get("linger_s") or 0.0), 0.0)
    if not linger:
        return
    if all_fired is None:
        await asyncio.sleep(linger)
        return
    try:
        await asyncio.wait_for(all_fired.wait(), linger)
    except TimeoutError:
        pass


_dying: list[tuple[str | None, str, str]] = []
"""The claims this process dies with: (claim, where, kind) of each crash fault that fired and
is held until its wave has fired."""


async def die(plan: Plan, where: str) -> None:
    """Kill this process for a crash fault that fired: at once, or, for faults planned together
    (`wb.faults.plan_together`), once all of them fired (each claim held where its fault fired,
    inside its step), so that claims run side by side die together and share one restart. A
    `crashed` event is written for each claim just before the kill."""
    _dying.append((plan.claim_id, where, plan.kind))
    all_fired = _arrive(plan)
    try:
        await _hold(plan, all_fired)
    finally:  # even if the claim's task is cancelled meanwhile: the process dies as planned
        for claim_id, at, kind in _dying:
            if claim_id:
                store().record(claim_id, at, CRASHED, kind=kind, detail=f"pid {os.getpid()}")
        crash_self()


_restate_kill: tuple[asyncio.Future[int | None], list[tuple[str | None, str]]] | None = None
"""The Restate kill under way in this process, and the claims waiting for it."""


async def kill_restate_for(plan: Plan, where: str) -> int | None:
    """Kill Restate for a `kill_restate` fault that fired: at once, or, for faults planned
    together, once all of them fired; the faults that fire meanwhile join the same kill (one
    restart of Restate for all of them). Returns the pid killed."""
    global _restate_kill
    all_fired = _arrive(plan)
    if _restate_kill is None or _restate_kill[0].done():
        waiting: list[tuple[str | None, str]] = []
        kill = asyncio.ensure_future(_kill_when_held(plan, all_fired, waiting))
        _restate_kill = (kill, waiting)
    kill, waiting = _restate_kill
    waiting.append((plan.claim_id, where))
    return await asyncio.shield(kill)


async def _kill_when_held(
    plan: Plan, all_fired: asyncio.Event | None, waiting: list[tuple[str | None, str]]
) -> int | None:
    await _hold(plan, all_fired)
    pid = await kill_restate(plan.params)
    for claim_id, at in waiting:
        if claim_id:
            store().record(claim_id, at, CRASHED, kind="kill_restate", detail=f"restate pid {pid}")
    return pid


async def kill_restate(params: dict[str, Any], *, timeout_s: float = 2.0) -> int | None:
    """SIGKILL this stack's restate-server: the pid the planner recorded if it still runs, else
    the restate-server that carries this stack's id. Waits until it is gone; returns its pid."""
    import psutil

    target = _restate_server(params)
    if target is None:
        print("workbench fault kill_restate: no restate-server of this stack found", flush=True)
        return None
    try:
        target.kill()
    except psutil.Error:
        return None  # it died meanwhile
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        try:
            if target.status() == psutil.STATUS_ZOMBIE:
                break
        except psutil.Error:
            break
        await asyncio.sleep(0.01)
    return target.pid


def _restate_server(params: dict[str, Any]) -> Any:
    import psutil

    pid, created = params.get("pid"), params.get("create_time")
    if pid:
        try:
            process = psutil.Process(int(pid))
            if "restate-server" in process.name() and (
                created is None or abs(process.create_time() - float(created)) < 0.5
            ):
                return process
        except psutil.Error:
            pass
    stack_id = os.environ.get("WORKBENCH_STACK_ID")
    if not stack_id:
        return None
    for process in psutil.process_iter(["name"]):
        try:
            if "restate-server" in (process.info["name"] or "") and (
                process.environ().get("WORKBENCH_STACK_ID") == stack_id
            ):
                return process
        except (psutil.Error, OSError):
            continue
    return None


async def _act(plan: Plan, where: str, *, model: bool) -> None:
    """Do what one fired fault says (before the step's work)."""
    message = _what(plan, where)
    if plan.kind == "delay":
        await asyncio.sleep(_seconds(plan))
    elif plan.kind == "kill_restate":
        pid = await kill_restate_for(plan, where)
        # the try ends with the server (deterministically: not racing the lost connection)
        raise (InjectedModelError if model else InjectedError)(
            f"{message}: Restate (pid {pid}) was killed; this try ends with it"
        )
    elif plan.kind == "crash":
        await die(plan, where)
    elif plan.kind == "error":
        raise (InjectedModelError if model else InjectedError)(message)
    elif plan.kind == "terminal":
        raise (InjectedModelTerminalError if model else InjectedTerminalError)(message)


def _ordered(plans: Iterable[Plan]) -> list[Plan]:
    """A fault that lets the try go on (a delay) acts before the one that ends it."""
    return sorted(plans, key=lambda p: p.kind in _ENDING)


# -- the step hook --------------------------------------------------------------------------------
@cache
def observed(name: str, fn: Callable[..., T | Awaitable[T]]) -> Callable[..., Awaitable[T]]:
    """The body of the journaled step `name`, with its faults and its evidence. One wrapper per
    (name, fn), keeping `fn`'s signature (its return type tells Restate how to serialize)."""

    @functools.wraps(fn)
    async def run(*args: Any, **kwargs: Any) -> T:
        claim_id = _claim_id()
        if claim_id is None:
            return await _call(fn, *args, **kwargs)
        faults = store()
        planned = faults.has_plans(claim_id, (name,))
        if planned:
            fired = faults.take(claim_id, (name,), _STEP_BEFORE, where=name, exclusive=_ENDING)
            for plan in _ordered(fired):
                await _act(plan, name, model=False)
        faults.record(claim_id, name, EXECUTED)
        try:
            result = await _call(fn, *args, **kwargs)
        except BaseException as e:
            faults.record(claim_id, name, "failed", detail=_short(e))
            raise
        if planned and (after := faults.take(claim_id, (name,), _AFTER, where=name)):
            faults.record(claim_id, name, COMPLETED, detail=LOST)
            await die(after[0], name)
        faults.record(claim_id, name, COMPLETED)
        return result

    return run


# -- the other journaled points of the workflow ---------------------------------------------------
async def boundary(name: str, effect: Callable[[], Awaitable[T]]) -> T:
    """Run `effect` (the wait for the review, the send to the judge: `BOUNDARY_STEPS`) with the
    faults planned at `name`: those that act before the work fire before it, `crash_after_effect`
    after it (before the workflow goes on), and only where the workflow reaches this point for
    real: never while Restate replays it from the journal."""
    claim_id = _claim_id()
    if claim_id is not None and not _replaying() and store().has_plans(claim_id, (name,)):
        fired = store().take(claim_id, (name,), _STEP_BEFORE, where=name, exclusive=_ENDING)
        for plan in _ordered(fired):
            await _act(plan, name, model=False)
    result = await effect()
    # checked again: a wait that suspended comes back as a replay of the whole handler
    if claim_id is not None and not _replaying() and store().has_plans(claim_id, (name,)):
        if after := store().take(claim_id, (name,), _AFTER, where=name):
            await die(after[0], name)
    return result


async def _call(fn: Callable[..., Any], *args: Any, **kwargs: Any) -> Any:
    result = fn(*args, **kwargs)
    if inspect.isawaitable(result):
        result = await result
    return result


def _short(e: BaseException) -> str:
    text = getattr(e, "message", None) or str(e) or type(e).__name__
    return f"{type(e).__name__}: {text}"[:300]


# -- the model transport --------------------------------------------------------------------------
class ModelTransport(httpx2.AsyncBaseTransport):
    """Wraps the OpenAI client's HTTP transport: injects the planned model faults, counts the model
    requests really sent and answered, honours Retry-After through Restate, and refuses
    structured answers that do not parse."""

    def __init__(self, inner: httpx2.AsyncBaseTransport) -> None:
        self.inner = inner

    async def aclose(self) -> None:
        await self.inner.aclose()

    async def handle_async_request(self, request: httpx2.Request) -> httpx2.Response:
        call = _model_request(request)
        claim_id = _claim_id() if call is not None else None
        if call is None or claim_id is None:
            return await self.inner.handle_async_request(request)
        schema = call.get("schema")
        step = MODEL_STEPS.get(schema or "", "model")
        faults = store()
        number = None
        if step in WORKFLOW_MODEL_STEPS:
            number = 1 + faults.count(claim_id, COMPLETED, WORKFLOW_MODEL_STEPS)
        steps = (step, f"model call {number}") if number else (step,)
        planned = faults.has_plans(claim_id, steps)
        if planned:
            fired = faults.take(
                claim_id, steps, _MODEL_BEFORE, where=step, call=number, exclusive=_ENDING
            )
            for plan in _ordered(fired):
                if plan.kind in ("rate_limit", "server_error", "timeout"):
                    return await self._refuse(plan, step, request)
                await _act(plan, step, model=True)
        faults.record(claim_id, step, EXECUTED, call=number, detail=f"request {call['digest']}")
        try:
            response = await self.inner.handle_async_request(request)
        except BaseException as e:
            faults.record(claim_id, step, "failed", call=number, detail=_short(e))
            raise
        if call.get("stream"):
            faults.record(claim_id, step, COMPLETED, call=number)
            return response
        raw = b"".join([part async for part in response.stream])  # type: ignore[union-attr]
        await response.aclose()
        answer = httpx2.Response(
            response.status_code,
            headers=response.headers,
            stream=httpx2.ByteStream(raw),
            extensions=response.extensions,
            request=request,
        )
        try:
            self._check_answer(answer, raw, schema, claim_id, steps, step, number, planned)
        except BaseException as e:
            faults.record(claim_id, step, "failed", call=number, detail=_short(e))
            raise
        if not answer.is_success:
            faults.record(
                claim_id, step, "failed", call=number, detail=f"HTTP {answer.status_code}"
            )
            return answer
        if planned and (after := faults.take(claim_id, steps, _AFTER, where=step, call=number)):
            faults.record(claim_id, step, COMPLETED, call=number, detail=LOST)
            await die(after[0], step)
        faults.record(claim_id, step, COMPLETED, call=number)
        return answer

    async def _refuse(self, plan: Plan, step: str, request: httpx2.Request) -> httpx2.Response:
        message = _what(plan, step)
        if plan.kind == "timeout":
            await asyncio.sleep(_seconds(plan))
            raise httpx2.ReadTimeout(message, request=request)
        if plan.kind == "rate_limit":
            seconds = _seconds(plan)
            response = httpx2.Response(
                429,
                headers={"retry-after": f"{seconds:g}"},
                json={"error": {"message": message, "type": "rate_limit_exceeded"}},
                request=request,
            )
            raise ModelRateLimitedError(
                f"{message}: HTTP 429, Retry-After {seconds:g} s",
                response=response,
                retry_after_s=seconds,
            )
        return httpx2.Response(  # server_error: the client raises its own InternalServerError
            500, json={"error": {"message": message, "type": "server_error"}}, request=request
        )

    def _check_answer(
        self,
        answer: httpx2.Response,
        raw: bytes,
        schema: str | None,
        claim_id: str,
        steps: tuple[str, ...],
        step: str,
        number: int | None,
        planned: bool,
    ) -> None:
        if answer.status_code == 429:
            retry_after = retry_after_s(answer.headers)
            if retry_after is not None:
                body = _decoded(answer, raw)[:300]
                raise ModelRateLimitedError(
                    f"The model endpoint is rate-limiting (HTTP 429, Retry-After "
                    f"{retry_after:g} s): {body}",
                    response=answer,
                    retry_after_s=retry_after,
                )
            return
        if not answer.is_success or schema is None:
            return
        text = _decoded(answer, raw)
        if planned and store().take(claim_id, steps, {"bad_output"}, where=step, call=number):
            text = _garbled(text)
        problem = unparsable(text)
        if problem:
            raise ModelOutputUnparsableError(
                f"The model's answer for {schema} does not parse ({problem}); "
                "Restate retries the call instead of journaling the answer."
            )


def _model_request(request: httpx2.Request) -> dict[str, Any] | None:
    """For a chat completion request: the output type it asks for, whether it streams, and a
    digest of its messages (the same request sent again has the same digest: the evidence that a
    call was repeated, and which)."""
    if request.method != "POST" or not request.url.path.endswith("/chat/completions"):
        return None
    try:
        body = json.loads(request.content or b"{}")
    except (ValueError, httpx2.RequestNotRead):
        return {"schema": None, "stream": False, "digest": request_digest(None)}
    schema = None
    response_format = body.get("response_format") or {}
    if response_format.get("type") == "json_schema":
        spec = response_format.get("json_schema") or {}
        schema = (spec.get("schema") or {}).get("title") or spec.get("name")
    return {
        "schema": schema,
        "stream": bool(body.get("stream")),
        "digest": request_digest(body.get("messages")),
    }


def request_digest(messages: Any) -> str:
    """A short digest of a model request's messages (what the model is asked, not how)."""
    text = json.dumps(messages, sort_keys=True, ensure_ascii=False, default=str)
    return hashlib.sha256(text.encode()).hexdigest()[:12]


def _decoded(answer: httpx2.Response, raw: bytes) -> str:
    probe = httpx2.Response(
        answer.status_code, headers=answer.headers, stream=httpx2.ByteStream(raw)
    )
    return probe.read().decode("utf-8", errors="replace")


def unparsable(body: str) -> str | None:
    """Why a chat completion's structured answer is not usable, or None when it is: every
    message's content that is not a tool call must be a JSON document."""
    try:
        data = json.loads(body)
    except ValueError:
        return "the response is not JSON"
    for choice in data.get("choices") or []:
        message = choice.get("message") or {}
        content = message.get("content")
        if message.get("tool_calls") or not isinstance(content, str):
            continue
        try:
            json.loads(content)
        except ValueError:
            return f"content {content[:80]!r} is not JSON"
    return None


def _garbled(body: str) -> str:
    """The same answer with its message (content or tool calls) replaced by chatter, as a model
    sometimes answers."""
    try:
        data = json.loads(body)
    except ValueError:
        return "Sure! Here is what I found."
    for choice in data.get("choices") or []:
        choice["message"] = {"role": "assistant", "content": GARBLED}
        choice["finish_reason"] = "stop"
    return json.dumps(data)


GARBLED = "Sure! I looked at the claim and it all seems fine to me :)"


def retry_after_s(headers: httpx2.Headers) -> float | None:
    """Retry-After (seconds or an HTTP date) or OpenAI's retry-after-ms, capped."""
    if value := headers.get("retry-after-ms"):
        try:
            return min(float(value) / 1000, MAX_RETRY_AFTER_S)
        except ValueError:
            pass
    value = headers.get("retry-after")
    if not value:
        return None
    try:
        seconds = float(value)
    except ValueError:
        parsed = email.utils.parsedate_to_datetime(value) if value else None
        if parsed is None:
            return None
        seconds = parsed.timestamp() - time.time()
    return min(max(seconds, 0.0), MAX_RETRY_AFTER_S)


__all__ = [
    "BOUNDARY_STEPS",
    "FAULT",
    "KINDS",
    "MODEL_KINDS",
    "STEPS",
    "InjectedError",
    "InjectedTerminalError",
    "ModelOutputUnparsableError",
    "ModelRateLimitedError",
    "ModelTransport",
    "attempt_started",
    "boundary",
    "evaluation_started",
    "check",
    "die",
    "observed",
    "store",
]
