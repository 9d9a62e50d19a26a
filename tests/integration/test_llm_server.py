"""The embedded model as its own process (`python -m workbench.local.llm`, uvicorn): the body
limit is enforced while the body arrives, so a huge chunked post is refused early and the
server's memory does not grow."""

from __future__ import annotations

import os
import select
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import httpx
import psutil
import pytest

from workbench.local.llm.app import MAX_BODY_BYTES
from workbench.stack.ports import free_ports

pytestmark = pytest.mark.integration

MIB = 1024 * 1024


def wait_until_healthy(url: str, process: subprocess.Popen[bytes], log: Path) -> None:
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline:
        if process.poll() is not None:
            raise AssertionError(f"the model exited early: {log.read_text()[-2000:]}")
        try:
            if httpx.get(url, timeout=1).status_code == 200:
                return
        except httpx.HTTPError:
            pass
        time.sleep(0.05)
    raise AssertionError(f"the model did not answer {url} within 30 s: {log.read_text()[-2000:]}")


def read_response(sock: socket.socket, answer: bytes = b"") -> bytes:
    """The rest of an HTTP/1.1 response with a Content-Length (or what came before the close)."""
    while True:
        head, _, body = answer.partition(b"\r\n\r\n")
        if _:
            length = next(
                (int(line.split(b":")[1]) for line in head.split(b"\r\n")
                 if line.lower().startswith(b"content-length:")),
                0,
            )  # fmt: skip
            if len(body) >= length:
                return answer
        data = sock.recv(65536)
        if not data:
            return answer
        answer += data


def stop(process: subprocess.Popen[bytes]) -> None:
    """End a process this test started, by its pid: SIGINT, then SIGKILL after 10 s."""
    if process.poll() is None:
        os.kill(process.pid, signal.SIGINT)
        try:
            process.wait(timeout=10)
        except subprocess.TimeoutExpired:
            os.kill(process.pid, signal.SIGKILL)
            process.wait(timeout=10)


@pytest.fixture
def model(tmp_path: Path) -> Iterator[tuple[int, psutil.Process]]:
    (port,) = free_ports(1)
    log = tmp_path / "llm.log"
    with log.open("wb") as out:
        process = subprocess.Popen(
            [sys.executable, "-m", "workbench.local.llm", "--port", str(port)],
            stdout=out,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )
    try:
        wait_until_healthy(f"http://127.0.0.1:{port}/health", process, log)
        yield port, psutil.Process(process.pid)
    finally:
        stop(process)


def test_a_300_mb_chunked_post_is_refused_early_and_memory_stays_flat(
    model: tuple[int, psutil.Process],
) -> None:
    port, process = model
    before = process.memory_info().rss
    peak = before
    head = (
        b"POST /v1/chat/completions HTTP/1.1\r\nHost: 127.0.0.1\r\n"
        b"Content-Type: application/json\r\nTransfer-Encoding: chunked\r\n\r\n"
    )
    chunk = b"x" * MIB
    frame = f"{len(chunk):x}\r\n".encode() + chunk + b"\r\n"
    total, sent, answer = 300 * MIB, 0, b""
    with socket.create_connection(("127.0.0.1", port), timeout=30) as sock:
        sock.sendall(head)
        sock.setblocking(False)
        pending = memoryview(frame)
        deadline = time.monotonic() + 120
        while sent < total and time.monotonic() < deadline:
            readable, writable, _ = select.select([sock], [sock], [], 5)
            if readable:
                data = sock.recv(65536)
                answer += data
                if not data or b"\r\n\r\n" in answer:
                    break
            if writable:
                try:
                    n = sock.send(pending)
                except (BrokenPipeError, ConnectionResetError):
                    break
                sent += n
                pending = pending[n:]
                if not pending:
                    pending = memoryview(frame)
                    peak = max(peak, process.memory_info().rss)
        sock.setblocking(True)
        answer = read_response(sock, answer)
    assert answer.startswith(b"HTTP/1.1 413"), answer[:200]
    assert b"larger than" in answer
    assert sent < 64 * MIB, f"{sent / MIB:.0f} MiB were accepted before the refusal"
    grown = (max(peak, process.memory_info().rss) - before) / MIB
    assert grown < 3 * MAX_BODY_BYTES / MIB, f"the server grew by {grown:.0f} MiB"
    print(f"refused after {sent / MIB:.1f} MiB sent; server RSS grew {grown:.1f} MiB")


def test_a_declared_huge_body_is_refused_before_it_is_sent(
    model: tuple[int, psutil.Process],
) -> None:
    port, _ = model
    head = (
        b"POST /v1/responses HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Type: application/json\r\n"
        + f"Content-Length: {300 * MIB}\r\n\r\n".encode()
    )
    with socket.create_connection(("127.0.0.1", port), timeout=30) as sock:
        sock.sendall(head)
        answer = read_response(sock)
    assert answer.startswith(b"HTTP/1.1 413"), answer[:200]
    assert b"request_too_large" in answer


def test_the_server_keeps_answering_after_refusals(model: tuple[int, psutil.Process]) -> None:
    port, _ = model

    def chunks() -> Iterator[bytes]:
        yield b'{"model": "m", "messages": [{"role": "user", "content": "'
        for _ in range(16):
            yield b"x" * MIB
        yield b'"}]}'

    with httpx.Client(base_url=f"http://127.0.0.1:{port}", timeout=30) as http:
        try:
            refused = http.post("/v1/chat/completions", content=chunks())
            assert refused.status_code == 413
        except httpx.TransportError:
            pass  # the server may close the connection while the client still writes
        body = {"model": "m", "messages": [{"role": "user", "content": "hi"}]}
        assert http.post("/v1/chat/completions", json=body).status_code == 200
        small = http.post(
            "/v1/chat/completions",
            content=iter([b'{"model": "m", ', b'"messages": [{"role": "user", "content": "hi"}]}']),
        )
        assert small.status_code == 200  # a chunked body under the limit is read whole
