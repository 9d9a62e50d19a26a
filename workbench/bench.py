"""The benchmark: `python -m workbench.bench` prints one table of measurements, every ratio taken
within the same run (this machine is shared and noisy, so absolute numbers drift; ratios hold).

What it measures (zero model latency unless `--llm-latency-ms`):
- import time of the services module in a fresh interpreter (the floor of any service start);
- stack cold start: from `start()` until the first claim is accepted by Restate;
- claim latency p50/p95 through Restate (one blocking ingress call per claim), and the same
  agents run in-process without Restate;
- Restate's own floor: a bare workflow with the same journal as a claim (`bench_floor`), and the
  claim's overhead over in-process as a multiple of it;
- throughput at concurrency 1 and 32 (`--concurrency`), durable and in-process, and at 32 with a
  100 ms model (the embedded model's latency changed at runtime);
- CPU per claim of each process (services, restate, llm, langfuse, supervisord, this client) in
  the durable and in-process runs at concurrency 32 (`bench_cpu`);
- the stack's peak memory (RSS of supervisord and its children) during the run;
- a second stack without tracing: latency, throughput and CPU per claim;
- a third stack with the services as `--workers` processes (default 2): throughput at c=32 beside
  the in-process run above, and its peak memory;
- the embedded model's CPU per call, the embedded Langfuse's span ingest rate.

`--profile` also records py-spy profiles (speedscope) of the Python processes for one more
throughput run at concurrency 32, into `<bench home>/profiles/`, with a summary per process.
`--recovery` measures instead the time from a service crash, a Restate kill and a model outage
to the claim's completion, beside a bare restart of that process (`bench_recovery`).

`--sweep` measures the crash-point sweep of one claim instead (`bench_sweep`): its total time,
its cases per second, and where a wave's time goes.

`--cluster` measures a 3-node Restate cluster beside a single server instead (`bench_cluster`):
cold start, claim p50 and throughput of each, and the time from a leader kill to the claim's
completion.

`--experiments` measures experiments instead (`bench_experiments.py`): the items/s of an
experiment beside `claims.submit_many` on as many claims at the same concurrency, in the same run
(alternated, medians), and the time to attach to a finished 200-item experiment."""

from __future__ import annotations

import argparse
import asyncio
import importlib
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Awaitable, Callable, Iterator
from contextlib import contextmanager, nullcontext
from pathlib import Path
from typing import Any

import psutil

from services import names

from . import samples
from .bench_cpu import (
    CpuMeter,
    Profiler,
    cpu_rows,
    native_thread_cpu_s,
    profile_rows,
    set_model_latency,
)
from .bench_floor import journal_shape, measure_floor
from .clients.restate import sql_literal
from .session import Session

PROJECT = Path(__file__).resolve().parent.parent


@contextmanager
def scratch_home(prefix: str) -> Iterator[Path]:
    """A temporary home for a benchmark stack whose files nobody reads afterwards: removed when
    the block ends well (10-15 MB each: Restate's data, Langfuse's spans, the logs), kept for
    its logs when the block fails."""
    home = Path(tempfile.mkdtemp(prefix=prefix))
    try:
        yield home
    except BaseException:
        print(f"the stack's home, kept for its logs: {home}", file=sys.stderr)
        raise
    shutil.rmtree(home, ignore_errors=True)


def _own_ports() -> dict[str, int]:
    """Free ports the OS picks for every process of a benchmark stack, set explicitly: on a
    machine where other stacks start too, a default port (9080, 8080, ...) seen free can be
    taken before our process binds it, and Restate would then call someone else's services."""
    import socket

    from .stack.config import DEFAULT_PORTS

    ports = {}
    for name in DEFAULT_PORTS:
        with socket.socket() as s:
            s.bind(("127.0.0.1", 0))
            ports[f"{name}_port"] = s.getsockname()[1]
    return ports


def _percentile(values: list[float], q: float) -> float:
    ordered = sorted(values)
    index = min(len(ordered) - 1, max(0, round(q * (len(ordered) - 1))))
    return ordered[index]


