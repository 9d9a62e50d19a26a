"""The services' event loop: uvloop by default, the standard one on request, anything else a
clear error; and a services process on either loop stops gracefully on SIGTERM."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import httpx
import psutil
import pytest

from services.serving import EVENT_LOOP_ENV, SERVER_ENV, event_loop, server
from workbench.local.langfuse.testing import free_port

PROJECT = Path(__file__).resolve().parents[2]


def test_uvloop_is_the_default_and_asyncio_can_be_chosen(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv(EVENT_LOOP_ENV, raising=False)
    assert event_loop() == "uvloop"
    monkeypatch.setenv(EVENT_LOOP_ENV, " AsyncIO ")
    assert event_loop() == "asyncio"


def test_granian_is_the_default_server_and_an_unknown_one_is_named(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.delenv(SERVER_ENV, raising=False)
    assert server() == "granian"
    monkeypatch.setenv(SERVER_ENV, " Hypercorn")
    assert server() == "hypercorn"
    monkeypatch.setenv(SERVER_ENV, "uvicorn")
    with pytest.raises(SystemExit, match=r"'uvicorn': use 'granian' or 'hypercorn'"):
        server()


def test_an_unknown_loop_is_named_with_the_choices(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv(EVENT_LOOP_ENV, "trio")
    with pytest.raises(SystemExit, match=r"WORKBENCH_EVENT_LOOP='trio': use 'uvloop' or 'asyncio'"):
        event_loop()


@pytest.mark.parametrize(
    ("server", "loop"),
    [(s, loop) for s in ("granian", "hypercorn") for loop in ("uvloop", "asyncio")],
)
def test_the_services_serve_on_the_chosen_loop_and_stop_on_sigterm(server: str, loop: str) -> None:
    port = free_port()
    env = {
        **os.environ,
        EVENT_LOOP_ENV: loop,
        SERVER_ENV: server,
        "OPENAI_BASE_URL": "http://127.0.0.1:9/v1",
        "OPENAI_API_KEY": "x",
        "LANGFUSE_PUBLIC_KEY": "",
        "LANGFUSE_SECRET_KEY": "",
    }
    process = subprocess.Popen(
        [sys.executable, "-m", "services", "--port", str(port)],
        env=env,
        cwd=PROJECT,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
    )
    try:
        deadline = time.monotonic() + 60
        while True:
            try:
                # Restate's discovery endpoint answers once the app is served
                response = httpx.get(f"http://127.0.0.1:{port}/discover", timeout=2)
                break
            except httpx.HTTPError:
                assert process.poll() is None, process.stderr.read().decode()  # type: ignore[union-attr]
                assert time.monotonic() < deadline, "the services did not answer in 60 s"
                time.sleep(0.2)
        assert response.status_code in (200, 415)  # answered (415: no protocol header sent)
        serving = psutil.Process(process.pid)
        pids = [serving.pid] + [c.pid for c in serving.children(recursive=True)]
        maps = "".join(Path(f"/proc/{pid}/maps").read_text() for pid in pids)
        if server == "hypercorn":  # granian imports uvloop whichever loop it runs: see below
            assert ("uvloop" in maps) == (loop == "uvloop")
        assert ("granian" in maps) == (server == "granian")
        process.send_signal(signal.SIGTERM)
        assert process.wait(timeout=15) == 0
    finally:
        if process.poll() is None:
            process.kill()
            process.wait()


@pytest.mark.parametrize("loop", ["uvloop", "asyncio"])
def test_granian_is_given_the_chosen_loop_and_a_bind_error_is_one_line(
    loop: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    import granian
    from granian.constants import Loops

    from services.serving import serve_with_granian

    given: dict[str, object] = {}

    class Recorder:
        def __init__(self, target: str, **settings: object) -> None:
            given.update(settings, target=target)

        def serve(self) -> None:
            raise RuntimeError("Address already in use (os error 98)\n\nStack backtrace:\n  0: ...")

    monkeypatch.setattr(granian, "Granian", Recorder)
    monkeypatch.setenv(EVENT_LOOP_ENV, loop)
    with pytest.raises(SystemExit) as stopped:
        serve_with_granian("services.worker:app", "127.0.0.1", 9, 2)
    assert str(stopped.value) == "cannot serve on 127.0.0.1:9: Address already in use (os error 98)"
    assert given["loop"] == (Loops.uvloop if loop == "uvloop" else Loops.asyncio)
    assert given["target"] == "services.worker:app" and given["workers"] == 2
