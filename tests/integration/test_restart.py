"""`down` then `up` while claims wait for a human and one is paused by a model outage, with the
services' old port taken by another program: the services come back elsewhere, their deployment
is moved in place (not registered anew), the paused claim is resumed by `up`, and approving the
waiting claims pays each exactly once."""

from __future__ import annotations

import socket
import warnings
from collections.abc import Iterator
from pathlib import Path

import pytest

from workbench import stack as stacks
from workbench.stack import StackError, StackWarning
from workbench.stack.home import HomeRecord
from workbench.stack.ports import free_ports

from ..protocol import SHELL_SETTINGS, Claims, refusing_server, samples, wait_for

pytestmark = pytest.mark.integration

WAITING = 10
OPTIONS = {
    "persistent": False,
    "timeout_s": 120,
    "env": {"services": {"WORKBENCH_OUTAGE_WINDOW_S": "3"}},
}


@pytest.fixture
def home(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[Path]:
    for name in SHELL_SETTINGS:
        monkeypatch.delenv(name, raising=False)
    path = tmp_path / "home"
    try:
        yield path
    finally:
        stacks.stop(path, grace_s=2.0)


def _status(claims: Claims, claim_id: str) -> str | None:
    rows = claims.invocations(claim_id)
    return rows[0]["status"] if rows else None


def test_down_up_with_the_old_port_taken_keeps_every_claim(home: Path) -> None:
    stack = stacks.start(home, **OPTIONS)
    ids = [f"wait-{i}" for i in range(WAITING)]
    reviews = samples("review")
    with Claims(stack) as claims:
        claims.many(
            lambda i: claims.submit(ids[i], reviews[i % len(reviews)].document), range(WAITING), 8
        )
        for claim_id in ids:
            claims.wait_step(claim_id, "awaiting review", timeout_s=120)
        with stack.stopped("llm"):
            claims.submit("paused-1", samples("paid")[0].document)
            wait_for(
                "the claim to pause", lambda: _status(claims, "paused-1") == "paused", timeout_s=90
            )
    old_port = stack._processes["services"].port
    deployment = stack.deployment_ids["services"]
    assert HomeRecord.load(home).deployments == {"services": deployment}

    assert stacks.stop(home) is True
    with socket.socket() as stranger:  # another program takes the services' port meanwhile
        stranger.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        stranger.bind(("127.0.0.1", old_port))
        stranger.listen(8)
        with warnings.catch_warnings(record=True) as caught:
            warnings.simplefilter("always")
            stack = stacks.start(home, **OPTIONS)
        resumed = [str(w.message) for w in caught if issubclass(w.category, StackWarning)]
        assert stack._processes["services"].port != old_port
        assert stack.deployment_ids == {"services": deployment}, "moved in place, not new"
        with Claims(stack) as claims:
            listed = claims.http.get(f"{stack.admin_url}/deployments").json()["deployments"]
            assert [(d["id"], d["uri"].rstrip("/")) for d in listed] == [
                (deployment, stack.services_url)
            ]
            # the claim the outage paused is resumed (on a loaded machine the claims waiting for
            # review may be paused too: an attempt stays open until Restate suspends it)
            assert any(m.startswith("resumed ") for m in resumed), resumed
            assert _status(claims, "paused-1") != "paused"
            approved = claims.many(lambda claim_id: claims.approve(claim_id), ids, 10)
            assert [a.status_code for a in approved] == [200] * WAITING, [a.text for a in approved]
            outcomes = {claim_id: claims.outcome(claim_id)["status"] for claim_id in ids}
            assert outcomes == dict.fromkeys(ids, "paid")
            assert claims.outcome("paused-1")["status"] == "paid"
            assert claims.payments("wait-") == dict.fromkeys(ids, 1)
            assert claims.payments("paused-") == {"paused-1": 1}
            pinned = {row["pinned_deployment_id"] for row in claims.invocations("wait-")}
            assert pinned == {deployment}
    stack.stop()


def test_a_failed_up_leaves_no_deployment_behind(home: Path, monkeypatch) -> None:
    monkeypatch.setenv("LANGFUSE_PUBLIC_KEY", "pk-lf-wrong")
    monkeypatch.setenv("LANGFUSE_SECRET_KEY", "sk-lf-wrong")
    first, second = free_ports(2)  # the services on another port the second time
    with refusing_server() as langfuse:
        with pytest.raises(StackError, match=r"refused the keys \(HTTP 401\)"):
            stacks.start(home, langfuse_base_url=langfuse, services_port=first, **OPTIONS)
    assert stacks.attach(home) is None, "nothing of the failed start runs"
    assert HomeRecord.load(home).deployments == {}
    for name in ("LANGFUSE_PUBLIC_KEY", "LANGFUSE_SECRET_KEY"):
        monkeypatch.delenv(name)
    # the same Restate data, a working configuration
    stack = stacks.start(home, services_port=second, **OPTIONS)
    try:
        with Claims(stack) as claims:
            listed = claims.http.get(f"{stack.admin_url}/deployments").json()["deployments"]
            assert [d["id"] for d in listed] == [stack.deployment_ids["services"]]
            outcome = claims.post(
                "after-failed-up", "run", {"document": samples("paid")[0].document}
            )
            assert outcome.json()["status"] == "paid"
    finally:
        stack.stop()