TRACED_IMPORT_ENV = {
    "LANGFUSE_PUBLIC_KEY": "pk-bench",
    "LANGFUSE_SECRET_KEY": "sk-bench",
    "LANGFUSE_BASE_URL": "http://127.0.0.1:9",  # refused at once: the import's check warns only
}
"""What makes `import services.app` set up tracing as in a stack with Langfuse (the SDK, the
OpenTelemetry exporter, OpenInference), without a Langfuse to send to."""


def import_time_s(module: str, repeats: int = 3, env: dict[str, str] | None = None) -> float:
    """Median wall time of `import module` in a fresh interpreter (`env`: added to its
    environment)."""
    code = f"import time; t = time.perf_counter(); import {module}; print(time.perf_counter() - t)"
    env = {
        **os.environ,
        "OPENAI_BASE_URL": "http://127.0.0.1:9/v1",
        "OPENAI_API_KEY": "x",
        **(env or {}),
    }
    times = []
    for _ in range(repeats):
        out = subprocess.run(
            [sys.executable, "-c", code],
            capture_output=True,
            text=True,
            check=True,
            env=env,
            cwd=PROJECT,
        )
        times.append(float(out.stdout.strip().splitlines()[-1]))
    return statistics.median(times)


class MemorySampler:
    """Samples the summed RSS of a process tree every `interval_s` in a thread; keeps the peak."""

    def __init__(self, root_pid: int, interval_s: float = 0.1) -> None:
        self.root_pid, self.interval_s, self.peak_bytes = root_pid, interval_s, 0
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)

    def _run(self) -> None:
        while not self._stop.is_set():
            try:
                root = psutil.Process(self.root_pid)
                procs = [root, *root.children(recursive=True)]
                total = sum(p.memory_info().rss for p in procs if p.is_running())
                self.peak_bytes = max(self.peak_bytes, total)
            except psutil.Error:
                pass
            self._stop.wait(self.interval_s)

    def __enter__(self) -> MemorySampler:
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._stop.set()
        self._thread.join()


async def _timed(fn: Callable[[], Awaitable[Any]]) -> float:
    t = time.perf_counter()
    await fn()
    return time.perf_counter() - t


async def _throughput(
    run_one: Callable[[int], Awaitable[Any]],
    n: int,
    concurrency: int,
    settle: Callable[[], Awaitable[Any]],
) -> float:
    """Claims per second, from the first submission until the last claim and its judge ended."""
    gate = asyncio.Semaphore(concurrency)

    async def one(i: int) -> None:
        async with gate:
            await run_one(i)

    await settle()
    t = time.perf_counter()
    await asyncio.gather(*(one(i) for i in range(n)))
    await settle()
    return n / (time.perf_counter() - t)


def durable_judges_done_on(session: Session) -> Callable[[], Awaitable[None]]:
    """Waits until no judge runs: the judge runs after each claim in both modes, so its work
    counts in both."""

    # The cheapest look Restate answers (no sort, no join with the invocations' state): about 6
    # ms of restate-server's CPU, against 15 for `invocations(..., unfinished=True)`. The looks
    # fall in the measured window, and 10-14 of them end each 64-claim run.
    query = (
        "SELECT id FROM sys_invocation_status WHERE target_service_name = "
        f"{sql_literal(names.JUDGE)} AND status != 'completed' LIMIT 1"
    )

    async def done() -> None:
        while await session.restate.sql(query):
            await asyncio.sleep(0.05)

    return done


def _configure_in_process(llm_url: str, ledger: Path) -> None:
    """Point this process's agents at the stack's model, without leaving OPENAI_BASE_URL in the
    environment (a later stack started here would take it for a real endpoint)."""
    from services.llm import configure_model_client

    saved = {k: os.environ.get(k) for k in ("OPENAI_BASE_URL", "OPENAI_API_KEY")}
    os.environ.update({"OPENAI_BASE_URL": llm_url, "OPENAI_API_KEY": "workbench-local"})
    os.environ["WORKBENCH_LEDGER"] = str(ledger)
    try:
        client = configure_model_client()
        # In a service, Restate retries a model call that lost its connection (max_retries=0
        # there); in-process nothing would, and on a loaded machine a keep-alive connection
        # closed by the model server under the client's feet fails the whole run.
        from agents import set_default_openai_client

        set_default_openai_client(client.with_options(max_retries=3), use_for_tracing=False)
    finally:
        for key, value in saved.items():
            if value is None:
                os.environ.pop(key, None)
            else:
                os.environ[key] = value


