"""The claims on a 3-node Restate cluster (`wb.start(nodes=3)`): the stack, the clients' failover,
the cluster's status, a leader killed mid-claim (`kill_leader`), and two nodes down. One cluster
for the module (bounded: about two minutes in all), marked `cluster`."""

from __future__ import annotations

import threading

import httpx
import pytest

import workbench as wb
from workbench.clients.restate import RestateClient

from .conftest import claims_stack

pytestmark = [pytest.mark.integration, pytest.mark.cluster]

NODES = ["restate-1", "restate-2", "restate-3"]


@pytest.fixture(scope="module")
def stack(tmp_path_factory):
    # model latency stretches each claim, so that the kills land while claims are in flight
    with claims_stack(tmp_path_factory.mktemp("cluster-home"), nodes=3, llm_latency_ms=40) as s:
        yield s


def _known(n: int, prefix: str) -> list[tuple[str, wb.Sample]]:
    known = [s for s in wb.samples.pick() if s.status_v1 in ("paid", "rejected", "invalid")]
    return [(f"{prefix}-{i:02d}", known[i % len(known)]) for i in range(n)]


def _paid_once(batch: list[tuple[str, wb.Sample]], got: dict[str, str], prefix: str) -> None:
    ledger = wb.ledger()
    ledger = ledger[ledger["claim_id"].str.startswith(f"{prefix}-")]
    per_claim = ledger.groupby("claim_id").size()
    paid = {claim_id for claim_id, status in got.items() if status == "paid"}
    assert set(per_claim.index) == paid, "a payment for every paid claim, and only for those"
    assert (per_claim == 1).all(), per_claim[per_claim != 1]


def test_three_nodes_run_under_one_supervisord_with_a_replicated_cluster(stack) -> None:
    assert stack.restate_nodes == NODES
    assert stack.is_cluster and len(stack.ingress_urls) == 3 and len(stack.admin_urls) == 3
    config = (stack.home / "cluster" / "restate-2.toml").read_text()
    assert 'type = "replicated"' in config and "auto-provision = false" in config
    assert all(url in config for url in stack.node_urls)
    assert "auto-provision = true" in (stack.home / "cluster" / "restate-1.toml").read_text()

    wb.cluster.wait_healthy(timeout_s=30)
    status = wb.current().status().set_index("name")
    for node in NODES:
        assert status.loc[node, "state"] == "RUNNING"
        assert status.loc[node, "health"] == "alive"
        assert status.loc[node, "replication"] == "{node: 2}"
    led = sorted(int(p) for leads in status.loc[NODES, "leads"] for p in leads.split(", ") if p)
    partitions = wb.cluster.partitions()
    assert led == sorted(partitions["partition"].tolist())
    assert set(partitions["leader"]) <= set(NODES)
    assert all(len(r.split(", ")) == 2 for r in partitions["replicas"]), "2 copies of each"
    # the services are registered once, and every node knows them
    for url in stack.admin_urls:
        deployments = httpx.get(f"{url}/deployments", timeout=5).json()["deployments"]
        assert len(deployments) == 1


def test_the_client_fails_over_to_a_node_that_answers(stack) -> None:
    # a client whose first node is down (nothing listens there) still gets its answers
    dead = "http://127.0.0.1:9"  # discard port: connection refused
    client = RestateClient([dead, *stack.ingress_urls], [dead, *stack.admin_urls])
    session = wb.Session(
        wb.session.Endpoints(
            stack.ingress_url,
            stack.admin_url,
            ingress_urls=(dead, *stack.ingress_urls),
            admin_urls=(dead, *stack.admin_urls),
        ),
        home=stack.home,
        stack=stack,
    )
    try:
        assert repr(client).startswith(f"RestateClient(ingress={dead},")
        done = session.claims.submit(wb.samples.pick(1, status="paid")[0], "failover-1")
        assert done.status == "paid"
        assert session.restate.ingress_url != dead and session.restate.admin_url != dead
    finally:
        session.close()


def test_kill_leader_mid_claim_loses_nothing_and_pays_once(stack) -> None:
    wb.cluster.wait_healthy(timeout_s=60)
    batch = _known(12, "leader")
    faulted = {"leader-03": "check fraud", "leader-08": "reimburse"}
    for claim_id, step in faulted.items():
        wb.faults.plan(claim_id, wb.Fault(step, "kill_leader"))
    before = wb.cluster.snapshot("before")
    # every claim submitted through node 1 (the others only if it is the one killed)
    claims = wb.claims.submit_many(batch, concurrency=4, progress=False)
    got = {c.id: c.status for c in claims}
    assert got == {claim_id: sample.status_v1 for claim_id, sample in batch}, "0 lost"
    _paid_once(batch, got, "leader")

    killed = []
    for claim_id in faulted:
        events = wb.faults.history(claim_id)
        crashed = events[(events["event"] == "crashed") & (events["kind"] == "kill_leader")]
        assert len(crashed) == 1, events.to_string()
        detail = crashed["detail"].iloc[0]
        assert any(detail.startswith(f"{node} (pid ") for node in NODES), detail
        killed.append(detail.split(" ")[0])
        assert wb.claims.get(claim_id).attempts.retries >= 1
    # the killed leaders' partitions moved (a new epoch: another leader took over)
    wb.cluster.wait_healthy(timeout_s=60)
    after = wb.cluster.snapshot("after")
    moved = before.merge(after, on="partition", suffixes=("_before", "_after"))
    led_by_killed = moved[moved["leader_before"].isin(killed)]
    assert len(led_by_killed) > 0
    assert (led_by_killed["epoch_before"] != led_by_killed["epoch_after"]).all(), moved


def test_two_nodes_down_stall_and_resume_when_one_returns(stack) -> None:
    wb.cluster.wait_healthy(timeout_s=60)
    sample = wb.samples.pick(1, status="paid")[0]
    result: dict[str, object] = {}
    try:
        wb.cluster.stop("restate-2", "restate-3")
        worker = threading.Thread(
            target=lambda: result.update(claim=wb.claims.submit(sample, "two-down-1")),
            daemon=True,
        )
        worker.start()
        worker.join(8.0)  # the claim cannot finish without a majority of the nodes
        assert worker.is_alive(), f"the claim ended with two of three nodes down: {result}"
        assert wb.ledger("two-down-1").empty
    finally:
        wb.cluster.start("restate-2")
    worker.join(90.0)
    assert not worker.is_alive(), "the claim did not finish once a second node was back"
    assert result["claim"].status == "paid"
    assert len(wb.ledger("two-down-1")) == 1
    wb.cluster.start("restate-3")
    wb.cluster.wait_healthy(timeout_s=60)


def test_kill_a_node_by_name_and_bad_names_are_refused(stack) -> None:
    pid = wb.cluster.kill("restate-3")
    stack.wait_ready("restate-3", timeout_s=60)
    assert stack.pid("restate-3") not in (None, pid)
    with pytest.raises(ValueError, match=r"'restate-9' is not a node of this cluster; its nodes"):
        wb.cluster.kill("restate-9")
    with pytest.raises(ValueError, match=r"kill_restate kills the single Restate server"):
        wb.faults.plan("x-1", wb.Fault("parse", "kill_restate"))
    wb.cluster.wait_healthy(timeout_s=60)
    assert wb.cluster.nodes().set_index("name").loc["restate-3", "health"] == "alive"
