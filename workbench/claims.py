"""Claims: submit them, read them back, decide the ones that wait for a human, resume paused ones.

    import workbench as wb
    c = wb.claims.submit(wb.samples.get("claim-001"))   # waits until it ended (or awaits review)
    batch = wb.claims.submit_many(wb.samples.pick(20))  # 8 at a time, with a progress bar
    wb.claims.approve(waiting)                           # a Claim, a ClaimBatch, an id, a list
    wb.claims.get("claim-001").journal

Claims are Restate workflows keyed by their id: submitting an id twice attaches to the first run
(same outcome, never paid twice). A claim's status comes from the workflow's own state (its step,
its outcome) and from Restate's record of the invocation, so a claim that was cancelled, killed
or paused says so. Every helper that takes claims accepts a `Claim`, a `ClaimBatch`, a claim id,
or a list of them. The sync methods here and the async ones of `wb.aio.claims` are the same
code: the sync ones run it on the workbench's private event loop (`workbench._aio`).
"""

from __future__ import annotations

import asyncio
import html
import re
import textwrap
import time
import uuid
from collections.abc import Awaitable, Callable, Iterable, Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

import httpx
import pandas as pd
from pydantic import ValidationError

from services import names
from services.models import ClaimOutcome, ClaimRequest, Review

from ._aio import run_sync
from .clients.restate import UNAVAILABLE, error_message
from .errors import (
    ClaimError,
    ClaimNotFoundError,
    ClaimStateError,
    ClaimTimeoutError,
    RestateError,
    UnknownPromptLabelError,
)
from .frames import as_table, journal_frame, step_journal
from .frames import journal_step as step_of_journal
from .progress import Progress
from .samples import Sample
from .session import Namespace, Session, module_namespace, resolve

if TYPE_CHECKING:
    from .faults import Fault

__all__ = [
    "AsyncClaims",
    "Claim",
    "ClaimBatch",
    "Claims",
    "ClaimsLike",
    "claim_ids",
    "new_claim_id",
]

OUTAGE_TIMEOUT_S = 120.0
"""How long a wait outlasts Restate being unreachable (killed, restarting) before giving up."""
POLL_INTERVAL_S = 0.5
_ID = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._:-]{0,127}$")

RUNNING = "running"
PAUSED = "paused"
RETRYING = "retrying"
CANCELLED = "cancelled"
KILLED = "killed"
ENDED = frozenset({*names.FINAL_STATUSES, CANCELLED, KILLED})
"""Statuses after which nothing more happens to a claim."""


