"""Which node of a local Restate cluster leads a claim's partition, and killing it (the
`kill_leader` fault). The services read where the cluster is from their environment:
RESTATE_ADMIN_URL (the nodes' admin APIs, comma-separated: the invocation's partition key),
WORKBENCH_RESTATE_NODE_URLS (the nodes' node-to-node addresses) and RESTATECTL_BIN (restatectl,
which reads the partition table: the admin API has none). Killing is local (psutil): the node is
the restate-server of this stack (WORKBENCH_STACK_ID) started with `--node-name <name>`."""

from __future__ import annotations

import json
import os
import re
import subprocess
import time
from dataclasses import dataclass
from typing import Any

import httpx

_ID = re.compile(r"^[A-Za-z0-9_]+$")


class ClusterError(RuntimeError):
    """The cluster's leader could not be found (no cluster configured, no node answering)."""


@dataclass(frozen=True)
class Leader:
    """The node leading a partition."""

    partition: int
    node_id: str  # N1
    name: str  # restate-1


def _admin_urls() -> list[str]:
    return [u.strip().rstrip("/") for u in os.environ.get("RESTATE_ADMIN_URL", "").split(",") if u]


def partition_key(invocation_id: str, *, timeout_s: float = 5.0) -> int:
    """The partition key of an invocation (admin SQL over `sys_invocation_status`), asking
    each admin API in turn."""
    if not _ID.match(invocation_id):
        raise ClusterError(f"{invocation_id!r} is not an invocation id")
    query = f"SELECT partition_key FROM sys_invocation_status WHERE id = '{invocation_id}'"
    reasons = []
    for url in _admin_urls():
        try:
            response = httpx.post(
                f"{url}/query",
                json={"query": query},
                headers={"accept": "application/json"},
                timeout=timeout_s,
                trust_env=False,
            )
        except httpx.HTTPError as e:
            reasons.append(f"{url}: {type(e).__name__}")
            continue
        if response.is_success:
            rows = response.json().get("rows", [])
            if rows:
                return int(rows[0]["partition_key"])
            reasons.append(f"{url}: no invocation {invocation_id}")
        else:
            reasons.append(f"{url}: HTTP {response.status_code}")
    raise ClusterError(
        f"no partition key for {invocation_id}: {'; '.join(reasons) or 'no RESTATE_ADMIN_URL'}"
    )


def _restatectl(query: str, *, timeout_s: float = 5.0) -> list[dict[str, Any]]:
    binary = os.environ.get("RESTATECTL_BIN")
    nodes = os.environ.get("WORKBENCH_RESTATE_NODE_URLS")
    if not (binary and nodes):
        raise ClusterError(
            "kill_leader needs a local Restate cluster (RESTATECTL_BIN and "
            "WORKBENCH_RESTATE_NODE_URLS are set by `wb.start(nodes=3)`)"
        )
    done = subprocess.run(
        [binary, "--address", nodes, "sql", "--json", query],
        capture_output=True,
        text=True,
        timeout=timeout_s,
        env={"NO_COLOR": "1", "PATH": "/usr/bin:/bin"},
    )
    if done.returncode != 0:
        raise ClusterError(f"restatectl failed: {(done.stderr or done.stdout).strip()[-300:]}")
    start = done.stdout.find("[")
    return list(json.JSONDecoder().raw_decode(done.stdout[start:])[0]) if start >= 0 else []


def leader_of(key: int) -> Leader:
    """The node leading the partition that holds partition key `key`."""
    nodes = {
        r["plain_node_id"]: r["name"] for r in _restatectl("SELECT plain_node_id, name FROM nodes")
    }
    for row in _restatectl(
        "SELECT partition_id, start_key, end_key, leader_plain_node_id FROM partitions"
    ):
        if int(row["start_key"]) <= key <= int(row["end_key"]):
            node = row.get("leader_plain_node_id")
            if not node or node not in nodes:
                raise ClusterError(f"partition {row['partition_id']} has no leader right now")
            return Leader(int(row["partition_id"]), node, nodes[node])
    raise ClusterError(f"no partition holds key {key}")


def node_process(name: str) -> Any:
    """This stack's restate-server process named `name` (`--node-name`), or None."""
    import psutil

    stack_id = os.environ.get("WORKBENCH_STACK_ID")
    for process in psutil.process_iter(["name", "cmdline"]):
        try:
            if "restate-server" not in (process.info["name"] or ""):
                continue
            command = process.info["cmdline"] or []
            if f"--node-name={name}" not in command and not any(
                a == "--node-name" and b == name for a, b in zip(command, command[1:], strict=False)
            ):
                continue
            if stack_id and process.environ().get("WORKBENCH_STACK_ID") != stack_id:
                continue
            return process
        except (psutil.Error, OSError):
            continue
    return None


def kill_node(name: str, *, timeout_s: float = 2.0) -> int | None:
    """SIGKILL the node `name` and wait until it is gone; its pid (None: not running)."""
    import psutil

    process = node_process(name)
    if process is None:
        return None
    try:
        process.kill()
    except psutil.Error:
        return None
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        try:
            if process.status() == psutil.STATUS_ZOMBIE:
                break
        except psutil.Error:
            break
        time.sleep(0.01)
    return process.pid


def wait_node_back(name: str, *, timeout_s: float) -> bool:
    """Wait until a restate-server named `name` runs again (supervisord restarts a killed one)."""
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        if node_process(name) is not None:
            return True
        time.sleep(0.05)
    return False