def _approvable_documents() -> list[str]:
    return [s.document for s in samples.pick(status="paid")]


async def _bench(args: argparse.Namespace) -> list[tuple[str, str, str]]:
    from services.flow import InProcessEnv, process_claim
    from services.models import ClaimOutcome, ClaimRequest

    from . import stack as stack_module

    rows: list[tuple[str, str, str]] = []

    def row(name: str, value: str, note: str = "") -> None:
        rows.append((name, value, note))
        print(f"  {name:<48} {value:>14}  {note}", file=sys.stderr)

    print("measuring import times ...", file=sys.stderr)
    row(
        "import services.app (fresh interpreter, tracing off)",
        f"{import_time_s('services.app'):.2f} s",
    )
    services_import = import_time_s("services.app", env=TRACED_IMPORT_ENV)
    row(
        "import services.app, tracing on (as the stack's services start)",
        f"{services_import:.2f} s",
    )
    row("import agents (fresh interpreter)", f"{import_time_s('agents'):.2f} s")

    home = Path(tempfile.mkdtemp(prefix="workbench-bench-"))
    docs = _approvable_documents()
    print(f"cold start in {home} ...", file=sys.stderr)
    # The client's own first-use imports (the claims API, anyio's asyncio backend under httpx's
    # async client: 0.25 s) happen once per client process, whatever stack it talks to: done
    # before the clock starts, which measures the stack.
    importlib.import_module("anyio._backends._asyncio")
    importlib.import_module("workbench.claims")
    importlib.import_module("workbench.prompts")
    t0 = time.perf_counter()
    stack = stack_module.start(
        home=home, persistent=False, llm_latency_ms=args.llm_latency_ms, **_own_ports()
    )
    session = Session.of_stack(stack)  # the benchmark's own: the current session is untouched
    claims = session.aio.claims
    first = await claims.submit(docs[0], wait=False)
    cold = time.perf_counter() - t0
    row(
        "stack cold start (until first claim accepted)",
        f"{cold:.2f} s",
        f"target <= import + 1.0 s = {services_import + 1.0:.2f} s",
    )
    try:
        with MemorySampler(stack.supervisor_pid, interval_s=0.5) as memory:  # CPU is measured
            await claims.submit(docs[0], id=first.id)  # wait for it
            _configure_in_process(stack.llm_url, home / "inprocess-ledger.sqlite3")

            last: list[Any] = []
            submit_to = [session]  # the session durable() submits to (the tracing-off one later)

            async def durable(i: int) -> None:
                """One claim through Restate as a client in production sends it: one blocking
                ingress call (`wb.claims.submit` adds the notebook's polling for a review
                wait or a pause, which costs Restate a SQL query and a status call each)."""
                body = ClaimRequest(document=docs[i % len(docs)]).model_dump_json()
                claim_id = f"bench-{time.perf_counter_ns()}-{i}"
                response = await submit_to[0].restate.run_workflow(names.WORKFLOW, claim_id, body)
                assert response.status_code == 200, response.text
                outcome = ClaimOutcome.model_validate_json(response.content)
                assert outcome.status == "paid", outcome
                last[:] = [response.headers.get("x-restate-id")]

            env = InProcessEnv()

            async def in_process(i: int) -> None:
                request = ClaimRequest(document=docs[i % len(docs)])
                o = await process_claim(f"inproc-{time.perf_counter_ns()}-{i}", request, env)
                assert o.status == "paid", o

            durable_judges_done = durable_judges_done_on(session)

            for warm in range(3):  # warm both paths (connections, caches)
                await durable(warm)
                await in_process(warm)
            await env.drain()

            n = args.latency_claims
            print(f"latency over {n} sequential claims ...", file=sys.stderr)
            d = [await _timed(lambda i=i: durable(i)) for i in range(n)]
            p = [await _timed(lambda i=i: in_process(i)) for i in range(n)]
            await env.drain()
            d50, p50 = _percentile(d, 0.5), _percentile(p, 0.5)
            row("claim latency p50, durable (Restate)", f"{d50 * 1000:.0f} ms")
            row("claim latency p95, durable (Restate)", f"{_percentile(d, 0.95) * 1000:.0f} ms")
            row("claim latency p50, in-process", f"{p50 * 1000:.0f} ms")
            row("claim latency p95, in-process", f"{_percentile(p, 0.95) * 1000:.0f} ms")
            row("latency ratio durable / in-process (p50)", f"{d50 / p50:.2f}")

            print("bare Restate floor (the claim's journal, nothing else) ...", file=sys.stderr)
            shape = await journal_shape(session, last[0])
            floor = await measure_floor(
                session, stack, shape, sequential=n, concurrent=max(args.throughput_claims, 64),
                log=home / "logs" / "bench-floor.log",
            )  # fmt: skip
            row(f"bare Restate floor p50 ({shape.describe()})", f"{floor.p50_s * 1000:.1f} ms")
            row("bare Restate floor p95", f"{floor.p95_s * 1000:.1f} ms")
            overhead = d50 - p50
            row("durable overhead over in-process (p50)", f"{overhead * 1000:.0f} ms")
            row(
                "overhead / bare floor (p50)",
                f"{overhead / floor.p50_s:.2f}",
                "target <= 1.5",
            )
            row("bare floor throughput c=32", f"{floor.throughput:.1f} invocations/s")
            fcpu = floor.cpu_per_invocation_s
            row(
                "bare floor CPU per invocation",
                f"{fcpu['total'] * 1000:.1f} ms",
                f"restate {fcpu['restate'] * 1000:.1f} + service {fcpu['bare service'] * 1000:.1f}",
            )

            cpu_durable, cpu_inproc = CpuMeter.of_stack(stack), CpuMeter.of_stack(stack)
            for concurrency in sorted({*args.concurrency, 32}):
                total = max(args.throughput_claims, concurrency * 2)
                print(
                    f"throughput at concurrency {concurrency} ({total} claims) ...", file=sys.stderr
                )
                with cpu_durable.measuring() if concurrency == 32 else nullcontext():
                    td = await _throughput(durable, total, concurrency, durable_judges_done)
                with cpu_inproc.measuring() if concurrency == 32 else nullcontext():
                    tp = await _throughput(in_process, total, concurrency, env.drain)
                if concurrency == 32:
                    in_process_32 = tp
                row(f"throughput c={concurrency}, durable", f"{td:.1f} claims/s")
                row(f"throughput c={concurrency}, in-process", f"{tp:.1f} claims/s")
                target = "target >= 0.6 (0 ms model)" if concurrency == 32 else ""
                row(
                    f"throughput ratio durable / in-process c={concurrency}",
                    f"{td / tp:.2f}",
                    target,
                )
            in_process_cpu = cpu_inproc.per_unit(total)
            cpu_rows(row, cpu_durable.per_unit(total), in_process_cpu)

            slow = 100.0
            print(f"throughput at concurrency 32, model latency {slow:g} ms ...", file=sys.stderr)
            set_model_latency(stack.llm_url, slow)
            try:
                total = max(args.throughput_claims, 64)
                td = await _throughput(durable, total, 32, durable_judges_done)
                tp = await _throughput(in_process, total, 32, env.drain)
                in_process_slow = tp
            finally:
                set_model_latency(stack.llm_url, args.llm_latency_ms)
            row(f"throughput c=32, durable, model {slow:g} ms", f"{td:.1f} claims/s")
            row(f"throughput c=32, in-process, model {slow:g} ms", f"{tp:.1f} claims/s")
            row(
                f"throughput ratio durable / in-process c=32, model {slow:g} ms",
                f"{td / tp:.2f}",
                "target >= 0.8",
            )

            if args.profile:
                out = home / "profiles"
                print(f"profiling one throughput run (c=32) into {out} ...", file=sys.stderr)
                profiled = CpuMeter.of_stack(stack)
                services_pid = profiled.pids["services"]
                native = -native_thread_cpu_s(services_pid)
                with Profiler(stack, out), profiled.measuring():
                    await _throughput(durable, total, 32, durable_judges_done)
                native += native_thread_cpu_s(services_pid)
                services_cpu = profiled.per_unit(total).get("services")
                row(
                    "CPU per claim, services, profiled run",
                    f"{(services_cpu or 0) * 1000:.1f} ms",
                    "py-spy's sampling costs the services a little",
                )
                profile_rows(
                    row,
                    out,
                    services_cpu_per_claim_s=services_cpu,
                    services_native_per_claim_s=max(native, 0.0) / total,
                )
        row("stack peak memory (RSS, all processes)", f"{memory.peak_bytes / 2**20:.0f} MiB")
    finally:
        session.stop()

    print("latency with tracing off (a second stack, no Langfuse) ...", file=sys.stderr)
    with scratch_home("workbench-bench-notrace-") as quiet_home:
        quiet = stack_module.start(
            home=quiet_home,
            persistent=False,
            tracing=False,
            **_own_ports(),
            llm_latency_ms=args.llm_latency_ms,
        )
        quiet_session = Session.of_stack(quiet)
        submit_to[0] = quiet_session  # what durable() submits to from now on
        try:
            for warm in range(3):
                await durable(warm)
            off = [await _timed(lambda i=i: durable(i)) for i in range(args.latency_claims)]
            quiet_cpu = CpuMeter.of_stack(quiet)
            quiet_done = durable_judges_done_on(quiet_session)
            with quiet_cpu.measuring():
                total = max(args.throughput_claims, 64)
                td_off = await _throughput(durable, total, 32, quiet_done)
            cpu_off = quiet_cpu.per_unit(total)
            set_model_latency(quiet.llm_url, slow)
            td_off_slow = await _throughput(durable, total, 32, quiet_done)
        finally:
            quiet_session.stop()
    off50 = _percentile(off, 0.5)
    row("claim latency p50, durable, tracing off", f"{off50 * 1000:.0f} ms")
    row("tracing overhead at p50 (on / off)", f"{d50 / off50:.2f}", "target <= 1.10")
    row("throughput c=32, durable, tracing off", f"{td_off:.1f} claims/s")
    # Like for like: the in-process runs are untraced, so the durable path's own cost is the
    # untraced durable run against them (what tracing adds is the row above).
    row(
        "like for like (both untraced): overhead / bare floor (p50)",
        f"{(off50 - p50) / floor.p50_s:.2f}",
        "target <= 1.5",
    )
    row(
        "like for like (both untraced): throughput ratio c=32",
        f"{td_off / in_process_32:.2f}",
        "target >= 0.6 (0 ms model)",
    )
    row(
        f"like for like (both untraced): throughput ratio c=32, model {slow:g} ms",
        f"{td_off_slow / in_process_slow:.2f}",
        "target >= 0.8",
    )
    row(
        "like for like (both untraced): CPU ratio",
        f"{cpu_off['total'] / in_process_cpu['total']:.2f}",
        "target <= 2.0",
    )
    row(
        "CPU per claim, durable, tracing off (all processes)",
        f"{cpu_off['total'] * 1000:.1f} ms",
        ", ".join(
            f"{k} {v * 1000:.1f}" for k, v in cpu_off.items() if k != "total" and v >= 0.0005
        ),
    )

    if args.workers > 1:
        print(f"throughput with {args.workers} services workers ...", file=sys.stderr)
        with scratch_home("workbench-bench-workers-") as wide_home:
            wide = stack_module.start(
                home=wide_home,
                persistent=False,
                services_workers=args.workers,
                **_own_ports(),
                llm_latency_ms=args.llm_latency_ms,
            )
            wide_session = Session.of_stack(wide)
            submit_to[0] = wide_session
            try:
                with MemorySampler(wide.supervisor_pid, interval_s=0.5) as wide_memory:
                    for warm in range(3):
                        await durable(warm)
                    total = max(args.throughput_claims, 64)
                    td_wide = await _throughput(
                        durable, total, 32, durable_judges_done_on(wide_session)
                    )
            finally:
                wide_session.stop()
        row(f"throughput c=32, durable, {args.workers} services workers", f"{td_wide:.1f} claims/s")
        row(
            f"throughput ratio c=32, {args.workers} services workers / in-process",
            f"{td_wide / in_process_32:.2f}",
            "in-process measured above",
        )
        row(
            f"stack peak memory, {args.workers} services workers",
            f"{wide_memory.peak_bytes / 2**20:.0f} MiB",
        )

    from .bench_tracing import server_ingest_rate, span_ingest_rate
    from .local.llm.perf import cpu_per_call

    calls = await asyncio.to_thread(cpu_per_call)  # it runs its own event loop
    row(
        "embedded model CPU per call (in-process)",
        f"{calls['claim call']:.2f} ms",
        ", ".join(f"{k} {v:.2f}" for k, v in calls.items() if k != "claim call"),
    )

    print("span ingest rate of the embedded Langfuse ...", file=sys.stderr)
    rate = span_ingest_rate(args.ingest_spans)
    row(
        "span ingest, OTel SDK client into the embedded Langfuse",
        f"{rate.spans_per_s:,.0f} spans/s",
        f"target >= 5,000; CPU per span: client {rate.client_cpu_per_span_s * 1e6:.0f} us, "
        f"server {rate.server_cpu_per_span_s * 1e6:.0f} us",
    )
    alone = server_ingest_rate(args.ingest_spans)
    row(
        "span ingest, embedded Langfuse alone (pre-encoded batches)",
        f"{alone.spans_per_s:,.0f} spans/s",
        f"target >= 5,000; server CPU per span {alone.server_cpu_per_span_s * 1e6:.0f} us",
    )
    return rows