# -- claims and their references -------------------------------------------------------------------
@dataclass
class Claim:
    """A submitted claim as Restate knows it now.

    `status` is running, retrying (Restate backs off after a failure), awaiting review, paused
    (Restate stopped retrying: see `last_error`, resume with `wb.claims.resume(claim)`), paid,
    rejected, invalid, failed, cancelled or killed; `outcome` is set once the workflow ended
    with one; `step` is where the workflow is. `refresh()` reads it again, in place.

    Example:
        >>> c = wb.claims.submit(doc)
        >>> c.status, c.outcome.paid_eur
        ('paid', 120.0)
    """

    id: str
    status: str
    step: str = ""
    outcome: ClaimOutcome | None = None
    invocation_id: str | None = None
    last_error: str | None = None
    """Restate's last failure of the workflow (for a retrying, paused or failed claim)."""
    session: Session | None = field(default=None, repr=False, compare=False)

    @property
    def done(self) -> bool:
        """The claim ended: nothing more will happen to it."""
        return self.status in ENDED

    @property
    def awaiting_review(self) -> bool:
        return self.status == names.AWAITING_REVIEW

    def _session(self) -> Session:
        return resolve(self.session)

    def _journal_rows(self) -> list[dict[str, Any]]:
        restate = self._session().restate
        if not self.invocation_id:
            invocation = run_sync(restate.invocation(names.WORKFLOW, self.id))
            if invocation is None:
                return []
            self.invocation_id = invocation["id"]
        return run_sync(restate.journal(self.invocation_id))

    @property
    def journal(self) -> pd.DataFrame:
        """What Restate recorded for the claim, one row per step: the step (a model call is named
        after the step it was made in), its kind, its result (a short digest) or error, when,
        how long it took, and which attempt of the workflow recorded it. The raw entries are
        `journal_entries`.

        Example:
            >>> c.journal[["step", "kind", "result", "attempt"]]
        """
        events = self._session().fault_store.events(self.id)
        starts = [e["at"] for e in events if e["event"] == "attempt"]
        return step_journal(self._journal_rows(), starts)

    @property
    def journal_entries(self) -> pd.DataFrame:
        """The workflow's journal as Restate stores it (`sys_journal`), one row per entry: index,
        entry type, name, a short detail, when it was appended (state updates included).

        Example:
            >>> c.journal_entries.query("entry_type == 'Command: Run'")["name"].tolist()
            ['fetch prompts', 'call LLM', 'convert to EUR', ...]
        """
        return journal_frame(self._journal_rows())

    @property
    def attempts(self) -> Any:
        """How often Restate tried the claim, its last failure, and each attempt the services
        saw (with its pid): `workbench.faults` evidence.

        Example:
            >>> c.attempts.retries, c.attempts.processes
            (1, 2)
        """
        return self._session().faults.attempts(self)

    def timeline(self, *, live: bool = True) -> Any:
        """This claim on one time axis, as a widget (see `wb.claims.timeline`).

        Example:
            >>> c.timeline()
        """
        return Claims(self.session).timeline(self, live=live)

    def refresh(self) -> Claim:
        """Read the claim again (status, step, outcome, last error), in place; returns self.

        Example:
            >>> waiting.refresh().status
            'paid'
        """
        fresh = run_sync(AsyncClaims(self.session).get(self.id))
        self._update(fresh)
        return self

    def _update(self, fresh: Claim) -> None:
        self.status, self.step, self.outcome = fresh.status, fresh.step, fresh.outcome
        self.invocation_id = fresh.invocation_id or self.invocation_id
        self.last_error = fresh.last_error

    def row(self) -> dict[str, Any]:
        """The claim as one table row (what `ClaimBatch.to_frame()` shows)."""
        o = self.outcome
        c = o.claim if o else None
        return {
            "id": self.id,
            "status": self.status,
            "customer": c.customer_id if c else None,
            "category": c.category if c else None,
            "amount": c.amount if c else None,
            "currency": c.currency if c else None,
            "amount_eur": o.amount_eur if o else None,
            "paid_eur": o.paid_eur if o else None,
            "reason": o.reason if o else (self.last_error or self.step),
        }

    def __repr__(self) -> str:
        """Several short lines, wrapped at word boundaries (a notebook shows them whole)."""
        head = f"Claim {self.id}: {self.status.upper()}"
        lines = [head if self.done else f"{head} at step {self.step!r}"]
        o = self.outcome
        if o is not None and o.claim is not None and o.claim.amount is not None:
            c = o.claim
            money = f"{c.amount:,.2f} {c.currency or '?'}"
            if o.amount_eur is not None and c.currency != "EUR":
                money += f" = {o.amount_eur:,.2f} EUR"
            lines.append(f"{c.customer_id or '?'} · {c.category or '?'} · {money}")
        if o is not None and o.paid_eur is not None:
            lines.append(f"paid {o.paid_eur:,.2f} EUR ({o.payment_id})")
        if o is not None and o.reviewed_by:
            lines.append(f"reviewed by {o.reviewed_by}")
        if o is not None and o.reason:
            lines += textwrap.wrap(f"reason: {o.reason}", 96, subsequent_indent="  ")
        if self.last_error:
            lines += textwrap.wrap(f"last error: {self.last_error}", 96, subsequent_indent="  ")
        for clause in o.unrecognized_clauses if o is not None else []:
            lines += textwrap.wrap(f"clause not applied: {clause}", 96, subsequent_indent="  ")
        if self.status == PAUSED:
            lines.append(f"resume with wb.claims.resume({self.id!r})")
        if o is not None and o.prompt_versions:
            versions = ", ".join(f"{k} v{v}" for k, v in sorted(o.prompt_versions.items()))
            lines.append(f"prompts: {versions}")
        return "\n  ".join(lines)

    def _repr_html_(self) -> str:
        cell = "<tr><th style='text-align:left'>{}</th><td style='text-align:left'>{}</td></tr>"
        rows = "".join(
            cell.format(html.escape(k), html.escape(str(v)))
            for k, v in self.row().items()
            if v is not None
        )
        if self.outcome and self.outcome.prompt_versions:
            versions = ", ".join(
                f"{k} v{v}" for k, v in sorted(self.outcome.prompt_versions.items())
            )
            rows += cell.format("prompts", html.escape(versions))
        if self.status == PAUSED:
            rows += cell.format("resume", f"<code>wb.claims.resume({self.id!r})</code>")
        if self.last_error:
            rows += cell.format("last error", html.escape(self.last_error))
        if self.outcome and self.outcome.unrecognized_clauses:
            clauses = "<br>".join(html.escape(c) for c in self.outcome.unrecognized_clauses)
            rows += cell.format("clauses not applied", clauses)
        link = self._trace_link()
        if link:
            rows += cell.format("trace", link)
        return f"<table>{rows}</table>"

    def _trace_link(self) -> str | None:
        """A link to the claim's trace in Langfuse's UI, when there is one to show."""
        if self.outcome is None or not self.outcome.trace_id:
            return None
        session = self._session()
        if not session.has_langfuse:
            return None
        try:
            url = session.langfuse.trace_url(self.outcome.trace_id)
        except Exception:  # Langfuse unreachable: the repr shows the rest
            return None
        return (
            f"<a href='{html.escape(url)}' target='_blank'>{html.escape(self.outcome.trace_id)}</a>"
        )


