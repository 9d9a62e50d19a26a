"""Benchmark parts of the observability work: the embedded Langfuse's span ingest rate with
batched OTLP export, and what tracing adds to a claim's latency."""

from __future__ import annotations

import os
import shutil
import socket
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
import psutil

from .stack.config import LOCAL_LANGFUSE_PUBLIC_KEY as PK
from .stack.config import LOCAL_LANGFUSE_SECRET_KEY as SK
from .stack.tracing import OTLP_PATH, basic_auth


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@contextmanager
def _embedded_langfuse() -> Iterator[tuple[str, psutil.Process]]:
    """The embedded Langfuse as its own process on a free port: (base URL, its process)."""
    port = _free_port()
    folder = Path(tempfile.mkdtemp(prefix="bench-langfuse-"))
    db = folder / "langfuse.sqlite3"
    server = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "workbench.local.langfuse",
            "--host",
            "127.0.0.1",
            "--port",
            str(port),
            "--db",
            str(db),
            "--public-key",
            PK,
            "--secret-key",
            SK,
        ],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    base = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + 30
        while True:
            try:
                if httpx.get(f"{base}/api/public/health", timeout=1).status_code == 200:
                    break
            except httpx.HTTPError:
                pass
            if time.monotonic() > deadline or server.poll() is not None:
                raise RuntimeError("the embedded Langfuse did not start for the ingest benchmark")
            time.sleep(0.05)
        yield base, psutil.Process(server.pid)
    finally:
        server.terminate()
        server.wait(timeout=10)
        shutil.rmtree(folder, ignore_errors=True)  # its 13 MB of spans: nothing reads them after


def _make_spans(tracer: Any, n_spans: int) -> None:
    """n_spans spans shaped as a claim's: an agent, its generation, a tool, a step."""
    for i in range(n_spans // 4):
        with tracer.start_as_current_span(
            "Agent workflow", attributes={"openinference.span.kind": "AGENT"}
        ):
            with tracer.start_as_current_span(
                "generation",
                attributes={
                    "openinference.span.kind": "LLM",
                    "llm.model_name": "bench",
                    "llm.token_count.prompt": 600,
                    "llm.token_count.completion": 60,
                    "input.value": f"claim {i}",
                    "output.value": "{}",
                },
            ):
                pass
            with tracer.start_as_current_span(
                "check_fraud", attributes={"openinference.span.kind": "TOOL"}
            ):
                pass
            with tracer.start_as_current_span("reimburse"):
                pass


@dataclass(frozen=True)
class IngestRate:
    spans_per_s: float
    server_cpu_per_span_s: float
    client_cpu_per_span_s: float | None = None
    """The sending process's CPU per span (the OpenTelemetry SDK: make, batch, encode, gzip)."""


def span_ingest_rate(n_spans: int = 20_000, timeout_s: float = 120.0) -> IngestRate:
    """Spans per second through the OpenTelemetry SDK's OTLP/HTTP exporter (gzip protobuf,
    BatchSpanProcessor, batches of 512) into the embedded Langfuse running as its own process,
    counted from the first span until the server has stored them all; and the CPU each side
    spent per span."""
    from opentelemetry.exporter.otlp.proto.http import Compression
    from opentelemetry.exporter.otlp.proto.http.trace_exporter import OTLPSpanExporter
    from opentelemetry.sdk.resources import Resource
    from opentelemetry.sdk.trace import TracerProvider
    from opentelemetry.sdk.trace.export import BatchSpanProcessor

    with _embedded_langfuse() as (base, server):
        provider = TracerProvider(resource=Resource.create({"service.name": "bench"}))
        exporter = OTLPSpanExporter(
            endpoint=f"{base}{OTLP_PATH}",
            headers={"Authorization": basic_auth(PK, SK)},
            compression=Compression.Gzip,
        )
        provider.add_span_processor(
            BatchSpanProcessor(
                exporter,
                max_queue_size=n_spans + 1,
                max_export_batch_size=512,
                schedule_delay_millis=100,
            )
        )
        server_cpu, client_cpu = sum(server.cpu_times()[:2]), time.process_time()
        t0 = time.perf_counter()
        _make_spans(provider.get_tracer("openinference.bench"), n_spans)
        provider.force_flush(timeout_millis=int(timeout_s * 1000))
        elapsed = time.perf_counter() - t0
        server_cpu = sum(server.cpu_times()[:2]) - server_cpu
        client_cpu = time.process_time() - client_cpu
        provider.shutdown()
        stored = _count_observations(base)
        if stored < n_spans:
            raise RuntimeError(f"only {stored} of {n_spans} spans were stored")
        return IngestRate(n_spans / elapsed, server_cpu / n_spans, client_cpu / n_spans)


def server_ingest_rate(n_spans: int = 20_000, batch: int = 512) -> IngestRate:
    """Spans per second the embedded Langfuse stores alone: the same spans, encoded and gzipped
    beforehand into OTLP batches of `batch`, posted one after the other (the server answers once
    a batch is stored), so the sender's cost is left out."""
    import gzip

    from opentelemetry.exporter.otlp.proto.common.trace_encoder import encode_spans
    from opentelemetry.sdk.resources import Resource
    from opentelemetry.sdk.trace import TracerProvider
    from opentelemetry.sdk.trace.export import SimpleSpanProcessor
    from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter

    memory = InMemorySpanExporter()
    provider = TracerProvider(resource=Resource.create({"service.name": "bench"}))
    provider.add_span_processor(SimpleSpanProcessor(memory))
    _make_spans(provider.get_tracer("openinference.bench"), n_spans)
    spans = memory.get_finished_spans()
    bodies = [
        gzip.compress(encode_spans(spans[i : i + batch]).SerializeToString())
        for i in range(0, len(spans), batch)
    ]
    headers = {
        "Authorization": basic_auth(PK, SK),
        "Content-Type": "application/x-protobuf",
        "Content-Encoding": "gzip",
    }
    with _embedded_langfuse() as (base, server), httpx.Client(timeout=60) as http:
        server_cpu = sum(server.cpu_times()[:2])
        t0 = time.perf_counter()
        for body in bodies:
            http.post(f"{base}{OTLP_PATH}", content=body, headers=headers).raise_for_status()
        elapsed = time.perf_counter() - t0
        server_cpu = sum(server.cpu_times()[:2]) - server_cpu
        stored = _count_observations(base)
    if stored < len(spans):
        raise RuntimeError(f"only {stored} of {len(spans)} spans were stored")
    return IngestRate(len(spans) / elapsed, server_cpu / len(spans))


def _count_observations(base: str) -> int:
    total, cursor = 0, None
    with httpx.Client(base_url=base, auth=(PK, SK), timeout=30) as http:
        while True:
            params = {"limit": 1000, "fields": "core"}
            if cursor:
                params["cursor"] = cursor
            page = http.get("/api/public/v2/observations", params=params).json()
            total += len(page["data"])
            cursor = page.get("meta", {}).get("cursor")
            if not cursor or not page["data"]:
                return total


if __name__ == "__main__":  # a quick look: python -m workbench.bench_tracing
    os.environ.setdefault("PYTHONUNBUFFERED", "1")
    print(f"{span_ingest_rate()}\n{server_ingest_rate()}")
