"""A user's own agent, defined with the OpenAI Agents SDK's defaults (the Responses API, no
`set_default_openai_api`), run durably through `restate.ext.openai.DurableRunner` against the
embedded model: the real restate-server from node_modules, the model and a hypercorn service, each
its own process."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from collections.abc import Iterator
from contextlib import ExitStack, contextmanager
from pathlib import Path

import httpx
import pytest

from workbench.stack.config import BinaryNotFoundError, find_restate_server
from workbench.stack.ports import free_ports

pytestmark = pytest.mark.integration

PROJECT = Path(__file__).resolve().parents[2]
SERVICE = '''\
"""A user's triage agent, served as a Restate service (written by the test)."""
import asyncio
import json
import sys

import agents
import restate
from hypercorn.asyncio import serve
from hypercorn.config import Config
from pydantic import BaseModel
from restate.ext.openai import DurableRunner, durable_function_tool

agents.set_tracing_disabled(True)  # the SDK's defaults otherwise: Responses API, env client


class Triage(BaseModel):
    customer_id: str | None
    amount: float
    currency: str
    priority: str


@durable_function_tool
async def lookup_customer(customer_id: str) -> str:
    """The customer's record."""
    return json.dumps({"priority": "high", "customer_id": customer_id})


agent = agents.Agent(
    name="triage",
    instructions="Triage the customer's message.",
    tools=[lookup_customer],
    output_type=Triage,
)
triage = restate.Service("Triage")


@triage.handler()
async def run(ctx: restate.Context, message: str) -> dict:
    result = await DurableRunner.run(agent, message)
    return result.final_output.model_dump()


config = Config()
config.bind = [f"127.0.0.1:{sys.argv[1]}"]
asyncio.run(serve(restate.app(services=[triage]), config))
'''


def _wait(url: str, process: subprocess.Popen[bytes], log: Path, timeout_s: float = 60) -> None:
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        if process.poll() is not None:
            raise AssertionError(f"{log.name}: exited early\n{log.read_text()[-3000:]}")
        try:
            if httpx.get(url, timeout=1).status_code < 500:
                return
        except httpx.HTTPError:
            pass
        time.sleep(0.1)
    raise AssertionError(f"{url} did not answer in {timeout_s} s\n{log.read_text()[-3000:]}")


@contextmanager
def _process(command: list[str], log: Path, ready_url: str, env: dict[str, str]) -> Iterator[None]:
    with log.open("wb") as out:
        process = subprocess.Popen(
            command, stdout=out, stderr=subprocess.STDOUT, env=env, start_new_session=True
        )
    try:
        _wait(ready_url, process, log)
        yield
    finally:
        if process.poll() is None:
            os.kill(process.pid, signal.SIGINT)
            try:
                process.wait(timeout=15)
            except subprocess.TimeoutExpired:
                os.kill(process.pid, signal.SIGKILL)
                process.wait(timeout=15)


@pytest.fixture
def durable_triage(tmp_path: Path) -> Iterator[tuple[str, str]]:
    """(ingress URL, admin URL) with the Triage service registered."""
    try:
        restate_bin = find_restate_server(PROJECT, os.environ)
    except BinaryNotFoundError as e:
        pytest.fail(str(e))
    llm, ingress, admin, node, service = free_ports(5)
    env = {k: v for k, v in os.environ.items() if not k.startswith(("OPENAI_", "LANGFUSE_"))}
    script = tmp_path / "triage_service.py"
    script.write_text(SERVICE)
    restate_env = env | {
        "DO_NOT_TRACK": "1",
        "RESTATE_INGRESS__BIND_ADDRESS": f"127.0.0.1:{ingress}",
        "RESTATE_ADMIN__BIND_ADDRESS": f"127.0.0.1:{admin}",
    }
    service_env = env | {
        "OPENAI_BASE_URL": f"http://127.0.0.1:{llm}/v1",
        "OPENAI_API_KEY": "workbench-local",
    }
    with ExitStack() as stack:
        stack.enter_context(
            _process(
                [sys.executable, "-m", "workbench.local.llm", "--port", str(llm)],
                tmp_path / "llm.log",
                f"http://127.0.0.1:{llm}/health",
                env,
            )
        )
        stack.enter_context(
            _process(
                [str(restate_bin), "--no-logo", "--base-dir", str(tmp_path / "restate"),
                 "--node-name", "test", "--bind-address", f"127.0.0.1:{node}"],
                tmp_path / "restate.log",
                f"http://127.0.0.1:{admin}/health",
                restate_env,
            )
        )  # fmt: skip
        stack.enter_context(
            _process(
                [sys.executable, str(script), str(service)],
                tmp_path / "service.log",
                f"http://127.0.0.1:{service}/discover",
                service_env,
            )
        )
        registered = httpx.post(
            f"http://127.0.0.1:{admin}/deployments",
            json={"uri": f"http://127.0.0.1:{service}", "force": True},
            timeout=30,
        )
        assert registered.status_code in (200, 201), registered.text
        yield f"http://127.0.0.1:{ingress}", f"http://127.0.0.1:{admin}"


def test_an_sdk_default_agent_runs_durably_with_a_journal(durable_triage: tuple[str, str]) -> None:
    ingress, admin = durable_triage
    answer = httpx.post(
        f"{ingress}/Triage/run",
        json="Customer C-1007 paid GBP 80 for a GP visit and wants it back.",
        timeout=60,
    )
    assert answer.status_code == 200, answer.text
    assert answer.json() == {
        "customer_id": "C-1007",
        "amount": 80.0,
        "currency": "GBP",
        "priority": "high",  # from the tool's output: the model called it before answering
    }
    invocation = answer.headers["x-restate-id"]
    journal = httpx.post(
        f"{admin}/query",
        json={"query": f"SELECT name FROM sys_journal WHERE id = '{invocation}' ORDER BY index"},
        headers={"accept": "application/json"},
        timeout=30,
    ).json()["rows"]
    names = [row.get("name") for row in journal]
    assert names.count("call LLM") == 2, names  # the tool-call turn and the answer, each journaled
