"""`wb.serve`: a user's own Restate services, defined in the test process (as in a notebook
kernel), served from a background thread and registered with a real stack (restate-server, the
embedded model, the embedded Langfuse). A durable agent gets a journal and a trace; serving again
keeps the address and the deployment; an invocation in flight resumes when the service is back,
after a stop or after the serving process died."""

from __future__ import annotations

import json
import os
import signal
import socket
import subprocess
import sys
import textwrap
from collections.abc import Iterator
from pathlib import Path

import pytest
import restate

import workbench as wb
from workbench import _served_runtime
from workbench._aio import run_sync

from .conftest import claims_stack

pytestmark = pytest.mark.integration

SLEEP_S = 2.0
USER_AGENTS = f'''\
"""A user's own agents and services (written by the test, imported like a user's module)."""
import json
from datetime import timedelta

import agents
import restate
from pydantic import BaseModel
from restate.ext.openai import DurableRunner, durable_function_tool


class Ticket(BaseModel):
    customer_id: str | None
    amount: float
    currency: str
    priority: str


@durable_function_tool
async def lookup_customer(customer_id: str) -> str:
    """The customer's record: their support priority."""
    return json.dumps({{"customer_id": customer_id, "priority": "high"}})


agent = agents.Agent(
    name="triage",
    instructions="Triage the customer's message.",
    tools=[lookup_customer],
    output_type=Ticket,
)
triage = restate.Service("Triage")


@triage.handler()
async def run(ctx: restate.Context, message: str) -> Ticket:
    return (await DurableRunner.run(agent, message)).final_output


@triage.handler()
async def later(ctx: restate.Context, message: str) -> Ticket:
    ticket = (await DurableRunner.run(agent, message)).final_output
    await ctx.sleep(timedelta(seconds={SLEEP_S}))
    return ticket


counter = restate.VirtualObject("Counter")


@counter.handler()
async def add(ctx: restate.ObjectContext, n: int) -> int:
    total = (await ctx.get("total") or 0) + n
    ctx.set("total", total)
    return total


@counter.handler()
async def refuse(ctx: restate.ObjectContext, reason: str) -> None:
    raise restate.TerminalError(reason)


onboarding = restate.Workflow("Onboarding")


@onboarding.main()
async def welcome(ctx: restate.WorkflowContext, name: str) -> str:
    return await ctx.run_typed("greet", lambda: f"welcome {{name}}")
'''

# A notebook kernel that serves the user's agent, starts a slow invocation, and dies with it
# in flight (SIGKILL: no atexit, no clean stop).
DYING_KERNEL = """\
import json, os, signal, sys
sys.path.insert(0, sys.argv[2])
import workbench as wb
from workbench import stack as stack_module
session = wb.Session.of_stack(stack_module.attach(sys.argv[1]))
served = session.serving.serve("user_agents:triage")
inv = served.send("later", "Customer C-1003 paid EUR 95 at the pharmacy.")
inv.wait_for_step("timer")
print(json.dumps({"url": served.url, "deployment": served.deployment_id, "invocation": inv.id}))
sys.stdout.flush()
os.kill(os.getpid(), signal.SIGKILL)
"""


@pytest.fixture(scope="module")
def stack(tmp_path_factory: pytest.TempPathFactory) -> Iterator[object]:
    with claims_stack(tmp_path_factory.mktemp("serve-home"), timeout_s=180) as s:
        try:
            yield s
        finally:  # the Agents SDK settings wb.serve made here are not for later tests (and the
            _served_runtime.reset()  # spans left are flushed while Langfuse is still there)


@pytest.fixture(scope="module")
def user_agents(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[object, Path]]:
    """The user's module, importable as `user_agents` (its folder on sys.path)."""
    folder = tmp_path_factory.mktemp("user-code")
    (folder / "user_agents.py").write_text(USER_AGENTS)
    sys.path.insert(0, str(folder))
    try:
        import user_agents as module

        yield module, folder
    finally:
        sys.path.remove(str(folder))
        sys.modules.pop("user_agents", None)


@pytest.fixture
def served_here(stack: object) -> Iterator[None]:
    """Nothing a test served outlives it."""
    try:
        yield
    finally:
        wb.serving.stop_all()


def _deployments_serving(name: str) -> list[str]:
    deployments = run_sync(wb.current().restate.deployments())
    return [d["id"] for d in deployments if name in {s["name"] for s in d.get("services", [])}]


