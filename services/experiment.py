"""`Experiment`: prompt variants compared on the same documents, as one durable workflow keyed by
the experiment's name; and `ExperimentRejudge`, which scores its finished claims again under
another judge version.

`Experiment.run(ExperimentRequest)`:
1. **resolve prompts** (one durable step): each variant's prompt label, or `{prompt: version}`,
   becomes the versions of all three prompts, fixed for the whole experiment (a label moved
   meanwhile changes nothing). The judge is the same for every variant (the production judge
   when the experiment starts) unless a variant names `claim-judge`, so scores compare;
2. one claim per (document, variant, repeat), with the id `experiment:variant:document:repeat`
   (`names.experiment_claim_id`), at most `concurrency` at a time. Each claim is started
   one-way (it gets its own trace, as if submitted alone) and awaited by its invocation id.
   Restate gives a workflow key one run only, so a claim started before under the same id is
   attached to, never run twice;
3. claims that wait for review: with the policy `approve` or `reject` the claim settles at once
   (its `ClaimRequest.review_policy`); with `leave` it tells the experiment (`item_waiting`)
   that it waits for a human, its slot goes to the next claim, and the experiment ends once the
   humans decided;
4. each finished item is kept in the workflow's state (`item/<claim id>`: the claim's outcome),
   readable through Restate's SQL `state` table without running anything; the workflow, its
   state and its answer are kept `EXPERIMENT_RETENTION` after it ended.

A crash of the services or of Restate replays the journal: the claims started, finished and
kept are not started again. The Langfuse side (dataset, runs, run items) is the workbench's.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Callable
from datetime import timedelta
from typing import Any

import restate
from restate import RunOptions, WorkflowContext, WorkflowSharedContext

from . import names
from .experiment_types import (
    ExperimentRequest,
    ExperimentSummary,
    RejudgeBatch,
    RejudgeSummary,
    Variant,
    plan,
)
from .faults import env_int
from .judge import JudgeResult, RejudgeRequest, rejudge
from .models import ClaimOutcome, ClaimRequest
from .prompts import DEFAULT_LABEL, JUDGE, prompt_set
from .workflow import RETRY_POLICY
from .workflow import run as claim_run

EXPERIMENT_RETENTION = timedelta(days=env_int("WORKBENCH_EXPERIMENT_RETENTION_DAYS", 30))
"""How long a finished experiment (its items and answer) stays readable in Restate. Its claims'
own state lasts Restate's default workflow retention (a day); Langfuse keeps the traces, the
dataset runs and the scores for good."""

RESOLVE_OPTIONS = RunOptions(
    max_attempts=5, initial_retry_interval=timedelta(milliseconds=200), retry_interval_factor=2.0
)

experiment_workflow = restate.Workflow(names.EXPERIMENT, invocation_retry_policy=RETRY_POLICY)
rejudge_workflow = restate.Workflow(names.REJUDGE, invocation_retry_policy=RETRY_POLICY)


async def resolve_variants(variants: dict[str, Variant]) -> dict[str, dict[str, int]]:
    """Each variant's prompt versions, fixed once; the same judge for all unless a variant pins
    one."""
    judge = (await prompt_set(DEFAULT_LABEL)).judge.version
    resolved = {}
    for name, variant in variants.items():
        prompts = await prompt_set(variant.label or DEFAULT_LABEL, variant.versions)
        versions = prompts.versions()
        if JUDGE not in variant.versions:
            versions[JUDGE] = judge
        resolved[name] = versions
    return resolved


async def _resolve(variants: dict[str, Variant]) -> dict[str, dict[str, int]]:
    try:
        return await resolve_variants(variants)
    except (LookupError, ValueError) as e:  # an unknown label or version: no retry fixes it
        raise restate.TerminalError(f"The experiment cannot start: {e}", status_code=400) from e


def _waiting_promise(claim_id: str) -> str:
    return f"waiting/{claim_id}"


class _Window:
    """At most `size` invocations in flight: each started one-way (`start` returns the send
    handle) and awaited by its invocation id; `park(key)` frees a slot while that invocation
    keeps running (a claim that waits for a human)."""

    def __init__(self, ctx: Any, size: int, result_type: type) -> None:
        self.ctx, self.size, self.result_type = ctx, size, result_type
        self.active: dict[str, Any] = {}
        self.parked: dict[str, Any] = {}
        self.signals: dict[str, Any] = {}

    def has_room(self) -> bool:
        return len(self.active) < self.size

    def __bool__(self) -> bool:
        return bool(self.active or self.parked)

    async def start(self, batch: list[tuple[str, Callable[[], Any]]]) -> None:
        handles = [(key, start()) for key, start in batch]  # sent together, then awaited
        for key, handle in handles:
            invocation_id = await handle.invocation_id()
            self.active[key] = self.ctx.attach_invocation(invocation_id, type_hint=self.result_type)

    def signal(self, key: str, future: Any) -> None:
        """`future` completing parks `key`."""
        self.signals[key] = future

    async def next(self) -> list[tuple[str, Any, str | None]]:
        """Wait until something completes; (key, result, error) of each invocation that ended.
        Parking happens here too (and returns nothing for it)."""
        watched: dict[int, tuple[str, str]] = {}
        futures = []
        for kind, table in (("done", self.active), ("done", self.parked), ("park", self.signals)):
            for key, future in table.items():
                watched[id(future)] = (kind, key)
                futures.append(future)
        completed, _ = await restate.wait_completed(*futures)
        ended = []
        for future in completed:
            kind, key = watched[id(future)]
            if kind == "park":
                self.signals.pop(key, None)
                if key in self.active:
                    self.parked[key] = self.active.pop(key)
                continue
            self.active.pop(key, None)
            self.parked.pop(key, None)
            self.signals.pop(key, None)
            try:
                ended.append((key, await future, None))
            except restate.TerminalError as e:  # killed or cancelled: no outcome
                ended.append((key, None, e.message or str(e)))
        return ended


async def _fan_out(
    window: _Window,
    keys: list[str],
    start: Callable[[str], Any],
    done: Callable[[str, Any, str | None], None],
    on_start: Callable[[str], None] | None = None,
) -> None:
    pending = list(reversed(keys))
    while pending or window:
        batch = []
        while pending and len(window.active) + len(batch) < window.size:
            key = pending.pop()
            batch.append((key, lambda key=key: start(key)))
        if batch:
            await window.start(batch)
            for key, _ in batch:
                if on_start is not None:
                    on_start(key)
        for key, result, error in await window.next():
            done(key, result, error)


@experiment_workflow.main(workflow_retention=EXPERIMENT_RETENTION, state_preload=False)
async def run(ctx: WorkflowContext, request: ExperimentRequest) -> ExperimentSummary:
    name = names.check_part("experiment", ctx.key())
    if problems := request.problems():
        raise restate.TerminalError(
            f"Experiment {name!r} cannot start: {'; '.join(problems)}.", status_code=400
        )
    ctx.set(names.DEFINITION_KEY, request.definition())
    versions = await ctx.run_typed("resolve prompts", _resolve, RESOLVE_OPTIONS, request.variants)
    ctx.set(names.VERSIONS_KEY, versions)
    items = {item.claim_id: item for item in plan(name, request)}
    texts = {d.id: d.text for d in request.documents}
    policy = None if request.review == "leave" else request.review
    statuses: Counter[str] = Counter()

    def start(claim_id: str) -> Any:
        item = items[claim_id]
        variant = request.variants[item.variant]
        claim = ClaimRequest(
            document=texts[item.document],
            prompt_label=variant.label or DEFAULT_LABEL,
            prompt_versions=versions[item.variant],
            review_policy=policy,
            experiment=name,
        )
        return ctx.workflow_send(claim_run, key=claim_id, arg=claim)

    def watch(claim_id: str) -> None:
        if policy is None:  # leave: the claim says when it waits for a human
            window.signal(claim_id, ctx.promise(_waiting_promise(claim_id)).value())

    def done(claim_id: str, outcome: Any, error: str | None) -> None:
        item = items[claim_id].model_copy(update={"outcome": outcome, "error": error})
        ctx.set(names.item_state_key(claim_id), item)
        statuses[outcome.status if outcome is not None else names.FAILED] += 1

    window = _Window(ctx, request.concurrency, ClaimOutcome)
    await _fan_out(window, list(items), start, done, on_start=watch)
    return ExperimentSummary(
        name=name, items=len(items), statuses=dict(statuses), versions=versions
    )


@experiment_workflow.handler(name=names.ITEM_WAITING, state_preload=False)
async def item_waiting(ctx: WorkflowSharedContext, claim_id: str) -> None:
    """A claim of this experiment waits for a human (review policy `leave`): its slot is free."""
    try:
        await ctx.promise(_waiting_promise(claim_id), type_hint=bool).resolve(True)
    except restate.TerminalError:
        pass  # told twice (a replayed claim): once is enough


@rejudge_workflow.main(name=names.RUN, workflow_retention=EXPERIMENT_RETENTION, state_preload=False)
async def rejudge_all(ctx: WorkflowContext, batch: RejudgeBatch) -> RejudgeSummary:
    """Every claim of `batch` scored again by judge prompt `judge_version` (the judge object's
    `rejudge`: one model call per claim, never two under one version), `concurrency` at a time.
    The verdicts stay in each claim's judge state (`rejudge/v<N>`) and go to Langfuse as the
    score `quality-judge-v<N>`."""
    if batch.judge_version < 1 or batch.concurrency < 1:
        raise restate.TerminalError(
            "judge_version and concurrency must be at least 1.", status_code=400
        )
    failed: dict[str, str] = {}
    judged = 0
    ask = RejudgeRequest(judge_version=batch.judge_version)

    def start(claim_id: str) -> Any:
        return ctx.object_send(rejudge, key=claim_id, arg=ask)

    def done(claim_id: str, result: Any, error: str | None) -> None:
        nonlocal judged
        if error is not None:
            failed[claim_id] = error
        else:
            judged += 1

    window = _Window(ctx, batch.concurrency, JudgeResult)
    await _fan_out(window, list(dict.fromkeys(batch.claim_ids)), start, done)
    return RejudgeSummary(
        experiment=batch.experiment,
        judge_version=batch.judge_version,
        judged=judged,
        failed=failed,
    )
