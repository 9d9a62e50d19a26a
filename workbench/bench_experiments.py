"""`python -m workbench.bench --experiments`: an experiment's throughput beside
`claims.submit_many` on as many claims at the same concurrency, in the same run (alternated,
medians), and the time to attach to a finished 200-item experiment."""

from __future__ import annotations

import argparse
import os
import statistics
import sys
import tempfile
import time
from pathlib import Path

from services import names

from . import samples
from .session import Session


def bench_experiments(args: argparse.Namespace) -> list[tuple[str, str, str]]:
    """`--experiments`: throughput of an experiment against `submit_many` (the same number of
    claims, approvable documents, the same concurrency; each measured from the call until every
    claim ended, alternated `--experiment-runs` times, medians), and the time to attach to a
    finished experiment of `--attach-items` items from a fresh session (what a new kernel does)."""
    from . import stack as stack_module
    from ._aio import run_sync
    from .experiments import Experiments

    rows: list[tuple[str, str, str]] = []

    def row(name: str, value: str, note: str = "") -> None:
        rows.append((name, value, note))
        print(f"  {name:<56} {value:>14}  {note}", file=sys.stderr)

    home = Path(tempfile.mkdtemp(prefix="workbench-bench-experiments-"))
    print(f"experiments in {home} ...", file=sys.stderr)
    stack = stack_module.start(home=home, persistent=False, llm_latency_ms=args.llm_latency_ms)
    session = Session.of_stack(stack)
    experiments = Experiments(session)
    docs = samples.pick(status="paid")
    n, concurrency = args.experiment_items, args.experiment_concurrency
    per_variant = max(1, n // 2)
    repeats = -(-per_variant // len(docs))
    chosen = docs[: -(-per_variant // repeats)]
    claims_count = len(chosen) * repeats * 2
    variants = {"a": "production", "b": {"claim-analyst": 1}}

    def judges_done() -> None:
        """The judges of the last batch ended: both measurements start from a quiet stack."""
        while run_sync(session.restate.invocations(service=names.JUDGE, unfinished=True, limit=1)):
            time.sleep(0.05)

    try:
        for warm in range(2):
            run_sync(session.aio.claims.submit(docs[warm].document))
        direct, durable = [], []
        for run in range(args.experiment_runs):
            judges_done()
            t = time.perf_counter()
            batch = session.claims.submit_many(
                [d.document for d in chosen] * repeats * 2, concurrency=concurrency, progress=False
            )
            direct.append(len(batch) / (time.perf_counter() - t))
            judges_done()
            t = time.perf_counter()
            exp = experiments.run(
                f"bench-{run}-{os.getpid()}",
                chosen,
                variants,
                repeats=repeats,
                concurrency=concurrency,
            )
            exp.wait(scores=False, progress=False, poll_interval_s=0.05)
            durable.append(claims_count / (time.perf_counter() - t))
        d_med, e_med = statistics.median(direct), statistics.median(durable)
        row(f"claims.submit_many, {claims_count} claims, c={concurrency}", f"{d_med:.1f} claims/s")
        row(f"experiment, {claims_count} items, c={concurrency}", f"{e_med:.1f} items/s")
        row("experiment / submit_many", f"{e_med / d_med:.2f}", "target >= 0.9")

        print(f"a finished {args.attach_items}-item experiment ...", file=sys.stderr)
        per_variant = args.attach_items // 2
        big_repeats = -(-per_variant // len(docs))
        big_docs = docs[: -(-per_variant // big_repeats)]
        name = f"bench-attach-{os.getpid()}"
        big = experiments.run(name, big_docs, variants, repeats=big_repeats, concurrency=32)
        big.wait(progress=False, poll_interval_s=0.2)
        big.sync_langfuse()
        total = big.progress().total
        attach, results = [], []
        for _ in range(5):
            fresh = Session.of_stack(stack)  # a new kernel: nothing cached
            t = time.perf_counter()
            again = Experiments(fresh).run(
                name, big_docs, variants, repeats=big_repeats, concurrency=32
            )
            progress = again.progress()
            attach.append(time.perf_counter() - t)
            assert progress.finished and progress.total == total, progress
            t = time.perf_counter()
            again.results(tokens=False)
            results.append(time.perf_counter() - t)
            fresh.close()
        row(
            f"attach to a finished {total}-item experiment (+ progress)",
            f"{statistics.median(attach):.2f} s",
            "target < 1 s",
        )
        row("results() of it (no tokens)", f"{statistics.median(results):.2f} s")
    finally:
        session.stop()
    return rows
