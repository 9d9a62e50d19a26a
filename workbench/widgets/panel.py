"""The failure-injection panel (ipywidgets 8): break a claim, watch it resume, see the evidence.

    panel = wb.faults.panel()   # displays: claim + fault pickers, live journal, process buttons
    panel.wait()                # (from code) until the claim submitted last has ended
    panel.sweep_button.click()  # the crash-point sweep of the chosen claim, as a heatmap

Work runs in background threads, so the kernel stays free while a claim runs; the widgets are
updated from there, which also makes the panel testable headless: set the pickers' values, call
`panel.submit.click()`, then `panel.wait()`.
"""

from __future__ import annotations

import asyncio
import base64
import html
import textwrap
import threading
import time
import traceback
from collections.abc import Callable
from typing import Any

import ipywidgets as widgets
import pandas as pd

from services import names
from services.faults import KINDS, MODEL_KINDS, is_model_step
from services.versions import VERSIONS

from .. import samples
from ..claims import AsyncClaims, Claim, new_claim_id
from ..evidence import aattempts, aresumption_report
from ..faults import SECONDS_KINDS, Fault, Faults
from ..frames import step_journal
from ..session import Session
from ..sweep import DEFAULT_KINDS, SWEEP_KINDS, SweepReport, sweep
from .tables import STYLE, WIDGET_CLASS, note, table

NO_FAULT = "(no fault)"
JOURNAL_ROWS = 14
JOURNAL_COLUMNS = ["step", "kind", "result", "error", "ms", "attempt"]
PROCESS_COLUMNS = ["name", "state", "pid", "uptime_s", "restarts"]
AS_DEPLOYED = "(as deployed)"


