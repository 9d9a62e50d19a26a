"""Where the CPU goes, for the benchmark: CPU seconds per claim of each process of the stack, and
py-spy profiles of its Python processes.

    meter = CpuMeter.of_stack(stack)          # services, restate, llm, langfuse, supervisord, bench
    with meter.measuring():
        ...run n claims...
    meter.per_unit(n)                         # {"services": 0.012, "restate": 0.006, ...} (s/claim)

    with Profiler(stack, out_dir):             # py-spy record of each Python process
        ...one throughput run...
    summarize(out_dir / "services.speedscope.json")   # self time by package, top frames

CPU is read from the kernel (`psutil.Process.cpu_times()`: user + system, the process and its
children) before and after, so it counts what each process really spent, wherever it was
waiting; the benchmark's own process (`bench`) is the client in the durable runs and runs the
agents themselves in the in-process runs."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
from collections import Counter
from collections.abc import Callable, Iterator, Mapping
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import psutil

BENCH = "bench"
"""The benchmark's own process (the client; the agents themselves when run in-process)."""
SUPERVISOR = "supervisord"
PYTHON_PROCESSES = ("services", "llm", "langfuse")
"""The stack's Python processes, the ones py-spy can profile."""


def _cpu_s(pid: int) -> float:
    """User + system CPU seconds of a process and its live children (0 when it is gone)."""
    try:
        process = psutil.Process(pid)
        total = sum(process.cpu_times()[:2])
        for child in process.children(recursive=True):
            try:
                total += sum(child.cpu_times()[:2])
            except psutil.Error:
                pass
        return total
    except psutil.Error:
        return 0.0


NATIVE_THREAD_PREFIXES = ("tokio",)
"""Threads with no Python in them, by name: granian's Rust runtime (its HTTP/2 server). py-spy
samples Python threads only, so their CPU is measured apart (`native_thread_cpu_s`)."""


def native_thread_cpu_s(pid: int) -> float:
    """User + system CPU seconds of the native threads (`NATIVE_THREAD_PREFIXES`) of a process
    and its live children (0 when it is gone)."""
    total = 0.0
    try:
        parent = psutil.Process(pid)
        processes = [parent, *parent.children(recursive=True)]
    except psutil.Error:
        return 0.0
    for process in processes:
        try:
            threads = process.threads()
        except psutil.Error:
            continue
        for thread in threads:
            try:
                name = Path(f"/proc/{process.pid}/task/{thread.id}/comm").read_text()
            except OSError:  # the thread ended since
                continue
            if name.strip().startswith(NATIVE_THREAD_PREFIXES):
                total += thread.user_time + thread.system_time
    return total


@dataclass
class CpuMeter:
    """CPU seconds spent by named processes over the `measuring()` blocks (summed)."""

    pids: Mapping[str, int]
    spent_s: dict[str, float] = field(default_factory=dict)

    @classmethod
    def of_stack(cls, stack: Any) -> CpuMeter:
        """The stack's processes (each with its children; supervisord alone) and this one."""
        pids = {name: pid for name in stack.names if (pid := stack.pid(name)) is not None}
        if stack.supervisor_pid is not None:
            pids[SUPERVISOR] = stack.supervisor_pid
        pids[BENCH] = os.getpid()
        return cls(pids)

    def _read(self) -> dict[str, float]:
        out = {}
        for name, pid in self.pids.items():
            if name == SUPERVISOR:  # its children are the other processes, counted by name
                try:
                    out[name] = sum(psutil.Process(pid).cpu_times()[:2])
                except psutil.Error:
                    out[name] = 0.0
            else:
                out[name] = _cpu_s(pid)
        return out

    @contextmanager
    def measuring(self) -> Iterator[CpuMeter]:
        before = self._read()
        try:
            yield self
        finally:
            after = self._read()
            for name, value in after.items():
                self.spent_s[name] = self.spent_s.get(name, 0.0) + value - before.get(name, 0.0)

    def per_unit(self, units: int) -> dict[str, float]:
        """CPU seconds per unit of work (per claim) of each process, and their `total`."""
        each = {name: spent / units for name, spent in self.spent_s.items()}
        return {**each, "total": sum(each.values())}