class ClaimBatch(list):
    """Claims, in the order they were submitted (a list of `Claim`).

    Example:
        >>> batch = wb.claims.submit_many(wb.samples.pick(20))
        >>> batch.summary()          # claims and EUR paid per status
        >>> batch.plot()             # the same as a bar chart
    """

    @property
    def ids(self) -> list[str]:
        return [c.id for c in self]

    def to_frame(self) -> pd.DataFrame:
        """One row per claim: id, status, customer, category, amounts, reason."""
        columns = list(Claim("", "").row())
        return as_table(pd.DataFrame([c.row() for c in self], columns=columns))

    def summary(self) -> pd.DataFrame:
        """Claims and EUR paid per status."""
        frame = self.to_frame()
        return as_table(
            frame.groupby("status", dropna=False)
            .agg(claims=("id", "count"), paid_eur=("paid_eur", "sum"))
            .sort_values("claims", ascending=False)
        )

    def plot(self, ax: Any = None) -> Any:
        """Claims per status as bars, with the EUR paid on them; returns the Axes."""
        from .charts import outcome_bars

        return outcome_bars(self.to_frame(), ax=ax)

    def refresh(self) -> ClaimBatch:
        """Read every claim again, in place; returns self."""
        for claim in self:
            claim.refresh()
        return self

    def awaiting_review(self) -> ClaimBatch:
        """The claims of this batch that wait for a human decision, as last read (`refresh()`
        first to see decisions made elsewhere since).

        Example:
            >>> wb.claims.approve(batch.refresh().awaiting_review(), reviewer="ana")
        """
        return ClaimBatch(claim for claim in self if claim.awaiting_review)

    def _repr_html_(self) -> str:
        return self.summary()._repr_html_()


ClaimsLike = Claim | ClaimBatch | str | Iterable[Claim | str]
"""What every helper that takes claims accepts."""


def claim_ids(claims: ClaimsLike) -> list[str]:
    """The ids of a `Claim`, a `ClaimBatch`, a claim id, or a list of them (checked)."""
    if isinstance(claims, Claim):
        return [claims.id]
    if isinstance(claims, str):
        return [check_id(claims)]
    ids = []
    for item in claims:
        if isinstance(item, Claim):
            ids.append(item.id)
        elif isinstance(item, str):
            ids.append(check_id(item))
        else:
            raise TypeError(
                f"Claims are given as Claim objects, claim ids, or a list of them; got "
                f"{type(item).__name__} {item!r}."
            )
    return ids


def _single(claims: ClaimsLike) -> bool:
    return isinstance(claims, Claim | str)


