"""A model outage, made by hand: the embedded model stopped for the length of a `with` block.

    with wb.faults.model_down() as outage:           # the embedded model (process `llm`) stops
        c = wb.submit_claim(doc, wait=False)
        during = outage.wait_retrying(c, retries=3)  # Restate retries the claim meanwhile
    outage.down_s                                    # it answers again here: how long it was down
    wb.claims.wait(c).status                         # 'paid': the claim went on where it stopped

A model call that finds the endpoint down is retried by Restate (`services.model_errors` tells an
outage from a refusal), at most `WORKBENCH_RETRY_MAX_INTERVAL_MS` apart, and after
`WORKBENCH_OUTAGE_WINDOW_S` the claim is paused rather than failed (`services.retries`).
"""

from __future__ import annotations

import time
from types import TracebackType
from typing import TYPE_CHECKING, Any

from services import names

from ._aio import run_sync
from .claims import RETRYING, RUNNING, Claim, Claims, claim_ids
from .errors import ClaimStateError, ClaimTimeoutError, StackError

if TYPE_CHECKING:
    from .session import Session

MODEL_PROCESS = "llm"


class ModelOutage:
    """The embedded model (`llm`) stopped on entering the `with` block, started again (and
    answering) on leaving it, whatever happened inside. `down_s` is how long it was down;
    `back_at` (time.monotonic()) when it answered again."""

    def __init__(self, session: Session, *, timeout_s: float = 60.0) -> None:
        self.session = session
        self.timeout_s = timeout_s
        self.stopped_at: float | None = None
        self.back_at: float | None = None
        self._stopped: Any = None

    def __repr__(self) -> str:
        if self.stopped_at is None:
            return "ModelOutage(not started)"
        state = "down" if self.back_at is None else "over"
        return f"ModelOutage({state}, {self.down_s:.1f} s)"

    def __enter__(self) -> ModelOutage:
        stack = self.session.stack
        if stack is None or MODEL_PROCESS not in stack.names:
            raise StackError(
                "A model outage needs the embedded model (process 'llm') of a stack the "
                f"workbench runs; this session uses the model at {self.session.endpoints.llm_url},"
                " which it does not stop. Stop that endpoint yourself to see the same."
            )
        self._stopped = stack.stopped(MODEL_PROCESS, timeout_s=self.timeout_s)
        self._stopped.__enter__()
        self.stopped_at, self.back_at = time.monotonic(), None
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        stopped, self._stopped = self._stopped, None
        if stopped is not None:
            stopped.__exit__(exc_type, exc, tb)  # started again, and answering
            self.back_at = time.monotonic()

    @property
    def down_s(self) -> float:
        """Seconds the model was down (so far, while the block runs)."""
        if self.stopped_at is None:
            return 0.0
        return (self.back_at or time.monotonic()) - self.stopped_at

    def since_back_s(self) -> float:
        """Seconds since the model answered again (call it when a claim completed)."""
        if self.back_at is None:
            raise StackError("The model is still down: leave the `with` block first.")
        return time.monotonic() - self.back_at

    def wait_retrying(
        self,
        claim: Claim | str,
        *,
        retries: int = 1,
        timeout_s: float = 60.0,
        poll_interval_s: float = 0.05,
    ) -> Claim:
        """Wait until Restate retried `claim` at least `retries` times and backs off before the
        next try (its status `retrying`, its last error the failed model call); returns the
        claim as it is then. ClaimStateError if it ended or was paused instead,
        ClaimTimeoutError after `timeout_s`."""
        claim_id = claim_ids(claim)[0]
        claims = Claims(self.session)
        deadline = time.monotonic() + timeout_s
        while True:
            now = claims.get(claim_id)
            assert isinstance(now, Claim)
            if now.done or now.status not in (RETRYING, RUNNING):
                raise ClaimStateError(
                    f"Claim {claim_id!r} is {now.status} at step {now.step!r} while the model is "
                    f"down, not retrying"
                    + (f" (last error: {now.last_error})" if now.last_error else "")
                    + ". An outage is retried until WORKBENCH_OUTAGE_WINDOW_S, then paused."
                )
            row = run_sync(self.session.restate.invocation(names.WORKFLOW, claim_id)) or {}
            tried = int(row.get("retry_count") or 0)
            if now.status == RETRYING and tried >= retries:
                return now
            if time.monotonic() >= deadline:
                raise ClaimTimeoutError(
                    f"Claim {claim_id!r} was retried {tried} time(s) in {timeout_s:g} s, not "
                    f"{retries}: it is {now.status} at step {now.step!r}."
                )
            time.sleep(poll_interval_s)


__all__ = ["MODEL_PROCESS", "ModelOutage"]
