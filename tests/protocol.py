"""Claims driven through the protocols only, for tests that must not depend on the notebook layer:
httpx to Restate's ingress and admin API, the ledger's SQLite through `services.ledger`, and
Langfuse's public API. A `Claims` is made from a `workbench.stack.Stack`."""

from __future__ import annotations

import http.server
import json
import threading
import time
from collections.abc import Callable, Iterable, Iterator
from concurrent.futures import ThreadPoolExecutor
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any, TypeVar

import httpx

from services.ledger import Ledger
from workbench.stack import Stack

DATA = Path(__file__).resolve().parent.parent / "data"
WORKFLOW = "ClaimWorkflow"
T = TypeVar("T")


@dataclass(frozen=True)
class Sample:
    id: str
    document: str
    status: str  # expected under the production prompts: paid, rejected, review, invalid


def samples(status: str | None = None) -> list[Sample]:
    """The claim documents of data/claims/ with the outcome each is expected to have."""
    manifest = json.loads((DATA / "claims" / "manifest.json").read_text())
    found = [
        Sample(e["id"], (DATA / "claims" / e["file"]).read_text(), e.get("status_v1", ""))
        for e in manifest
    ]
    return [s for s in found if status is None or s.status == status]


def wait_for(
    what: str, probe: Callable[[], T | None], *, timeout_s: float, poll_s: float = 0.05
) -> T:
    """Poll until `probe` returns something truthy; fail naming `what` and the last value."""
    deadline = time.monotonic() + timeout_s
    last: Any = None
    while True:
        try:
            last = probe()
        except httpx.HTTPError as e:  # a process restarting: keep polling
            last = e
        else:
            if last:
                return last
        if time.monotonic() >= deadline:
            raise AssertionError(f"timed out after {timeout_s:.0f} s waiting for {what}: {last!r}")
        time.sleep(poll_s)


class Claims:
    """The claim workflow of one stack, over HTTP."""

    def __init__(self, stack: Stack, *, timeout_s: float = 30.0) -> None:
        self.stack = stack
        self.http = httpx.Client(timeout=timeout_s, trust_env=False)

    def close(self) -> None:
        self.http.close()

    def __enter__(self) -> Claims:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    # -- ingress ---------------------------------------------------------------------------------
    def url(self, claim_id: str, handler: str) -> str:
        return f"{self.stack.ingress_url}/{WORKFLOW}/{claim_id}/{handler}"

    def post(self, claim_id: str, handler: str, body: bytes | dict[str, Any]) -> httpx.Response:
        """POST raw bytes (sent as they are) or a dict (as JSON), waiting for the answer."""
        content = body if isinstance(body, bytes) else json.dumps(body).encode()
        return self.http.post(
            self.url(claim_id, handler),
            content=content,
            headers={"content-type": "application/json"},
        )

    def submit(self, claim_id: str, document: str, prompt_label: str = "production") -> str:
        """Start a claim (one-way send); returns its invocation id."""
        response = self.post(
            claim_id, "run/send", {"document": document, "prompt_label": prompt_label}
        )
        response.raise_for_status()
        return response.json()["invocationId"]

    def outcome(self, claim_id: str, timeout_s: float = 120.0) -> dict[str, Any]:
        """The claim's outcome, waiting for it (across restarts of Restate)."""

        def attached() -> dict[str, Any] | None:
            url = f"{self.stack.ingress_url}/restate/workflow/{WORKFLOW}/{claim_id}/attach"
            response = self.http.get(url, timeout=max(timeout_s, 1.0))
            if response.status_code >= 500 or response.status_code == 404:
                return None  # not there yet, or Restate restarting
            response.raise_for_status()
            return response.json()

        return wait_for(f"the outcome of {claim_id}", attached, timeout_s=timeout_s, poll_s=0.2)

    def step(self, claim_id: str) -> str:
        response = self.http.post(self.url(claim_id, "status"), json=None)
        response.raise_for_status()
        return response.json()["step"]

    def wait_step(self, claim_id: str, step: str, timeout_s: float = 60.0) -> None:
        wait_for(
            f"{claim_id} to reach {step!r}",
            lambda: self.step(claim_id) == step,
            timeout_s=timeout_s,
        )

    def approve(self, claim_id: str, reviewer: str = "tester") -> httpx.Response:
        return self.post(claim_id, "approve", {"reviewer": reviewer, "note": "ok"})

    def many(self, fn: Callable[[T], Any], items: Iterable[T], concurrency: int) -> list[Any]:
        with ThreadPoolExecutor(max_workers=concurrency) as pool:
            return list(pool.map(fn, items))

    # -- admin -----------------------------------------------------------------------------------
    def query(self, sql: str) -> list[dict[str, Any]]:
        response = self.http.post(
            f"{self.stack.admin_url}/query",
            json={"query": sql},
            headers={"accept": "application/json"},
        )
        response.raise_for_status()
        return response.json()["rows"]

    def invocations(self, prefix: str) -> list[dict[str, Any]]:
        """The claims' `run` invocations whose id starts with `prefix`."""
        return self.query(
            "SELECT id, target_service_key AS claim, status, completion_result, "
            "completion_failure, pinned_deployment_id FROM sys_invocation "
            f"WHERE target_service_name = '{WORKFLOW}' AND target_handler_name = 'run' "
            f"AND target_service_key LIKE '{prefix}%'"
        )

    # -- the ledger and Langfuse -----------------------------------------------------------------
    def payments(self, prefix: str = "") -> dict[str, int]:
        """Payments per claim id (from the ledger's SQLite file)."""
        counts: dict[str, int] = {}
        for payment in Ledger(self.stack.home / "ledger.sqlite3").payments():
            if payment.claim_id.startswith(prefix):
                counts[payment.claim_id] = counts.get(payment.claim_id, 0) + 1
        return counts

    def scores(self, name: str = "quality") -> dict[str, float]:
        """The judge's scores in Langfuse, by trace id."""
        keys = self.stack.langfuse_keys
        assert keys is not None and self.stack.langfuse_url, "the stack has no Langfuse"
        found: dict[str, float] = {}
        page = 1
        while True:
            response = self.http.get(
                f"{self.stack.langfuse_url}/api/public/v2/scores",
                params={"name": name, "limit": 100, "page": page},
                auth=keys,
            )
            response.raise_for_status()
            body = response.json()
            for score in body["data"]:
                found[score["traceId"]] = score["value"]
            if page >= body["meta"]["totalPages"]:
                return found
            page += 1