def test_a_served_agent_runs_durably_with_a_journal_and_a_trace(served_here, user_agents) -> None:
    module, _ = user_agents
    served = wb.serve(module.triage)
    assert served.running and served.url.startswith("http://127.0.0.1:")
    assert served.handlers == {"Triage": ["run", "later"]}
    assert "Triage (service): run, later" in repr(served) and served.deployment_id in repr(served)

    done = served.call("run", "Customer C-1007 paid GBP 80 for a GP visit and wants it back.")
    assert done.status == "completed"
    assert done.output == module.Ticket(
        customer_id="C-1007", amount=80.0, currency="GBP", priority="high"
    )  # typed as the handler returns it; the priority came from the tool the model called

    journal = served.journal(done)
    assert list(journal["kind"]) == ["input", "model call", "model call", "output"]
    assert "lookup_customer" in journal["result"].iloc[1]
    assert list(done.journal_entries["name"]).count("call LLM") == 2

    trace_id = done.trace_id
    assert trace_id and len(trace_id) == 32
    spans = done.trace(timeout_s=30)
    assert set(spans["trace_id"]) == {trace_id}  # Restate's spans and the agent's: one trace
    names = set(spans["name"])
    assert {"ingress Triage/run", "invocation-attempt Triage/run", "triage"} <= names
    assert "lookup_customer" in names
    assert (spans["type"] == "GENERATION").sum() == 2
    attempts = set(spans.loc[spans["name"] == "invocation-attempt Triage/run", "id"])
    agent_spans = spans[spans["name"].isin(["triage", "lookup_customer"])]
    assert set(agent_spans["parent"]) <= attempts  # RestateTracer: children of the attempt


def test_serving_again_keeps_the_address_and_one_deployment(served_here, user_agents) -> None:
    module, _ = user_agents
    first = wb.serve(module.triage)
    second = wb.serve(module.triage)  # e.g. the cell run again after editing the handler
    assert not first.running and second.running
    assert second.url == first.url
    assert second.deployment_id == first.deployment_id
    assert second.registration == "registered again at the same address"
    assert _deployments_serving("Triage") == [first.deployment_id]
    assert second.call("run", "Customer C-1001: dental, EUR 120.").output.customer_id == "C-1001"

    second.stop()
    assert not second.running
    third = wb.serve("user_agents:triage")  # by module path, as a restarted kernel would
    assert (third.url, third.deployment_id) == (first.url, first.deployment_id)
    assert _deployments_serving("Triage") == [first.deployment_id]


def test_an_invocation_in_flight_resumes_when_served_again(served_here, user_agents) -> None:
    module, _ = user_agents
    served = wb.serve(module.triage)
    inv = served.send("later", "Customer C-1002 paid EUR 120 at the dentist.")
    inv.wait_for_step("timer")
    served.stop()  # the kernel-side server goes away with the invocation in flight

    waiting = inv.wait("backing-off", timeout_s=SLEEP_S + 20)
    assert waiting.status == "backing-off"  # Restate tried the address and keeps trying

    back = wb.serve(module.triage)
    assert back.url == served.url and back.deployment_id == served.deployment_id
    finished = inv.wait(timeout_s=30)
    assert finished.output.customer_id == "C-1002"
    journal = back.journal(inv)
    assert list(journal["kind"]) == ["input", "model call", "model call", "timer", "output"]
    row = back.invocations().set_index("id").loc[inv.id]
    assert row["status"] == "completed" and row["pinned_deployment_id"] == served.deployment_id


def test_a_kernel_that_died_serves_again_at_the_same_address(
    served_here, stack, user_agents
) -> None:
    _, folder = user_agents
    script = folder / "dying_kernel.py"
    script.write_text(DYING_KERNEL)
    result = subprocess.run(
        [sys.executable, str(script), str(stack.home), str(folder)],
        capture_output=True,
        text=True,
        timeout=120,
        env={**os.environ, "WORKBENCH_HOME": str(stack.home)},
    )
    assert result.returncode == -signal.SIGKILL, result.stderr[-3000:]
    before = json.loads(result.stdout.strip().splitlines()[-1])

    again = wb.serve("user_agents:triage")  # the "restarted kernel"
    assert again.url == before["url"]
    assert again.deployment_id == before["deployment"]
    assert again.registration == "registered again at the same address"
    done = again.wait(before["invocation"], timeout_s=60)
    assert done.output.customer_id == "C-1003"
    assert list(again.journal(done)["kind"]).count("model call") == 2  # not asked again