def check_id(claim_id: str) -> str:
    """`claim_id`, if it is a valid claim id (raises ValueError saying what is valid)."""
    if not isinstance(claim_id, str) or not _ID.match(claim_id):
        raise ValueError(
            f"Claim id {claim_id!r} is not valid: use 1-128 letters, digits, '.', '_', ':' or '-', "
            "starting with a letter or digit."
        )
    return claim_id


def new_claim_id(prefix: str = "claim") -> str:
    """A fresh claim id such as `claim-3f9a0c12de`."""
    return f"{prefix}-{uuid.uuid4().hex[:10]}"


# -- the async implementation --------------------------------------------------------------------
class AsyncClaims(Namespace):
    """The claim helpers as coroutines (`wb.aio.claims`): for code that runs its own event loop.
    The same methods as `wb.claims`, awaited."""

    label = "wb.aio.claims"

    # -- requests --------------------------------------------------------------------------------
    def request(
        self,
        claim: str | ClaimRequest | Sample,
        prompt_label: str | None = None,
        *,
        known_labels: set[str] | None = None,
    ) -> ClaimRequest:
        """Validate a claim before anything is sent (ValueError with the reason)."""
        if isinstance(claim, Sample):
            claim = claim.document
        if isinstance(claim, ClaimRequest):
            request = (
                claim
                if prompt_label is None
                else claim.model_copy(update={"prompt_label": prompt_label})
            )
        elif isinstance(claim, str):
            try:
                request = ClaimRequest(document=claim, prompt_label=prompt_label or "production")
            except ValidationError as e:
                raise ValueError(e.errors()[0]["msg"].removeprefix("Value error, ")) from None
        else:
            raise TypeError(
                "A claim is a document string, a ClaimRequest or a workbench Sample; got "
                f"{type(claim).__name__}."
            )
        labels = known_labels if known_labels is not None else self.session.prompts.known_labels()
        if request.prompt_label not in labels:
            raise UnknownPromptLabelError(
                f"Prompt label {request.prompt_label!r} is on no prompt. Known labels: "
                f"{', '.join(sorted(labels))}. Pass one of them, or give a prompt version that "
                "label first (workbench.prompts.promote(name, version, label))."
            )
        return request

    async def submit(
        self,
        claim: str | ClaimRequest | Sample,
        id: str | None = None,
        *,
        wait: bool = True,
        prompt_label: str | None = None,
        faults: Sequence[Fault] | None = None,
        poll_interval_s: float = POLL_INTERVAL_S,
    ) -> Claim:
        """See `Claims.submit`."""
        request = self.request(claim, prompt_label)
        return await self._submit(
            request,
            check_id(id) if id is not None else new_claim_id(),
            wait,
            faults,
            poll_interval_s,
        )

    async def _submit(
        self,
        request: ClaimRequest,
        claim_id: str,
        wait: bool,
        faults: Sequence[Fault] | None,
        poll_interval_s: float,
    ) -> Claim:
        session = self.session
        if faults:
            session.faults.plan(claim_id, list(faults))
        body = request.model_dump_json()
        restate = session.restate
        if wait:
            return await self._wait(
                claim_id,
                lambda: restate.run_workflow(names.WORKFLOW, claim_id, body),
                poll_interval_s,
            )
        response = await restate.post(f"/{names.WORKFLOW}/{claim_id}/{names.RUN}/send", body)
        if not response.is_success:
            raise ClaimError(
                f"Submitting claim {claim_id!r} failed: HTTP {response.status_code}: "
                f"{error_message(response)}"
            )
        invocation_id = response.json().get("invocationId")
        return Claim(claim_id, RUNNING, "submitted", invocation_id=invocation_id, session=session)

    async def submit_many(
        self,
        claims: Iterable[str | ClaimRequest | Sample | tuple[str, Any]],
        *,
        concurrency: int = 8,
        prompt_label: str | None = None,
        progress: bool = True,
    ) -> ClaimBatch:
        """See `Claims.submit_many`."""
        if concurrency < 1:
            raise ValueError(f"concurrency must be at least 1; got {concurrency}.")
        labels = self.session.prompts.known_labels()
        prepared = []  # everything is validated before anything is sent
        for item in claims:
            claim_id, claim = item if isinstance(item, tuple) and len(item) == 2 else (None, item)
            request = self.request(claim, prompt_label, known_labels=labels)
            prepared.append((check_id(claim_id) if claim_id else new_claim_id(), request))
        gate = asyncio.Semaphore(concurrency)

        async def one(claim_id: str, request: ClaimRequest) -> Claim:
            async with gate:
                return await self._submit(request, claim_id, True, None, POLL_INTERVAL_S)

        results: dict[str, Claim] = {}
        tasks = [asyncio.ensure_future(one(i, r)) for i, r in prepared]
        try:
            with Progress(len(tasks), "claims", enabled=progress) as bar:
                for next_done in asyncio.as_completed(tasks):
                    c = await next_done
                    results[c.id] = c
                    bar.update(c.status)
        finally:
            for task in tasks:
                task.cancel()
        return ClaimBatch(results[i] for i, _ in prepared)

    # -- reading ---------------------------------------------------------------------------------
    async def get(self, claim: Claim | str) -> Claim:
        """See `Claims.get` (one claim)."""
        return await self._read(claim_ids(claim)[0], journal_step=True)

    async def _read(self, claim_id: str, *, journal_step: bool) -> Claim:
        """The claim now; `journal_step`: a running claim's step read from its journal (one
        more query; waiting loops, which only look for a pause or the review, skip it)."""
        session = self.session
        invocation = await session.restate.invocation(names.WORKFLOW, claim_id)
        if invocation is None:
            raise ClaimNotFoundError(
                f"No claim {claim_id!r} was submitted to the Restate server at "
                f"{session.restate.ingress_url}."
            )
        try:
            state = await session.restate.call(names.WORKFLOW, claim_id, names.STATUS)
        except RestateError:  # not started yet, or its state is gone
            state = {"step": names.NOT_STARTED, "outcome": None}
        outcome = ClaimOutcome.model_validate(state["outcome"]) if state.get("outcome") else None
        step = str(state.get("step") or "")
        if journal_step and outcome is None and invocation.get("status") != "completed":
            # a step that is one ctx.run is named by its journal entry, not the step state
            step = step_of_journal(await session.restate.journal(invocation["id"])) or step
        status, error = _status(step, outcome, invocation)
        return Claim(
            claim_id,
            status,
            step,
            outcome,
            invocation["id"],
            error,
            session=session,
        )

    async def get_many(self, claims: ClaimsLike) -> ClaimBatch:
        """See `Claims.get` (several claims)."""
        return ClaimBatch(await asyncio.gather(*(self.get(i) for i in claim_ids(claims))))

    async def wait(
        self,
        claims: ClaimsLike,
        *,
        timeout_s: float = 120.0,
        until_review: bool = False,
    ) -> Claim | ClaimBatch:
        """See `Claims.wait`."""
        ids = claim_ids(claims)

        async def one(claim_id: str) -> Claim:
            restate = self.session.restate
            attach = self._wait(
                claim_id,
                lambda: restate.attach_workflow(names.WORKFLOW, claim_id),
                POLL_INTERVAL_S,
                stop_at_review=until_review,
            )
            try:
                return await asyncio.wait_for(attach, timeout_s)
            except TimeoutError:
                now = await self.get(claim_id)
                raise ClaimTimeoutError(
                    f"Claim {claim_id!r} did not end within {timeout_s:g} s: it is {now.status} "
                    f"at step {now.step!r}"
                    + (f" (last error: {now.last_error})" if now.last_error else "")
                    + f". wb.claims.get({claim_id!r}).attempts shows why."
                ) from None

        done = await asyncio.gather(*(one(i) for i in ids))
        return done[0] if _single(claims) else ClaimBatch(done)

    async def _wait(
        self,
        claim_id: str,
        result: Callable[[], Awaitable[httpx.Response]],
        poll_interval_s: float,
        *,
        stop_at_review: bool = True,
    ) -> Claim:
        """Until `result()` (a request answered with the workflow's output) answers, or the
        claim waits for a human, or Restate stopped working on it (paused, killed, cancelled).
        Restate going away meanwhile (killed, restarting) is waited out: the request,
        idempotent, is sent again until Restate answers."""
        session = self.session
        answer = asyncio.ensure_future(result())
        outage_since: float | None = None
        try:
            while True:
                done, _ = await asyncio.wait({answer}, timeout=poll_interval_s)
                if done:
                    try:
                        response = answer.result()
                        unavailable = response.status_code in UNAVAILABLE
                    except httpx.TransportError:
                        unavailable = True
                    if unavailable:
                        outage_since = outage_since or time.monotonic()
                        if time.monotonic() - outage_since > OUTAGE_TIMEOUT_S:
                            raise ClaimError(
                                f"Waiting for claim {claim_id!r}: Restate at "
                                f"{session.restate.ingress_url} did not answer for "
                                f"{OUTAGE_TIMEOUT_S:.0f} s. Is the stack running "
                                "(`python -m workbench status`)?"
                            )
                        answer = asyncio.ensure_future(_later(poll_interval_s, result))
                        continue
                    outage_since = None
                    if response.is_success:
                        outcome = ClaimOutcome.model_validate(response.json())
                        return Claim(
                            claim_id,
                            outcome.status,
                            names.DONE,
                            outcome,
                            response.headers.get("x-restate-id"),
                            session=session,
                        )
                    # an error answer: the invocation failed, was killed or cancelled
                    try:
                        return await self.get(claim_id)
                    except ClaimNotFoundError:
                        raise ClaimError(
                            f"Claim {claim_id!r} was refused: HTTP {response.status_code}: "
                            f"{error_message(response)}"
                        ) from None
                try:
                    now = await self._read(claim_id, journal_step=False)
                except (httpx.TransportError, RestateError):
                    continue  # Restate restarting, or the claim not accepted yet
                if now.status == PAUSED or (stop_at_review and now.awaiting_review):
                    return now
        finally:
            answer.cancel()

    # -- deciding and managing ---------------------------------------------------------------------
    async def decide(
        self,
        claims: ClaimsLike,
        approved: bool,
        *,
        reviewer: str = "reviewer",
        note: str = "",
        wait: bool = True,
    ) -> Claim | ClaimBatch:
        """See `Claims.approve` / `Claims.reject`."""
        review = Review(approved=approved, reviewer=reviewer, note=note)
        handler = names.APPROVE if approved else names.REJECT
        ids = claim_ids(claims)

        async def one(claim_id: str) -> Claim:
            now = await self.get(claim_id)
            if not now.awaiting_review:
                raise ClaimStateError(_not_waiting(claim_id, handler, now))
            response = await self.session.restate.post(
                f"/{names.WORKFLOW}/{claim_id}/{handler}", review.model_dump_json()
            )
            if not response.is_success:
                raise ClaimStateError(
                    f"{handler.capitalize()} claim {claim_id!r} failed: HTTP "
                    f"{response.status_code}: {error_message(response)}"
                )
            if not wait:
                now.status, now.step = RUNNING, names.REVIEW_DECIDED
                return now
            restate = self.session.restate
            return await self._wait(
                claim_id,
                lambda: restate.attach_workflow(names.WORKFLOW, claim_id),
                POLL_INTERVAL_S,
                stop_at_review=False,
            )

        done = await asyncio.gather(*(one(i) for i in ids))
        return done[0] if _single(claims) else ClaimBatch(done)

    async def resume(self, claims: ClaimsLike | str = "all") -> ClaimBatch:
        """See `Claims.resume`."""
        restate = self.session.restate
        if isinstance(claims, str) and claims == "all":
            rows = await restate.invocations(unfinished=True)
            paused = [r for r in rows if r["status"] == PAUSED]
        else:
            paused = []
            for claim_id in claim_ids(claims):
                row = await restate.invocation(names.WORKFLOW, claim_id)
                if row is None:
                    raise ClaimNotFoundError(f"No claim {claim_id!r} was submitted.")
                paused.append(row)
        for row in paused:
            if row["status"] == PAUSED:
                await restate.resume(row["id"])
        keys = [
            str(r["target_service_key"])
            for r in paused
            if r["target_service_name"] == names.WORKFLOW
        ]
        return ClaimBatch(await asyncio.gather(*(self.get(k) for k in dict.fromkeys(keys))))


