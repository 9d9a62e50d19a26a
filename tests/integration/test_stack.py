"""The stack with real processes: restate-server from npm, supervisord, and stand-ins for the
services (a tiny restate-sdk app) and, until it exists, the embedded model server."""

from __future__ import annotations

import contextlib
import http.server as http_server
import json
import shlex
import signal
import socket
import subprocess
import sys
import threading
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import psutil
import pytest

import workbench.stack as wb
from workbench.stack.config import PortRequest, find_restate_server
from workbench.stack.ports import allocate_ports

from .conftest import processes_of, standin_command

pytestmark = pytest.mark.integration

http = httpx.Client(timeout=10, trust_env=False)


def greet(stack: wb.Stack, name: str) -> str:
    response = http.post(f"{stack.ingress_url}/Greeter/greet", json=name)
    response.raise_for_status()
    return response.json()


@contextlib.contextmanager
def socket_listening() -> Iterator[int]:
    """A port held by a listening socket (something else using it)."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        sock.listen(1)
        yield sock.getsockname()[1]


def alive(pid: int) -> bool:
    try:
        return psutil.Process(pid).status() != psutil.STATUS_ZOMBIE
    except psutil.NoSuchProcess:
        return False


@pytest.fixture
def stack(home: Path, options: dict[str, Any]) -> Iterator[wb.Stack]:
    running = wb.start(home, **options)
    try:
        yield running
    finally:
        running.stop()


def test_start_makes_every_process_answer(stack: wb.Stack, home: Path) -> None:
    assert http.get(f"{stack.admin_url}/health").status_code == 200
    assert http.get(f"{stack.ingress_url}/restate/health").status_code == 200
    assert http.get(stack.llm_url.removesuffix("/v1") + "/health").status_code == 200
    assert greet(stack, "world") == "hello world"  # services registered with the admin API
    viewer = http.get(stack.viewer_url, follow_redirects=False)  # a browser gets the login page
    assert (viewer.status_code, viewer.headers["location"]) == (303, "/login?next=%2F")

    recorded = json.loads((home / "stack.json").read_text())
    assert recorded["urls"]["ingress"] == stack.ingress_url
    assert recorded["urls"]["llm"] == stack.llm_url and stack.llm_url.endswith("/v1")
    for name in ("llm", "restate", "services"):
        assert recorded["processes"][name]["pid"] == stack.pid(name)
        assert alive(stack.pid(name))
    # output goes to log files, never to the caller
    assert "stand-in services listening" in stack.logs("services")
    assert "Starting Restate Server" in (home / "logs" / "restate.log").read_text()

    table = stack.status()
    assert list(table.columns) == [
        "name",
        "state",
        "pid",
        "port",
        "url",
        "uptime_s",
        "restarts",
        "log",
    ]
    assert set(table["name"]) == {"langfuse", "llm", "restate", "services"}
    assert set(table["state"]) <= {"STARTING", "RUNNING"}
    assert table.set_index("name").loc["restate", "pid"] == stack.pid("restate")
    assert "restate" in repr(stack) and "<table" in stack._repr_html_()


def test_second_start_attaches_to_the_running_stack(stack: wb.Stack, home: Path) -> None:
    again = wb.start(home)  # no options: the running stack is found from the home folder
    assert again.supervisor_pid == stack.supervisor_pid
    assert {name: again.pid(name) for name in again.names} == {
        name: stack.pid(name) for name in stack.names
    }
    assert wb.attach(home) is not None
    assert list(wb.status(home)["name"]) == list(stack.status()["name"])


def test_a_killed_process_is_restarted_and_answers_again(stack: wb.Stack) -> None:
    old = stack.kill("services")
    assert not alive(old)
    stack.wait_ready("services", timeout_s=20)
    assert stack.pid("services") not in (None, old)
    assert greet(stack, "after a crash") == "hello after a crash"

    old = stack.kill("restate")
    stack.wait_ready("restate", timeout_s=20)
    assert stack.pid("restate") not in (None, old)
    assert greet(stack, "again") == "hello again"  # the registration survived in base-dir

    old = stack.kill("llm", signal.SIGTERM)  # any way of dying counts
    stack.wait_ready("llm", timeout_s=20)
    assert stack.pid("llm") not in (None, old)

    restarts = stack.status().set_index("name")["restarts"]
    assert list(restarts[["llm", "restate", "services"]]) == [1, 1, 1]

    with stack.stopped("restate"):
        assert stack.pid("restate") is None
        with pytest.raises(httpx.TransportError):
            http.get(f"{stack.admin_url}/health")
    assert http.get(f"{stack.admin_url}/health").status_code == 200

    before = stack.pid("services")
    stack.restart("services")
    assert stack.pid("services") != before
    assert greet(stack, "restarted") == "hello restarted"


def test_stop_leaves_no_process_behind(home: Path, options: dict[str, Any]) -> None:
    stack = wb.start(home, **options)
    supervisor = psutil.Process(stack.supervisor_pid)
    ours = [supervisor, *supervisor.children(recursive=True)]
    assert {p.pid for p in ours} >= {stack.pid(name) for name in stack.names}

    stack.stop()

    assert [p.pid for p in ours if alive(p.pid)] == []
    assert processes_of(home) == []
    assert not (home / "stack.json").exists()
    assert wb.status(home).empty
    assert wb.stop(home) is False  # nothing left to stop
    assert not stack.is_running()


def test_reset_stops_and_deletes_the_state(home: Path, options: dict[str, Any]) -> None:
    stack = wb.start(home, **options)
    pids = [stack.supervisor_pid, *(stack.pid(name) for name in stack.names)]
    assert (home / "restate").is_dir()

    assert wb.reset(home, yes=True) == home

    assert not home.exists()
    assert [pid for pid in pids if alive(pid)] == []


def test_explicit_port_taken_raises_port_taken_error(
    home: Path, options: dict[str, Any], monkeypatch: pytest.MonkeyPatch
) -> None:
    del options["ingress_port"]
    with socket_listening() as port:
        monkeypatch.setenv("WORKBENCH_INGRESS_PORT", str(port))
        with pytest.raises(wb.PortTakenError, match=rf"Port {port} .*WORKBENCH_INGRESS_PORT"):
            wb.start(home, **options)
    assert not (home / "stack.json").exists()


def test_taken_default_port_is_replaced_by_a_free_one() -> None:
    with socket_listening() as port:
        chosen = allocate_ports(
            {"a": PortRequest("a", default=port), "b": PortRequest("b", default=port)}
        )
    assert port not in chosen.values()
    assert chosen["a"] != chosen["b"]


def test_process_exiting_at_once_raises_with_its_log(
    home: Path, options: dict[str, Any], standin: Path
) -> None:
    options["services_command"] = standin_command(standin, "crash")
    with pytest.raises(wb.ProcessExitedError) as caught:
        wb.start(home, **options)
    error = caught.value
    assert error.name == "services"
    assert "exit status 3" in str(error) and "configuration is broken" in str(error)
    assert str(home / "logs" / "services.log") in str(error)
    assert processes_of(home) == []  # what had started was stopped


def test_deployment_restate_cannot_register_raises(home: Path, options: dict[str, Any]) -> None:
    # a plain HTTP/1.1 server: it answers, but it is not a Restate deployment
    options["services_command"] = [
        sys.executable,
        "-m",
        "http.server",
        "--bind",
        "{host}",
        "{port}",
    ]
    with pytest.raises(wb.RegistrationError, match="HTTP 500"):
        wb.start(home, **options)
    assert processes_of(home) == []


def test_missing_binary_raises_binary_not_found(
    home: Path, options: dict[str, Any], tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("RESTATE_SERVER_BIN", str(tmp_path / "no-such-restate-server"))
    with pytest.raises(wb.BinaryNotFoundError, match="RESTATE_SERVER_BIN"):
        wb.start(home, **options)
    assert processes_of(home) == []

    empty_project = tmp_path / "project"
    empty_project.mkdir()
    with pytest.raises(wb.BinaryNotFoundError, match=r"npm ci.*brew install"):
        find_restate_server(empty_project, {"PATH": str(tmp_path)})


def test_cli_status_and_logs(stack: wb.Stack, home: Path) -> None:
    def cli(*args: str) -> subprocess.CompletedProcess[str]:
        return subprocess.run(
            [sys.executable, "-m", "workbench", "--home", str(home), *args],
            capture_output=True,
            text=True,
            timeout=30,
            check=False,
        )

    status = cli("status")
    assert status.returncode == 0, status.stderr
    assert "restate" in status.stdout and str(stack.pid("restate")) in status.stdout
    assert f"Traces:     {stack.viewer_url}  (log in" in status.stdout
    logs = cli("logs", "services", "-n", "5")
    assert "stand-in services listening" in logs.stdout


def test_a_non_persistent_stack_is_reaped_when_the_interpreter_exits(
    home: Path, options: dict[str, Any]
) -> None:
    script = (
        "import json, sys, workbench.stack as wb\n"
        "stack = wb.start(sys.argv[1], **json.loads(sys.argv[2]))\n"
        "print(stack.supervisor_pid, flush=True)\n"
    )
    done = subprocess.run(
        [sys.executable, "-c", script, str(home), json.dumps(options)],
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert done.returncode == 0, done.stderr
    assert not alive(int(done.stdout.split()[-1]))
    assert processes_of(home) == []


class _Healthy(http_server.BaseHTTPRequestHandler):
    """Another program's server: answers 200 to every GET (a readiness probe included)."""

    def do_GET(self) -> None:
        self.send_response(200)
        self.send_header("content-length", "0")
        self.end_headers()

    def log_message(self, *args: object) -> None:
        pass


