"""`python -m workbench.bench --cluster`: the claims on a 3-node Restate cluster beside a single
server, in one run (same machine, same load, one after the other):

- cold start of each stack, until its first claim is accepted (cluster target <= 6 s);
- claim latency p50 over the same sequential claims, and the cluster / single ratio (<= 2.0);
- throughput at `--cluster-concurrency` (claims and their judges done, per second);
- time from a leader kill (a `kill_leader` fault inside a step, measured from the moment the node
  is gone) to the claim's completion in Restate's own clock, median and worst (<= 4 s);
- peak RSS per Restate node."""

from __future__ import annotations

import argparse
import asyncio
import statistics
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

from services import names

from .bench import MemorySampler, _approvable_documents, _percentile, _throughput, _timed
from .session import Session

Row = tuple[str, str, str]


async def _measure(
    nodes: int, args: argparse.Namespace, docs: list[str], row: Any
) -> dict[str, float]:
    """Cold start, latency and throughput of a stack with `nodes` Restate nodes (and, on a
    cluster, leader kills); returns what the comparison needs."""
    from . import stack as stack_module
    from .faults import Fault
    from .frames import epoch_s

    what = "cluster (3 nodes)" if nodes > 1 else "single node"
    home = Path(tempfile.mkdtemp(prefix=f"workbench-bench-{nodes}n-"))
    print(f"{what}: cold start in {home} ...", file=sys.stderr)
    t0 = time.perf_counter()
    stack = stack_module.start(
        home=home, persistent=False, nodes=nodes, llm_latency_ms=args.llm_latency_ms
    )
    session = Session.of_stack(stack)
    claims = session.aio.claims
    first = await claims.submit(docs[0], wait=False)
    found: dict[str, float] = {"cold": time.perf_counter() - t0}
    target = "target <= 6 s" if nodes > 1 else ""
    row(f"{what}: cold start (until first claim accepted)", f"{found['cold']:.2f} s", target)
    try:
        with MemorySampler(stack.supervisor_pid) as memory:
            await claims.submit(docs[0], id=first.id)

            async def durable(i: int) -> None:
                c = await claims.submit(docs[i % len(docs)])
                assert c.status == "paid", c

            async def judges_done() -> None:
                while await session.restate.invocations(
                    service=names.JUDGE, unfinished=True, limit=1
                ):
                    await asyncio.sleep(0.01)

            for warm in range(3):
                await durable(warm)
            n = args.latency_claims
            print(f"{what}: latency over {n} sequential claims ...", file=sys.stderr)
            latencies = [await _timed(lambda i=i: durable(i)) for i in range(n)]
            found["p50"] = _percentile(latencies, 0.5)
            row(f"{what}: claim latency p50", f"{found['p50'] * 1000:.0f} ms")
            row(f"{what}: claim latency p95", f"{_percentile(latencies, 0.95) * 1000:.0f} ms")
            c = args.cluster_concurrency
            total = max(args.throughput_claims, 2 * c)
            print(f"{what}: throughput at concurrency {c} ({total} claims) ...", file=sys.stderr)
            found["throughput"] = await _throughput(durable, total, c, judges_done)
            row(f"{what}: throughput c={c}", f"{found['throughput']:.1f} claims/s")
            if nodes > 1:
                kills = []
                for run in range(args.leader_kills):
                    session.cluster.wait_healthy(timeout_s=60)
                    done = await claims.submit(
                        docs[run % len(docs)], faults=[Fault("check fraud", "kill_leader")]
                    )
                    assert done.status == "paid", done
                    invocation = await session.restate.invocation(names.WORKFLOW, done.id)
                    assert invocation is not None
                    completed = epoch_s(invocation["completed_at"])
                    assert completed is not None
                    killed = next(
                        e["at"]
                        for e in session.fault_store.events(done.id)
                        if e["event"] == "crashed"
                    )
                    kills.append(completed - killed)
                found["kill"] = statistics.median(kills)
                row(
                    "cluster: leader kill -> claim completed, median",
                    f"{found['kill']:.2f} s",
                    "target <= 4 s",
                )
                row("cluster: leader kill -> claim completed, worst", f"{max(kills):.2f} s")
        rss = _node_rss(stack)
        if rss:
            row(f"{what}: Restate RSS per node, now", f"{max(rss) / 2**20:.0f} MiB", "max")
        row(f"{what}: stack peak memory (RSS, all)", f"{memory.peak_bytes / 2**20:.0f} MiB")
    finally:
        session.stop()
    return found


def _node_rss(stack: Any) -> list[int]:
    import psutil

    sizes = []
    for name in stack.restate_nodes:
        pid = stack.pid(name)
        if pid:
            try:
                sizes.append(psutil.Process(pid).memory_info().rss)
            except psutil.Error:
                continue
    return sizes


async def bench_cluster(args: argparse.Namespace) -> list[Row]:
    """The table of `--cluster` (see the module's docstring)."""
    rows: list[Row] = []

    def row(name: str, value: str, note: str = "") -> None:
        rows.append((name, value, note))
        print(f"  {name:<52} {value:>14}  {note}", file=sys.stderr)

    docs = _approvable_documents()
    single = await _measure(1, args, docs, row)
    cluster = await _measure(3, args, docs, row)
    row(
        "latency ratio cluster / single node (p50)",
        f"{cluster['p50'] / single['p50']:.2f}",
        "target <= 2.0",
    )
    row(
        "throughput ratio cluster / single node",
        f"{cluster['throughput'] / single['throughput']:.2f}",
    )
    return rows