@contextmanager
def running_stack(home: Path, **options: Any) -> Iterator[Stack]:
    """A real stack in `home` (reaped at interpreter exit), stopped at the end with a check that
    none of its processes is left running."""
    import psutil

    from workbench import stack as stacks

    stack = stacks.start(home, persistent=False, **{"timeout_s": 120, **options})
    try:
        yield stack
    finally:
        pids = stack.pids()
        stack.stop()
        left = [p for p in pids if psutil.pid_exists(p) and psutil.Process(p).status() != "zombie"]
        assert left == [], f"processes left running after stop(): {left}"


SHELL_SETTINGS = (
    "WORKBENCH_HOME",
    "OPENAI_BASE_URL",
    "OPENAI_API_KEY",
    "RESTATE_ADMIN_URL",
    "RESTATE_INGRESS_URL",
    "RESTATE_SERVER_BIN",
    "LANGFUSE_BASE_URL",
    "LANGFUSE_HOST",
    "LANGFUSE_PUBLIC_KEY",
    "LANGFUSE_SECRET_KEY",
    *(f"WORKBENCH_{n}_PORT" for n in ("LANGFUSE", "LLM", "INGRESS", "ADMIN", "NODE", "SERVICES")),
    "WORKBENCH_SUPERVISOR_PORT",
)
"""Settings from the developer's shell that would change what a stack start does."""


class _Refusing(http.server.BaseHTTPRequestHandler):
    """Answers 401 to everything, as an endpoint given the wrong key does."""

    def _refuse(self) -> None:
        body = b'{"error": {"message": "Incorrect API key provided"}, "message": "Unauthorized"}'
        self.send_response(401)
        self.send_header("content-type", "application/json")
        self.send_header("content-length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    do_GET = do_POST = do_PATCH = _refuse

    def log_message(self, *args: object) -> None:
        pass


@contextmanager
def refusing_server() -> Iterator[str]:
    """An HTTP server on a free loopback port that refuses every key (401); yields its URL."""
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), _Refusing)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{server.server_address[1]}"
    finally:
        server.shutdown()
        server.server_close()
