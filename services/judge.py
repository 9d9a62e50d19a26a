"""`ClaimJudge`: an LLM-as-judge, one virtual object per claim, called one-way when a claim ends.

It gathers the evidence the analyst saw (fraud database, policy), asks the judge agent for a
score against the rubric of its prompt, and keeps the verdict as the object's state, readable
per claim with the shared handler `verdict`."""

from __future__ import annotations

import logging
from collections.abc import Awaitable, Callable
from datetime import timedelta
from typing import Any

import restate
from agents import Agent
from pydantic import BaseModel
from restate import ObjectContext, ObjectSharedContext, RunOptions
from restate.ext.openai import DurableRunner

from . import faults, names, reference_data, tracing
from .bodies import Checked, accepted
from .judge_agent import judge_agent
from .models import EvaluationRequest, FraudCheck, JudgeInput, JudgeVerdict, PolicyInfo
from .prompts import ANALYST, JUDGE, get_prompt, langfuse_configured, prompt_version
from .retries import RETRY_POLICY
from .scores import write_score
from .steps import LLM_OPTIONS, step

log = logging.getLogger("services.judge")

claim_judge = restate.VirtualObject(names.JUDGE, invocation_retry_policy=RETRY_POLICY)
"""The same policy as the claims': a judge run waits out a model or Langfuse outage (paused after
the window, never failed), so every completed claim gets its score."""

RunAgent = Callable[[Agent, str], Awaitable[Any]]


class Evidence(BaseModel):
    fraud: FraudCheck | None
    policy: PolicyInfo | None


class JudgeResult(BaseModel):
    claim_id: str
    verdict: JudgeVerdict | None
    prompt_version: int | None = None


def gather_evidence(customer_id: str | None, category: str | None) -> Evidence:
    if not customer_id:
        return Evidence(fraud=None, policy=None)
    return Evidence(
        fraud=reference_data.check_fraud(customer_id),
        policy=reference_data.lookup_policy(customer_id, category or "other"),
    )


async def judge_claim(request: EvaluationRequest, run_agent: RunAgent) -> JudgeResult:
    """Score one finished claim; `run_agent` runs the judge agent (durably or in-process)."""
    prompt = request.judge_prompt or await step(
        names.FETCH_JUDGE_PROMPT, get_prompt, JUDGE, request.prompt_label
    )
    outcome = request.outcome
    claim = outcome.claim
    if claim is None:
        return JudgeResult(claim_id=request.claim_id, verdict=None, prompt_version=prompt.version)
    evidence = await step(names.GATHER_EVIDENCE, gather_evidence, claim.customer_id, claim.category)
    judge_input = JudgeInput(
        claim=claim,
        amount_eur=outcome.amount_eur,
        assessment=request.assessment,
        fraud=evidence.fraud,
        policy=evidence.policy,
        final_status=outcome.status,
        document=request.document,
        analyst_policy=request.analyst_prompt.text if request.analyst_prompt else None,
        submitted_on=request.submitted_on,
    )
    tracing.set_claim(request.claim_id)
    with tracing.prompt_in_use(prompt.name, prompt.version):
        run = await run_agent(judge_agent(prompt), judge_input.model_dump_json())
    return JudgeResult(
        claim_id=request.claim_id, verdict=run.final_output, prompt_version=prompt.version
    )


async def _run_durably(agent: Agent, input: str) -> Any:
    return await DurableRunner.run(agent, input, run_options=LLM_OPTIONS)


SCORE_OPTIONS = RunOptions(
    initial_retry_interval=timedelta(milliseconds=500),
    retry_interval_factor=2.0,
    max_retry_interval=timedelta(seconds=5),
)
"""No attempt limit of its own: a score write retries until the backend takes it, at most 5 s
apart (the judge's invocation policy pauses it after the outage window); errors no retry can fix,
such as wrong keys, end it at once."""