async def bench_recovery(args: argparse.Namespace) -> list[tuple[str, str, str]]:
    """`--recovery`: time from a crash of the service (a `crash` fault inside a step) and from a
    kill of the Restate server (a `kill_restate` fault) to the claim's completion, beside a bare
    restart of that process (kill, then answering again) in the same run. A watcher polling the
    process over HTTP also splits each recovery into the restart itself (until the new process
    answers) and what Restate's retry and the journal's replay add after it: target <= 1.0 s."""
    from . import stack as stack_module
    from .faults import Fault
    from .frames import epoch_s

    rows: list[tuple[str, str, str]] = []

    def row(name: str, value: float, note: str = "", sign: str = "") -> None:
        rows.append((name, f"{value:{sign}.2f} s", note))
        print(f"  {name:<56} {value:{sign}6.2f} s  {note}", file=sys.stderr)

    home = Path(tempfile.mkdtemp(prefix="workbench-bench-recovery-"))
    print(f"recovery in {home} ...", file=sys.stderr)
    stack = stack_module.start(
        home=home, persistent=False, llm_latency_ms=args.llm_latency_ms, **_own_ports()
    )
    session = Session.of_stack(stack)  # faults are planned in its home
    claims = session.aio.claims
    doc = _approvable_documents()[0]
    cases = [
        ("services", Fault("lookup policy", "crash"), "service crash"),
        ("restate", Fault("check fraud", "kill_restate"), "Restate kill"),
    ]
    try:
        for _ in range(2):  # warm up: connections, caches, the first model calls
            await claims.submit(doc)
        for name, fault, what in cases:
            bare, total, restart, after = [], [], [], []
            for _ in range(args.recovery_runs):
                bare.append(_bare_restart_s(stack, name))
                with _Watch(stack.process(name)) as watch:
                    c = await claims.submit(doc, faults=[fault])
                assert c.status == "paid", c
                invocation = await session.restate.invocation(names.WORKFLOW, c.id)
                assert invocation is not None
                done = epoch_s(invocation["completed_at"])  # Restate's clock: no client polling
                assert done is not None
                crashed = _event_epoch(session, c.id, "fault")  # written just before the kill
                total.append(done - crashed)
                restart.append(watch.up_at - crashed)
                after.append(done - watch.up_at)
            median = statistics.median
            row(f"bare restart of {name} (kill -> answering), median", median(bare))
            row(f"{what} -> claim completed, median", median(total))
            row(f"  {what} -> {name} answering again (the restart)", median(restart))
            row(
                f"  {name} answering -> claim completed (retry + replay)",
                median(after),
                "target <= 1.0 s",
            )
            row(
                f"{what} -> completed, minus the bare restart",
                median(total) - median(bare),
                "(supervisord respawns on a 1 s tick: noisy)",
                sign="+",
            )
        from .bench_outage import model_outage_recovery

        outages = []
        for _ in range(args.recovery_runs):
            outages.append(
                await asyncio.to_thread(model_outage_recovery, session, doc, outage_s=5.0)
            )
            assert outages[-1].status == "paid", outages[-1]
        row(
            "model outage (5 s) -> model answering again, median",
            statistics.median(o.outage_s for o in outages),
        )
        row(
            "  model answering again -> claim completed, median",
            statistics.median(o.recovery_s for o in outages),
            "target <= 1.0 s",
        )
        row(
            "  model answering again -> claim completed, worst",
            max(o.recovery_s for o in outages),
        )
    finally:
        session.stop()
    return rows


