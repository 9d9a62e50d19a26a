"""Submit claims and read them back: the helpers a notebook calls.

Every helper has an async variant (`asubmit_claim`, ...) and a sync one that works in Jupyter
and in plain scripts. Claims are Restate workflows keyed by their id, so submitting an id twice
returns the first claim's outcome and never pays twice."""

from __future__ import annotations

import asyncio
import re
import time
import uuid
from collections.abc import Awaitable, Callable, Iterable, Sequence
from dataclasses import dataclass, field
from typing import Any

import httpx
import pandas as pd
from pydantic import ValidationError

from services.models import ClaimOutcome, ClaimRequest, Review

from ._aio import run_sync
from .labels import UnknownPromptLabelError, check_label
from .restate_admin import RestateAdmin
from .samples import Sample
from .session import endpoints

WORKFLOW = "ClaimWorkflow"
OUTAGE_TIMEOUT_S = 120.0
"""How long a wait outlasts Restate being unreachable (killed, restarting) before giving up."""
_ID = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._:-]{0,127}$")
AWAITING_REVIEW = "awaiting review"


class ClaimError(RuntimeError):
    """Restate refused or failed a claim request; the message says why and what to do."""


def _check_id(claim_id: str) -> str:
    if not isinstance(claim_id, str) or not _ID.match(claim_id):
        raise ValueError(
            f"Claim id {claim_id!r} is not valid: use 1-128 letters, digits, '.', '_', ':' or '-', "
            "starting with a letter or digit."
        )
    return claim_id


def new_claim_id(prefix: str = "claim") -> str:
    return f"{prefix}-{uuid.uuid4().hex[:10]}"


def as_request(claim: str | ClaimRequest | Sample, prompt_label: str | None = None) -> ClaimRequest:
    """Validate a claim before anything is sent (raises ValueError with the reason)."""
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
            f"A claim is a document string, a ClaimRequest or a Sample; got {type(claim).__name__}."
        )
    try:
        check_label(request.prompt_label)
    except UnknownPromptLabelError as e:
        raise ValueError(str(e)) from None
    return request


@dataclass
class Claim:
    """A submitted claim as Restate knows it now. `status` is running, awaiting review, paid,
    rejected, invalid or failed; `outcome` is set once it ended."""

    id: str
    status: str
    step: str = ""
    outcome: ClaimOutcome | None = None
    invocation_id: str | None = None
    _admin_url: str | None = field(default=None, repr=False)

    @property
    def done(self) -> bool:
        return self.outcome is not None

    @property
    def journal(self) -> pd.DataFrame:
        """The workflow's journal (the admin SQL API's sys_journal), one row per entry."""
        admin = RestateAdmin(self._admin_url or endpoints().admin_url)
        if not self.invocation_id:
            invocation = run_sync(admin.aworkflow_invocation(WORKFLOW, self.id))
            if invocation is None:
                return pd.DataFrame()
            self.invocation_id = invocation["id"]
        return admin.journal(self.invocation_id)

    @property
    def attempts(self) -> Any:
        """How often Restate tried the claim and its last failure (sys_invocation), with each
        attempt the services saw (`workbench.evidence.attempts`)."""
        from .evidence import attempts

        return attempts(self.id)

    def refresh(self) -> Claim:
        return claim(self.id)

    def row(self) -> dict[str, Any]:
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
            "reason": o.reason if o else self.step,
        }

    def __repr__(self) -> str:
        if self.outcome is not None:
            return f"Claim({self.id}, {self.outcome!r})"
        return f"Claim({self.id}: {self.status}, step {self.step!r})"

    def _repr_html_(self) -> str:
        rows = "".join(
            f"<tr><th style='text-align:left'>{k}</th><td style='text-align:left'>{v}</td></tr>"
            for k, v in self.row().items()
            if v is not None
        )
        if self.outcome and self.outcome.prompt_versions:
            versions = ", ".join(
                f"{k} v{v}" for k, v in sorted(self.outcome.prompt_versions.items())
            )
            rows += f"<tr><th style='text-align:left'>prompts</th><td>{versions}</td></tr>"
        return f"<table>{rows}</table>"


class ClaimBatch(list):
    """The claims of one `submit_claims` call."""

    def to_frame(self) -> pd.DataFrame:
        return pd.DataFrame([c.row() for c in self])

    def summary(self) -> pd.DataFrame:
        frame = self.to_frame()
        return (
            frame.groupby("status", dropna=False)
            .agg(claims=("id", "count"), paid_eur=("paid_eur", "sum"))
            .sort_values("claims", ascending=False)
        )

    def plot(self, ax: Any = None) -> Any:
        from .charts import outcome_bars

        return outcome_bars(self.to_frame(), ax=ax)

    def _repr_html_(self) -> str:
        return self.summary()._repr_html_()