class Profiler:
    """`py-spy record` of each Python process of a stack while the block runs, written as
    speedscope files `<out_dir>/<name>.speedscope.json` (open them at https://speedscope.app).
    Sampling is non-blocking (the processes are not paused), at `rate_hz`; only samples where a
    thread is running count (idle waits are left out), so the profile is the CPU's."""

    def __init__(self, stack: Any, out_dir: Path, *, rate_hz: int = 200) -> None:
        self.out_dir, self.rate_hz = out_dir, rate_hz
        self.pids = {n: p for n in PYTHON_PROCESSES if n in stack.names and (p := stack.pid(n))}
        self.paths: dict[str, Path] = {}
        self._recorders: list[subprocess.Popen[bytes]] = []

    @staticmethod
    def py_spy() -> str:
        found = Path(sys.executable).with_name("py-spy")
        if found.exists():
            return str(found)
        raise FileNotFoundError(
            f"py-spy is not installed beside {sys.executable}: `pip install -e '.[dev]'` "
            "(it is in the dev extras) to record profiles."
        )

    def __enter__(self) -> Profiler:
        self.out_dir.mkdir(parents=True, exist_ok=True)
        exe = self.py_spy()
        for name, pid in self.pids.items():
            path = self.paths[name] = self.out_dir / f"{name}.speedscope.json"
            log = (self.out_dir / f"{name}.py-spy.log").open("wb")
            self._recorders.append(
                subprocess.Popen(
                    [
                        exe,
                        "record",
                        "--pid",
                        str(pid),
                        "--format",
                        "speedscope",
                        "--output",
                        str(path),
                        "--rate",
                        str(self.rate_hz),
                        "--nonblocking",
                        "--subprocesses",
                    ],
                    stdout=log,
                    stderr=subprocess.STDOUT,
                )  # fmt: skip
            )
        return self

    def __exit__(self, *exc: object) -> None:
        for recorder in self._recorders:  # SIGINT: py-spy writes its file and exits
            if recorder.poll() is None:
                recorder.send_signal(signal.SIGINT)
        for recorder in self._recorders:
            try:
                recorder.wait(timeout=60)
            except subprocess.TimeoutExpired:
                recorder.kill()
                recorder.wait()


PACKAGE_GROUPS = (
    ("restate", "restate SDK (protocol, journal)"),
    ("hypercorn", "hypercorn (HTTP/2 server)"),
    ("granian", "granian (HTTP/2 server, Python side)"),
    ("h2", "h2 / hpack (HTTP/2 framing)"),
    ("hpack", "h2 / hpack (HTTP/2 framing)"),
    ("hyperframe", "h2 / hpack (HTTP/2 framing)"),
    ("priority", "h2 / hpack (HTTP/2 framing)"),
    ("h11", "h11 (HTTP/1.1)"),
    ("agents", "openai-agents (runner)"),
    ("openai", "openai client"),
    ("httpx", "httpx / httpcore (HTTP client)"),
    ("httpcore", "httpx / httpcore (HTTP client)"),
    ("httpx2", "httpx / httpcore (HTTP client)"),
    ("httpcore2", "httpx / httpcore (HTTP client)"),
    ("urllib3", "httpx / httpcore (HTTP client)"),
    ("requests", "httpx / httpcore (HTTP client)"),
    ("anyio", "asyncio / anyio (event loop)"),
    ("asyncio", "asyncio / anyio (event loop)"),
    ("uvloop", "asyncio / anyio (event loop)"),
    ("selectors", "asyncio / anyio (event loop)"),
    ("ssl", "asyncio / anyio (event loop)"),
    ("opentelemetry", "OpenTelemetry + OpenInference (tracing)"),
    ("openinference", "OpenTelemetry + OpenInference (tracing)"),
    ("langfuse", "langfuse SDK (tracing, prompts)"),
    ("google", "protobuf (OTLP encoding)"),
    ("gzip", "gzip / zlib"),
    ("zlib", "gzip / zlib"),
    ("pydantic", "pydantic (validation, JSON)"),
    ("pydantic_core", "pydantic (validation, JSON)"),
    ("json", "json"),
    ("encoder", "json"),
    ("decoder", "json"),
    ("sqlite3", "sqlite3"),
    ("starlette", "starlette / uvicorn (HTTP server)"),
    ("uvicorn", "starlette / uvicorn (HTTP server)"),
    ("services", "services (the workflow's own code)"),
    ("workbench", "workbench (the embedded server's own code)"),
)


