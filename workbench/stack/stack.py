"""`Stack`: the handle on a running stack (status, logs, kill, restart, wait_ready, stop)."""

from __future__ import annotations

import atexit
import contextlib
import fcntl
import functools
import html
import os
import re
import signal
import ssl
import time
import xmlrpc.client
from collections.abc import Iterator, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any

import httpx
import psutil

from ..clients.cluster import RestateCluster
from ..clients.restate import RestateAdmin
from ..errors import RestateError
from .config import default_home, find_project
from .errors import NotRunningError, ProcessExitedError, StackError, StartTimeoutError
from .home import HomeRecord
from .home import update as update_home
from .ports import PortMove, foreign_listener
from .processes import ManagedProcess, RestateProcess, ServicesProcess
from .state import StackState, remove_state
from .supervisor import (
    STOP_WAIT_SECS,
    UP_STATES,
    SupervisorClient,
    tail_lines,
)

if TYPE_CHECKING:
    import pandas as pd

LOG_TAIL_LINES = 20
PROBE_TIMEOUT_S = 2.0
STATUS_COLUMNS = ["name", "state", "pid", "port", "url", "uptime_s", "restarts", "log"]
CLUSTER_COLUMNS = ["node_id", "health", "leads", "replication"]
"""What `status()` adds for a cluster's nodes: the cluster's node id, its health as the cluster
sees it (alive, suspect, dead), the partitions it leads, and the logs' replication."""
PARTITION_COLUMNS = ["partition", "leader", "epoch", "replicas", "start_key", "end_key"]


def resolve_home(home: str | os.PathLike[str] | None = None) -> Path:
    """The home folder: the argument, else WORKBENCH_HOME, else `<project>/.workbench`."""
    if home:
        return Path(home).expanduser().resolve()
    return default_home(find_project(), os.environ)


@contextlib.contextmanager
def home_lock(home: Path, *, create: bool = True) -> Iterator[None]:
    """One start/stop at a time per home (two notebook kernels starting at once)."""
    if not create and not home.exists():
        yield  # nothing there to protect (e.g. after reset)
        return
    home.mkdir(parents=True, exist_ok=True, mode=0o700)
    with (home / ".stack.lock").open("a") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(lock, fcntl.LOCK_UN)


STATE_POLL_S = 0.25
"""How often a wait for readiness asks supervisord for the processes' states (an XML-RPC call:
about 9 ms of CPU here and some of supervisord's, taken from the services' import while a stack
starts); the readiness probes themselves run every `poll_interval_s`."""


def local_http(timeout_s: float = PROBE_TIMEOUT_S) -> httpx.Client:
    # trust_env=False: a proxy configured for the internet must not see 127.0.0.1 traffic
    return httpx.Client(timeout=timeout_s, trust_env=False, verify=tls_context())


@functools.cache
def tls_context() -> ssl.SSLContext:
    """One TLS context for the stack's HTTP clients: each new httpx client would otherwise load
    the system's CA certificates again (50 ms of CPU each, taken from the services' import while
    a stack starts)."""
    import certifi

    return ssl.create_default_context(cafile=certifi.where())  # as httpx's own default


def _alive(process: psutil.Process) -> bool:
    try:
        return process.is_running() and process.status() != psutil.STATUS_ZOMBIE
    except psutil.Error:
        return False


def _wait_gone(processes: Sequence[psutil.Process], timeout_s: float) -> list[psutil.Process]:
    """Wait until none is alive (zombies count as gone: their parent may be init, which reaps
    late). Returns the ones still alive at the deadline."""
    deadline = time.monotonic() + timeout_s
    while True:
        alive = [process for process in processes if _alive(process)]
        if not alive or time.monotonic() >= deadline:
            return alive
        time.sleep(0.02)


def _marked_processes(stack_id: str) -> list[psutil.Process]:
    """Every process carrying WORKBENCH_STACK_ID=stack_id in its environment (all of ours
    inherit it from supervisord), so nothing escapes stop() even after supervisord died."""
    found = []
    me = os.getpid()
    for process in psutil.process_iter():
        if process.pid == me:
            continue
        try:
            if process.environ().get("WORKBENCH_STACK_ID") == stack_id:
                found.append(process)
        except (psutil.Error, OSError):
            continue
    return found