class _Watch:
    """Polls a process's health checks over HTTP in a thread; `up_at` is when it answered
    again after having stopped answering (epoch seconds)."""

    def __init__(self, process: Any, interval_s: float = 0.01) -> None:
        self.process, self.interval_s = process, interval_s
        self.down_at: float | None = None
        self.up_at: float = float("nan")
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)

    def _run(self) -> None:
        import httpx

        with httpx.Client(timeout=0.5, trust_env=False) as http:
            while not self._stop.is_set():
                ready = self.process.check_ready(http) is None
                if not ready and self.down_at is None:
                    self.down_at = time.time()
                elif ready and self.down_at is not None:
                    self.up_at = time.time()
                    return
                self._stop.wait(self.interval_s)

    def __enter__(self) -> _Watch:
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._stop.set()
        self._thread.join()


def _bare_restart_s(stack: Any, name: str, timeout_s: float = 60.0) -> float:
    """SIGKILL a process and time until its successor answers its health checks over HTTP.
    Nothing talks to supervisord meanwhile (its XML-RPC calls would wake its main loop and
    hasten the restart, which a crash in the wild does not get)."""
    import signal

    pid = stack.pid(name)
    with _Watch(stack.process(name)) as watch:
        t = time.time()
        os.killpg(pid, signal.SIGKILL)
        deadline = time.monotonic() + timeout_s
        while watch._thread.is_alive() and time.monotonic() < deadline:
            time.sleep(0.01)
    stack.wait_ready(name, timeout_s=timeout_s)
    return watch.up_at - t


