"""The claim's steps, in order, written once for two runtimes.

`process_claim` holds the business logic; an `Env` supplies what differs between running it as a
durable Restate workflow (`workflow.py`: journaled model calls and steps, a durable promise for the
human review, a one-way send to the judge) and running the same agents in-process (`InProcessEnv`,
the baseline the benchmark compares against)."""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable
from datetime import date
from functools import cache
from pathlib import Path
from typing import Any, Protocol

from agents import Agent, AgentsException, Runner
from restate import TerminalError

from . import faults, names, reference_data, tracing, versions
from .analyst_agent import analyst_agent
from .config import settings
from .judge import JudgeResult, judge_claim
from .ledger import Ledger
from .models import (
    AnalystInput,
    ClaimAssessment,
    ClaimData,
    ClaimOutcome,
    ClaimRequest,
    EvaluationRequest,
    Payment,
    PromptRef,
    PromptSet,
    Review,
    Valuation,
)
from .parser_agent import parser_agent
from .prompts import UnknownPromptLabelError, prompt_set
from .steps import step

REQUIRED_FIELDS = ("customer_id", "amount", "currency", "category")
MIN_EUR = 0.01
"""An amount worth less than one cent in EUR is not an amount anyone can be paid."""


class Env(Protocol):
    def trace_id(self) -> str | None: ...
    async def run_agent(self, agent: Agent, input: str) -> Any: ...
    def set_step(self, name: str) -> None: ...
    async def await_review(self) -> Review: ...
    async def send_evaluation(self, request: EvaluationRequest) -> None: ...


class ClaimFailed(Exception):
    """Ends a claim with a terminal outcome (invalid input, or a step that failed for good)."""

    def __init__(self, status: str, reason: str, **fields: Any) -> None:
        super().__init__(reason)
        self.status, self.reason, self.fields = status, reason, fields


@cache
def _ledger(path: Path) -> Ledger:
    return Ledger(path)


def _pay(claim_id: str, customer_id: str, amount_eur: float) -> Payment:
    ledger = _ledger(settings().ledger_path)
    key = versions.payment_key(settings().service_version, claim_id)
    return ledger.pay(key, claim_id, customer_id, amount_eur)


def _missing(claim: ClaimData) -> list[str]:
    missing = [f for f in REQUIRED_FIELDS if getattr(claim, f) in (None, "")]
    if claim.amount is not None and claim.amount <= 0:
        missing.append("a positive amount")
    return missing


async def _fetch_prompts(label: str, versions: dict[str, int]) -> PromptSet:
    try:
        return await step("fetch prompts", prompt_set, label, versions)
    except (UnknownPromptLabelError, TerminalError) as e:
        raise ClaimFailed("invalid", str(getattr(e, "message", e))) from None


async def _agent(env: Env, agent: Agent, input: str, what: str, prompt: PromptRef) -> Any:
    failed_tools = faults.terminal_failures()
    try:
        with tracing.prompt_in_use(prompt.name, prompt.version):
            result = await env.run_agent(agent, input)
    except (AgentsException, TerminalError) as e:
        message = getattr(e, "message", None) or str(e)
        raise ClaimFailed("failed", f"The {what} failed for good: {message}") from None
    except BaseException:
        if not failed_tools:
            raise
        # a tool failed for good; the cancellation of its sibling tools left the run instead
        raise ClaimFailed("failed", f"The {what} failed for good: {failed_tools[0]}") from None
    return result.final_output


async def _value(claim: ClaimData) -> Valuation:
    """The amount in EUR and the facts the checks below need, in ONE journaled step.

    "Today" is read inside this step (`reference_data.value_claim`), so it is part of the step's
    journaled result: a claim retried or replayed days later is checked against the day it was
    first valued, and the analyst sees the same submission day. Reading the clock in the workflow
    code itself would give a replay a different day (and possibly a different outcome)."""
    try:
        return await step(
            "convert to EUR", reference_data.value_claim, claim.amount, claim.currency,
            claim.customer_id,
        )  # fmt: skip
    except (reference_data.UnknownCurrencyError, TerminalError) as e:
        raise ClaimFailed("invalid", str(getattr(e, "message", e))) from None


def nonsense(claim: ClaimData, valuation: Valuation) -> str | None:
    """Why the amount or the date cannot be right, or None. Pure: the same journaled inputs give
    the same answer on every replay."""
    exact = float(claim.amount or 0.0) * valuation.rate
    if exact < MIN_EUR:
        return (
            f"The amount {claim.amount:g} {claim.currency} is {exact:.4f} EUR, less than one "
            f"cent ({MIN_EUR:.2f} EUR): not an amount that can be paid. Check the amount in the "
            "document and submit it under a new id."
        )
    if not claim.claim_date:
        return None  # a missing date is allowed (the parser lists it among its problems)
    try:
        expense = date.fromisoformat(claim.claim_date)
    except ValueError:
        return (
            f"The claim date {claim.claim_date!r} is not a date (YYYY-MM-DD). Fix the date in "
            "the document and submit it under a new id."
        )
    today = date.fromisoformat(valuation.today)
    if expense > today:
        return (
            f"The expense date {expense} is after today ({today}): a claim is for an expense "
            "that has happened. Check the date in the document and submit it under a new id."
        )
    if valuation.policy_start and expense < date.fromisoformat(valuation.policy_start):
        return (
            f"The expense date {expense} is before the policy of {claim.customer_id} began "
            f"({valuation.policy_start}): it is outside the policy's window."
        )
    return None


