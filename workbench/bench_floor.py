"""Restate's own floor, for the benchmark: a bare workflow with the same journal as a claim.

`journal_shape(session, claim_id)` counts a finished claim's journal commands (`ctx.run` steps,
SetState, one-way sends); `BareFloor` serves a workflow (`BenchFloor`) that journals exactly
that many empty `ctx.run` steps, SetStates and one-way sends (to a handler that does nothing),
in the same interleaving, from its own process (served as the services are) registered with the
stack's Restate server. What it costs per invocation is what Restate (the server, the SDK's
protocol, HTTP/2) costs for a claim's journal with none of the claim's own work: the floor a
durable claim's overhead over the in-process run is measured against.

    shape = await journal_shape(session, claim.id)        # JournalShape(runs=9, sets=3, sends=1)
    async with BareFloor(session, shape) as floor:
        await floor.invoke()                              # one bare invocation, waited for

Served as `python -m workbench.bench_floor --port P` (the same server and settings as the
services)."""

from __future__ import annotations

import argparse
import asyncio
import socket
import subprocess
import sys
import time
import uuid
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
from restate import ObjectContext, WorkflowContext  # the handlers' annotations are read by name

FLOOR = "BenchFloor"
SINK = "BenchFloorSink"


@dataclass(frozen=True)
class JournalShape:
    """The commands a claim's journal holds, in the order they came (`order`: r, s, o)."""

    runs: int
    sets: int
    sends: int
    order: str

    @property
    def entries(self) -> int:
        return self.runs + self.sets + self.sends

    def describe(self) -> str:
        return f"{self.runs} ctx.run, {self.sets} SetState, {self.sends} one-way send"


async def journal_shape(session: Any, invocation_id: str) -> JournalShape:
    """The commands of an invocation's journal (completions and notifications are the server's
    answers to them, so they are not counted apart)."""
    order = ""
    for row in await session.restate.journal(invocation_id):
        kind = str(row.get("entry_type") or "")
        if not kind.startswith("Command"):
            continue
        if kind.endswith(": Run"):
            order += "r"
        elif kind.endswith(": SetState"):
            order += "s"
        elif "OneWayCall" in kind or "Send" in kind:
            order += "o"
    return JournalShape(order.count("r"), order.count("s"), order.count("o"), order)


# -- the bare service (imported only by the process that serves it) ------------------------------


def _app() -> Any:
    import restate

    floor = restate.Workflow(FLOOR)
    sink = restate.VirtualObject(SINK)

    def nothing() -> None:
        return None

    @sink.handler()
    async def take(ctx: ObjectContext) -> None:
        return None

    @floor.main()
    async def run(ctx: WorkflowContext, order: str) -> str:
        for i, command in enumerate(order):
            if command == "r":
                await ctx.run_typed(f"step {i}", nothing)
            elif command == "s":
                ctx.set("step", f"step {i}")
            elif command == "o":
                ctx.object_send(take, key=ctx.key(), arg=None)
        return "done"

    return restate.app(services=[floor, sink])


def serve(host: str, port: int) -> None:
    """Serve the bare app as the services are served: the same server (granian by default, with
    one worker process; WORKBENCH_SERVICES_SERVER=hypercorn in this process), settings, event
    loop and stop, so the floor and the claims differ only in what their handlers do."""
    from services.serving import serve_with_granian, serve_with_hypercorn, server

    if server() == "granian":
        serve_with_granian("workbench.bench_floor:worker_app", host, port, factory=True)
    else:
        serve_with_hypercorn(_app, host, port)


def worker_app() -> Any:
    """The bare app in a granian worker process (`services.serving.worker_app`)."""
    from services.serving import worker_app as for_a_worker

    return for_a_worker(_app)


# -- the benchmark's side -------------------------------------------------------------------------


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


