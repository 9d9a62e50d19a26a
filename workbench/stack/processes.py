"""One small class per kind of process. Subclasses differ in their readiness check (and the
services one also registers itself with Restate once it answers)."""

from __future__ import annotations

import json
import os
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any, ClassVar

import httpx

from services import journal

from ..clients.restate import RestateAdmin, deployment_uri
from .config import HOST


class ManagedProcess:
    """A background process run by supervisord: its command, env, port and readiness check."""

    kind: ClassVar[str] = "process"
    role: ClassVar[str] = "a background process"
    """What it is, in a few words (the command line's help lists the kinds with their role)."""
    priority: ClassVar[int] = 100  # supervisord stops higher priorities first
    optional: ClassVar[bool] = False
    """An optional process that does not come up is a warning, not a failed start."""

    def __init__(
        self,
        *,
        name: str | None = None,
        command: Sequence[str],
        port: int,
        env: Mapping[str, str] | None = None,
        host: str = HOST,
    ) -> None:
        self.name = name or self.kind
        self.command = [str(part) for part in command]
        self.port = port
        self.env = dict(env or {})
        self.host = host

    def __repr__(self) -> str:
        return f"{type(self).__name__}(name={self.name!r}, port={self.port})"

    @property
    def url(self) -> str:
        return f"http://{self.host}:{self.port}"

    def log_path(self, home: Path) -> Path:
        return home / "logs" / f"{self.name}.log"

    def health_urls(self) -> list[str]:
        return [f"{self.url}/health"]

    @property
    def listen_ports(self) -> list[int]:
        """Every port the process listens on (an answer there must come from it)."""
        return [self.port]

    def check_ready(self, http: httpx.Client) -> str | None:
        """One readiness probe. None when ready, else why not (for error messages)."""
        for url in self.health_urls():
            try:
                response = http.get(url)
            except httpx.HTTPError as exc:
                return f"GET {url}: {type(exc).__name__} {exc}".strip()
            if response.status_code != 200:
                return f"GET {url}: HTTP {response.status_code}"
        return None

    def after_ready(self, http: httpx.Client, *, timeout_s: float, poll_interval_s: float) -> None:
        """Called once the process answers (and again after a crash when asked to)."""

    def to_state(self) -> dict[str, Any]:
        return {
            "kind": self.kind,
            "name": self.name,
            "command": self.command,
            "port": self.port,
            "env": self.env,
            "host": self.host,
            "url": self.url,
        }

    @classmethod
    def from_state(cls, state: Mapping[str, Any]) -> ManagedProcess:
        kind = KINDS[state["kind"]]
        return kind._from_state(state)

    @classmethod
    def _from_state(cls, state: Mapping[str, Any]) -> ManagedProcess:
        return cls(**_common(state))


class LlmProcess(ManagedProcess):
    """The embedded OpenAI-compatible model server: ready when GET /health answers 200."""

    kind = "llm"
    role = "the embedded OpenAI-compatible model server"
    priority = 100

    @property
    def openai_base_url(self) -> str:
        return f"{self.url}/v1"


class LangfuseProcess(ManagedProcess):
    """The embedded Langfuse-compatible server: ready when GET /api/public/health answers 200.
    Started first, so Restate and the services export their spans from their first one. Its keys
    come in its environment (LANGFUSE_PUBLIC_KEY/LANGFUSE_SECRET_KEY), never on its command line.
    Optional: without it claims still complete (untraced, on the prompts of data/prompts/)."""

    kind = "langfuse"
    role = "the embedded Langfuse-compatible server (traces, prompts, scores)"
    priority = 50
    optional = True

    def health_urls(self) -> list[str]:
        return [f"{self.url}/api/public/health"]


LOOPBACK_INVOKER = {
    "RESTATE_WORKER__INVOKER__CONNECT_TIMEOUT": "2s",
    "RESTATE_WORKER__INVOKER__HTTP2_KEEP_ALIVE_INTERVAL": "5s",
    "RESTATE_WORKER__INVOKER__HTTP2_KEEP_ALIVE_TIMEOUT": "10s",
}
"""Restate's invoker defaults (connect 10 s; an unanswered HTTP/2 connection found dead after
40 s + 20 s) suit remote services. Ours are on loopback: when the services come back on another
port while their old one is taken by a program that accepts connections but never answers,
the attempts Restate started at the old address (before the deployment moved) hang until the
connection is found dead; with these they fail within ~15 s and the retry goes to the new
address (measured on restate-server 1.7.12: 62 s with the defaults, ~1 s with 1 s values). The
keep-alive timeout stays generous: a services process starved of CPU on a loaded machine must
still answer its pings in time."""


