"""Soak: 50 claims while the service process and the Restate server are killed several times at
random moments (seeded, bounded). Every claim must complete with its expected outcome, and the
ledger must hold exactly one payment per paid claim."""

from __future__ import annotations

import random
import threading
import time

import pytest

import workbench as wb

from .conftest import claims_stack

pytestmark = pytest.mark.integration

CLAIMS = 50
KILLS = {"services": 3, "restate": 3}
SEED = 20260
SOAK_TIMEOUT_S = 150.0


@pytest.fixture(scope="module")
def stack(tmp_path_factory):
    # model latency stretches the batch, so that the kills land while claims are in flight
    with claims_stack(tmp_path_factory.mktemp("soak-home"), llm_latency_ms=60) as s:
        yield s


def _batch() -> list[tuple[str, wb.Sample]]:
    """50 claims with a known ending (the ones waiting for a human are left out)."""
    known = [s for s in wb.samples.pick() if s.status_v1 in ("paid", "rejected", "invalid")]
    return [(f"soak-{i:02d}", known[i % len(known)]) for i in range(CLAIMS)]


def test_every_claim_completes_and_pays_once_under_repeated_kills(stack) -> None:
    batch = _batch()
    results: dict[str, object] = {}

    def submit() -> None:
        try:
            results["claims"] = wb.claims.submit_many(batch, concurrency=6, progress=False)
        except BaseException as e:  # reported by the assertion below
            results["error"] = e

    rng = random.Random(SEED)
    kills = [name for name, n in KILLS.items() for _ in range(n)]
    rng.shuffle(kills)
    worker = threading.Thread(target=submit, daemon=True)
    started = time.monotonic()
    worker.start()
    done: list[tuple[str, float]] = []
    for name in kills:
        time.sleep(rng.uniform(0.2, 1.2))
        if not worker.is_alive():
            break
        stack.kill(name)
        done.append((name, round(time.monotonic() - started, 2)))
        stack.wait_ready(name, timeout_s=60)
    worker.join(SOAK_TIMEOUT_S)
    assert not worker.is_alive(), f"the batch did not finish within {SOAK_TIMEOUT_S:.0f} s"
    assert "error" not in results, results.get("error")
    assert {n for n, _ in done} == {"services", "restate"}, f"kills happened: {done}"
    assert len(done) >= 4, f"the batch ended before most kills: {done}"

    claims = results["claims"]
    got = {c.id: c.status for c in claims}
    expected = {claim_id: sample.status_v1 for claim_id, sample in batch}
    assert got == expected

    ledger = wb.ledger()
    ledger = ledger[ledger["claim_id"].str.startswith("soak-")]
    per_claim = ledger.groupby("claim_id").size()
    paid = {claim_id for claim_id, status in got.items() if status == "paid"}
    assert set(per_claim.index) == paid, "a payment for every paid claim, and only for those"
    assert (per_claim == 1).all(), per_claim[per_claim != 1]
    for c in claims:
        if c.status == "paid":
            assert c.outcome.payment_id in set(ledger["payment_id"])
    restarts = stack.status().set_index("name")["restarts"]
    assert restarts["services"] >= KILLS["services"] and restarts["restate"] >= KILLS["restate"]
