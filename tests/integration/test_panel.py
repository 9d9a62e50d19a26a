"""The failure-injection panel driven headless: set the widgets, click, wait, read the widgets."""

from __future__ import annotations

import time

import pytest

import workbench as wb
from workbench.widgets.panel import NO_FAULT, FaultPanel

from .conftest import claims_stack

pytestmark = pytest.mark.integration


@pytest.fixture(scope="module")
def stack(tmp_path_factory):
    with claims_stack(tmp_path_factory.mktemp("panel-home"), llm_latency_ms=5) as s:
        yield s


@pytest.fixture
def panel(stack) -> FaultPanel:
    p = wb.faults.panel(refresh_s=0.2)
    yield p
    p.wait(60)


def test_the_panel_renders_as_a_widget(panel) -> None:
    bundle = panel._repr_mimebundle_()
    assert "application/vnd.jupyter.widget-view+json" in bundle
    assert "services" in panel.processes.value and "RUNNING" in panel.processes.value


def test_model_faults_are_offered_only_at_model_steps(panel) -> None:
    panel.step.value = "reimburse"
    assert "rate_limit" not in panel.kind.options and "crash" in panel.kind.options
    panel.step.value = "model call 2"
    assert "rate_limit" in panel.kind.options
    panel.kind.value = "rate_limit"
    assert not panel.seconds.disabled
    panel.kind.value = "server_error"
    assert panel.seconds.disabled


def test_a_crash_after_the_payment_shows_one_payment_and_the_refused_duplicate(panel) -> None:
    panel.source.value = "sample"
    panel.sample.value = wb.samples.pick(status="paid")[0].id
    panel.step.value = "reimburse"
    panel.kind.value = "crash_after_effect"
    panel.submit.click()
    claim = panel.wait(90)
    assert claim.status == "paid"
    assert "PAID" in panel.outcome.value
    assert "Resumption report" in panel.evidence.value
    assert "refused as duplicates 1" in panel.evidence.value
    row = panel.report.set_index("step").loc["reimburse"]
    assert (row["executed"], row["journaled"]) == (2, 1)
    assert "model call" in panel.journal.value and "reimburse" in panel.journal.value
    assert "processes 2" in panel.status.value


def test_kill_buttons_break_processes_while_the_claim_runs(panel, stack) -> None:
    services, restate = stack.pid("services"), stack.pid("restate")
    panel.source.value = "new"
    panel.document.value = (
        "Claim form\nCustomer ID: C-1001\nDate: 2026-03-02\nAmount: 80 EUR\n"
        "Category: pharmacy\nReceipt attached: yes"
    )
    panel.step.value = "convert to EUR"
    panel.kind.value = "delay"
    panel.seconds.value = 2.0
    panel.submit.click()
    deadline = time.monotonic() + 30
    while "convert to EUR" not in panel.status.value and time.monotonic() < deadline:
        time.sleep(0.05)
    panel.kill_service.click()
    panel.kill_restate.click()
    claim = panel.wait(90)
    assert claim.status == "paid", claim
    assert stack.pid("services") != services and stack.pid("restate") != restate
    assert "Killed services" in panel.message.value or "Killed restate" in panel.message.value
    assert claim.attempts.processes == 2


def test_restart_and_refresh_buttons(panel, stack) -> None:
    pid = stack.pid("llm")
    panel.restart_target.value = "llm"
    panel.restart.click()
    panel.wait(60)
    assert stack.pid("llm") != pid
    assert "Restarted llm" in panel.message.value
    panel.refresh.click()
    panel.wait(10)
    assert str(stack.pid("llm")) in panel.processes.value


def test_no_fault_and_a_bad_document(panel) -> None:
    panel.source.value = "new"
    panel.document.value = "   "
    panel.step.value = NO_FAULT
    panel.submit.click()
    assert "empty" in panel.message.value and not panel.busy
    panel.source.value = "sample"
    panel.sample.value = wb.samples.pick(status="rejected")[0].id
    panel.submit.click()
    assert panel.wait(60).status == "rejected"
    assert "faults:" not in panel.evidence.value


def test_the_sweep_action_runs_a_sweep_and_shows_its_heatmap(panel) -> None:
    panel.source.value = "sample"
    panel.sample.value = wb.samples.pick(status="paid")[0].id
    panel.sweep_kinds.value = ()
    panel.sweep_button.click()
    assert "Pick at least one fault kind" in panel.sweep_status.value and not panel.busy
    panel.sweep_kinds.value = ("error",)  # cheap: every boundary, no process restarted
    panel.sweep_button.click()
    assert panel.busy and "FaultPanel(sweeping" in repr(panel)
    panel.submit.click()
    assert "A sweep is still running" in panel.message.value
    panel.wait(300)
    report = panel.sweep_report
    assert report is not None and report.passed, report
    assert set(report.frame["kind"]) == {"error"}
    assert "PASSED" in panel.sweep_status.value
    assert "data:image/png;base64," in panel.sweep_heatmap.value