def _not_waiting(claim_id: str, handler: str, now: Claim) -> str:
    if now.status in ENDED:
        what = f"it ended {now.status}" + (f" ({now.last_error})" if now.last_error else "")
        return f"Cannot {handler} claim {claim_id!r}: {what}; only a claim awaiting review can be."
    if now.status == PAUSED:
        return (
            f"Cannot {handler} claim {claim_id!r}: Restate paused it at step {now.step!r} "
            f"(last error: {now.last_error}). Fix the cause, resume it with "
            f"wb.claims.resume({claim_id!r}), then decide it once it awaits review."
        )
    return (
        f"Cannot {handler} claim {claim_id!r}: it is {now.status} at step {now.step!r}, not "
        "awaiting review (yet). Wait for it with wb.claims.wait(claim, until_review=True)."
    )


def _status(
    step: str, outcome: ClaimOutcome | None, invocation: dict[str, Any]
) -> tuple[str, str | None]:
    """The claim's status and last error, from its workflow state and Restate's invocation."""
    restate_status = invocation.get("status")
    failure = invocation.get("last_failure") or None
    if restate_status == "completed":
        if invocation.get("completion_result") == "success" and outcome is not None:
            return outcome.status, None
        reason = str(invocation.get("completion_failure") or failure or "")
        lowered = reason.lower()
        if "cancel" in lowered:
            return CANCELLED, reason
        if "kill" in lowered:
            return KILLED, reason
        if outcome is not None:
            return outcome.status, None
        return names.FAILED, reason or None
    if restate_status == PAUSED:
        return PAUSED, failure
    if step == names.AWAITING_REVIEW:
        return names.AWAITING_REVIEW, None
    if restate_status == "backing-off":
        return RETRYING, failure
    return RUNNING, failure


