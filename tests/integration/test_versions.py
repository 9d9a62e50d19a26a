"""Version pinning end to end: a second services version deployed beside the first as another
supervised process, claims pinned to the deployment they started on (by Restate and on their
trace), retirement refused while something is pinned, and the counter-example (new code under
the same deployment) reported as a journal mismatch and recovered."""

from __future__ import annotations

import psutil
import pytest

import workbench as wb

from .conftest import processes_of

pytestmark = pytest.mark.integration


@pytest.fixture(scope="module")
def stack(tmp_path_factory):
    home = tmp_path_factory.mktemp("versions-home")
    session = wb.start(home=home, persistent=False)
    s = session.stack
    try:
        yield s
    finally:
        pids = s.pids()
        session.stop()
        left = [p for p in pids if psutil.pid_exists(p) and psutil.Process(p).status() != "zombie"]
        assert left == [], f"processes left running after stop(): {left}"
        assert processes_of(home) == []


@pytest.fixture(scope="module")
def waiting_on_v1(stack):
    """Two claims waiting for review on v1, then v2 deployed beside it."""
    claims = [wb.submit_claim(s) for s in wb.samples.pick(status="review")[:2]]
    assert [c.status for c in claims] == ["awaiting review"] * 2
    table = wb.deployments.deploy("v2")
    assert list(table["version"]) == ["v1", "v2"]
    return claims


def _row(table, version):
    rows = table[table["version"] == version]
    assert len(rows) == 1, table
    return rows.iloc[0]


def test_new_claims_run_on_v2_and_waiting_claims_finish_on_v1(stack, waiting_on_v1) -> None:
    table = wb.deployments.list()
    v1, v2 = _row(table, "v1"), _row(table, "v2")
    assert v2["latest"] and not v1["latest"]
    assert v1["process"] == "services" and v2["process"] == "services-v2"
    assert {c.id for c in waiting_on_v1} <= set(v1["pinned_claims"])
    assert "services-v2" in set(stack.status()["name"])

    new = wb.submit_claim(wb.samples.pick(status="paid")[0])
    assert new.status == "paid" and new.outcome.service_version == "v2"
    assert "verify documents" in set(new.journal["step"])

    waiting = waiting_on_v1[0]
    done = wb.claims.approve(waiting.id)
    assert done.status == "paid" and done.outcome.service_version == "v1"
    assert "verify documents" not in set(done.journal["step"])

    pins = wb.deployments.pinning([done, new]).set_index("claim_id")
    assert pins.loc[done.id, "deployment_id"] == v1["id"]
    assert pins.loc[new.id, "deployment_id"] == v2["id"]
    assert list(pins["deployment_version"]) == ["v1", "v2"]
    assert list(pins["trace_version"]) == ["v1", "v2"]


def test_retire_refuses_while_claims_are_pinned_and_succeeds_once_drained(
    stack, waiting_on_v1
) -> None:
    still_waiting = waiting_on_v1[1]
    with pytest.raises(wb.DeploymentInUseError, match=f"pinned to it.*{still_waiting.id}"):
        wb.deployments.retire("v1")
    with pytest.raises(wb.DeploymentInUseError, match="latest deployment"):
        wb.deployments.retire("v2")
    flights = wb.deployments.in_flight()
    assert still_waiting.id in set(flights[flights["version"] == "v1"]["claim_id"])

    assert wb.claims.approve(still_waiting.id).outcome.service_version == "v1"
    table = wb.deployments.retire("v1")
    assert list(table["version"]) == ["v2"]
    assert "services" not in set(stack.status()["name"])
    assert (
        wb.deployments.pinning(still_waiting.id, trace=False)["deployment_version"].iloc[0] == "v1"
    )


def test_new_code_under_the_same_deployment_is_a_journal_mismatch_and_recovers(stack) -> None:
    latest = wb.deployments.list().query("latest").iloc[0]
    version, other = latest["version"], "v1" if latest["version"] != "v1" else "v2"
    waiting = wb.submit_claim(wb.samples.pick(status="review")[2])
    assert waiting.status == "awaiting review"

    replaced = wb.deployments.replace_code(version, with_version=other)
    row = _row(replaced, version)
    assert row["id"] == latest["id"] and row["code"] == other  # same deployment, new code
    wb.claims.approve(waiting.id, wait=False)
    failure = wb.deployments.wait_for_failure(waiting.id, timeout_s=60)
    assert "[570 Journal mismatch]" in failure.last_failure
    assert "verify documents" in failure.last_failure and "convert to EUR" in failure.last_failure
    assert wb.claim(waiting.id).outcome is None
    assert (wb.ledger()["claim_id"] == waiting.id).sum() == 0

    restored = wb.deployments.restore_code(version)
    assert _row(restored, version)["code"] == version
    done = wb.claims.wait(waiting.id, timeout_s=60)
    assert done.status == "paid" and done.outcome.service_version == version
    assert (wb.ledger()["claim_id"] == waiting.id).sum() == 1