CLUSTER_ROLES = ("metadata-server", "admin", "worker", "log-server", "http-ingress")
CLUSTER_REPLICATION = 2
"""Each log record and partition on 2 of the nodes: a cluster of 3 keeps working with one down."""
CLUSTER_PARTITIONS = 6
"""Partitions of a local cluster (Restate's default, 24, is for many cores: 6 keep 3 nodes on a
laptop light and still spread the leadership, 2 per node)."""
CLUSTER_MEMORY = "256 MiB"
"""RocksDB memory per node (Restate's default, 2 GiB, is for one server per machine)."""
GOSSIP_SUSPECT_INTERVAL = "1s"
"""How long a node that (re)joins stays suspect (the default 5 s delays the first invocation
of a fresh cluster by as much: 7.4-8.6 s measured, 5.0 s with 1 s)."""


@dataclass(frozen=True)
class ClusterNode:
    """One node of a local Restate cluster: its number (1..n), name and ports."""

    number: int
    ingress_port: int
    admin_port: int
    node_port: int
    host: str = HOST

    @property
    def name(self) -> str:
        return f"restate-{self.number}"

    @property
    def address(self) -> str:
        """The node-to-node address (message fabric, metadata, restatectl)."""
        return f"http://{self.host}:{self.node_port}/"


def cluster_config(
    node: ClusterNode, nodes: Sequence[ClusterNode], *, cluster_name: str, base_dir: Path
) -> str:
    """restate-server's config file (TOML) for `node` of a local cluster of `nodes`: every role,
    replicated metadata over all the nodes' addresses, replicated logs (2 copies), and cluster
    provisioning by the first node only (the others join it)."""

    def quoted(value: object) -> str:
        return json.dumps(str(value))  # a TOML basic string is a JSON string

    roles = ", ".join(map(quoted, CLUSTER_ROLES))
    addresses = ", ".join(quoted(n.address) for n in nodes)
    return "\n".join(
        [
            f"# Generated by the workbench for {node.name}, one of {len(nodes)} nodes; rewritten "
            "at every start.",
            f"roles = [{roles}]",
            f"cluster-name = {quoted(cluster_name)}",
            f"node-name = {quoted(node.name)}",
            f"auto-provision = {'true' if node.number == 1 else 'false'}",
            f"default-replication = {CLUSTER_REPLICATION}",
            f"default-num-partitions = {CLUSTER_PARTITIONS}",
            f"gossip-suspect-interval = {quoted(GOSSIP_SUSPECT_INTERVAL)}",
            f"rocksdb-total-memory-size = {quoted(CLUSTER_MEMORY)}",
            f"base-dir = {quoted(base_dir)}",
            f"bind-address = {quoted(f'{node.host}:{node.node_port}')}",
            f"advertised-address = {quoted(node.address)}",
            "",
            "[metadata-client]",
            'type = "replicated"',
            f"addresses = [{addresses}]",
            "",
            "[bifrost]",
            'default-provider = "replicated"',
            "",
            "[admin]",
            f"bind-address = {quoted(f'{node.host}:{node.admin_port}')}",
            "",
            "[ingress]",
            f"bind-address = {quoted(f'{node.host}:{node.ingress_port}')}",
            "",
        ]
    )


SMALL_FOOTPRINT = {
    "RESTATE_DEFAULT_NUM_PARTITIONS": "4",
    "RESTATE_ROCKSDB_TOTAL_MEMORY_SIZE": "256MB",
}
"""A single-node server on a laptop: 4 partitions instead of 24 (each partition keeps its own
RocksDB memtables; read when a cluster is first created, so an existing home keeps its count)
and RocksDB's memory capped at 256 MB instead of 6 GB. Measured on restate-server 1.7.12: RSS
after start 143 MiB instead of 257 MiB; claims are no slower (two cores keep 4 partitions busy).
Set `env={"restate": {...}}` to override either."""