async def _later(delay_s: float, request: Callable[[], Awaitable[httpx.Response]]) -> Any:
    await asyncio.sleep(delay_s)
    return await request()


# -- the sync face ---------------------------------------------------------------------------------
class Claims(Namespace):
    """Submit claims and read them back (`wb.claims`). Each method takes claims as a `Claim`,
    a `ClaimBatch`, a claim id or a list of them, and works in Jupyter (any number of cells
    queued), in widget callbacks and in scripts. The async twins are `wb.aio.claims`."""

    @property
    def _aio(self) -> AsyncClaims:
        return AsyncClaims(self._bound)

    def submit(
        self,
        claim: str | ClaimRequest | Sample,
        id: str | None = None,
        *,
        wait: bool = True,
        prompt_label: str | None = None,
        faults: Sequence[Fault] | None = None,
    ) -> Claim:
        """Submit one claim: a document (text), a `Sample`, or a `ClaimRequest`. With `wait`,
        return when it ended, waits for review, or was paused by Restate; else at once. `id`
        defaults to a fresh one; an id submitted before attaches to that claim (same outcome,
        never paid twice). `prompt_label` picks the prompts' label (default production).
        `faults` (`wb.faults.Fault`s) are planned for this claim before it is sent.

        Example:
            >>> c = wb.claims.submit("Customer ID: C-1001\\nAmount: 120 EUR\\nCategory: pharmacy")
            >>> c.status
            'paid'
        """
        return run_sync(
            self._aio.submit(claim, id, wait=wait, prompt_label=prompt_label, faults=faults)
        )

    def submit_many(
        self,
        claims: Iterable[str | ClaimRequest | Sample | tuple[str, Any]],
        *,
        concurrency: int = 8,
        prompt_label: str | None = None,
        progress: bool = True,
    ) -> ClaimBatch:
        """Submit many claims, `concurrency` at a time, with a progress bar; returns when each
        ended or waits for review. Items are documents, Samples, ClaimRequests, or
        `(id, claim)` pairs; all are checked before the first is sent.

        Example:
            >>> batch = wb.claims.submit_many(wb.samples.pick(20), concurrency=8)
            >>> batch.summary()
        """
        return run_sync(
            self._aio.submit_many(
                claims, concurrency=concurrency, prompt_label=prompt_label, progress=progress
            )
        )

    def get(self, claims: ClaimsLike) -> Claim | ClaimBatch:
        """A claim's status, step, outcome and last error as Restate knows them now (a
        `ClaimBatch` for several).

        Example:
            >>> wb.claims.get("claim-001").status
            'awaiting review'
        """
        if _single(claims):
            return run_sync(self._aio.get(claims))  # type: ignore[arg-type]
        return run_sync(self._aio.get_many(claims))

    def wait(
        self, claims: ClaimsLike, *, timeout_s: float = 120.0, until_review: bool = False
    ) -> Claim | ClaimBatch:
        """Wait until the claims ended (or, with `until_review`, wait for review); returns them.
        A claim that Restate pauses is returned paused. ClaimTimeoutError says where a claim
        stands when `timeout_s` runs out.

        Example:
            >>> wb.claims.approve(waiting, wait=False)
            >>> wb.claims.wait(waiting).status
            'paid'
        """
        return run_sync(self._aio.wait(claims, timeout_s=timeout_s, until_review=until_review))

    def approve(
        self, claims: ClaimsLike, *, reviewer: str = "reviewer", note: str = "", wait: bool = True
    ) -> Claim | ClaimBatch:
        """Approve claims that wait for review; with `wait`, return their outcomes. A claim that
        is not awaiting review (ended, cancelled, killed, paused, still running) raises
        ClaimStateError saying what it is.

        Example:
            >>> wb.claims.approve(waiting, reviewer="ana", note="invoice checked").status
            'paid'
        """
        return run_sync(self._aio.decide(claims, True, reviewer=reviewer, note=note, wait=wait))

    def reject(
        self, claims: ClaimsLike, *, reviewer: str = "reviewer", note: str = "", wait: bool = True
    ) -> Claim | ClaimBatch:
        """Reject claims that wait for review (as `approve`, the other way).

        Example:
            >>> wb.claims.reject(waiting, note="duplicate of claim-007").status
            'rejected'
        """
        return run_sync(self._aio.decide(claims, False, reviewer=reviewer, note=note, wait=wait))

    def resume(self, claims: ClaimsLike | str = "all") -> ClaimBatch:
        """Resume paused claims now (Restate pauses an invocation that kept failing, e.g. through
        a long outage): the given ones, or "all" paused invocations (judge runs included).
        Returns the claims as they are right after.

        Example:
            >>> wb.claims.resume("all").summary()
        """
        return run_sync(self._aio.resume(claims))

    def timeline_frame(self, claim: Claim | str) -> tuple[Claim, pd.DataFrame]:
        """The claim now, and everything known about it as rows on one time axis: the journal's
        steps, its attempts (with their pids) and the faults that fired (the services'
        records), the wait for review, the trace's spans and generations, the judge's score.

        Example:
            >>> c, frame = wb.claims.timeline_frame(c)
            >>> frame.groupby("lane", observed=True).size()
        """
        from .frames import timeline_frame

        now = self.get(claim)
        assert isinstance(now, Claim)
        session = resolve(self._bound)
        events = session.fault_store.events(now.id)
        observations = scores = None
        if session.has_langfuse and now.outcome is not None and now.outcome.trace_id:
            try:
                observations = session.traces.get(trace_id=now.outcome.trace_id)
                scores = session.scores.get(trace_ids=[now.outcome.trace_id], join=False)
            except Exception:  # Langfuse down or the trace not exported yet: the rest still shows
                observations = scores = None
        return now, timeline_frame(now.journal, events, observations, scores, now=time.time())

    def timeline(self, claim: Claim | str, *, live: bool = True, refresh_s: float = 1.0) -> Any:
        """One claim on one time axis, as a widget: journal steps, attempts and processes,
        faults, the review wait, the trace's spans and generations, the judge's score; hover
        for detail, or pick an item in the list. With `live`, it refreshes while the claim
        runs and until its score lands.

        Example:
            >>> wb.claims.timeline(c)
        """
        from .widgets.timeline import Timeline

        return Timeline(self, claim_ids(claim)[0], live=live, refresh_s=refresh_s)


__getattr__, __dir__ = module_namespace(__name__, Claims)
