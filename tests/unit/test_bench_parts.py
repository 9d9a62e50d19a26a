"""The benchmark's measuring parts without a stack: CPU read per process, a py-spy speedscope
profile summarized by package and thread (idle waits left out), a claim's journal shape."""

from __future__ import annotations

import json
import os
import time
from pathlib import Path

import pytest

from workbench.bench_cpu import CpuMeter, summarize
from workbench.bench_floor import journal_shape

SITE = "/venv/lib/python3.11/site-packages"
STDLIB = "/usr/lib/python3.11"


def test_cpu_meter_counts_what_a_process_spent_per_unit() -> None:
    meter = CpuMeter({"me": os.getpid()})
    with meter.measuring():
        deadline = time.process_time() + 0.2
        while time.process_time() < deadline:  # burn CPU, observed by the kernel
            pass
    per = meter.per_unit(4)
    assert per["me"] == pytest.approx(0.05, rel=0.5)
    assert per["total"] == per["me"]


def test_a_profile_is_summarized_by_package_and_thread_without_idle_waits(tmp_path) -> None:
    frames = [
        {"name": "main", "file": "/work/services/__main__.py"},
        {"name": "Condition.wait", "file": f"{STDLIB}/threading.py"},
        {"name": "VMWrapper.do_progress", "file": f"{SITE}/restate/vm.py"},
        {"name": "_encode_span", "file": f"{SITE}/opentelemetry/exporter/otlp/x.py"},
        {"name": "JSONEncoder.encode", "file": f"{STDLIB}/json/encoder.py"},
    ]
    profiles = [
        {
            "name": 'Process 1 Thread 1 "MainThread"',
            "samples": [[0, 2], [0, 2], [0, 4], [0]],
            "weights": [0.01, 0.01, 0.01, 0.01],
        },
        {
            "name": 'Process 1 Thread 2 "OtelBatchSpanRecordProcessor"',
            "samples": [[1], [1], [1], [3]],
            "weights": [0.01, 0.01, 0.01, 0.01],
        },
    ]
    path = tmp_path / "services.speedscope.json"
    path.write_text(json.dumps({"shared": {"frames": frames}, "profiles": profiles}))
    summary = summarize(path)
    assert summary.cpu_s == pytest.approx(0.05)  # the three idle waits are left out
    groups = dict(summary.by_group)
    assert groups["restate SDK (protocol, journal)"] == pytest.approx(0.4)
    assert groups["OpenTelemetry + OpenInference (tracing)"] == pytest.approx(0.2)
    assert groups["json"] == pytest.approx(0.2)
    assert groups["services (the workflow's own code)"] == pytest.approx(0.2)
    assert dict(summary.by_thread) == pytest.approx(
        {"MainThread": 0.8, "OtelBatchSpanRecordProcessor": 0.2}
    )


async def test_a_journal_shape_counts_commands_not_their_completions() -> None:
    rows = json.loads(
        (Path(__file__).parent / "data" / "journals.json").read_text(encoding="utf-8")
    )["retry"]["rows"]

    class Restate:
        async def journal(self, invocation_id: str) -> list[dict]:
            return rows

    class FakeSession:
        restate = Restate()

    shape = await journal_shape(FakeSession(), "inv_1")
    assert (shape.runs, shape.sets, shape.sends) == (8, 8, 1)
    assert shape.order.startswith("srsrs") and shape.entries == 17