def _raise_for(response: httpx.Response, what: str) -> None:
    if response.is_success:
        return
    try:
        detail = response.json().get("message", response.text)
    except ValueError:
        detail = response.text
    raise ClaimError(f"{what} failed: HTTP {response.status_code}: {detail}")


def _client() -> httpx.AsyncClient:
    return httpx.AsyncClient(
        base_url=endpoints().ingress_url, timeout=httpx.Timeout(30.0, read=None)
    )


async def _status(http: httpx.AsyncClient, claim_id: str) -> dict[str, Any]:
    response = await http.post(f"/{WORKFLOW}/{claim_id}/status", json=None)
    _raise_for(response, f"Reading claim {claim_id!r}")
    return response.json()


async def _wait(
    http: httpx.AsyncClient,
    claim_id: str,
    result: Callable[[], Awaitable[httpx.Response]],
    poll_interval_s: float,
    *,
    stop_at_review: bool = True,
) -> Claim:
    """Until `result()` (a request answered with the workflow's output) answers, or the claim
    waits for a human, whichever comes first. Restate going away meanwhile (killed, restarting)
    is waited out: the request, idempotent, is sent again until Restate answers."""
    answer = asyncio.ensure_future(result())
    outage_since: float | None = None
    try:
        while True:
            done, _ = await asyncio.wait({answer}, timeout=poll_interval_s)
            if done:
                try:
                    response = answer.result()
                    unavailable = response.status_code in (502, 503, 504)
                except httpx.TransportError:
                    unavailable = True
                if unavailable:
                    outage_since = outage_since or time.monotonic()
                    if time.monotonic() - outage_since > OUTAGE_TIMEOUT_S:
                        raise ClaimError(
                            f"Waiting for claim {claim_id!r}: Restate at {http.base_url} did not "
                            f"answer for {OUTAGE_TIMEOUT_S:.0f} s. Is the stack running "
                            "(`python -m workbench status`)?"
                        )
                    answer = asyncio.ensure_future(_later(poll_interval_s, result))
                    continue
                _raise_for(response, f"Waiting for claim {claim_id!r}")
                outcome = ClaimOutcome.model_validate(response.json())
                invocation_id = response.headers.get("x-restate-id")
                return Claim(claim_id, outcome.status, "done", outcome, invocation_id)
            if not stop_at_review:
                continue
            try:
                state = await _status(http, claim_id)
            except (httpx.TransportError, ClaimError):
                continue  # Restate restarting, or the claim not accepted yet
            if state["step"] == AWAITING_REVIEW:
                return Claim(claim_id, AWAITING_REVIEW, AWAITING_REVIEW)
    finally:
        answer.cancel()


async def _later(delay_s: float, request: Callable[[], Awaitable[httpx.Response]]) -> Any:
    await asyncio.sleep(delay_s)
    return await request()


def _attach(http: httpx.AsyncClient, claim_id: str) -> Awaitable[httpx.Response]:
    return http.get(f"/restate/workflow/{WORKFLOW}/{claim_id}/attach")


async def _run(http: httpx.AsyncClient, claim_id: str, body: str) -> httpx.Response:
    """Start the workflow and answer with its outcome in one request; an id submitted before
    is not run again (Restate answers 409) but attached to, so it returns the first outcome."""
    response = await http.post(
        f"/{WORKFLOW}/{claim_id}/run", content=body, headers={"content-type": "application/json"}
    )
    if response.status_code == 409:
        return await _attach(http, claim_id)
    return response


async def asubmit_claim(
    claim: str | ClaimRequest | Sample,
    id: str | None = None,
    *,
    wait: bool = True,
    prompt_label: str | None = None,
    poll_interval_s: float = 0.5,
    faults: Sequence[Any] | None = None,
) -> Claim:
    request = as_request(claim, prompt_label)
    claim_id = _check_id(id) if id is not None else new_claim_id()
    body = request.model_dump_json()
    if faults:
        from .faults import plan

        plan(claim_id, list(faults))
    async with _client() as http:
        if wait:
            return await _wait(http, claim_id, lambda: _run(http, claim_id, body), poll_interval_s)
        response = await http.post(
            f"/{WORKFLOW}/{claim_id}/run/send",
            content=body,
            headers={"content-type": "application/json"},
        )
        _raise_for(response, f"Submitting claim {claim_id!r}")
        invocation_id = response.json().get("invocationId")
        return Claim(claim_id, "running", "submitted", invocation_id=invocation_id)


def submit_claim(
    claim: str | ClaimRequest | Sample,
    id: str | None = None,
    *,
    wait: bool = True,
    prompt_label: str | None = None,
    faults: Sequence[Any] | None = None,
) -> Claim:
    """Submit one claim; with `wait`, return when it ended or waits for review. `faults`
    (`workbench.Fault`s) are planned for this claim before it is sent."""
    return run_sync(asubmit_claim(claim, id, wait=wait, prompt_label=prompt_label, faults=faults))


