"""The judge's score write (`services.scores.write_score`): a plain POST over kept-alive
`http.client` connections. What lands, what is retried (the durable step retries any exception
but a ValueError) and what ends the step for good, against the embedded Langfuse and against a
scripted server that misbehaves the ways real servers and proxies do."""

from __future__ import annotations

import asyncio
import socket
import socketserver
import threading
from collections.abc import Callable, Iterator
from pathlib import Path

import httpx
import pytest

from services import scores
from workbench.local.langfuse.testing import LocalLangfuse, free_port, running_server

Reply = Callable[[int], bytes]  # the n-th request (from 0) -> the raw answer


@pytest.fixture(autouse=True)
def fresh_pool() -> Iterator[None]:
    scores._connections = None  # the target is read from the environment once per process
    yield
    scores._connections = None


def _aim(monkeypatch: pytest.MonkeyPatch, base: str, public: str, secret: str) -> None:
    for name in ("HTTP_PROXY", "http_proxy", "HTTPS_PROXY", "https_proxy", "NO_PROXY", "no_proxy"):
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setenv("LANGFUSE_BASE_URL", base)
    monkeypatch.setenv("LANGFUSE_PUBLIC_KEY", public)
    monkeypatch.setenv("LANGFUSE_SECRET_KEY", secret)


def _write(claim_id: str = "claim-1") -> str:
    return asyncio.run(scores.write_score("a" * 32, claim_id, 0.75, "fair", {"claim_id": claim_id}))


@pytest.fixture
def langfuse(tmp_path: Path) -> Iterator[LocalLangfuse]:
    with running_server(tmp_path / "lf.sqlite3") as server:
        yield server


def test_a_score_lands_with_its_id_and_a_rewrite_overwrites_it(
    langfuse: LocalLangfuse, monkeypatch: pytest.MonkeyPatch
) -> None:
    _aim(monkeypatch, langfuse.base_url, langfuse.public_key, langfuse.secret_key)
    assert _write() == "claim-1-quality"
    assert _write() == "claim-1-quality"  # a retry after a crash: the same id, kept-alive conn
    got = httpx.get(
        f"{langfuse.base_url}/api/public/v2/scores",
        params={"traceId": "a" * 32},
        headers=langfuse.auth_header,
    ).json()["data"]
    assert [(s["id"], s["value"], s["comment"]) for s in got] == [("claim-1-quality", 0.75, "fair")]


def test_wrong_keys_end_the_step_and_say_which_settings_to_check(
    langfuse: LocalLangfuse, monkeypatch: pytest.MonkeyPatch
) -> None:
    _aim(monkeypatch, langfuse.base_url, langfuse.public_key, "sk-wrong")
    with pytest.raises(ValueError, match=r"HTTP 401.*LANGFUSE_PUBLIC_KEY/LANGFUSE_SECRET_KEY"):
        _write()


def test_a_server_that_is_down_is_retried_not_given_up(monkeypatch: pytest.MonkeyPatch) -> None:
    _aim(monkeypatch, f"http://127.0.0.1:{free_port()}", "pk", "sk")
    with pytest.raises(ConnectionRefusedError):  # not a ValueError: the step retries it
        _write()


class _Scripted:
    """A raw HTTP/1.1 server answering each request with `reply(n)`; it records the request
    lines and counts the connections it accepted."""

    def __init__(self, reply: Reply, *, close_after_each: bool = False) -> None:
        self.lines: list[str] = []
        self.connections = 0
        outer = self

        class Handler(socketserver.StreamRequestHandler):
            def handle(self) -> None:
                outer.connections += 1
                while True:
                    line = self.rfile.readline()
                    if not line:
                        return
                    length = 0
                    while (header := self.rfile.readline()) not in (b"\r\n", b""):
                        name, _, value = header.decode().partition(":")
                        if name.lower() == "content-length":
                            length = int(value)
                    self.rfile.read(length)
                    outer.lines.append(line.decode().strip())
                    self.wfile.write(reply(len(outer.lines) - 1))
                    self.wfile.flush()
                    if close_after_each:  # without saying so: a server's idle timeout
                        self.connection.shutdown(socket.SHUT_RDWR)
                        return

        self.server = socketserver.ThreadingTCPServer(("127.0.0.1", 0), Handler)
        self.server.daemon_threads = True
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}"
        threading.Thread(target=self.server.serve_forever, daemon=True).start()

    def close(self) -> None:
        self.server.shutdown()
        self.server.server_close()