async def _write_score(
    trace_id: str,
    claim_id: str,
    score: float,
    reason: str,
    metadata: dict[str, Any],
    name: str,
) -> str:
    with tracing.step_span(names.WRITE_SCORE):
        try:
            return await write_score(trace_id, claim_id, score, reason, metadata, name)
        except ValueError as e:  # refused for good: retrying cannot fix it
            raise restate.TerminalError(str(e)) from e


async def _score(
    ctx: ObjectContext, request: EvaluationRequest, result: JudgeResult, name: str
) -> None:
    """The verdict onto the claim's trace in Langfuse as score `name`, a durable step that
    retries until the score lands (a refusal no retry can fix ends it, kept in the journal and
    the log; the verdict stays readable here)."""
    if result.verdict is None or not request.trace_id or not langfuse_configured():
        return
    outcome = request.outcome
    metadata = {
        "claim_id": request.claim_id,
        "status": outcome.status,
        "prompt_label": request.prompt_label,
        "analyst_prompt_version": outcome.prompt_versions.get(ANALYST),
        "judge_prompt_version": result.prompt_version,
        "service_version": outcome.service_version,
    }
    try:
        await ctx.run_typed(
            names.WRITE_SCORE,
            faults.observed(names.WRITE_SCORE, _write_score),  # faults fire in its body
            SCORE_OPTIONS,
            request.trace_id,
            request.claim_id,
            result.verdict.score,
            result.verdict.reason,
            metadata,
            name,
        )
    except restate.TerminalError as e:
        log.warning("The score of claim %s was refused for good: %s", request.claim_id, e)


EVALUATION = Checked(
    EvaluationRequest, example='{"claim_id": "...", "outcome": {...}} (sent by ClaimWorkflow)'
)


@claim_judge.handler(input_serde=EVALUATION)
async def evaluate(ctx: ObjectContext, request: EvaluationRequest) -> JudgeResult:
    request = accepted(request)
    faults.evaluation_started(request.claim_id)
    ctx.set(names.JUDGE_REQUEST_KEY, request)  # what a later re-judging scores again
    result = await judge_claim(request, _run_durably)
    ctx.set(names.JUDGE_RESULT_KEY, result)
    await _score(ctx, request, result, names.SCORE)
    return result


class RejudgeRequest(BaseModel):
    """Score a judged claim again under another version of the judge's prompt."""

    judge_version: int


@claim_judge.handler(name=names.JUDGE_REJUDGE)
async def rejudge(ctx: ObjectContext, request: RejudgeRequest) -> JudgeResult:
    """The claim's decision scored again by judge prompt `judge_version`, from the evidence its
    first judging kept (the claim does not run again). Under one version a claim is judged once:
    asking again answers the verdict kept. The score is `quality-judge-v<N>` on the claim's
    trace, beside the first `quality`."""
    key = names.rejudge_state_key(request.judge_version)
    kept = await ctx.get(key, type_hint=JudgeResult)
    if kept is not None:
        return kept
    first = await ctx.get(names.JUDGE_REQUEST_KEY, type_hint=EvaluationRequest)
    if first is None:
        raise restate.TerminalError(
            f"Claim {ctx.key()!r} has no first judging to score again (it has not ended, its "
            "judge has not run yet, or it was judged before re-judging existed). Wait for its "
            "quality score, then re-judge.",
            status_code=409,
        )
    prompt = await step(names.FETCH_JUDGE_PROMPT, prompt_version, JUDGE, request.judge_version)
    again = first.model_copy(update={"judge_prompt": prompt})
    result = await judge_claim(again, _run_durably)
    ctx.set(key, result)
    await _score(ctx, again, result, names.rejudge_score_name(request.judge_version))
    return result


@claim_judge.handler(kind="shared")
async def verdict(ctx: ObjectSharedContext) -> JudgeResult:
    result = await ctx.get(names.JUDGE_RESULT_KEY, type_hint=JudgeResult)
    return result or JudgeResult(claim_id=ctx.key(), verdict=None)