def test_a_port_taken_between_choice_and_bind_starts_again_elsewhere(
    home: Path, options: dict[str, Any], monkeypatch: pytest.MonkeyPatch
) -> None:
    """Another program takes the services' port after the start chose it (two stacks starting
    at once) and answers the readiness probe: the start does not take its answer for ours, the
    services fail to bind, and the start is tried again on a free port, with a warning."""
    from workbench.stack import lifecycle

    stranger = http_server.ThreadingHTTPServer(("127.0.0.1", 0), _Healthy)
    thread = threading.Thread(target=stranger.serve_forever, daemon=True)
    thread.start()
    taken = stranger.server_address[1]
    chosen: list[dict[str, int]] = []

    def first_choice_taken(requests: Any, previous: Any = None) -> dict[str, int]:
        ports = allocate_ports(requests, previous=previous)
        if not chosen:
            ports["services"] = taken  # what a racing stack would leave us
        chosen.append(ports)
        return ports

    monkeypatch.setattr(lifecycle, "allocate_ports", first_choice_taken)
    # services that import slowly, as real ones do: the stranger answers long before they bind
    slow = ["sh", "-c", f"sleep 3 && exec {shlex.join(options['services_command'])}"]
    try:
        with pytest.warns(wb.StackWarning, match=r"'services' found its port taken"):
            running = wb.start(home, **{**options, "services_command": slow})
        try:
            assert len(chosen) == 2
            assert running.process("services").port == options["services_port"] != taken
            listed = http.get(f"{running.admin_url}/deployments").json()["deployments"]
            assert [d["uri"].rstrip("/") for d in listed] == [running.services_url]
            assert greet(running, "again") == "hello again"
        finally:
            running.stop()
    finally:
        stranger.shutdown()
        stranger.server_close()
