"""Chaos: 60 claims at concurrency 16 while the model is killed three times and held down once
for 5 s, and the services and the Restate server are killed once each. Every claim completes with
its expected outcome (none `failed`, none lost), the ledger holds exactly one payment per paid
claim and none for the others, and every completed claim gets its judge's score.

The kills are paced by the batch's progress (the n-th kill waits until enough claims completed),
so they land while claims are in flight, whatever the speed of the machine."""

from __future__ import annotations

import threading
import time
from collections.abc import Iterator
from typing import Any

import httpx
import pytest

from workbench.stack import Stack

from ..protocol import SHELL_SETTINGS, Claims, running_stack, samples, wait_for

pytestmark = pytest.mark.integration

CLAIMS = 60
CONCURRENCY = 16
HELD_DOWN_S = 5.0
PLAN: list[tuple[int, str]] = [
    (4, "kill llm"),
    (10, "kill services"),
    (18, "hold llm"),
    (28, "kill restate"),
    (36, "kill llm"),
    (44, "kill llm"),
]
"""(claims completed before it, what happens)."""
BATCH_TIMEOUT_S = 600.0


@pytest.fixture
def stack(tmp_path, monkeypatch) -> Iterator[Stack]:
    for name in SHELL_SETTINGS:
        monkeypatch.delenv(name, raising=False)
    # model latency stretches the batch so that every fault meets claims in flight
    with running_stack(tmp_path / "home", llm_latency_ms=40) as running:
        yield running


def _batch() -> list[tuple[str, str, str]]:
    known = [s for s in samples() if s.status in ("paid", "rejected", "invalid")]
    return [
        (f"chaos-{i:02d}", known[i % len(known)].document, known[i % len(known)].status)
        for i in range(CLAIMS)
    ]


def _submit(claims: Claims, claim_id: str, document: str) -> None:
    """Start the claim, retrying while Restate restarts (a repeat of an accepted id is fine)."""

    def accepted() -> bool:
        response = claims.post(claim_id, "run/send", {"document": document})
        return response.status_code in (200, 202, 409)

    wait_for(f"{claim_id} to be accepted", accepted, timeout_s=120, poll_s=0.2)


def test_chaos_loses_nothing_fails_nothing_pays_once_and_scores_all(stack: Stack) -> None:
    batch = _batch()
    expected = {claim_id: status for claim_id, _, status in batch}
    outcomes: dict[str, dict[str, Any]] = {}
    errors: list[BaseException] = []
    lock = threading.Lock()

    with Claims(stack, timeout_s=BATCH_TIMEOUT_S) as claims:

        def one(item: tuple[str, str, str]) -> None:
            claim_id, document, _ = item
            try:
                _submit(claims, claim_id, document)
                outcome = claims.outcome(claim_id, timeout_s=BATCH_TIMEOUT_S)
            except BaseException as e:  # reported below
                with lock:
                    errors.append(e)
                return
            with lock:
                outcomes[claim_id] = outcome

        worker = threading.Thread(target=lambda: claims.many(one, batch, CONCURRENCY), daemon=True)
        started = time.monotonic()
        worker.start()
        done: list[tuple[str, int, float]] = []
        for after, action in PLAN:
            wait_for(
                f"{after} claims done before '{action}'",
                lambda after=after: len(outcomes) >= after or not worker.is_alive(),
                timeout_s=BATCH_TIMEOUT_S,
                poll_s=0.05,
            )
            if not worker.is_alive():
                break
            verb, name = action.split()
            if verb == "kill":
                stack.kill(name)
                stack.wait_ready(name, timeout_s=120)
            else:
                with stack.stopped(name, timeout_s=120):
                    time.sleep(HELD_DOWN_S)  # the outage itself, not a wait for something
            done.append((action, len(outcomes), round(time.monotonic() - started, 1)))
        worker.join(BATCH_TIMEOUT_S)
        assert not worker.is_alive(), f"the batch did not finish in {BATCH_TIMEOUT_S:.0f} s"
        assert errors == []
        assert [a for a, _, _ in done] == [a for _, a in PLAN], f"faults that happened: {done}"
        assert max(n for _, n, _ in done) < CLAIMS, f"the last fault met no claim: {done}"

        # 0 lost, 0 failed: every claim completed with the outcome its document calls for
        got = {claim_id: outcome["status"] for claim_id, outcome in outcomes.items()}
        assert got == expected
        runs = claims.invocations("chaos-")
        assert len(runs) == CLAIMS
        assert {(r["status"], r.get("completion_result")) for r in runs} == {
            ("completed", "success")
        }
        # 0 double payments: one per paid claim, none for the others
        paid = {claim_id for claim_id, status in got.items() if status == "paid"}
        assert claims.payments("chaos-") == dict.fromkeys(paid, 1)
        for claim_id in paid:
            assert outcomes[claim_id]["payment_id"]

        # a score for every completed claim (the judge waited out the same faults)
        traces = {claim_id: outcome["trace_id"] for claim_id, outcome in outcomes.items()}
        assert all(traces.values()), traces

        def scored() -> list[str] | None:
            try:
                scores = claims.scores()
            except httpx.HTTPError:
                return None
            missing = [c for c, t in traces.items() if t not in scores]
            return None if missing else list(scores)

        wait_for("a score for every claim", scored, timeout_s=240, poll_s=1.0)

    restarts = stack.status().set_index("name")["restarts"]
    assert restarts["llm"] >= 4 and restarts["services"] >= 1 and restarts["restate"] >= 1