class RestateProcess(ManagedProcess):
    """restate-server: ready when admin GET /health and ingress GET /restate/health answer 200.
    `port` is the ingress port; admin and node (message fabric) ports are set by env / flag.
    A node of a cluster is named `restate-N` and reads its config file (`config_file`, written
    by the start from `config_text`)."""

    kind = "restate"
    role = "restate-server (ingress, admin API and UI)"
    priority = 200

    def __init__(
        self,
        *,
        binary: str | Path | None = None,
        base_dir: Path | None = None,
        admin_port: int,
        node_port: int,
        extra_args: Sequence[str] = (),
        command: Sequence[str] | None = None,
        port: int,
        env: Mapping[str, str] | None = None,
        name: str | None = None,
        host: str = HOST,
        config_file: Path | str | None = None,
        config_text: str | None = None,
    ) -> None:
        self.admin_port = admin_port
        self.node_port = node_port
        self.config_file = Path(config_file) if config_file else None
        self.config_text = config_text
        if command is None and self.config_file is not None:
            if binary is None:
                raise TypeError("RestateProcess needs a binary (or a command)")
            command = [
                str(binary),
                "--no-logo",
                "--listen-mode",
                "tcp",
                "--config-file",
                str(self.config_file),
                "--node-name",  # as in the config file: how `kill_leader` finds the node
                str(name),
                *extra_args,
            ]
        if command is None:
            if binary is None or base_dir is None:
                raise TypeError("RestateProcess needs a binary and a base_dir (or a command)")
            command = [
                str(binary),
                "--no-logo",
                "--listen-mode",
                "tcp",  # no unix sockets in the home folder (path length limits)
                "--base-dir",
                str(base_dir),
                "--node-name",
                "workbench",
                "--bind-address",
                f"{host}:{node_port}",
                *extra_args,
            ]
        restate_env = {
            "DO_NOT_TRACK": "1",
            "RESTATE_INGRESS__BIND_ADDRESS": f"{host}:{port}",
            "RESTATE_ADMIN__BIND_ADDRESS": f"{host}:{admin_port}",
            "RESTATE_LOG_DISABLE_ANSI_CODES": "true",
            "RESTATE_LOG_FORMAT": "compact",
            **LOOPBACK_INVOKER,
            **({} if self.config_file else SMALL_FOOTPRINT),  # a node's sizes are in its file
            **(env or {}),
        }
        super().__init__(name=name, command=command, port=port, env=restate_env, host=host)

    @property
    def ingress_url(self) -> str:
        return self.url

    @property
    def admin_url(self) -> str:
        return f"http://{self.host}:{self.admin_port}"

    def health_urls(self) -> list[str]:
        return [f"{self.admin_url}/health", f"{self.ingress_url}/restate/health"]

    @property
    def node_url(self) -> str:
        """The node-to-node address (what restatectl talks to)."""
        return f"http://{self.host}:{self.node_port}/"

    def write_config(self) -> None:
        """Write the node's config file (0600), when it has one."""
        if self.config_file is None or self.config_text is None:
            return
        self.config_file.parent.mkdir(parents=True, exist_ok=True, mode=0o700)
        fd = os.open(self.config_file, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
        with os.fdopen(fd, "w") as file:
            file.write(self.config_text)

    @property
    def listen_ports(self) -> list[int]:
        return [self.port, self.admin_port, self.node_port]

    def to_state(self) -> dict[str, Any]:
        return {
            **super().to_state(),
            "admin_port": self.admin_port,
            "node_port": self.node_port,
            "admin_url": self.admin_url,
            "node_url": self.node_url,
            "config_file": str(self.config_file) if self.config_file else None,
        }

    @classmethod
    def _from_state(cls, state: Mapping[str, Any]) -> ManagedProcess:
        return cls(
            **_common(state),
            admin_port=state["admin_port"],
            node_port=state["node_port"],
            config_file=state.get("config_file"),
        )


class ServicesProcess(ManagedProcess):
    """The services deployment (the restate-sdk app, served by granian or hypercorn). Ready as
    soon as it answers HTTP at all (the SDK answers GET /health); then registered with the
    Restate admin API.

    `deployment_id` is the Restate deployment this process serves. When it is set and Restate
    knows it, the process moves that deployment to its address (`PATCH /deployments/{id}`)
    instead of registering a new one, so invocations pinned to it go on after the services come
    back on another port. Otherwise it registers its address (a new deployment, or the one
    already at that address) and keeps the id; `created_deployment` says whether that id is new.

    Journal revisions (`services.journal`): `journal_revision` is the one this process's code
    journals new claims with, `deployment_revision` the one `deployment_id` was registered with
    (1 for a home recorded before revisions were). When they differ, the claims pinned to that
    deployment cannot replay on the root path: the deployment is moved to its revision's path on
    this process (where this code replays it) and the process registers a new deployment for new
    claims. `older_deployments` (id -> revision) are the deployments it serves that way."""

    kind = "services"
    role = "the claim workflow and judge services"
    priority = 300

    def __init__(
        self,
        *,
        admin_url: str | Sequence[str] | None,
        register: bool = True,
        deployment_id: str | None = None,
        deployment_revision: int | None = None,
        older_deployments: Mapping[str, int] | None = None,
        command: Sequence[str],
        port: int,
        env: Mapping[str, str] | None = None,
        name: str | None = None,
        host: str = HOST,
    ) -> None:
        super().__init__(name=name, command=command, port=port, env=env, host=host)
        self.admin_url = (
            admin_url if admin_url is None or isinstance(admin_url, str) else ",".join(admin_url)
        )
        """Restate's admin API: one URL, or a cluster's (comma-separated, tried in turn)."""
        self.register = register
        self.deployment_id = deployment_id
        self.journal_revision = int(
            self.env.get("WORKBENCH_JOURNAL_REVISION") or journal.JOURNAL_REVISION
        )
        self.deployment_revision = (
            deployment_revision if deployment_revision is not None else self.journal_revision
        )
        self.older_deployments = dict(older_deployments or {})
        self.created_deployment = False

    def check_ready(self, http: httpx.Client) -> str | None:
        url = f"{self.url}/health"
        try:
            http.get(url)
        except httpx.HTTPError as exc:
            return f"GET {url}: {type(exc).__name__} {exc}".strip()
        return None  # any HTTP answer: the app is imported and serving

    def after_ready(self, http: httpx.Client, *, timeout_s: float, poll_interval_s: float) -> None:
        if not (self.register and self.admin_url):
            return
        admin = RestateAdmin(self.admin_url, http, token=self.env.get("RESTATE_AUTH_TOKEN"))
        wait = {"timeout_s": timeout_s, "poll_interval_s": poll_interval_s}
        known = admin.deployment(self.deployment_id) if self.deployment_id else None
        if known is not None and self.deployment_id:
            if self.deployment_revision == self.journal_revision:
                admin.rehome(self.deployment_id, self.url, **wait)
                self._serve_older(admin, wait)
                return
            # journaled by another revision: it drains on that revision's path
            self.older_deployments[self.deployment_id] = self.deployment_revision
            self.deployment_id = None
        self._serve_older(admin, wait)
        before = {d.get("id") for d in admin.deployments()}
        registered = admin.register(self.url, timeout_s=timeout_s, poll_interval_s=poll_interval_s)
        new_id = registered.get("id")
        self.created_deployment = bool(new_id) and new_id not in before
        self.deployment_id = new_id or self.deployment_id
        self.deployment_revision = self.journal_revision

    def _serve_older(self, admin: RestateAdmin, wait: Mapping[str, float]) -> None:
        """Point each older deployment this process serves at its revision's path here (its
        claims replay there); one Restate no longer knows is forgotten."""
        for deployment_id, revision in list(self.older_deployments.items()):
            if admin.deployment(deployment_id) is None:
                del self.older_deployments[deployment_id]
                continue
            admin.rehome(deployment_id, self.url + journal.journal_path(revision), **wait)

    def is_registered(self, http: httpx.Client) -> bool:
        if not self.admin_url:
            return True
        admin = RestateAdmin(self.admin_url, http, token=self.env.get("RESTATE_AUTH_TOKEN"))
        deployments = admin.deployments()
        return any(deployment_uri(d) == self.url for d in deployments)

    def to_state(self) -> dict[str, Any]:
        return {
            **super().to_state(),
            "admin_url": self.admin_url,
            "register": self.register,
            "deployment_id": self.deployment_id,
            "deployment_revision": self.deployment_revision,
            "older_deployments": self.older_deployments,
        }

    @classmethod
    def _from_state(cls, state: Mapping[str, Any]) -> ManagedProcess:
        return cls(
            **_common(state),
            admin_url=state.get("admin_url"),
            register=state.get("register", True),
            deployment_id=state.get("deployment_id"),
            deployment_revision=state.get("deployment_revision"),
            older_deployments=state.get("older_deployments"),
        )


def _common(state: Mapping[str, Any]) -> dict[str, Any]:
    """The constructor arguments every kind of process records in the state file."""
    return {
        "name": state["name"],
        "command": state["command"],
        "port": state["port"],
        "env": state.get("env"),
        "host": state.get("host", HOST),
    }


__all__ = [
    "ClusterNode",
    "LangfuseProcess",
    "LlmProcess",
    "ManagedProcess",
    "RestateProcess",
    "ServicesProcess",
]

KINDS: dict[str, type[ManagedProcess]] = {
    cls.kind: cls for cls in (LangfuseProcess, LlmProcess, RestateProcess, ServicesProcess)
}
"""The kinds of process a stack runs, in the order a start brings them up."""