def _idle(stack: list[int], frames: list[dict[str, Any]]) -> bool:
    """Whether a sample is a wait, not CPU: an idle leaf (`IDLE_LEAVES`), or no Python frame at
    all. The second is a thread that holds a Python thread state but runs none (granian's
    Python-facing thread): py-spy takes it for busy while it waits; measured per thread, one
    spent 0.10 s of CPU of its worker's 11.2 s over 96 claims while py-spy sampled it busy for
    16% of the worker's samples. granian's real native CPU is measured per thread instead
    (`native_thread_cpu_s`)."""
    return (
        not stack
        or frames[stack[-1]]["name"] in IDLE_LEAVES
        or all(not frames[i].get("file") for i in stack)
    )


IDLE_LEAVES = frozenset(
    ("Condition.wait", "Event.wait", "EpollSelector.select", "select", "poll", "sleep",
     "SimpleQueue.get", "Queue.get", "Thread.join", "_wait_for_tstate_lock", "lock.acquire")
)  # fmt: skip
"""Innermost frames that are a thread waiting, not computing: py-spy's non-blocking sampling
cannot always tell, so these samples are left out of the CPU shares."""


def _group(file: str) -> str:
    parts = Path(file).parts
    if "site-packages" in parts:
        rest = parts[parts.index("site-packages") + 1 :]
        name = (rest[0] if rest else file).removesuffix(".py")
    elif "services" in parts or "workbench" in parts:
        name = next(p for p in parts if p in {"services", "workbench"})
    else:  # the standard library
        name = "asyncio" if "asyncio" in parts else Path(file).stem
        for prefix, group in PACKAGE_GROUPS:
            if name == prefix:
                return group
        return f"stdlib: {name}"
    for prefix, group in PACKAGE_GROUPS:
        if name == prefix or name.startswith((prefix + "_", prefix + ".")):
            return group
    return name


@dataclass(frozen=True)
class ProfileSummary:
    cpu_s: float
    """Seconds of samples where a thread computed (idle waits left out)."""
    by_thread: list[tuple[str, float]]
    """(thread, share of those samples), largest first."""
    by_group: list[tuple[str, float]]
    """(package group, share of CPU samples whose innermost frame is in it), largest first."""
    by_group_inclusive: list[tuple[str, float]]
    """(package group, share of CPU samples with a frame of it anywhere on the stack)."""
    top_inclusive: list[tuple[str, float]]
    """(function, share of CPU samples it is on the stack of), largest first."""


def summarize(path: Path, *, top: int = 12) -> ProfileSummary:
    """Self time by package group and by thread, and the functions most often on the stack,
    from a py-spy speedscope file (weights are seconds; idle waits left out)."""
    data = json.loads(path.read_text())
    frames = data["shared"]["frames"]
    self_by_group: Counter[str] = Counter()
    any_by_group: Counter[str] = Counter()
    by_thread: Counter[str] = Counter()
    inclusive: Counter[str] = Counter()
    total = 0.0
    for profile in data["profiles"]:
        thread = str(profile.get("name", "")).split('"')[1:2] or ["thread"]
        for stack, weight in zip(profile["samples"], profile["weights"], strict=True):
            if _idle(stack, frames):
                continue
            total += weight
            by_thread[thread[0]] += weight
            self_by_group[_group(frames[stack[-1]].get("file", ""))] += weight
            for group in {_group(frames[i].get("file", "")) for i in stack}:
                any_by_group[group] += weight
            for key in {
                f"{frames[i]['name']} ({_short(frames[i].get('file', ''))})" for i in stack
            }:
                inclusive[key] += weight
    share = (lambda n: n / total) if total else (lambda n: 0.0)
    return ProfileSummary(
        cpu_s=total,
        by_thread=[(t, share(n)) for t, n in by_thread.most_common()],
        by_group=[(g, share(n)) for g, n in self_by_group.most_common()],
        by_group_inclusive=[
            (g, share(n)) for g, n in any_by_group.most_common() if not g.startswith("stdlib")
        ],
        top_inclusive=[(f, share(n)) for f, n in inclusive.most_common(top)],
    )


