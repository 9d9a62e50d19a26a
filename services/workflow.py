"""`ClaimWorkflow`: one durable workflow per claim, keyed by the submission id.

Steps, as the journal names them: fetch prompts -> parse (call LLM) -> convert to EUR -> analyze
(call LLM, check fraud, lookup policy, call LLM) -> [awaiting review: the durable promise
`review`] -> reimburse -> evaluate (a one-way send to the judge). The logic is in `flow.py`."""

from __future__ import annotations

import json
from typing import Any

import restate
from agents import Agent
from restate import WorkflowContext, WorkflowSharedContext
from restate.ext.openai import DurableRunner

from . import faults, names
from .bodies import Checked, accepted
from .flow import process_claim
from .journal import journal_revision
from .judge import claim_judge, evaluate
from .models import ClaimOutcome, ClaimRequest, ClaimStatus, EvaluationRequest, Review
from .retries import RETRY_POLICY
from .steps import LLM_OPTIONS
from .tracing import trace_id_of

claim_workflow = restate.Workflow(names.WORKFLOW, invocation_retry_policy=RETRY_POLICY)
"""Retried fast (at most 0.5 s apart) and paused, never failed, when an outage outlasts the
window (`retries.py`)."""

SELF_NAMED_STEPS = frozenset(
    (names.FETCH_PROMPTS, names.VERIFY_DOCUMENTS, names.CONVERT, names.REIMBURSE,
     names.EVALUATE_STEP, names.DONE)
)  # fmt: skip
"""Steps whose own journal entry names them (a `ctx.run` of that name, the send to the judge,
the outcome): no SetState of the step for them (`DurableEnv.set_step`)."""

CLAIM_REQUEST = Checked(
    ClaimRequest, example='{"document": "<the claim text>", "prompt_label": "production"}'
)
REVIEW = '{"reviewer": "<your name>", "note": "<why>"}'
APPROVAL = Checked(Review, example=REVIEW, defaults={"approved": True})
REJECTION = Checked(Review, example=REVIEW, defaults={"approved": False})


class DurableEnv:
    """Runs the claim's steps with Restate's durability."""

    def __init__(self, ctx: WorkflowContext, request: ClaimRequest | None = None) -> None:
        self.ctx = ctx
        self._step: str | None = None
        self.request = request

    def trace_id(self) -> str | None:
        # the same on every attempt (only the span id changes), so replays send the same payload
        return trace_id_of(self.ctx.request().attempt_headers.get("traceparent"))

    async def run_agent(self, agent: Agent, input: str) -> Any:
        return await DurableRunner.run(agent, input, run_options=LLM_OPTIONS)

    def set_step(self, name: str) -> None:
        """Journal the step only where nothing else in the journal says it (a SetState is a
        journal entry, replicated and applied like any other): a step that is one `ctx.run` of
        the same name, or the instant send to the judge, is named by its own entry, and the
        outcome marks a claim done (`status` answers DONE then). The model calls of the agents
        (`call LLM`) and the review wait are named by the step state; so is the step after the
        review, which must clear `awaiting review` (approve and reject check it)."""
        if (
            name in SELF_NAMED_STEPS
            and self._step != names.AWAITING_REVIEW
            and journal_revision() >= 2  # revision 1 journaled every step (versions.py)
        ):
            return
        self.ctx.set(names.STEP_KEY, name)
        self._step = name

    async def await_review(self) -> Review:
        request = self.request
        if request is not None and request.review_policy is not None:  # an experiment's policy
            approved = request.review_policy == "approve"
            return Review(
                approved=approved,
                reviewer=f"experiment {request.experiment or ''}".strip(),
                note=f"the experiment's review policy ({request.review_policy})",
            )
        if request is not None and request.experiment:  # it frees the claim's slot meanwhile
            self.ctx.generic_send(
                names.EXPERIMENT,
                names.ITEM_WAITING,
                json.dumps(self.ctx.key()).encode(),
                key=request.experiment,
            )

        async def decision() -> Review:
            return await self.ctx.promise(names.REVIEW_PROMISE, type_hint=Review).value()

        return await faults.boundary(names.AWAITING_REVIEW, decision)

    async def send_evaluation(self, request: EvaluationRequest) -> None:
        async def send() -> None:
            sent = self.ctx.object_send(evaluate, key=request.claim_id, arg=request)
            await sent.invocation_id()  # Restate recorded the send: the judge will run, once

        await faults.boundary(names.EVALUATE_STEP, send)


@claim_workflow.main(input_serde=CLAIM_REQUEST)
async def run(ctx: WorkflowContext, request: ClaimRequest) -> ClaimOutcome:
    """`request` is a ClaimRequest or, for a bad body, the reason (answered HTTP 400)."""
    request = accepted(request)
    outcome = await process_claim(ctx.key(), request, DurableEnv(ctx, request))
    ctx.set(names.OUTCOME_KEY, outcome)
    return outcome


@claim_workflow.handler()
async def status(ctx: WorkflowSharedContext) -> ClaimStatus:
    """Where the claim is now; readable while it runs. The step is the last one the workflow
    recorded (`DurableEnv.set_step`); a step that is one `ctx.run` shows in the journal
    instead (`workbench.frames.journal_step` reads both)."""
    if journal_revision() < 2:  # the step first, as revision 1 read it
        step = await ctx.get(names.STEP_KEY, type_hint=str) or names.NOT_STARTED
        outcome = await ctx.get(names.OUTCOME_KEY, type_hint=ClaimOutcome)
        return ClaimStatus(claim_id=ctx.key(), step=step, outcome=outcome)
    outcome = await ctx.get(names.OUTCOME_KEY, type_hint=ClaimOutcome)
    if outcome is not None:
        return ClaimStatus(claim_id=ctx.key(), step=names.DONE, outcome=outcome)
    step = await ctx.get(names.STEP_KEY, type_hint=str) or names.NOT_STARTED
    return ClaimStatus(claim_id=ctx.key(), step=step, outcome=None)


async def _decide(ctx: WorkflowSharedContext, review: Review) -> ClaimStatus:
    step = await ctx.get(names.STEP_KEY, type_hint=str)
    if step != names.AWAITING_REVIEW:
        raise restate.TerminalError(
            f"Claim {ctx.key()!r} is not waiting for review "
            f"(its step is {step or 'not started'!r}).",
            status_code=409,
        )
    await ctx.promise(names.REVIEW_PROMISE, type_hint=Review).resolve(review)
    return ClaimStatus(claim_id=ctx.key(), step=names.REVIEW_DECIDED)


@claim_workflow.handler(input_serde=APPROVAL)
async def approve(ctx: WorkflowSharedContext, review: Review) -> ClaimStatus:
    return await _decide(ctx, accepted(review).model_copy(update={"approved": True}))


@claim_workflow.handler(input_serde=REJECTION)
async def reject(ctx: WorkflowSharedContext, review: Review) -> ClaimStatus:
    return await _decide(ctx, accepted(review).model_copy(update={"approved": False}))


__all__ = ["claim_workflow", "claim_judge"]