def _event_epoch(session: Session, claim_id: str, event: str) -> float:
    """When the services wrote the first `event` of a claim (epoch seconds)."""
    return next(e["at"] for e in session.fault_store.events(claim_id) if e["event"] == event)


async def bench_sweep(args: argparse.Namespace) -> list[tuple[str, str, str]]:
    """`--sweep`: a full crash-point sweep of one paid claim (every boundary x crash,
    crash_after_effect, kill_restate) at each `--sweep-concurrency`: total time (target < 60 s),
    cases per second, and where a wave's time goes (the claims held for the wave, the process
    down and back, the replay and the rest). The machine's load average is printed beside, since
    the restarts are mostly CPU (importing the services)."""
    from . import stack as stack_module
    from .sweep import DEFAULT_KINDS, asweep

    rows: list[tuple[str, str, str]] = []

    def row(name: str, value: str, note: str = "") -> None:
        rows.append((name, value, note))
        print(f"  {name:<56} {value:>12}  {note}", file=sys.stderr)

    home = Path(tempfile.mkdtemp(prefix="workbench-bench-sweep-"))
    print(f"sweep in {home} ...", file=sys.stderr)
    stack = stack_module.start(
        home=home, persistent=False, llm_latency_ms=args.llm_latency_ms, timeout_s=180
    )
    session = Session.of_stack(stack)
    doc = _approvable_documents()[0]
    try:
        for _ in range(2):  # warm up: connections, caches, the first model calls
            await session.aio.claims.submit(doc)
        for concurrency in args.sweep_concurrency:
            load = os.getloadavg()[0]
            report = await asweep(
                session, doc, DEFAULT_KINDS, concurrency=concurrency, progress=False
            )
            t = report.timing
            at = f"c={concurrency}"
            row(f"sweep of one claim, {at}: verdict", "PASSED" if report.passed else "FAILED")
            row(
                f"sweep of one claim, {at}: total time",
                f"{t['total_s']:.1f} s",
                f"{t['cases']} cases in {t['waves']} waves; target < 60 s",
            )
            row(f"sweep of one claim, {at}: cases per second", f"{t['cases_per_s']:.2f}")
            row("  baseline claim", f"{t['baseline_s']:.2f} s")
            row("  per wave, median: claims held for the wave", f"{t['held_s']} s")
            row("  per wave, median: process down and back", f"{t['down_s']} s", "restart+retry")
            row("  per wave, median: replay and the rest", f"{t['finish_s']} s")
            row("  checking the invariants", f"{t['check_s']:.2f} s")
            recovery = report.frame["recovery_s"].dropna()
            row(
                "  recovery per case (crash -> completed), median / max",
                f"{recovery.median():.1f} / {recovery.max():.1f} s",
            )
            row(
                "  machine load average (1 min) before / after",
                f"{load:.1f} / {os.getloadavg()[0]:.1f}",
                f"{os.cpu_count()} cores",
            )
    finally:
        session.stop()
    return rows