async def process_claim(claim_id: str, request: ClaimRequest, env: Env) -> ClaimOutcome:
    tracing.set_claim(claim_id)
    faults.attempt_started(claim_id)
    base: dict[str, Any] = {
        "claim_id": claim_id,
        "prompt_label": request.prompt_label,
        "service_version": settings().service_version,
        "trace_id": env.trace_id(),
    }
    assessment: ClaimAssessment | None = None
    prompts: PromptSet | None = None
    try:
        env.set_step("fetch prompts")
        prompts = await _fetch_prompts(request.prompt_label, request.prompt_versions)
        base["prompt_versions"] = prompts.versions()

        env.set_step("parse")
        claim: ClaimData = await _agent(
            env, parser_agent(prompts.parser), request.document, "parser", prompts.parser
        )
        base["claim"] = claim
        if missing := _missing(claim):
            problems = "; ".join(claim.problems) or "none reported"
            raise ClaimFailed(
                "invalid",
                f"The document lacks {', '.join(missing)} (parser problems: {problems}). "
                "Fix the document and submit it under a new id.",
            )

        if versions.verifies_documents(settings().service_version):  # v2: one more step
            env.set_step("verify documents")
            await step("verify documents", versions.verify_documents, claim)

        env.set_step("convert to EUR")
        valuation = await _value(claim)
        amount_eur = valuation.amount_eur
        base["amount_eur"] = amount_eur
        base["submitted_on"] = valuation.today
        if problem := nonsense(claim, valuation):
            raise ClaimFailed("invalid", problem)

        env.set_step("analyze")
        analyst_input = AnalystInput(
            claim=claim, amount_eur=amount_eur, submitted_on=valuation.today
        ).model_dump_json()
        assessment = await _agent(
            env, analyst_agent(prompts.analyst), analyst_input, "analyst", prompts.analyst
        )
        base["decision"] = assessment.decision
        if assessment.unrecognized_clauses:
            base["unrecognized_clauses"] = assessment.unrecognized_clauses
            tracing.warning(
                "clauses not applied",
                f"The analyst could not apply {len(assessment.unrecognized_clauses)} clause(s) of "
                f"{prompts.analyst.name} v{prompts.analyst.version}: "
                + "; ".join(assessment.unrecognized_clauses),
            )
        decision, reason = assessment.decision, assessment.reason

        if decision == "review":
            env.set_step(names.AWAITING_REVIEW)
            review = await env.await_review()
            base["reviewed_by"] = review.reviewer
            decision = "approve" if review.approved else "reject"
            verdict = "approved" if review.approved else "rejected"
            reason = f"{reason} Reviewer {review.reviewer} {verdict}: {review.note or 'no note'}."

        if decision == "approve":
            env.set_step("reimburse")
            try:
                payment = await step("reimburse", _pay, claim_id, claim.customer_id, amount_eur)
            except TerminalError as e:
                raise ClaimFailed("failed", f"The payment failed for good: {e.message}") from None
            outcome = ClaimOutcome(
                **base,
                status="paid",
                reason=reason,
                paid_eur=payment.amount_eur,
                payment_id=payment.payment_id,
            )
        else:
            outcome = ClaimOutcome(**base, status="rejected", reason=reason)
    except ClaimFailed as failed:
        outcome = ClaimOutcome(
            **{**base, **failed.fields}, status=failed.status, reason=failed.reason
        )

    env.set_step("evaluate")
    await env.send_evaluation(
        EvaluationRequest(
            claim_id=claim_id,
            outcome=outcome,
            assessment=assessment,
            prompt_label=request.prompt_label,
            judge_prompt=prompts.judge if prompts else None,
            trace_id=base["trace_id"],
            document=request.document,
            analyst_prompt=prompts.analyst if prompts else None,
            submitted_on=base.get("submitted_on"),
        )
    )
    env.set_step("done")
    return outcome


class InProcessEnv:
    """The same agents without Restate: no journal, no durable review; the judge runs as a
    background task (`drain()` waits for the ones started)."""

    def __init__(self, review: Callable[[], Awaitable[Review]] | None = None) -> None:
        self._review = review
        self.steps: list[str] = []
        self.evaluations: list[asyncio.Task[JudgeResult]] = []

    def trace_id(self) -> str | None:
        return None

    async def run_agent(self, agent: Agent, input: str) -> Any:
        return await Runner.run(agent, input)

    def set_step(self, name: str) -> None:
        self.steps.append(name)

    async def await_review(self) -> Review:
        if self._review is None:
            return Review(approved=True, reviewer="in-process (auto)", note="no human in-process")
        return await self._review()

    async def send_evaluation(self, request: EvaluationRequest) -> None:
        self.evaluations.append(asyncio.ensure_future(judge_claim(request, Runner.run)))

    async def drain(self) -> list[JudgeResult]:
        results = await asyncio.gather(*self.evaluations)
        self.evaluations.clear()
        return results
