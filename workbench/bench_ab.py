"""A/B of the durable path: `python -m workbench.bench_ab A=... B=...` measures claims/s and CPU
per claim of each process, at concurrency 32, for stacks that differ only in the services'
environment (or in tracing), alternated round by round, and prints the medians.

A variant is `name=KEY=VALUE,KEY=VALUE` (environment of the services process), with two
special keys: `tracing=off` for a stack without Langfuse, `services_command=ARGV` (spaces
between arguments, `{host}` and `{port}` filled in) for another way to serve the services. Example:

    python -m workbench.bench_ab asyncio=WORKBENCH_EVENT_LOOP=asyncio uvloop= --rounds 3

Why rounds: on this machine one run differs from the next by about 10% (other work, CPU
frequency); a difference smaller than that is only seen when the variants take turns and the
medians of several turns are compared. Each round starts a fresh stack per variant (a cold
process each time, in the same order of work), runs a few claims to warm it, then measures.
"""

from __future__ import annotations

import argparse
import asyncio
import statistics
import sys
import time
from dataclasses import dataclass, field

from services import names

from .bench import (
    _approvable_documents,
    _own_ports,
    _throughput,
    _timed,
    durable_judges_done_on,
    scratch_home,
)
from .bench_cpu import CpuMeter
from .session import Session


@dataclass
class Variant:
    name: str
    env: dict[str, str]
    tracing: bool = True
    services_command: list[str] | None = None
    rates: list[float] = field(default_factory=list)
    p50s: list[float] = field(default_factory=list)
    cpu: list[dict[str, float]] = field(default_factory=list)

    @classmethod
    def parse(cls, text: str) -> Variant:
        name, sep, rest = text.partition("=")
        if not sep or not name:
            raise argparse.ArgumentTypeError(
                f"a variant is name=KEY=VALUE,KEY=VALUE (or name= for the default), got {text!r}"
            )
        env: dict[str, str] = {}
        tracing, command = True, None
        for item in filter(None, rest.split(",")):
            key, sep, value = item.partition("=")
            if not sep:
                raise argparse.ArgumentTypeError(f"{item!r} in variant {name!r} is not KEY=VALUE")
            if key == "tracing":
                tracing = value.lower() not in {"off", "0", "false", "no"}
            elif key == "services_command":  # an argv template with {host} and {port}
                command = value.split()
            else:
                env[key] = value
        return cls(name, env, tracing, command)


async def _one_round(
    variant: Variant, claims: int, concurrency: int, docs: list[str], latency_claims: int = 0
) -> None:
    from . import stack as stack_module

    with scratch_home(f"workbench-ab-{variant.name}-") as home:
        stack = stack_module.start(
            home=home,
            persistent=False,
            tracing=variant.tracing,
            env={"services": variant.env},
            **({"services_command": variant.services_command} if variant.services_command else {}),
            **_own_ports(),
        )
        session = Session.of_stack(stack)
        try:
            await _measure(session, variant, claims, concurrency, docs, latency_claims)
        finally:
            session.stop()


async def _measure(
    session: Session,
    variant: Variant,
    claims: int,
    concurrency: int,
    docs: list[str],
    latency_claims: int = 0,
) -> None:
    from services.models import ClaimOutcome, ClaimRequest

    async def durable(i: int) -> None:
        body = ClaimRequest(document=docs[i % len(docs)]).model_dump_json()
        claim_id = f"ab-{time.perf_counter_ns()}-{i}"
        response = await session.restate.run_workflow(names.WORKFLOW, claim_id, body)
        assert response.status_code == 200, response.text
        assert ClaimOutcome.model_validate_json(response.content).status == "paid"

    done = durable_judges_done_on(session)
    await _throughput(durable, 4, 4, done)  # warm: imports, connections, prompt caches
    meter = CpuMeter.of_stack(session.stack)
    with meter.measuring():
        rate = await _throughput(durable, claims, concurrency, done)
    variant.rates.append(rate)
    variant.cpu.append(meter.per_unit(claims))
    if latency_claims:  # one claim after the other, as the benchmark's p50 rows
        await done()
        latencies = [await _timed(lambda i=i: durable(i)) for i in range(latency_claims)]
        variant.p50s.append(statistics.median(latencies))


def _median_cpu(runs: list[dict[str, float]]) -> dict[str, float]:
    keys = sorted({k for run in runs for k in run})
    return {k: statistics.median(run.get(k, 0.0) for run in runs) for k in keys}


def report(variants: list[Variant]) -> str:
    base = variants[0]
    base_cpu = _median_cpu(base.cpu)
    latency = bool(base.p50s)
    lines = [
        f"| variant | claims/s (median of {len(base.rates)}) | CPU ms per claim, all | "
        "by process | vs first |" + (" p50 one at a time |" if latency else ""),
        "|---|---:|---:|---|---:|" + ("---:|" if latency else ""),
    ]
    for v in variants:
        cpu = _median_cpu(v.cpu)
        parts = ", ".join(
            f"{k} {cpu[k] * 1000:.1f}" for k in cpu if k != "total" and cpu[k] >= 0.0005
        )
        delta = (cpu["total"] - base_cpu["total"]) * 1000
        lines.append(
            f"| {v.name} | {statistics.median(v.rates):.1f} | {cpu['total'] * 1000:.1f} | "
            f"{parts} | {delta:+.1f} ms |"
            + (f" {statistics.median(v.p50s) * 1000:.0f} ms |" if latency else "")
        )
    lines.append("")
    lines.append(
        "each round: "
        + "; ".join(f"{v.name} " + ", ".join(f"{r:.1f}" for r in v.rates) for v in variants)
    )
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(
        prog="python -m workbench.bench_ab", description=__doc__.split("\n\n")[0]
    )
    parser.add_argument("variants", nargs="+", type=Variant.parse, help="name=KEY=VALUE,...")
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--claims", type=int, default=64)
    parser.add_argument("--concurrency", type=int, default=32)
    parser.add_argument(
        "--latency-claims",
        type=int,
        default=0,
        help="also time this many claims one after the other per round (median p50 shown)",
    )
    args = parser.parse_args(argv)
    if len(args.variants) < 2:
        parser.error("give at least two variants to compare")
    if len({v.name for v in args.variants}) != len(args.variants):
        parser.error("variant names must differ")
    docs = _approvable_documents()
    for round_ in range(args.rounds):
        order = args.variants if round_ % 2 == 0 else list(reversed(args.variants))
        for variant in order:
            print(f"round {round_ + 1}/{args.rounds}: {variant.name} ...", file=sys.stderr)
            asyncio.run(
                _one_round(variant, args.claims, args.concurrency, docs, args.latency_claims)
            )
    print(report(args.variants))


if __name__ == "__main__":
    main()
