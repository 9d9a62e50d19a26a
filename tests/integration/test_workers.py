"""The services as several worker processes behind one deployment
(`services_workers=2`): claims are served, a crash fault inside a step takes the whole
deployment down and supervisord brings it back (the claim finishes, paid once), a kill of the
parent leaves no worker serving its port, and the sweep refuses waves it could not hold."""

from __future__ import annotations

import os
from collections.abc import Iterator
from pathlib import Path

import psutil
import pytest

import workbench as wb
from workbench.session import Session
from workbench.stack.config import DEFAULT_PORTS
from workbench.stack.ports import free_ports

from ..protocol import SHELL_SETTINGS, wait_for

pytestmark = pytest.mark.integration


@pytest.fixture(params=["granian", "hypercorn"])
def session(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, request: pytest.FixtureRequest
) -> Iterator[Session]:
    for name in (*SHELL_SETTINGS, "WORKBENCH_SERVICES_WORKERS"):
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setenv("WORKBENCH_SERVICES_SERVER", request.param)  # the services inherit it
    names = [f"{name}_port" for name in DEFAULT_PORTS]
    ports = dict(zip(names, free_ports(len(names)), strict=True))
    stack = wb.stack.start(
        tmp_path / "home", persistent=False, timeout_s=120, services_workers=2, **ports
    )
    try:
        yield Session.of_stack(stack)
    finally:
        stack.stop()


def _workers(pid: int) -> list[psutil.Process]:
    """The worker processes under the services' parent (granian forks them; hypercorn spawns
    them), not multiprocessing's resource tracker."""
    return [
        p
        for p in psutil.Process(pid).children(recursive=True)
        if "resource_tracker" not in " ".join(p.cmdline())
    ]


def test_two_workers_serve_crash_and_come_back_together(session: Session) -> None:
    stack = session.stack
    assert stack is not None
    assert stack.process("services").command[-2:] == ["--workers", "2"]
    server = os.environ["WORKBENCH_SERVICES_SERVER"]
    maps = Path(f"/proc/{stack.pid('services')}/maps").read_text()
    assert ("granian" in maps) == (server == "granian")  # hypercorn is Python: no library
    paid = wb.samples.pick(status="paid")
    parent = stack.pid("services")
    assert parent is not None
    workers = wait_for("two workers", lambda: len(w := _workers(parent)) >= 2 and w, timeout_s=30)
    assert len(workers) >= 2

    first = session.claims.submit(paid[0])
    assert first.status == "paid"

    crashed = session.claims.submit(paid[1], faults=[wb.Fault("convert to EUR", "crash")])
    assert crashed.status == "paid"
    # the crashed worker's parent stops the other worker (a claim may finish on it meanwhile)
    # and exits; supervisord restarts the whole deployment. Without a bound on that stop, the
    # other worker kept Restate's connection open and the parent never exited.
    wait_for(
        "the deployment to be restarted as a whole",
        lambda: stack.pid("services") not in (None, parent),
        timeout_s=30,
    )
    assert not any(w.is_running() and w.status() != psutil.STATUS_ZOMBIE for w in workers)
    assert len(session.ledger_store.payments([crashed.id])) == 1

    parent = stack.pid("services")
    workers = wait_for("two workers", lambda: len(w := _workers(parent)) >= 2 and w, timeout_s=60)
    stack.kill("services")
    wait_for(
        "the killed parent's workers to end",
        lambda: not any(w.is_running() and w.status() != psutil.STATUS_ZOMBIE for w in workers),
        timeout_s=30,
    )
    stack.wait_ready("services", timeout_s=120)
    assert session.claims.submit(paid[2]).status == "paid"

    with pytest.raises(wb.SweepError, match=r"2 worker processes .* concurrency=1"):
        session.faults.sweep(paid[3], concurrency=2)
