"""Code that journals a claim differently reaches a home with claims in flight: a home whose
deployment was registered by journal revision 1 (`WORKBENCH_JOURNAL_REVISION=1`, a SetState before
every step) is started again by revision 2 code while claims wait for review, with the services'
old port taken. The old deployment is moved to `/journal/r1` on the new address, where its claims
replay and finish; new claims go to a new deployment with the shorter journal; nobody is paid
twice."""

from __future__ import annotations

import socket
from collections.abc import Iterator
from pathlib import Path

import pytest

from services import journal
from workbench import stack as stacks
from workbench.stack.home import HomeRecord

from ..protocol import SHELL_SETTINGS, Claims, samples

pytestmark = pytest.mark.integration

OPTIONS = {"persistent": False, "timeout_s": 120}
OLD = {"env": {"services": {"WORKBENCH_JOURNAL_REVISION": "1"}}}
REVIEW = "awaiting review"


@pytest.fixture
def home(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[Path]:
    for name in (*SHELL_SETTINGS, "WORKBENCH_JOURNAL_REVISION"):
        monkeypatch.delenv(name, raising=False)
    path = tmp_path / "home"
    try:
        yield path
    finally:
        stacks.stop(path, grace_s=2.0)


def _set_states(claims: Claims, claim_id: str) -> int:
    """SetState commands in the journal of the claim's run so far."""
    (run,) = claims.invocations(claim_id)
    rows = claims.query(
        f"SELECT entry_type FROM sys_journal WHERE id = '{run['id']}' "
        "AND entry_type = 'Command: SetState'"
    )
    return len(rows)


def test_claims_journaled_by_an_older_revision_finish_after_an_upgrade(home: Path) -> None:
    review = samples("review")
    stack = stacks.start(home, **OPTIONS, **OLD)
    with Claims(stack) as claims:
        for i in range(2):
            claims.submit(f"old-{i}", review[i].document)
        for i in range(2):
            claims.wait_step(f"old-{i}", REVIEW, timeout_s=120)
        old_sets = _set_states(claims, "old-0")
    old = stack.deployment_ids["services"]
    old_port = stack.process("services").port
    assert HomeRecord.load(home).journal_revisions == {old: 1}
    assert stacks.stop(home) is True

    with socket.socket() as stranger:  # the services come back on another port
        stranger.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        stranger.bind(("127.0.0.1", old_port))
        stranger.listen(8)
        stack = stacks.start(home, **OPTIONS)
    services = stack.process("services")
    assert services.port != old_port
    new = stack.deployment_ids["services"]
    assert new != old
    record = HomeRecord.load(home)
    assert record.journal_revisions == {old: 1, new: journal.JOURNAL_REVISION}
    assert record.older_deployments == {"services": {old: 1}}
    with Claims(stack) as claims:
        listed = claims.http.get(f"{stack.admin_url}/deployments").json()["deployments"]
        uris = {d["id"]: d["uri"].rstrip("/") for d in listed}
        assert uris == {old: f"{services.url}/journal/r1", new: services.url}

        claims.submit("new-0", review[2].document)
        claims.wait_step("new-0", REVIEW, timeout_s=120)
        assert _set_states(claims, "new-0") < old_sets, "revision 2 journals fewer SetStates"
        ids = ["old-0", "old-1", "new-0"]
        approved = [claims.approve(claim_id) for claim_id in ids]
        assert [a.status_code for a in approved] == [200] * 3, [a.text for a in approved]
        assert {i: claims.outcome(i)["status"] for i in ids} == dict.fromkeys(ids, "paid")
        assert claims.payments("old-") == {"old-0": 1, "old-1": 1}
        assert claims.payments("new-") == {"new-0": 1}
        pinned = {row["claim"]: row["pinned_deployment_id"] for row in claims.invocations("")}
        assert pinned == {"old-0": old, "old-1": old, "new-0": new}
    stack.stop()