def _answer(status: int, body: bytes = b"{}") -> bytes:
    return (
        f"HTTP/1.1 {status} X\r\nContent-Type: application/json\r\n"
        f"Content-Length: {len(body)}\r\n\r\n"
    ).encode() + body


@pytest.fixture
def scripted() -> Iterator[Callable[..., _Scripted]]:
    made: list[_Scripted] = []

    def make(reply: Reply, **kwargs: bool) -> _Scripted:
        made.append(_Scripted(reply, **kwargs))
        return made[-1]

    yield make
    for server in made:
        server.close()


def test_a_kept_alive_connection_the_server_closed_is_replaced_once(
    scripted: Callable[..., _Scripted], monkeypatch: pytest.MonkeyPatch
) -> None:
    server = scripted(lambda n: _answer(200), close_after_each=True)
    _aim(monkeypatch, server.url, "pk", "sk")
    _write("c1")
    _write("c2")  # the kept connection is dead: written on a new one, no error
    assert server.connections == 2
    assert server.lines == ["POST /api/public/scores HTTP/1.1"] * 2


def test_overload_and_server_errors_are_retried_and_refusals_end_the_step(
    scripted: Callable[..., _Scripted], monkeypatch: pytest.MonkeyPatch
) -> None:
    statuses = [503, 429, 408, 500, 404, 413, 201]
    server = scripted(lambda n: _answer(statuses[n], b'{"message": "nope"}'))
    _aim(monkeypatch, server.url, "pk", "sk")
    for status in (503, 429, 408, 500):
        with pytest.raises(scores.ScoreServerError, match=f"HTTP {status}"):
            _write()
    with pytest.raises(ValueError, match=r"HTTP 404.*nope.*Check LANGFUSE_BASE_URL"):
        _write()
    with pytest.raises(ValueError, match=r"HTTP 413"):  # retrying cannot make it smaller
        _write()
    assert _write() == "claim-1-quality"
    assert server.connections == 1  # every answer above kept the connection


def test_a_path_in_the_base_url_is_kept(
    scripted: Callable[..., _Scripted], monkeypatch: pytest.MonkeyPatch
) -> None:
    server = scripted(lambda n: _answer(200))
    _aim(monkeypatch, f"{server.url}/langfuse/", "pk", "sk")
    _write()
    assert server.lines == ["POST /langfuse/api/public/scores HTTP/1.1"]


def test_an_http_proxy_from_the_environment_gets_the_absolute_url(
    scripted: Callable[..., _Scripted], monkeypatch: pytest.MonkeyPatch
) -> None:
    proxy = scripted(lambda n: _answer(200))
    _aim(monkeypatch, "http://langfuse.internal:3000", "pk", "sk")
    monkeypatch.setenv("HTTP_PROXY", proxy.url)
    _write()
    assert proxy.lines == ["POST http://langfuse.internal:3000/api/public/scores HTTP/1.1"]


def test_no_proxy_sends_straight_to_the_server(
    scripted: Callable[..., _Scripted], monkeypatch: pytest.MonkeyPatch
) -> None:
    server = scripted(lambda n: _answer(200))
    _aim(monkeypatch, server.url, "pk", "sk")
    monkeypatch.setenv("HTTP_PROXY", f"http://127.0.0.1:{free_port()}")  # nothing listens
    monkeypatch.setenv("NO_PROXY", "127.0.0.1")
    _write()
    assert server.lines == ["POST /api/public/scores HTTP/1.1"]


def test_a_base_url_that_is_not_http_is_named_in_the_error(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    _aim(monkeypatch, "cloud.langfuse.com", "pk", "sk")
    with pytest.raises(ValueError, match=r"LANGFUSE_BASE_URL='cloud.langfuse.com' is not an"):
        _write()