def _batch_items(batch: Iterable[Any]) -> list[tuple[str | None, str | ClaimRequest | Sample]]:
    items: list[tuple[str | None, Any]] = []
    for item in batch:
        if isinstance(item, tuple) and len(item) == 2:
            items.append((item[0], item[1]))
        else:
            items.append((None, item))
    return items


async def asubmit_claims(
    batch: Iterable[str | ClaimRequest | Sample | tuple[str, Any]],
    *,
    concurrency: int = 8,
    prompt_label: str | None = None,
    progress: bool = True,
) -> ClaimBatch:
    if concurrency < 1:
        raise ValueError(f"concurrency must be at least 1; got {concurrency}.")
    items = _batch_items(batch)
    # validate everything before sending anything
    prepared = [
        (_check_id(i) if i is not None else new_claim_id(), as_request(c, prompt_label))
        for i, c in items
    ]
    gate = asyncio.Semaphore(concurrency)

    async def one(claim_id: str, request: ClaimRequest) -> Claim:
        async with gate:
            return await asubmit_claim(request, claim_id)

    from tqdm.auto import tqdm

    results: dict[str, Claim] = {}
    tasks = [asyncio.ensure_future(one(i, r)) for i, r in prepared]
    with tqdm(total=len(tasks), desc="claims", unit="claim", disable=not progress) as bar:
        for next_done in asyncio.as_completed(tasks):
            c = await next_done
            results[c.id] = c
            bar.update()
    return ClaimBatch(results[i] for i, _ in prepared)


def submit_claims(
    batch: Iterable[str | ClaimRequest | Sample | tuple[str, Any]],
    *,
    concurrency: int = 8,
    prompt_label: str | None = None,
    progress: bool = True,
) -> ClaimBatch:
    """Submit many claims, `concurrency` at a time, with a progress bar."""
    return run_sync(
        asubmit_claims(batch, concurrency=concurrency, prompt_label=prompt_label, progress=progress)
    )


async def aclaim(claim_id: str) -> Claim:
    _check_id(claim_id)
    admin = RestateAdmin(endpoints().admin_url)
    invocation = await admin.aworkflow_invocation(WORKFLOW, claim_id)
    if invocation is None:
        raise KeyError(f"No claim {claim_id!r} was submitted to this Restate server.")
    async with _client() as http:
        state = await _status(http, claim_id)
    outcome = ClaimOutcome.model_validate(state["outcome"]) if state.get("outcome") else None
    step = state["step"]
    status = (
        outcome.status if outcome else (AWAITING_REVIEW if step == AWAITING_REVIEW else "running")
    )
    if outcome is None and invocation["status"] in ("backing-off", "paused", "suspended"):
        status = f"running ({invocation['status']})" if step != AWAITING_REVIEW else status
    return Claim(claim_id, status, step, outcome, invocation["id"], admin.url)


def claim(claim_id: str) -> Claim:
    """A claim's status, outcome and journal."""
    return run_sync(aclaim(claim_id))


async def _decide(claim_id: str, approved: bool, reviewer: str, note: str, wait: bool) -> Claim:
    _check_id(claim_id)
    handler = "approve" if approved else "reject"
    review = Review(approved=approved, reviewer=reviewer, note=note)
    async with _client() as http:
        response = await http.post(
            f"/{WORKFLOW}/{claim_id}/{handler}",
            content=review.model_dump_json(),
            headers={"content-type": "application/json"},
        )
        _raise_for(response, f"{handler.capitalize()} claim {claim_id!r}")
        if not wait:
            return Claim(claim_id, "running", "review decided")
        return await _wait(
            http, claim_id, lambda: _attach(http, claim_id), 0.5, stop_at_review=False
        )


async def aapprove(
    claim_id: str, reviewer: str = "reviewer", note: str = "", wait: bool = True
) -> Claim:
    return await _decide(claim_id, True, reviewer, note, wait)


async def areject(
    claim_id: str, reviewer: str = "reviewer", note: str = "", wait: bool = True
) -> Claim:
    return await _decide(claim_id, False, reviewer, note, wait)


def approve(claim_id: str, reviewer: str = "reviewer", note: str = "", wait: bool = True) -> Claim:
    """Approve a claim that waits for review; with `wait`, return its outcome."""
    return run_sync(aapprove(claim_id, reviewer, note, wait))


def reject(claim_id: str, reviewer: str = "reviewer", note: str = "", wait: bool = True) -> Claim:
    """Reject a claim that waits for review; with `wait`, return its outcome."""
    return run_sync(areject(claim_id, reviewer, note, wait))