class FaultPanel:
    """Pick a claim (a sample or a new document) and a fault, submit, watch the journal and the
    status live, kill or restart processes meanwhile, then read the outcome and the evidence."""

    def __init__(self, session: Session, *, refresh_s: float = 0.5, timeout_s: float = 180.0):
        if session.stack is None:
            raise ValueError(
                "The failure panel kills and restarts the stack's processes: it needs a stack "
                "the workbench runs (wb.start()), not endpoints only."
            )
        self.session = session
        self.stack = session.stack
        self.refresh_s = refresh_s
        self.timeout_s = timeout_s
        self.claim: Claim | None = None
        self.report: pd.DataFrame | None = None
        self.error: str | None = None
        self.sweep_report: SweepReport | None = None
        self._worker: threading.Thread | None = None
        self._actions: list[threading.Thread] = []
        self._lock = threading.Lock()
        self.widget = widgets.VBox(
            [
                *self._claim_section(),
                *self._live_section(),
                *self._processes_section(),
                *self._outcome_section(),
                *self._sweep_section(),
            ]
        )
        self.widget.add_class(WIDGET_CLASS)

    # -- the sections, top to bottom (each makes its widgets and returns its rows) ---------------
    def _claim_section(self) -> list[widgets.Widget]:
        """1 · Claim and fault: a sample or a new document, the step, the fault, Submit."""
        self.source = widgets.ToggleButtons(
            options=[("sample claim", "sample"), ("new claim", "new")], value="sample"
        )
        self.sample = widgets.Dropdown(
            options=[
                (textwrap.shorten(f"{s.id}: {s.status_v1}, {s.notes or s.file}", 90), s.id)
                for s in samples.pick()
            ],
            value=samples.pick(status="paid")[0].id,
            description="sample",
            layout=widgets.Layout(width="640px"),
        )
        self.document = widgets.Textarea(
            placeholder="Customer ID: C-1001\nAmount: 120 EUR\nCategory: pharmacy\n...",
            description="document",
            layout=widgets.Layout(width="520px", height="110px", display="none"),
        )
        self.step = widgets.Dropdown(
            options=[NO_FAULT, *Faults.steps()], value="reimburse", description="step"
        )
        self.kind = widgets.Dropdown(
            options=list(KINDS), value="crash_after_effect", description="fault"
        )
        self.times = widgets.BoundedIntText(value=1, min=1, max=20, description="times")
        self.seconds = widgets.BoundedFloatText(
            value=1.0, min=0.0, max=60.0, step=0.5, description="seconds", disabled=True
        )
        self.help = widgets.HTML()
        self.submit = widgets.Button(description="Submit", button_style="primary", icon="play")
        self.source.observe(self._on_source, "value")
        self.step.observe(self._on_fault_change, "value")
        self.kind.observe(self._on_fault_change, "value")
        self.submit.on_click(lambda _: self._submit())
        self._on_fault_change()
        return [
            widgets.HTML(STYLE + _heading("1 · Claim and fault")),
            widgets.HBox([self.source, self.sample]),
            self.document,
            widgets.HBox([self.step, self.kind]),
            widgets.HBox([self.times, self.seconds, self.submit]),
            self.help,
        ]

    def _live_section(self) -> list[widgets.Widget]:
        """2 · Live: the claim's status line and its journal, refreshed while it runs."""
        self.status = widgets.HTML(note("No claim yet: pick one and a fault, then Submit."))
        self.journal = widgets.HTML()
        return [widgets.HTML(_heading("2 · Live: status and journal")), self.status, self.journal]

    def _processes_section(self) -> list[widgets.Widget]:
        """3 · Processes: their status table, kill and restart buttons, and what they did."""
        self.processes = widgets.HTML()
        self.kill_service = widgets.Button(description="Kill service", button_style="danger")
        self.kill_restate = widgets.Button(description="Kill Restate", button_style="danger")
        self.restart_target = widgets.Dropdown(
            options=list(self.stack.names),
            value="services" if "services" in self.stack.names else self.stack.names[0],
            layout=widgets.Layout(width="130px"),
        )
        self.restart = widgets.Button(description="Restart", button_style="warning")
        self.refresh = widgets.Button(description="Refresh", icon="refresh")
        self.message = widgets.HTML()
        self.kill_service.on_click(lambda _: self._act("kill services", self._kill, "services"))
        self.kill_restate.on_click(lambda _: self._act("kill restate", self._kill, "restate"))
        self.restart.on_click(
            lambda _: self._act(
                f"restart {self.restart_target.value}", self._restart, self.restart_target.value
            )
        )
        self.refresh.on_click(lambda _: self._act("refresh", self._show_processes))
        self._show_processes()
        buttons = [
            self.kill_service,
            self.kill_restate,
            self.restart_target,
            self.restart,
            self.refresh,
        ]
        return [
            widgets.HTML(_heading("3 · Processes")),
            self.processes,
            widgets.HBox(buttons),
            self.message,
        ]

    def _outcome_section(self) -> list[widgets.Widget]:
        """4 · Outcome and evidence: filled in when the claim has ended."""
        self.outcome = widgets.HTML()
        self.evidence = widgets.HTML()
        return [widgets.HTML(_heading("4 · Outcome and evidence")), self.outcome, self.evidence]

    def _sweep_section(self) -> list[widgets.Widget]:
        """5 · Crash-point sweep: the kinds and version to sweep the picked claim with, its
        progress, then its verdict and heatmap."""
        self.sweep_kinds = widgets.SelectMultiple(
            options=list(SWEEP_KINDS), value=list(DEFAULT_KINDS), rows=4, description="kinds"
        )
        self.sweep_version = widgets.Dropdown(
            options=[AS_DEPLOYED, *VERSIONS], value=AS_DEPLOYED, description="version"
        )
        self.sweep_button = widgets.Button(
            description="Sweep", button_style="info", icon="th", tooltip="crash at every boundary"
        )
        self.sweep_status = widgets.HTML(
            note(
                "Crash the claim picked above at every boundary of its journal, one claim per "
                "(boundary, kind), and check that nothing changed: outcome, one payment, no "
                "work redone, the judge's score."
            )
        )
        self.sweep_heatmap = widgets.HTML()
        self.sweep_button.on_click(lambda _: self._sweep())
        return [
            widgets.HTML(_heading("5 · Crash-point sweep")),
            widgets.HBox([self.sweep_kinds, self.sweep_version, self.sweep_button]),
            self.sweep_status,
            self.sweep_heatmap,
        ]

    # -- display ---------------------------------------------------------------------------------
    def _repr_mimebundle_(self, **kwargs: Any) -> Any:
        return self.widget._repr_mimebundle_(**kwargs)

    def __repr__(self) -> str:
        state = ("sweeping" if self._sweeping else "running a claim") if self.busy else "idle"
        return f"FaultPanel({state}, claim={self.claim.id if self.claim else None})"

    # -- the pickers -----------------------------------------------------------------------------
    def _on_source(self, _: Any = None) -> None:
        new = self.source.value == "new"
        self.sample.layout.display = "none" if new else None
        self.document.layout.display = None if new else "none"

    def _on_fault_change(self, _: Any = None) -> None:
        step = self.step.value
        no_fault = step == NO_FAULT
        allowed = [k for k in KINDS if is_model_step(step) or k not in MODEL_KINDS]
        if list(self.kind.options) != allowed:
            current = self.kind.value
            self.kind.options = allowed
            self.kind.value = current if current in allowed else allowed[0]
        self.kind.disabled = self.times.disabled = no_fault
        self.seconds.disabled = no_fault or self.kind.value not in SECONDS_KINDS
        self.help.value = "" if no_fault else note(f"{self.kind.value}: {KINDS[self.kind.value]}")

    def faults(self) -> list[Fault]:
        """The fault the pickers describe (none when the step is "(no fault)")."""
        if self.step.value == NO_FAULT:
            return []
        seconds = float(self.seconds.value) if self.kind.value in SECONDS_KINDS else None
        return [
            Fault(self.step.value, self.kind.value, times=int(self.times.value), seconds=seconds)
        ]

    def document_text(self) -> str:
        if self.source.value == "new":
            return self.document.value
        return samples.get(self.sample.value).document

    # -- running a claim -------------------------------------------------------------------------
    @property
    def busy(self) -> bool:
        """A claim or a sweep is running."""
        return self._worker is not None and self._worker.is_alive()

    @property
    def _sweeping(self) -> bool:
        return self._worker is not None and self._worker.name.startswith("sweep")

    def _submit(self) -> None:
        if self.busy:
            what = "A sweep" if self._sweeping else "A claim"
            self.message.value = note(f"{what} is still running: wait for its outcome.", "#b00")
            return
        try:
            faults = self.faults()
            request = AsyncClaims(self.session).request(self.document_text())
        except (ValueError, TypeError) as e:
            self.message.value = note(str(e), "#b00")
            return
        claim_id = new_claim_id("panel")
        self.claim, self.report, self.error = None, None, None
        self.outcome.value = self.evidence.value = self.journal.value = ""
        what = ", ".join(map(str, faults)) or "no fault"
        self.message.value = note(f"Submitting {claim_id} with {what}.")
        self._worker = threading.Thread(
            target=self._follow, args=(claim_id, request, faults), daemon=True, name=claim_id
        )
        self._worker.start()

    def _follow(self, claim_id: str, request: Any, faults: list[Fault]) -> None:
        try:
            asyncio.run(self._afollow(claim_id, request, faults))
        except Exception as e:  # shown in the panel: a background thread has no one to raise to
            self.error = f"{type(e).__name__}: {e}"
            self.status.value = note(f"{claim_id}: {self.error}", "#b00")
            traceback.print_exc()

    async def _afollow(self, claim_id: str, request: Any, faults: list[Fault]) -> None:
        started = time.monotonic()
        claims = AsyncClaims(self.session)
        submitted = await claims.submit(request, claim_id, wait=False, faults=faults)
        what = ", ".join(map(str, faults)) or "no fault"
        self.message.value = note(f"Submitted {claim_id} with {what}.")
        invocation_id = submitted.invocation_id
        while True:
            claim = await self._snapshot(claim_id, invocation_id, started)
            if claim is not None:
                invocation_id = claim.invocation_id or invocation_id
                if claim.done or claim.awaiting_review or claim.status == "paused":
                    break
            if time.monotonic() - started > self.timeout_s:
                raise TimeoutError(f"the claim did not end within {self.timeout_s:.0f} s")
            await asyncio.sleep(self.refresh_s)
        self.claim = claim
        final = await self._snapshot(claim_id, invocation_id, started)  # elapsed at the end
        await self._finish(final or claim, time.monotonic() - started)

    async def _snapshot(
        self, claim_id: str, invocation_id: str | None, started: float
    ) -> Claim | None:
        """One refresh of the live view; None while Restate does not answer (restarting)."""
        elapsed = time.monotonic() - started
        self._show_processes()
        restate = self.session.restate
        try:
            claim = await AsyncClaims(self.session).get(claim_id)
            attempts = await aattempts(self.session, claim_id)
            journal_id = claim.invocation_id or invocation_id
            rows = await restate.journal(journal_id) if journal_id else []
            starts = [
                e["at"]
                for e in self.session.fault_store.events(claim_id)
                if e["event"] == "attempt"
            ]
            journal = step_journal(rows, starts)[JOURNAL_COLUMNS]
        except Exception as e:  # Restate killed and restarting: keep watching
            self.status.value = note(
                f"{claim_id} · {elapsed:.1f} s · Restate does not answer ({type(e).__name__}); "
                "it is probably restarting",
                "#b60",
            )
            return None
        failure = attempts.last_failure or "none"
        self.status.value = (
            f"<b>{html.escape(claim_id)}</b> · {elapsed:.1f} s · "
            f"status <b>{html.escape(claim.status)}</b> · step {html.escape(claim.step)} · "
            f"attempts {attempts.count} "
            f"(Restate retries {attempts.retries}) · processes {attempts.processes}"
            f"<br>last failure: {html.escape(failure)}"
        )
        if len(journal):
            self.journal.value = table(journal.tail(JOURNAL_ROWS))
        return claim

    async def _finish(self, claim: Claim, elapsed_s: float) -> None:
        color = {"paid": "#070", "rejected": "#555", names.AWAITING_REVIEW: "#b60"}.get(
            claim.status, "#b00"
        )
        self.outcome.value = (
            f"<b style='color:{color}'>{html.escape(claim.status.upper())}</b> "
            f"<b>{html.escape(claim.id)}</b> · {note(f'{claim.status} after {elapsed_s:.1f} s')}"
            + table(_outcome_rows(claim))
        )
        self.report = await aresumption_report(self.session, claim.id)
        payments = self.session.ledger_store.attempts(claim.id)
        parts = ["<b>Resumption report</b>", table(self.report)]
        if len(payments):
            parts += ["<b>Payment attempts</b> (the ledger)", table(payments)]
        self.evidence.value = "".join(parts)
        self._show_processes()

    # -- the crash-point sweep -------------------------------------------------------------------
    def _sweep(self) -> None:
        if self.busy:
            self.sweep_status.value = note("A claim or a sweep is still running: wait.", "#b00")
            return
        kinds = list(self.sweep_kinds.value)
        version = None if self.sweep_version.value == AS_DEPLOYED else self.sweep_version.value
        try:
            document = self.document_text()
            AsyncClaims(self.session).request(document)
            if not kinds:
                raise ValueError("Pick at least one fault kind to sweep.")
        except (ValueError, TypeError) as e:
            self.sweep_status.value = note(str(e), "#b00")
            return
        self.sweep_report, self.error = None, None
        self.sweep_heatmap.value = ""
        self.sweep_status.value = note(
            f"Sweeping with {', '.join(kinds)}: the baseline claim first ...", "#1565c0"
        )
        self._worker = threading.Thread(
            target=self._follow_sweep, args=(document, kinds, version), daemon=True, name="sweep"
        )
        self._worker.start()

    def _follow_sweep(self, document: str, kinds: list[str], version: str | None) -> None:
        started = time.monotonic()

        def progress(done: int, total: int, what: str) -> None:
            elapsed = time.monotonic() - started
            count = f"{done}/{total} cases" if total else "baseline done"
            self.sweep_status.value = note(f"{count} · {elapsed:.0f} s · {what}", "#1565c0")

        try:
            report = sweep(
                self.session, document, kinds, version=version, progress=False, on_case=progress
            )
        except Exception as e:  # shown in the panel: a background thread has no one to raise to
            self.error = f"{type(e).__name__}: {e}"
            self.sweep_status.value = note(f"The sweep failed: {self.error}", "#b00")
            traceback.print_exc()
            return
        self.sweep_report = report
        color = "#2e7d32" if report.passed else "#c62828"
        self.sweep_status.value = f"<b style='color:{color}'>{html.escape(report.verdict)}</b>"
        image = base64.b64encode(report.heatmap_png()).decode()
        parts = [f"<img src='data:image/png;base64,{image}'/>"]
        if not report.failures.empty:
            parts.append(table(report.failures[["boundary", "kind", "broken", "why"]]))
        self.sweep_heatmap.value = "".join(parts)
        self._show_processes()

    def wait(self, timeout_s: float | None = None) -> Claim | None:
        """Block until the claim submitted last has ended (or waits for review), or the sweep
        started last has finished, and until the process actions started have finished;
        returns the claim (a sweep's result is `sweep_report`)."""
        deadline = time.monotonic() + (timeout_s or self.timeout_s + 30)
        for thread in [self._worker, *self._actions]:
            if thread is not None:
                thread.join(max(deadline - time.monotonic(), 0.0))
        what = "sweep" if self._sweeping else "claim"
        if self.busy:
            raise TimeoutError(f"the panel's {what} is still running after {timeout_s} s")
        if self.error:
            raise RuntimeError(f"the panel's {what} failed to run: {self.error}")
        return self.claim

    # -- processes -------------------------------------------------------------------------------
    def _act(self, what: str, fn: Callable[..., Any], *args: Any) -> None:
        def run() -> None:
            try:
                fn(*args)
            except Exception as e:
                self.message.value = note(f"{what} failed: {type(e).__name__}: {e}", "#b00")

        thread = threading.Thread(target=run, daemon=True, name=what)
        self._actions = [t for t in self._actions if t.is_alive()] + [thread]
        thread.start()

    def _kill(self, name: str) -> None:
        pid = self.stack.kill(name)
        self.message.value = note(
            f"Killed {name} (pid {pid}, SIGKILL); supervisord restarts it.", "#b00"
        )
        self._show_processes()

    def _restart(self, name: str) -> None:
        self.message.value = note(f"Restarting {name} ...")
        self.stack.restart(name)
        self.message.value = note(f"Restarted {name}: pid {self.stack.pid(name)}, ready.")
        self._show_processes()

    def _show_processes(self) -> None:
        with self._lock:
            try:
                frame = self.stack.status()[PROCESS_COLUMNS]
            except Exception as e:
                self.processes.value = note(f"status unavailable: {e}", "#b00")
                return
            self.processes.value = table(frame)


def _heading(text: str) -> str:
    """A section's heading (HTML)."""
    return f"<h4 style='margin:4px 0'>{text}</h4>"


def _outcome_rows(claim: Claim) -> pd.DataFrame:
    """The claim's outcome as field/value rows (what `Claim`'s table shows in a notebook)."""
    fields = {k: v for k, v in claim.row().items() if k not in ("id", "status") and v is not None}
    if claim.outcome is not None and claim.outcome.prompt_versions:
        versions = sorted(claim.outcome.prompt_versions.items())
        fields["prompts"] = ", ".join(f"{name} v{version}" for name, version in versions)
    return pd.DataFrame({"field": list(fields), "value": [str(v) for v in fields.values()]})
