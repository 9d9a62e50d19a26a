"""The benchmark's measuring parts without a stack: CPU read per process, a py-spy speedscope
profile summarized by package and thread (idle waits left out), a claim's journal shape."""

from __future__ import annotations

import json
import os
import time
from pathlib import Path

import pytest

from workbench.bench_cpu import CpuMeter, native_thread_cpu_s, summarize
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


def test_native_threads_cpu_is_read_by_thread_name() -> None:
    """granian's Rust threads ("tokio-...") are measured apart: py-spy cannot sample them."""
    import ctypes
    import threading

    import psutil

    stop = threading.Event()
    ids: dict[bytes | None, int] = {}

    def burn(name: bytes | None) -> None:
        if name:
            ctypes.CDLL(None).prctl(15, name)  # PR_SET_NAME: this thread's name in /proc
        ids[name] = threading.get_native_id()
        while not stop.is_set():
            sum(range(1000))

    def spent() -> dict[int, float]:
        return {t.id: t.user_time + t.system_time for t in psutil.Process().threads()}

    burners = [threading.Thread(target=burn, args=(n,)) for n in (b"tokio-rt-worker", None)]
    for burner in burners:
        burner.start()
    try:
        time.sleep(0.5)
        before = spent()
        native = native_thread_cpu_s(os.getpid())
        after = spent()
    finally:
        stop.set()
        for burner in burners:
            burner.join()
    named, unnamed = ids[b"tokio-rt-worker"], ids[None]
    assert before[unnamed] > 0.05, "the unnamed thread burned CPU too (it must not be counted)"
    assert before[named] > 0.05
    assert before[named] <= native <= after[named]


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


def test_the_services_cpu_is_split_into_parts_each_sample_counted_once(tmp_path) -> None:
    from workbench.bench_cpu import services_parts

    frames = [
        {"name": "create_run_coroutine", "file": f"{SITE}/restate/server_context.py"},
        {"name": "call_llm", "file": f"{SITE}/restate/ext/openai/runner_wrapper.py"},
        {"name": "AsyncCompletions.create", "file": f"{SITE}/openai/resources/completions.py"},
        {"name": "BatchProcessor.worker", "file": f"{SITE}/opentelemetry/sdk/_shared.py"},
        {"name": "_encode_span", "file": f"{SITE}/opentelemetry/exporter/otlp/x.py"},
        {"name": "write_score", "file": "/work/services/scores.py"},
        {"name": "SpanImpl.start", "file": f"{SITE}/agents/tracing/spans.py"},
        {"name": "Handle._run", "file": f"{STDLIB}/asyncio/events.py"},
        {"name": "EpollSelector.select", "file": f"{STDLIB}/selectors.py"},
        {"name": 'process 7:"python -m services"'},  # py-spy's process frame (--subprocesses)
        {"name": "export_when_idle.<locals>.serving", "file": "/work/services/tracing.py"},
        {"name": "_flush_provider", "file": "/work/services/tracing.py"},
    ]
    samples = [
        [0, 1, 2],  # a model call made under Restate's wrapper: a model call
        [0, 1, 2],
        [0],  # the Restate SDK itself
        [3, 4],  # the exporter thread encoding
        [0, 5],  # the score write inside a ctx.run
        [7, 6],  # an agents' span started from the loop
        [7],  # the loop itself
        [8],  # idle: left out
        [9],  # no Python frame (granian's thread waiting with a thread state): left out
        [10, 0],  # the Restate SDK under the middleware counting requests: not tracing
        [11, 4],  # the export when idle, encoding
    ]
    profiles = [{"name": "x", "samples": samples, "weights": [0.01] * len(samples)}]
    path = tmp_path / "services.speedscope.json"
    path.write_text(json.dumps({"shared": {"frames": frames}, "profiles": profiles}))
    parts = {part: (kind, share) for part, kind, share in services_parts(path)}
    assert parts["model calls (openai client, HTTP)"] == ("shared", pytest.approx(2 / 9))
    assert parts["Restate SDK (journal, protocol, serde)"] == ("durable", pytest.approx(2 / 9))
    assert parts["span export (encode, post)"] == ("tracing", pytest.approx(2 / 9))
    assert parts["the judge's score write"] == ("Langfuse", pytest.approx(1 / 9))
    assert parts["agents' spans (agents SDK tracing, OpenInference)"][1] == pytest.approx(1 / 9)
    assert parts["event loop, stdlib and the rest"][1] == pytest.approx(1 / 9)
    assert sum(share for _, share in parts.values()) == pytest.approx(1.0)


def test_a_scratch_home_goes_when_its_block_ends_well_and_stays_when_it_fails() -> None:
    from workbench.bench import scratch_home

    with scratch_home("workbench-test-scratch-") as home:
        (home / "restate").mkdir()
        (home / "restate" / "data").write_bytes(b"x" * 1024)
    assert not home.exists()
    with pytest.raises(RuntimeError, match="the stack failed"):
        with scratch_home("workbench-test-scratch-") as kept:
            (kept / "services.log").write_text("why it failed")
            raise RuntimeError("the stack failed")
    try:
        assert (kept / "services.log").read_text() == "why it failed"  # kept for its logs
    finally:
        import shutil

        shutil.rmtree(kept)