SERVICES_PARTS: tuple[tuple[str, str, tuple[str, ...]], ...] = (
    # (part, what it is: shared with the in-process run, durable-only, or tracing, markers)
    ("the judge's score write", "Langfuse", ("services/scores.py",)),
    ("fault evidence (SQLite rows)", "durable", ("services/fault_store.py",)),
    ("span export (encode, post)", "tracing",
     ("BatchProcessor.worker", "_flush_provider (services/tracing.py)")),
    ("agents' spans (agents SDK tracing, OpenInference)", "tracing",
     ("(agents/tracing/", "(openinference/")),
    ("step spans and other tracing", "tracing",
     ("services/tracing.py", "(opentelemetry/", "(langfuse/")),
    ("model calls (openai client, HTTP)", "shared", ("(openai/",)),
    ("agents SDK (runner)", "shared", ("(agents/",)),
    ("step bodies (ledger, reference data, prompts)", "shared",
     ("services/ledger.py", "services/reference_data.py", "services/prompts.py")),
    ("Restate SDK (journal, protocol, serde)", "durable", ("(restate/",)),
    ("HTTP/2 server (granian's ASGI glue, or hypercorn and h2)", "durable",
     ("(granian/", "(hypercorn/", "(h2/", "(hpack/")),
    ("the workflow's own code", "shared", ("(services/",)),
)  # fmt: skip
"""What a services profile's CPU is spent on, each sample counted once, in the first part one of
its frames matches (so the agents' model calls made under Restate's wrapper count as model
calls, not as Restate). "shared": also done by the in-process run; "durable": the durable path's
own; "tracing"/"Langfuse": what tracing adds. The rest is the event loop and the stdlib."""

OTHER_PART = ("event loop, stdlib and the rest", "durable")

PASS_THROUGH_FRAMES = frozenset({"export_when_idle.<locals>.serving (services/tracing.py)"})
"""Frames that only pass each request on (`tracing.export_when_idle` counting requests in flight):
on the stack of all the request's work, they say nothing of what it is spent on."""


def services_parts(path: Path) -> list[tuple[str, str, float]]:
    """(part, kind, share of the CPU samples) of a services profile (`SERVICES_PARTS`)."""
    data = json.loads(path.read_text())
    frames = data["shared"]["frames"]
    labels = [f"{f['name']} ({_short(f.get('file', ''))})" for f in frames]
    spent: Counter[tuple[str, str]] = Counter()
    total = 0.0
    for profile in data["profiles"]:
        for stack, weight in zip(profile["samples"], profile["weights"], strict=True):
            if _idle(stack, frames):
                continue
            total += weight
            names = [labels[i] for i in stack if labels[i] not in PASS_THROUGH_FRAMES]
            for part, kind, markers in SERVICES_PARTS:
                if any(m in n for n in names for m in markers):
                    spent[(part, kind)] += weight
                    break
            else:
                spent[OTHER_PART] += weight
    if not total:
        return []
    order = [(p, k) for p, k, _ in SERVICES_PARTS] + [OTHER_PART]
    return [(p, k, spent[(p, k)] / total) for p, k in order if spent[(p, k)]]


def _short(file: str) -> str:
    parts = Path(file).parts
    if "site-packages" in parts:
        parts = parts[parts.index("site-packages") + 1 :]
    elif "services" in parts or "workbench" in parts:
        start = min(parts.index(p) for p in ("services", "workbench") if p in parts)
        parts = parts[start:]
    else:
        parts = parts[-2:]
    return "/".join(parts)