class BareFloor:
    """The bare workflow served and registered for the duration of an `async with` block; its
    process is stopped (SIGINT) and its deployment removed on the way out."""

    def __init__(self, session: Any, shape: JournalShape, *, log: Path | None = None) -> None:
        self.session, self.shape, self.log = session, shape, log
        self.process: subprocess.Popen[bytes] | None = None
        self.deployment_id: str | None = None
        self._http: httpx.AsyncClient | None = None

    @property
    def pid(self) -> int | None:
        return self.process.pid if self.process else None

    async def __aenter__(self) -> BareFloor:
        port = _free_port()
        out = self.log.open("wb") if self.log else subprocess.DEVNULL
        self.process = subprocess.Popen(
            [sys.executable, "-m", "workbench.bench_floor", "--port", str(port)],
            stdout=out,
            stderr=subprocess.STDOUT,
        )
        try:
            uri = f"http://127.0.0.1:{port}"
            deadline = time.monotonic() + 60
            while True:
                try:
                    answer = await self.session.restate.register(uri, force=True)
                    break
                except Exception:
                    if self.process.poll() is not None or time.monotonic() > deadline:
                        raise
                    await asyncio.sleep(0.1)
            self.deployment_id = answer.get("id")
            self._http = httpx.AsyncClient(
                base_url=self.session.restate.ingress_url,
                timeout=httpx.Timeout(30.0, read=None),
                trust_env=False,
            )
        except BaseException:
            await self.__aexit__()
            raise
        return self

    async def invoke(self) -> None:
        """One bare invocation of the claim's journal shape, waited for."""
        assert self._http is not None
        key = uuid.uuid4().hex
        response = await self._http.post(
            f"/{FLOOR}/{key}/run",
            content=f'"{self.shape.order}"',
            headers={"content-type": "application/json"},
        )
        response.raise_for_status()

    async def __aexit__(self, *exc: object) -> None:
        if self._http is not None:
            await self._http.aclose()
        if self.deployment_id:
            try:
                await self.session.restate.delete_deployment(self.deployment_id, force=True)
            except Exception:
                pass  # the stack is torn down after the benchmark anyway
        if self.process is not None and self.process.poll() is None:
            import signal

            self.process.send_signal(signal.SIGINT)
            try:
                self.process.wait(timeout=15)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait()


@dataclass(frozen=True)
class FloorResult:
    shape: JournalShape
    p50_s: float
    p95_s: float
    throughput: float
    """Bare invocations per second at `concurrency`."""
    cpu_per_invocation_s: dict[str, float]
    """CPU seconds per bare invocation: the Restate server, the bare service, and their total."""


async def measure_floor(
    session: Any, stack: Any, shape: JournalShape, *, sequential: int, concurrent: int,
    concurrency: int = 32, log: Path | None = None,
) -> FloorResult:  # fmt: skip
    """Latency (p50/p95 over `sequential` invocations one after the other), throughput at
    `concurrency` and CPU per invocation of the bare workflow with the claim's journal shape."""
    from .bench_cpu import CpuMeter

    def percentile(values: list[float], q: float) -> float:
        ordered = sorted(values)
        return ordered[min(len(ordered) - 1, max(0, round(q * (len(ordered) - 1))))]

    async with BareFloor(session, shape, log=log) as floor:
        for _ in range(5):  # warm: connections, the deployment's first invocations
            await floor.invoke()
        times = []
        for _ in range(sequential):
            t = time.perf_counter()
            await floor.invoke()
            times.append(time.perf_counter() - t)
        meter = CpuMeter({"restate": stack.pid("restate"), "bare service": floor.pid or 0})
        gate = asyncio.Semaphore(concurrency)

        async def one() -> None:
            async with gate:
                await floor.invoke()

        with meter.measuring():
            t = time.perf_counter()
            await asyncio.gather(*(one() for _ in range(concurrent)))
            elapsed = time.perf_counter() - t
    return FloorResult(
        shape=shape,
        p50_s=percentile(times, 0.5),
        p95_s=percentile(times, 0.95),
        throughput=concurrent / elapsed,
        cpu_per_invocation_s=meter.per_unit(concurrent),
    )


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(prog="python -m workbench.bench_floor", description=__doc__)
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, required=True)
    args = parser.parse_args(argv)
    serve(args.host, args.port)


if __name__ == "__main__":
    main()