class Stack:
    """Handle on a running stack. `status()` is a DataFrame; the repr shows it."""

    def __init__(self, state: StackState) -> None:
        self._state = state
        self.home = Path(state.home)
        supervisor = state.supervisor
        self._client = SupervisorClient(
            supervisor["port"], supervisor["username"], supervisor["password"]
        )
        self._processes: dict[str, ManagedProcess] = {
            name: ManagedProcess.from_state(process) for name, process in state.processes.items()
        }
        self._stopped = False

    # -- addresses ---------------------------------------------------------------------------
    @property
    def urls(self) -> dict[str, str | None]:
        return {**self._state.urls, "ui": self._state.urls.get("admin"), "viewer": self.viewer_url}

    @property
    def ingress_url(self) -> str:
        return str(self._state.urls["ingress"])

    @property
    def admin_url(self) -> str:
        return str(self._state.urls["admin"])

    @property
    def ingress_urls(self) -> list[str]:
        """Every Restate node's ingress (one for a single server)."""
        return list(self._state.restate.get("ingress") or [self.ingress_url])

    @property
    def admin_urls(self) -> list[str]:
        """Every Restate node's admin API (one for a single server)."""
        return list(self._state.restate.get("admin") or [self.admin_url])

    @property
    def node_urls(self) -> list[str]:
        """A local cluster's node-to-node addresses (what restatectl asks); empty otherwise."""
        return list(self._state.restate.get("nodes") or [])

    @property
    def restate_token(self) -> str | None:
        """The token sent to a configured Restate (Restate Cloud's API key), if any."""
        return self._state.restate.get("token")

    @property
    def restate_nodes(self) -> list[str]:
        """The names of the Restate server processes this stack runs: `["restate"]`, or a
        cluster's `["restate-1", "restate-2", ...]` (empty for an external Restate)."""
        return [n for n, p in self._processes.items() if isinstance(p, RestateProcess)]

    @property
    def is_cluster(self) -> bool:
        """The stack runs a Restate cluster (several nodes)."""
        return len(self.node_urls) > 1

    def admin(self, http: httpx.Client) -> RestateAdmin:
        """Restate's admin API (every node's, failing over) over the caller's client."""
        return RestateAdmin(self.admin_urls, http, token=self.restate_token)

    def cluster(self) -> RestateCluster:
        """The cluster's own view (nodes, partitions and their leaders, logs: restatectl).
        StackError when the stack runs no local cluster or restatectl is missing."""
        restatectl = self._state.restate.get("restatectl")
        if not self.is_cluster:
            raise StackError(
                f"The stack in {self.home} runs a single Restate server, not a cluster: start "
                "one with `python -m workbench up --nodes 3` (or wb.start(nodes=3))."
            )
        if not restatectl:
            raise StackError(
                "restatectl is not installed: run `npm ci` in the project (it installs "
                "@restatedev/restatectl), or set RESTATECTL_BIN, then start the stack again."
            )
        return RestateCluster(self.node_urls, restatectl=restatectl)

    @property
    def ui_url(self) -> str:
        """The Restate web UI (served by the admin port)."""
        return self.admin_url

    @property
    def llm_url(self) -> str:
        """The OpenAI base URL (embedded model server or the configured endpoint)."""
        return str(self._state.urls["llm"])

    @property
    def langfuse_url(self) -> str | None:
        """The Langfuse the stack traces into (embedded, or the one configured)."""
        return self._state.urls.get("langfuse")

    @property
    def viewer_url(self) -> str | None:
        """Where a browser reads the traces: the embedded Langfuse's viewer (log in with
        `langfuse_keys`), or the configured Langfuse's own UI; None with tracing off."""
        url = self._state.urls.get("langfuse")
        return f"{url.rstrip('/')}/" if url else None

    @property
    def langfuse_keys(self) -> tuple[str, str] | None:
        keys = self._state.langfuse_keys
        return (keys[0], keys[1]) if len(keys) == 2 else None

    @property
    def services_url(self) -> str:
        return str(self._state.urls["services"])

    @property
    def names(self) -> list[str]:
        """Names of the processes supervisord runs for this stack."""
        return list(self._processes)

    @property
    def required_names(self) -> list[str]:
        """The processes the stack cannot run without (all but the optional embedded Langfuse,
        without which claims still complete)."""
        return [name for name, process in self._processes.items() if not process.optional]

    @property
    def supervisor_pid(self) -> int | None:
        return self._state.supervisor.get("pid")

    @property
    def persistent(self) -> bool:
        return self._state.persistent

    @property
    def project(self) -> Path:
        return Path(self._state.project)

    @property
    def ports(self) -> dict[str, int]:
        """The ports this stack was started on, by name (ingress, admin, ...)."""
        return dict(self._state.ports)

    @property
    def moved_ports(self) -> list[PortMove]:
        """The ports this stack was started on that are not their defaults, and why (a default
        taken by another program, or the last run's port kept); `up` prints them."""
        return [PortMove(**move) for move in self._state.moved_ports]

    @property
    def processes(self) -> dict[str, ManagedProcess]:
        """The processes supervisord runs for this stack, by name (a copy)."""
        return dict(self._processes)

    def process(self, name: str) -> ManagedProcess:
        """One process's description (command, port, environment)."""
        if name not in self._processes:
            raise KeyError(f"no process {name!r} in this stack; it runs {self.names}")
        return self._processes[name]

    @property
    def supervisor(self) -> SupervisorClient:
        """The XML-RPC client of this stack's supervisord."""
        return self._client

    @property
    def config_path(self) -> Path:
        """The generated supervisord.conf."""
        return Path(self._state.supervisor.get("config") or self.home / "supervisord.conf")

    def reload(self) -> Stack:
        """Re-read `stack.json`, so a handle made before another kernel changed the programs
        sees them (same stack only: a handle on a stopped or replaced stack stays as it is)."""
        state = StackState.load(self.home)
        if state is not None and state.stack_id == self._state.stack_id:
            self._state = state
            self._processes = {
                name: ManagedProcess.from_state(process)
                for name, process in state.processes.items()
            }
        return self

    def record_process(self, process: ManagedProcess) -> None:
        """Record a process added or changed at runtime in `stack.json` (callers hold the
        home lock); the `services` process's URL is the stack's services URL."""
        self._processes[process.name] = process
        self._state.processes[process.name] = {**process.to_state(), "pid": None}
        if process.name == "services":
            self._state.urls["services"] = process.url
        self._state.save()

    def add_program(self, process: ManagedProcess, *, timeout_s: float = 30.0) -> None:
        """Run `process` as a new program of this running stack (see `stack.programs`)."""
        from .programs import add_program

        add_program(self, process, timeout_s=timeout_s)

    def replace_program(self, process: ManagedProcess, *, timeout_s: float = 30.0) -> None:
        """Stop the program named `process.name` and run `process` in its place."""
        from .programs import replace_program

        replace_program(self, process, timeout_s=timeout_s)

    def remove_program(self, name: str) -> None:
        """Stop the program `name` and forget it."""
        from .programs import remove_program

        remove_program(self, name)

    def forget_process(self, name: str) -> None:
        """Drop a removed process from `stack.json` (callers hold the home lock)."""
        self._processes.pop(name, None)
        self._state.processes.pop(name, None)
        self._state.save()

    # -- inspection --------------------------------------------------------------------------
    def is_running(self) -> bool:
        return not self._stopped and self._is_ours()

    def _is_ours(self) -> bool:
        """supervisord answers on the recorded port AND is the one this state describes."""
        if not self._state.supervisor.get("pid") or not self._client.answers():
            return False
        try:
            return (
                self._client.pid() == self._state.supervisor["pid"]
                and self._client.identification() == self._state.supervisor["identifier"]
            )
        except (OSError, xmlrpc.client.Error):
            return False

    def _require(self, name: str) -> ManagedProcess:
        if name not in self._processes:
            raise KeyError(f"no process {name!r} in this stack; it runs {self.names}")
        if self._stopped:
            raise NotRunningError(f"the stack in {self.home} was stopped; start() it again")
        return self._processes[name]

    def _info(self, name: str) -> dict[str, Any]:
        self._require(name)
        try:
            return self._client.process_info(name)
        except (OSError, xmlrpc.client.Error) as exc:
            raise NotRunningError(
                f"supervisord of the stack in {self.home} does not answer ({exc}); "
                "start() the stack again"
            ) from exc

    def pid(self, name: str) -> int | None:
        """Current pid of a process, None when it is not running."""
        return self._info(name)["pid"] or None

    def pids(self) -> list[int]:
        """supervisord's pid and every process under it (programs and their children)."""
        pid = self.supervisor_pid
        if not pid or not self._is_ours():
            return []
        try:
            supervisor = psutil.Process(pid)
            return [pid, *(child.pid for child in supervisor.children(recursive=True))]
        except psutil.Error:
            return []

    def log_path(self, name: str) -> Path:
        if name == "supervisord":
            return self.home / "logs" / "supervisord.log"
        return self._require(name).log_path(self.home)

    def logs(self, name: str, lines: int = 50) -> str:
        """The last `lines` lines of a process log (`supervisord` for supervisord's own)."""
        if name == "supervisord":
            return tail_lines(self.log_path(name), lines)
        if name not in self._processes:
            raise KeyError(f"no process {name!r} in this stack; it runs {self.names}")
        return tail_lines(self._processes[name].log_path(self.home), lines)

    def _supervisord_log(self) -> str:
        """supervisord's log since this supervisord started (the file spans earlier runs)."""
        try:
            text = self.log_path("supervisord").read_text(errors="replace")
        except FileNotFoundError:
            return ""
        marker = f"supervisord started with pid {self.supervisor_pid}"
        return text[text.rfind(marker) :] if marker in text else ""

    def _spawn_counts(self) -> dict[str, int]:
        """How often supervisord spawned each program since it started."""
        counts: dict[str, int] = {}
        for name in re.findall(r"spawned: '([^']+)' with pid", self._supervisord_log()):
            counts[name] = counts.get(name, 0) + 1
        return counts

    def _last_exit(self, name: str) -> str | None:
        """How the process last ended, e.g. 'exit status 3; not expected', from supervisord's
        log (its XML-RPC reports no exit status for a process that exited too quickly)."""
        pattern = rf"exited: {re.escape(name)} \((.*)\)$"
        found = re.findall(pattern, self._supervisord_log(), re.MULTILINE)
        return found[-1] if found else None

    def status(self) -> pd.DataFrame:
        """One row per process: name, state, pid, port, url, uptime_s, restarts, log; for a
        cluster also each node's node_id, health, the partitions it leads and the replication
        (`CLUSTER_COLUMNS`)."""
        import pandas as pd

        columns = STATUS_COLUMNS + (CLUSTER_COLUMNS if self.is_cluster else [])
        frame = pd.DataFrame(self.status_rows(), columns=columns)
        for column in ("pid", "port", "restarts"):
            frame[column] = frame[column].astype("Int64")
        return frame

    def partitions(self) -> pd.DataFrame:
        """A cluster's partitions: partition, leader (node name), epoch, replicas (node names),
        start_key, end_key. Empty when no node answers restatectl."""
        import pandas as pd

        return pd.DataFrame(self.cluster_view()["partitions"], columns=PARTITION_COLUMNS)

    def cluster_view(self) -> dict[str, Any]:
        """The cluster as restatectl sees it: `nodes` (node name -> node_id, health),
        `partitions` (rows of PARTITION_COLUMNS, node names for ids), `replication` (the logs'
        e.g. "{node: 2}"), and `error` (why it could not be read: every node down, no
        restatectl) or None."""
        view: dict[str, Any] = {"nodes": {}, "partitions": [], "replication": None, "error": None}
        try:
            cluster = self.cluster()
            nodes = cluster.nodes()
            partitions = cluster.partitions()
            logs = cluster.logs()
        except (StackError, RestateError) as e:
            view["error"] = str(e)
            return view
        names = {row["plain_node_id"]: row["name"] for row in nodes}
        view["nodes"] = {
            row["name"]: {"node_id": row["plain_node_id"], "health": row["state"]} for row in nodes
        }
        view["partitions"] = [
            {
                "partition": row["partition_id"],
                "leader": names.get(
                    row.get("leader_plain_node_id"), row.get("leader_plain_node_id")
                ),
                "epoch": row.get("leader_epoch"),
                "replicas": ", ".join(
                    sorted(
                        names.get(n, n)
                        for n in str(row.get("current_replica_set") or "").split(",")
                        if n
                    )
                ),
                "start_key": row["start_key"],
                "end_key": row["end_key"],
            }
            for row in partitions
        ]
        replication = sorted({str(row["replication"]) for row in logs if row.get("replication")})
        view["replication"] = ", ".join(replication) or None
        return view

    def status_rows(self) -> list[dict[str, Any]]:
        """`status()` as plain rows (dicts with the STATUS_COLUMNS), for code that does not
        want pandas (the command line)."""
        try:
            infos = self._client.all_process_info() if self.is_running() else {}
            spawns = self._spawn_counts() if infos else {}
        except (OSError, xmlrpc.client.Error):
            infos, spawns = {}, {}
        rows: list[dict[str, Any]] = []
        if self._state.external.get("llm"):
            rows.append(_external_row("llm", self.llm_url))
        if self._state.external.get("restate"):
            rows.extend(_external_row("restate", url) for url in self.ingress_urls)
        for name, process in self._processes.items():
            info = infos.get(name)
            state = info["statename"] if info else "STOPPED"
            up = info is not None and state in UP_STATES and info["pid"]
            rows.append(
                {
                    "name": name,
                    "state": state,
                    "pid": (info["pid"] or None) if info else None,
                    "port": process.port,
                    "url": process.url,
                    "uptime_s": _uptime_s(info["pid"]) if up else None,
                    "restarts": max(spawns.get(name, 0) - 1, 0) if info else None,
                    "log": str(process.log_path(self.home)),
                }
            )
        if self.is_cluster and infos:
            self._add_cluster_columns(rows)
        return rows

    def _add_cluster_columns(self, rows: list[dict[str, Any]]) -> None:
        """Fill CLUSTER_COLUMNS in the rows of the Restate nodes (restatectl's view)."""
        view = self.cluster_view()
        leads: dict[str, list[str]] = {}
        for partition in view["partitions"]:
            leads.setdefault(str(partition["leader"]), []).append(str(partition["partition"]))
        for row in rows:
            if row["name"] not in self.restate_nodes:
                continue
            node = view["nodes"].get(row["name"], {})
            row["node_id"] = node.get("node_id")
            row["health"] = node.get("health") or ("unknown" if view["error"] else "not joined")
            row["leads"] = ", ".join(leads.get(row["name"], []))
            row["replication"] = view["replication"]

    def _summary(self) -> str:
        state = "running" if self.is_running() else "stopped"
        return f"Stack({state}, home={self.home}, supervisord pid={self.supervisor_pid})"

    def __repr__(self) -> str:
        urls = "\n".join(f"  {key:8} {url}" for key, url in self.urls.items() if url)
        return f"{self._summary()}\n{urls}\n{self.status().to_string(index=False)}"

    def _repr_html_(self) -> str:
        links = " · ".join(
            f'{key}: <a href="{html.escape(url)}" target="_blank">{html.escape(url)}</a>'
            for key, url in self.urls.items()
            if url
        )
        frame = self.status().to_html(index=False, na_rep="")
        return f"<p><b>{html.escape(self._summary())}</b><br>{links}</p>{frame}"

    # -- readiness ---------------------------------------------------------------------------
    def _wait(
        self,
        names: Sequence[str],
        *,
        timeout_s: float,
        poll_interval_s: float,
        fresh: bool,
    ) -> None:
        """Wait until every named process is up in supervisord and answers its probe.
        fresh=True (a start): any exit is fatal -> ProcessExitedError with the log tail.
        fresh=False (after a crash): restarts are expected; only FATAL (gave up) is fatal."""
        deadline = time.monotonic() + timeout_s
        pending = list(names)
        reasons: dict[str, str] = {}
        infos: dict[str, dict[str, Any]] = {}
        asked = 0.0
        with local_http(min(PROBE_TIMEOUT_S, max(timeout_s, 0.1))) as http:
            while True:
                if not infos or time.monotonic() - asked >= max(STATE_POLL_S, poll_interval_s):
                    infos, asked = self._client.all_process_info(), time.monotonic()
                    for name in names if fresh else pending:
                        info = infos[name]
                        exited = info["statename"] == "FATAL" or (
                            fresh and (info["stop"] or info["statename"] not in UP_STATES)
                        )
                        if exited:
                            raise self._exited_error(name, info, during_start=fresh)
                for name in list(pending):
                    info = infos[name]
                    if info["statename"] not in UP_STATES:
                        reasons[name] = f"supervisord state {info['statename']}"
                        continue
                    reason = self._processes[name].check_ready(http)
                    if reason is None and (other := self._answered_by_other(name, info)):
                        reason = f"the probe was answered by another program ({other})"
                    if reason is None:
                        pending.remove(name)
                    else:
                        reasons[name] = reason
                if not pending:
                    return
                if time.monotonic() >= deadline:
                    raise self._timeout_error(pending[0], reasons.get(pending[0], ""), timeout_s)
                time.sleep(poll_interval_s)

    def _answered_by_other(self, name: str, info: dict[str, Any]) -> str | None:
        """Another program on one of the ports of process `name` (supervisord's pid `info`);
        while supervisord names no pid, nobody can tell whose the answer was: not yet ready."""
        if not info.get("pid"):
            return "supervisord names no pid for it yet"
        return foreign_listener(self._processes[name].listen_ports, info.get("pid"))

    def _exited_error(self, name: str, info: dict[str, Any], *, during_start: bool) -> StackError:
        process = self._processes[name]
        log_path = process.log_path(self.home)
        tail = tail_lines(log_path, LOG_TAIL_LINES)
        how = self._last_exit(name) or info["spawnerr"] or info["statename"]
        when = (
            "exited while the stack was starting"
            if during_start
            else "kept exiting; supervisord gave up restarting it"
        )
        return ProcessExitedError(
            f"Process {name!r} {when} ({how}).\n"
            f"Command: {' '.join(process.command)}\n"
            f"Last {LOG_TAIL_LINES} lines of {log_path}:\n{tail or '(empty log)'}\n"
            f"Fix the cause shown above, then start again; the full log is {log_path}.",
            name=name,
            log_path=log_path,
            log_tail=tail,
        )

    def _timeout_error(self, name: str, reason: str, timeout_s: float) -> StartTimeoutError:
        log_path = self._processes[name].log_path(self.home)
        tail = tail_lines(log_path, LOG_TAIL_LINES)
        return StartTimeoutError(
            f"Process {name!r} did not become ready within {timeout_s:.1f} s "
            f"(last check: {reason or 'no answer'}).\n"
            f"Last {LOG_TAIL_LINES} lines of {log_path}:\n{tail or '(empty log)'}\n"
            "Look at the log for the cause, or pass a larger timeout_s if it is just slow.",
            name=name,
            log_path=log_path,
            log_tail=tail,
        )

    def wait_ready(
        self,
        name: str | None = None,
        timeout_s: float = 30.0,
        *,
        poll_interval_s: float = 0.05,
    ) -> None:
        """Wait until `name` (default: every process) runs and answers again, e.g. after a
        crash; re-registers the services deployment with Restate if it is missing."""
        names = [self._require(name).name] if name else self.names
        if self._stopped:
            raise NotRunningError(f"the stack in {self.home} was stopped; start() it again")
        deadline = time.monotonic() + timeout_s
        self._wait(names, timeout_s=timeout_s, poll_interval_s=poll_interval_s, fresh=False)
        with local_http() as http:
            for process in self._processes.values():
                if isinstance(process, ServicesProcess) and process.register:
                    if not process.is_registered(http):
                        process.after_ready(
                            http,
                            timeout_s=max(deadline - time.monotonic(), 1.0),
                            poll_interval_s=poll_interval_s,
                        )
        self._record_pids()

    def record_pids(self) -> None:
        """Record every process's current pid in `stack.json`."""
        self._record_pids()

    def wait_up(
        self,
        names: Sequence[str],
        *,
        timeout_s: float = 30.0,
        poll_interval_s: float = 0.05,
        starting: bool = False,
    ) -> None:
        """Wait until the named processes run and answer their probes (restarts allowed;
        a process supervisord gave up on fails at once, with its log). starting=True, for the
        processes of a start: any exit fails at once (ProcessExitedError with its log)."""
        self._wait(names, timeout_s=timeout_s, poll_interval_s=poll_interval_s, fresh=starting)

    def _record_pids(self) -> None:
        """Save the pids (and each services process's deployment id, also in home.json, where
        the next start finds it)."""
        infos = self._client.all_process_info()
        deployments: dict[str, str] = {}
        for name, process in self._processes.items():
            self._state.processes[name]["pid"] = infos[name]["pid"] or None
            if isinstance(process, ServicesProcess) and process.deployment_id:
                self._state.processes[name]["deployment_id"] = process.deployment_id
                deployments[name] = process.deployment_id
        self._state.save()
        if deployments:
            recorded = HomeRecord.load(self.home).deployments
            if any(recorded.get(name) != dp for name, dp in deployments.items()):
                update_home(self.home, deployments=deployments)

    # -- Restate: deployments and paused invocations -----------------------------------------
    @property
    def deployment_ids(self) -> dict[str, str]:
        """The Restate deployment of each services process (name -> deployment id)."""
        return {
            name: process.deployment_id
            for name, process in self._processes.items()
            if isinstance(process, ServicesProcess) and process.deployment_id
        }

    @property
    def served_deployment_ids(self) -> list[str]:
        """Every Restate deployment the services processes serve: their own, and the older ones
        whose claims drain on an older journal revision (`ServicesProcess.older_deployments`)."""
        return [
            deployment_id
            for process in self._processes.values()
            if isinstance(process, ServicesProcess)
            for deployment_id in (process.deployment_id, *process.older_deployments)
            if deployment_id
        ]

    def rehome_deployment(self, deployment_id: str, uri: str, timeout_s: float = 15.0) -> None:
        """Point the Restate deployment `deployment_id` at `uri` in place (`PATCH
        /deployments/{id}`): invocations pinned to it go on at the new address. For services
        that came back on another port (a version deployment re-added after a restart)."""
        with local_http() as http:
            self.admin(http).rehome(deployment_id, uri, timeout_s=timeout_s)

    def paused(self, *, all_deployments: bool = False) -> list[str]:
        """Ids of the paused invocations of this stack's deployments (of every deployment with
        all_deployments=True)."""
        ids = None if all_deployments else self.served_deployment_ids
        with local_http(10.0) as http:
            return self.admin(http).paused(ids)

    def resume(self, invocation_ids: Sequence[str] | None = None) -> list[str]:
        """Resume paused invocations (`PATCH /invocations/{id}/resume`): the given ids, or every
        paused invocation of this stack's deployments. Returns the ids resumed (an id that was
        not paused is skipped)."""
        with local_http(10.0) as http:
            if invocation_ids is None:
                return self.admin(http).resume_paused(self.served_deployment_ids)
            admin = self.admin(http)
            return [i for i in invocation_ids if admin.resume(i)]

    def purge(self, invocation_id: str) -> bool:
        """Purge a completed invocation (`PATCH /invocations/{id}/purge`): for a workflow's run
        refused with 400 (a bad body), its claim id can be used again."""
        with local_http(10.0) as http:
            return self.admin(http).purge(invocation_id)

    # -- failure injection and restarts ------------------------------------------------------
    def kill(self, name: str, sig: int = signal.SIGKILL, *, timeout_s: float = 10.0) -> int:
        """Crash a process: send `sig` to it (and its process group) by pid, then wait until
        supervisord has seen it die. supervisord restarts it on its own; `wait_ready(name)`
        waits until it answers again. Returns the pid that was killed."""
        pid = self.pid(name)
        if pid is None:
            state = self._info(name)["statename"]
            raise NotRunningError(f"{name!r} is not running (supervisord state {state})")
        try:
            if os.getpgid(pid) == pid:  # supervisord puts each child in its own group
                os.killpg(pid, sig)
            else:
                os.kill(pid, sig)
        except ProcessLookupError:
            pass
        deadline = time.monotonic() + timeout_s
        while True:
            info = self._info(name)
            if info["pid"] != pid or info["statename"] not in UP_STATES:
                return pid
            if time.monotonic() >= deadline:
                raise StackError(
                    f"{name!r} (pid {pid}) still runs {timeout_s:.0f} s after signal "
                    f"{signal.Signals(sig).name}; use SIGKILL to crash it"
                )
            time.sleep(0.02)

    def restart(self, name: str, timeout_s: float = 30.0) -> None:
        """Stop (SIGINT, SIGKILL after the grace period) and start a process, wait until it
        answers; the services deployment is registered again (its code may have changed)."""
        process = self._require(name)
        self._client.stop_process(name, timeout_s=STOP_WAIT_SECS + 10)
        self._client.start_process(name)
        self._wait([name], timeout_s=timeout_s, poll_interval_s=0.05, fresh=False)
        with local_http() as http:
            process.after_ready(http, timeout_s=timeout_s, poll_interval_s=0.05)
        self._record_pids()

    def stop_process(self, name: str) -> None:
        """Stop a process (SIGINT, SIGKILL after the grace period) and leave it down:
        supervisord does not restart it until `start_process(name)`."""
        self._require(name)
        self._client.stop_process(name, timeout_s=STOP_WAIT_SECS + 10)

    def start_process(self, name: str, timeout_s: float = 30.0) -> None:
        """Start a process stopped by `stop_process` and wait until it answers."""
        self._require(name)
        self._client.start_process(name)
        self.wait_ready(name, timeout_s)

    @contextlib.contextmanager
    def stopped(self, name: str, timeout_s: float = 30.0) -> Iterator[None]:
        """`with stack.stopped("restate"):` the process is down inside, up and ready after."""
        self._require(name)
        self._client.stop_process(name, timeout_s=STOP_WAIT_SECS + 10)
        try:
            yield
        finally:
            self._client.start_process(name)
            self.wait_ready(name, timeout_s)

    # -- stopping ----------------------------------------------------------------------------
    def stop(self, grace_s: float = 5.0, *, lock_home: bool = True) -> None:
        """Stop every process (SIGINT, SIGKILL after grace_s), shut supervisord down, and make
        sure no process of this stack remains. lock_home=False when the caller holds the home
        lock already (`start` and `stop` of `stack.lifecycle`: the lock is not re-entrant)."""
        if not lock_home:
            self._stop(grace_s)
            return
        with home_lock(self.home, create=False):
            self._stop(grace_s)

    def stop_at_exit(self) -> None:
        """Stop this stack when this interpreter exits (a start with persistent=False); a
        `stop()` before then cancels it."""
        atexit.register(self._reap_at_exit)

    def _reap_at_exit(self) -> None:
        with contextlib.suppress(Exception):
            self._stop(grace_s=2.0)

    def _stop(self, grace_s: float) -> None:
        atexit.unregister(self._reap_at_exit)
        sup_pid = self._state.supervisor.get("pid")
        ours: dict[int, psutil.Process] = {}
        supervisor: psutil.Process | None = None
        if sup_pid and self._is_ours():
            with contextlib.suppress(psutil.Error):
                supervisor = psutil.Process(sup_pid)
                ours[sup_pid] = supervisor
                for child in supervisor.children(recursive=True):
                    ours[child.pid] = child
            self._stop_programs(grace_s)
            with contextlib.suppress(OSError, xmlrpc.client.Error):
                self._client.shutdown()
            if supervisor is not None:
                for process in _wait_gone([supervisor], grace_s + 5):
                    with contextlib.suppress(psutil.Error):
                        process.kill()
        # last resort: anything still carrying our stack id (or seen as a child) gets SIGKILL
        for process in _marked_processes(self._state.stack_id):
            ours.setdefault(process.pid, process)
        leftovers = [process for process in ours.values() if _alive(process)]
        for process in leftovers:
            with contextlib.suppress(psutil.Error):
                process.kill()
        survivors = _wait_gone(leftovers, 5.0)
        recorded = StackState.load(self.home)
        if recorded is None or recorded.stack_id == self._state.stack_id:
            remove_state(self.home)  # (never the state of a newer stack in the same home)
        self._stopped = True
        if survivors:
            raise StackError(
                f"processes {[p.pid for p in survivors]} of the stack in {self.home} survived "
                "SIGKILL (stuck in the kernel?); check them with `ps` and end them by pid"
            )

    def _stop_programs(self, grace_s: float) -> None:
        """stopAllProcesses (SIGINT to each group); SIGKILL the groups still up after grace_s."""
        try:
            self._client.stop_all()
        except (OSError, xmlrpc.client.Error):
            return
        deadline = time.monotonic() + grace_s
        while time.monotonic() < deadline:
            try:
                infos = self._client.all_process_info()
            except (OSError, xmlrpc.client.Error):
                return
            running = {name: info["pid"] for name, info in infos.items() if info["pid"]}
            if not running:
                return
            time.sleep(0.05)
        for pid in running.values():
            with contextlib.suppress(OSError):
                os.killpg(pid, signal.SIGKILL)


def _uptime_s(pid: int) -> float | None:
    try:
        return round(time.time() - psutil.Process(pid).create_time(), 1)
    except psutil.Error:
        return None


def _external_row(name: str, url: str) -> dict[str, Any]:
    return {
        "name": name,
        "state": "EXTERNAL",
        "pid": None,
        "port": None,
        "url": url,
        "uptime_s": None,
        "restarts": None,
        "log": None,
    }