def _markdown(rows: list[tuple[str, str, str]]) -> str:
    lines = ["| measurement | value | note |", "|---|---:|---|"]
    lines += [f"| {name} | {value} | {note} |" for name, value, note in rows]
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(
        prog="python -m workbench.bench",
        description=__doc__,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    parser.add_argument("--latency-claims", type=int, default=30)
    parser.add_argument("--throughput-claims", type=int, default=64)
    parser.add_argument(
        "--concurrency",
        type=int,
        nargs="+",
        default=[1, 32],
        help="concurrencies of the throughput runs (32 is always measured)",
    )
    parser.add_argument("--llm-latency-ms", type=float, default=0.0)
    parser.add_argument(
        "--workers",
        type=int,
        default=2,
        help="also measure throughput at c=32 with the services as this many worker processes "
        "(a third stack; 1 skips it)",
    )
    parser.add_argument("--ingest-spans", type=int, default=20_000)
    parser.add_argument(
        "--recovery",
        action="store_true",
        help="measure recovery instead: a service crash and a Restate kill, each to completion",
    )
    parser.add_argument("--recovery-runs", type=int, default=3)
    parser.add_argument(
        "--profile",
        action="store_true",
        help="also record py-spy profiles (speedscope) of the Python processes for one "
        "throughput run at concurrency 32, into <bench home>/profiles/",
    )
    parser.add_argument(
        "--sweep",
        action="store_true",
        help="measure the crash-point sweep of one claim instead",
    )
    parser.add_argument(
        "--sweep-concurrency",
        type=lambda text: [int(x) for x in text.split(",")],
        default=[4],
        help="comma-separated concurrencies to sweep at (default 4)",
    )
    parser.add_argument(
        "--experiments",
        action="store_true",
        help="measure experiments instead: items/s beside submit_many, and attaching",
    )
    parser.add_argument("--experiment-items", type=int, default=64)
    parser.add_argument("--experiment-concurrency", type=int, default=16)
    parser.add_argument("--experiment-runs", type=int, default=3)
    parser.add_argument("--attach-items", type=int, default=200)
    parser.add_argument(
        "--cluster",
        action="store_true",
        help="measure a 3-node Restate cluster beside a single node instead",
    )
    parser.add_argument("--cluster-concurrency", type=int, default=8)
    parser.add_argument("--leader-kills", type=int, default=3)
    args = parser.parse_args(argv)
    if args.cluster:
        from .bench_cluster import bench_cluster

        rows = asyncio.run(bench_cluster(args))
    elif args.experiments:
        from .bench_experiments import bench_experiments

        rows = bench_experiments(args)
    elif args.sweep:
        rows = asyncio.run(bench_sweep(args))
    else:
        rows = asyncio.run(bench_recovery(args) if args.recovery else _bench(args))
    print(_markdown(rows))


if __name__ == "__main__":
    main()
