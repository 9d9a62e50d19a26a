"""Fixtures for tests that start real processes: a private home, free ports, stand-ins, and a
check that nothing a test started outlives it."""

from __future__ import annotations

import importlib.util
import os
import sys
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import psutil
import pytest

from workbench.stack.config import DEFAULT_PORTS
from workbench.stack.ports import free_ports

STANDIN = '''\
"""Stand-ins for `python -m services` / `python -m workbench.local.llm` in stack tests."""
import argparse
import asyncio
import http.server
import sys

parser = argparse.ArgumentParser()
parser.add_argument("kind", choices=["services", "llm", "crash"])
parser.add_argument("--host", default="127.0.0.1")
parser.add_argument("--port", type=int, required=True)
args = parser.parse_args()

if args.kind == "crash":
    print("stand-in: configuration is broken, giving up", flush=True)
    sys.exit(3)

if args.kind == "llm":
    class Health(http.server.BaseHTTPRequestHandler):
        def do_GET(self):
            self.send_response(200 if self.path == "/health" else 404)
            self.end_headers()

    http.server.ThreadingHTTPServer((args.host, args.port), Health).serve_forever()

import restate
from hypercorn.asyncio import serve
from hypercorn.config import Config

greeter = restate.Service("Greeter")


@greeter.handler()
async def greet(ctx: restate.Context, name: str) -> str:
    return f"hello {name}"


config = Config()
config.bind = [f"{args.host}:{args.port}"]
print(f"stand-in services listening on {args.host}:{args.port}", flush=True)
asyncio.run(serve(restate.app(services=[greeter]), config))
'''

# Settings from the developer's shell that would change what a stack start does.
_ENV_TO_CLEAR = (
    "WORKBENCH_HOME",
    "OPENAI_BASE_URL",
    "RESTATE_ADMIN_URL",
    "RESTATE_INGRESS_URL",
    "RESTATE_SERVER_BIN",
    *(f"WORKBENCH_{name}_PORT" for name in ("LLM", "INGRESS", "ADMIN", "NODE", "SERVICES")),
    "WORKBENCH_SUPERVISOR_PORT",
)


def real_llm_available() -> bool:
    try:
        return importlib.util.find_spec("workbench.local.llm.__main__") is not None
    except ImportError:
        return False


def processes_of(home: Path) -> list[psutil.Process]:
    """Processes whose environment names `home` as WORKBENCH_HOME (everything a stack runs)."""
    found = []
    for process in psutil.process_iter():
        if process.pid == os.getpid():
            continue
        try:
            if process.status() == psutil.STATUS_ZOMBIE:
                continue
            if process.environ().get("WORKBENCH_HOME") == str(home):
                found.append(process)
        except (psutil.Error, OSError):
            continue
    return found


@pytest.fixture(scope="session")
def standin(tmp_path_factory: pytest.TempPathFactory) -> Path:
    path = tmp_path_factory.mktemp("standin") / "standin.py"
    path.write_text(STANDIN)
    return path


def standin_command(standin: Path, kind: str) -> list[str]:
    return [sys.executable, str(standin), kind, "--host", "{host}", "--port", "{port}"]


@pytest.fixture
def home(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[Path]:
    """A private home; afterwards, any process still running there fails the test (and is
    killed, so one failure does not leak into the next test)."""
    for name in _ENV_TO_CLEAR:
        monkeypatch.delenv(name, raising=False)
    path = tmp_path / "home"
    yield path
    leaked = processes_of(path)
    for process in leaked:
        process.kill()
    assert not leaked, f"processes left running: {[p.pid for p in leaked]}"


@pytest.fixture
def options(standin: Path) -> dict[str, Any]:
    """start() options: free explicit ports, stand-in services (and llm unless the real one
    exists), a stack reaped at interpreter exit."""
    opts: dict[str, Any] = {
        "persistent": False,
        "timeout_s": 90,  # a bound, not a speed target: a loaded machine imports slowly
        "services_command": standin_command(standin, "services"),
        **{
            f"{name}_port": port
            for name, port in zip(DEFAULT_PORTS, free_ports(len(DEFAULT_PORTS)), strict=True)
        },
    }
    if not real_llm_available():
        opts["llm_command"] = standin_command(standin, "llm")
    return opts


@contextmanager
def claims_stack(home: Path, **options: Any) -> Iterator[Any]:
    """A real stack in `home`, its session made the current one (the module-level helpers a
    notebook calls talk to it), stopped at the end with a check that none of its processes is
    left running. Yields the stack (kill, restart, logs)."""
    import workbench as wb

    session = wb.start(home=home, persistent=False, **options)
    stack = session.stack
    try:
        yield stack
    finally:
        pids = stack.pids()
        session.stop()  # also closes the clients pointing at this stack
        left = [p for p in pids if psutil.pid_exists(p) and psutil.Process(p).status() != "zombie"]
        assert left == [], f"processes left running after stop(): {left}"