# -- rows of the benchmark's table ---------------------------------------------------------------

Row = Callable[..., None]
ORDER = ("services", "restate", "llm", "langfuse", SUPERVISOR, BENCH)


def cpu_rows(row: Row, durable: dict[str, float], in_process: dict[str, float]) -> None:
    """CPU ms per claim of each process, durable beside in-process, and the ratio of totals."""
    names = [n for n in ORDER if n in durable or n in in_process]
    names += sorted((set(durable) | set(in_process)) - {*names, "total"})
    for name in names:
        what = "durable: the client; in-process: the agents themselves" if name == BENCH else ""
        row(
            f"CPU per claim, {name}: durable / in-process",
            f"{durable.get(name, 0) * 1000:.1f} / {in_process.get(name, 0) * 1000:.1f} ms",
            what,
        )
    row(
        "CPU per claim, all processes: durable / in-process",
        f"{durable['total'] * 1000:.1f} / {in_process['total'] * 1000:.1f} ms",
    )
    row(
        "CPU per claim ratio durable / in-process",
        f"{durable['total'] / in_process['total']:.2f}",
        "target <= 2.0",
    )


def profile_rows(
    row: Row,
    out_dir: Path,
    *,
    groups: int = 8,
    services_cpu_per_claim_s: float | None = None,
    services_native_per_claim_s: float = 0.0,
) -> None:
    """The biggest CPU shares (innermost frame's package) of each profile, and where it is; for
    the services, their CPU per claim by part (`services_parts`) when it was measured: the
    native threads' CPU (granian's server, measured apart: py-spy cannot see it) as a part of
    its own, the Python threads' CPU split by the profile's samples."""
    for path in sorted(out_dir.glob("*.speedscope.json")):
        name = path.name.removesuffix(".speedscope.json")
        if name == "services" and services_cpu_per_claim_s:
            python_s = services_cpu_per_claim_s - services_native_per_claim_s
            if services_native_per_claim_s:
                row(
                    "services CPU per claim: granian's Rust threads (HTTP/2 server)",
                    f"{services_native_per_claim_s * 1000:.1f} ms",
                    "durable, measured per thread (py-spy does not sample them)",
                )
            for part, kind, share in services_parts(path):
                row(
                    f"services CPU per claim: {part}",
                    f"{share * python_s * 1000:.1f} ms",
                    f"{kind}, {share:.0%} of the Python samples",
                )
        summary = summarize(path)
        shares = ", ".join(f"{g} {s:.0%}" for g, s in summary.by_group[:groups])
        threads = ", ".join(f"{t} {s:.0%}" for t, s in summary.by_thread[:3])
        row(f"profile {name}: CPU by package", path.name, shares)
        row(f"profile {name}: CPU by thread", f"{summary.cpu_s:.1f} s sampled", threads)
        (out_dir / f"{name}.summary.txt").write_text(
            f"{summary.cpu_s:.1f} s of samples computing (idle waits left out)\n\nBy thread:\n"
            + "".join(f"  {s:6.1%}  {t}\n" for t, s in summary.by_thread)
            + "\nBy package (innermost frame):\n"
            + "".join(f"  {s:6.1%}  {g}\n" for g, s in summary.by_group)
            + "\nBy package anywhere on the stack (inclusive):\n"
            + "".join(f"  {s:6.1%}  {g}\n" for g, s in summary.by_group_inclusive)
            + "\nFunctions most often on the stack (inclusive):\n"
            + "".join(f"  {s:6.1%}  {f}\n" for f, s in summary.top_inclusive)
        )


def set_model_latency(llm_url: str, latency_ms: float) -> None:
    """Change the embedded model's simulated latency at runtime (its `/workbench/latency`)."""
    import httpx

    base = llm_url.rstrip("/").removesuffix("/v1")
    response = httpx.put(
        f"{base}/workbench/latency", json={"latency_ms": latency_ms}, timeout=10, trust_env=False
    )
    response.raise_for_status()
