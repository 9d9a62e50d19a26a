"""How fast a claim continues after the model endpoint comes back (for the benchmark).

    from workbench.bench_outage import model_outage_recovery
    result = model_outage_recovery(session, document, outage_s=5.0)
    result.recovery_s     # model answering again -> the claim completed (target <= 1.0 s)

The embedded model is stopped, a claim is submitted (it fails at its first model call and Restate
retries it under the claims' retry policy), the model stays down `outage_s`, then it is started
again. `recovery_s` runs from the moment the model answers its health probe again to the moment
the claim's outcome is available; it is bounded by the retry policy's longest interval
(WORKBENCH_RETRY_MAX_INTERVAL_MS, 0.5 s) plus the rest of the claim's work."""

from __future__ import annotations

import time
import uuid
from dataclasses import dataclass

import httpx

from services import names

from ._aio import run_sync
from .errors import StackError
from .session import Session


@dataclass(frozen=True)
class OutageRecovery:
    claim_id: str
    outage_s: float
    """How long the model was down (stop -> answering again)."""
    recovery_s: float
    """The model answering again -> the claim's outcome available."""
    status: str
    """The claim's outcome status (paid, rejected, ...; not `failed`)."""
    attempts_during_outage: int | None
    """Restate's retry count of the claim when the model came back."""


def model_outage_recovery(
    session: Session,
    document: str,
    *,
    outage_s: float = 5.0,
    claim_id: str | None = None,
    timeout_s: float = 120.0,
    poll_interval_s: float = 0.01,
) -> OutageRecovery:
    """Take the embedded model (`llm`) down for `outage_s` while one claim needs it, bring it back,
    and measure how long the claim takes to complete after that (see the module docstring)."""
    stack = session.stack
    if stack is None or "llm" not in stack.names:
        raise StackError(
            "model_outage_recovery needs the embedded model (process 'llm') of a stack the "
            f"workbench runs; this session uses the model at {session.endpoints.llm_url}."
        )
    claims = session.aio.claims
    claim_id = claim_id or f"outage-{uuid.uuid4().hex[:10]}"
    llm = stack.process("llm")
    with httpx.Client(timeout=timeout_s, trust_env=False) as http:
        stack.supervisor.stop_process("llm", timeout_s=30.0)
        stopped = time.monotonic()
        try:
            run_sync(claims.submit(document, claim_id, wait=False))
            time.sleep(max(outage_s - (time.monotonic() - stopped), 0.0))
        finally:
            stack.supervisor.start_process("llm")
        while llm.check_ready(http) is not None:  # the moment it answers again
            if time.monotonic() - stopped > timeout_s:
                raise StackError(f"the model did not come back within {timeout_s:.0f} s")
            time.sleep(poll_interval_s)
    back = time.monotonic()
    invocation = run_sync(session.restate.invocation(names.WORKFLOW, claim_id)) or {}
    outcome = run_sync(claims.wait(claim_id, timeout_s=timeout_s))
    done = time.monotonic()
    stack.wait_ready("llm")  # supervisord's view, pids recorded
    retries = invocation.get("retry_count")
    return OutageRecovery(
        claim_id=claim_id,
        outage_s=round(back - stopped, 3),
        recovery_s=round(done - back, 3),
        status=str(outcome.status),
        attempts_during_outage=int(retries) if retries is not None else None,
    )
