"""Serve the app on a loopback port in a background thread, for tests and notebooks that need a
real HTTP endpoint (the langfuse SDK and OTLP exporters make real HTTP calls)."""

from __future__ import annotations

import base64
import socket
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

import uvicorn
from starlette.applications import Starlette

from .app import create_app


@dataclass(frozen=True)
class LocalLangfuse:
    """A running embedded server: where it listens and the keys it accepts."""

    base_url: str
    public_key: str
    secret_key: str
    app: Starlette

    @property
    def otlp_endpoint(self) -> str:
        return f"{self.base_url}/api/public/otel/v1/traces"

    @property
    def auth_header(self) -> dict[str, str]:
        token = base64.b64encode(f"{self.public_key}:{self.secret_key}".encode()).decode()
        return {"Authorization": f"Basic {token}"}


def free_port(host: str = "127.0.0.1") -> int:
    with socket.socket() as sock:
        sock.bind((host, 0))
        return int(sock.getsockname()[1])


@contextmanager
def running_server(
    db_path: Path,
    public_key: str = "pk-lf-local",
    secret_key: str = "sk-lf-local",
    *,
    host: str = "127.0.0.1",
    start_timeout_s: float = 10.0,
    prompt_changes: Path | None = None,
) -> Iterator[LocalLangfuse]:
    """Start uvicorn in a daemon thread on a free port; stop it when the block ends."""
    app = create_app(db_path, public_key, secret_key, prompt_changes=prompt_changes)
    port = free_port(host)
    config = uvicorn.Config(app, host=host, port=port, log_level="warning", access_log=False)
    server = uvicorn.Server(config)
    thread = threading.Thread(target=server.run, name=f"langfuse-{port}", daemon=True)
    thread.start()
    deadline = time.monotonic() + start_timeout_s
    while not server.started:
        if not thread.is_alive():
            raise RuntimeError(f"The embedded Langfuse server on port {port} exited at start.")
        if time.monotonic() > deadline:
            server.should_exit = True
            raise TimeoutError(
                f"The embedded Langfuse server did not start in {start_timeout_s} s."
            )
        time.sleep(0.01)
    try:
        yield LocalLangfuse(f"http://{host}:{port}", public_key, secret_key, app)
    finally:
        server.should_exit = True
        thread.join(timeout=start_timeout_s)
