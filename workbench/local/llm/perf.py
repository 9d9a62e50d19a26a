"""What the embedded model costs per request, in CPU time, measured in-process.

`cpu_per_call()` sends the claim workflow's own requests (the parser's, the analyst's two turns
and the judge's, built from the sample documents and the seed prompts in data/) through the ASGI
app directly (JSON decoding, validation, the answer, JSON encoding; no sockets), and reports the
CPU milliseconds (`time.process_time`) per request of each kind. The benchmark
(`python -m workbench.bench`) prints it; the target is <= 2 ms for a typical claim call, so the
stand-in never dominates the durable path it is used to study."""

from __future__ import annotations

import asyncio
import json
import time
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import Any

from .app import create_app
from .parser import parse_claim

DATA = Path(__file__).resolve().parents[3] / "data"
_TITLES = ("ClaimData", "ClaimAssessment", "JudgeVerdict")


def _schema(title: str) -> dict[str, Any]:
    schema = {"title": title, "type": "object", "properties": {}}
    return {"type": "json_schema", "json_schema": {"name": "final_output", "schema": schema}}


def _prompt(name: str) -> str:
    index = json.loads((DATA / "prompts" / "index.json").read_text(encoding="utf-8"))
    entry = next(e for e in index if e["name"] == name and "production" in e["labels"])
    return (DATA / "prompts" / entry["file"]).read_text(encoding="utf-8")


def claim_requests(documents: int = 20) -> dict[str, list[dict[str, Any]]]:
    """The four kinds of request a claim makes, for `documents` sample claims that are paid."""
    manifest = json.loads((DATA / "claims" / "manifest.json").read_text(encoding="utf-8"))
    paid = [e for e in manifest if e["status_v1"] == "paid"][:documents]
    parser, analyst, judge = (_prompt(f"claim-{n}") for n in ("parser", "analyst", "judge"))
    fraud = {"customer_id": "C-1001", "flagged": False, "reason": None}
    policy = {"customer_id": "C-1001", "found": True, "plan": "premium", "covered": True,
              "per_claim_limit_eur": 10000.0, "review_threshold_eur": 2500.0}  # fmt: skip
    tools = [
        {"type": "function", "function": {"name": name, "parameters": {"type": "object"}}}
        for name in ("check_fraud", "lookup_policy")
    ]
    kinds = ("parser", "analyst tools", "analyst decision", "judge")
    requests: dict[str, list[dict[str, Any]]] = {kind: [] for kind in kinds}
    for entry in paid:
        document = (DATA / "claims" / entry["file"]).read_text(encoding="utf-8")
        claim = parse_claim(document)
        user = json.dumps({"claim": claim, "amount_eur": 100.0, "submitted_on": "2026-11-01"})
        turn = [{"role": "system", "content": analyst}, {"role": "user", "content": user}]
        calls = [
            {"id": f"call_{i}", "type": "function",
             "function": {"name": t["function"]["name"], "arguments": "{}"}}
            for i, t in enumerate(tools)
        ]  # fmt: skip
        results = [
            {"role": "tool", "tool_call_id": "call_0", "content": json.dumps(fraud)},
            {"role": "tool", "tool_call_id": "call_1", "content": json.dumps(policy)},
        ]
        evidence = {
            "claim": claim, "amount_eur": 100.0, "fraud": fraud, "policy": policy,
            "assessment": {"decision": "approve", "reason": "No policy clause matched.",
                           "clauses": [], "unrecognized_clauses": []},
            "final_status": "paid", "document": document, "analyst_policy": analyst,
            "submitted_on": "2026-11-01",
        }  # fmt: skip
        base = {"model": "workbench-local"}
        requests["parser"].append(
            base
            | {
                "messages": [
                    {"role": "system", "content": parser},
                    {"role": "user", "content": document},
                ],
                "response_format": _schema("ClaimData"),
            }  # fmt: skip
        )
        requests["analyst tools"].append(
            base | {"messages": turn, "tools": tools, "response_format": _schema("ClaimAssessment")}
        )
        requests["analyst decision"].append(
            base
            | {
                "messages": [*turn, {"role": "assistant", "tool_calls": calls}, *results],
                "tools": tools,
                "response_format": _schema("ClaimAssessment"),
            }  # fmt: skip
        )
        requests["judge"].append(
            base
            | {
                "messages": [
                    {"role": "system", "content": judge},
                    {"role": "user", "content": json.dumps(evidence)},
                ],
                "response_format": _schema("JudgeVerdict"),
            }  # fmt: skip
        )
    return requests


async def _post(app: Callable[..., Awaitable[None]], body: bytes) -> int:
    scope = {
        "type": "http", "asgi": {"version": "3.0"}, "http_version": "1.1", "method": "POST",
        "scheme": "http", "path": "/v1/chat/completions", "raw_path": b"/v1/chat/completions",
        "query_string": b"", "root_path": "", "server": ("127.0.0.1", 8787),
        "client": ("127.0.0.1", 1), "headers": [(b"content-type", b"application/json"),
                                              (b"content-length", str(len(body)).encode())],
    }  # fmt: skip
    status = 0
    sent = False

    async def receive() -> dict[str, Any]:
        nonlocal sent
        if sent:
            return {"type": "http.disconnect"}
        sent = True
        return {"type": "http.request", "body": body, "more_body": False}

    async def send(message: dict[str, Any]) -> None:
        nonlocal status
        if message["type"] == "http.response.start":
            status = message["status"]

    await app(scope, receive, send)
    return status


def cpu_per_call(rounds: int = 10, documents: int = 20) -> dict[str, float]:
    """CPU milliseconds per request of each kind (parser, analyst tools, analyst decision, judge)
    and their mean ("claim call"), over `rounds` passes of `documents` sample claims."""
    app = create_app()
    bodies = {k: [json.dumps(r).encode() for r in v] for k, v in claim_requests(documents).items()}

    async def measure() -> dict[str, float]:
        out: dict[str, float] = {}
        for kind, requests in bodies.items():
            for body in requests:  # warm up: compile the regexes, fill caches
                if await _post(app, body) != 200:
                    raise RuntimeError(f"the embedded model refused a {kind} request")
            start = time.process_time()
            for _ in range(rounds):
                for body in requests:
                    await _post(app, body)
            out[kind] = (time.process_time() - start) * 1000 / (rounds * len(requests))
        out["claim call"] = sum(out.values()) / len(out)
        return out

    return asyncio.run(measure())


if __name__ == "__main__":
    for kind, ms in cpu_per_call().items():
        print(f"{kind:>18}: {ms:.3f} ms CPU per request")