def test_a_taken_port_moves_the_same_deployment(served_here, user_agents) -> None:
    module, _ = user_agents
    served = wb.serve(module.triage)
    served.stop()
    squatter = socket.socket()
    squatter.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)  # TIME_WAIT is no owner
    try:
        squatter.bind(("127.0.0.1", served.port))
        squatter.listen(1)
        moved = wb.serve(module.triage)
        assert moved.port != served.port
        assert moved.deployment_id == served.deployment_id
        assert moved.registration.startswith(f"moved from {served.url}")
        assert _deployments_serving("Triage") == [served.deployment_id]
        assert moved.call("run", "Customer C-1004: pharmacy, 30 EUR.").status == "completed"
    finally:
        squatter.close()
    back = wb.serve(module.triage)  # the new port is the one kept now
    assert back.port == moved.port


def test_a_virtual_object_is_called_by_key_and_a_terminal_error_is_raised(
    served_here, user_agents
) -> None:
    module, _ = user_agents
    served = wb.serve(module.counter, module.triage)  # two services, one server
    assert served.handlers == {"Counter": ["add", "refuse"], "Triage": ["run", "later"]}
    assert served.call("add", 2, key="ana").output == 2
    assert served.call("Counter/add", 3, key="ana").output == 5
    assert served.call(module.add, 1, key="bob").output == 1  # the handler function itself
    with pytest.raises(wb.RestateError, match=r"Counter/ana/refuse.*not today"):
        served.call("refuse", "not today", key="ana")
    with pytest.raises(wb.ServeError, match=r"Counter is a virtual object: pass the key"):
        served.call("add", 1)
    with pytest.raises(wb.ServeError, match=r"Triage is a service: its handlers take no key"):
        served.call("run", "x", key="k")
    with pytest.raises(wb.ServeError, match=r"No handler 'nope'.*'Counter/add'"):
        served.call("nope", 1)
    assert served.call("add", 4, key="a b/c").output == 4  # any key, quoted in the path


def test_a_workflow_runs_once_per_key(served_here, user_agents) -> None:
    module, _ = user_agents
    served = wb.serve(module.onboarding)
    first = served.call("welcome", "Ana", key="ana")
    assert first.output == "welcome Ana"
    again = served.call("welcome", "someone else", key="ana")  # the same workflow: its result
    assert (again.id, again.output) == (first.id, "welcome Ana")
    assert list(served.journal(first)["step"]) == ["input", "greet", "output"]


def test_names_the_stack_owns_are_refused(served_here) -> None:
    claims = restate.Service("ClaimWorkflow")

    @claims.handler()
    async def run(ctx: restate.Context, document: str) -> str:
        return "mine"

    with pytest.raises(wb.ServeError, match=r"'ClaimWorkflow' is already registered.*did not"):
        wb.serve(claims)
    assert wb.submit_claim(wb.samples.pick(status="paid")[0]).status == "paid"  # untouched


def test_a_stopped_stack_is_named(tmp_path: Path, user_agents) -> None:
    module, _ = user_agents
    session = wb.Session(
        wb.session.Endpoints("http://127.0.0.1:9", "http://127.0.0.1:9"), home=tmp_path
    )
    with pytest.raises(wb.ServeError, match=r"does not answer.*wb\.start\(\)"):
        session.serving.serve(module.triage)
    assert session.serving.served() == []


def test_a_module_that_fails_to_import_is_named(served_here, user_agents) -> None:
    _, folder = user_agents
    (folder / "broken_agents.py").write_text(
        textwrap.dedent(
            """\
            import restate
            svc = restate.Service("Broken")
            raise RuntimeError("the API key file is missing")
            """
        )
    )
    with pytest.raises(wb.ServeError, match=r"Could not import 'broken_agents'.*API key file"):
        wb.serve("broken_agents:svc")
    with pytest.raises(wb.ServeError, match=r"has no 'nothing'"):
        wb.serve("user_agents:nothing")
    with pytest.raises(wb.ServeError, match=r"Could not import 'no_such_module'"):
        wb.serve("no_such_module:svc")
