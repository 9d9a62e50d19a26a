"""Start (or attach to), stop and reset the stack in a home folder: the module functions."""

from __future__ import annotations

import contextlib
import hashlib
import os
import secrets
import time
import uuid
import warnings
import xmlrpc.client
from collections.abc import Mapping, Sequence
from dataclasses import asdict
from pathlib import Path
from typing import TYPE_CHECKING, Any

import httpx

from services.names import PROMPT_CHANGES_ANNOUNCED, PROMPT_CHANGES_ENV, PROMPT_CHANGES_FILE

from ..clients.restate import RestateAdmin
from ..errors import RestateError
from . import home as homes
from .config import HOST, LOCAL_OPENAI_API_KEY, StackConfig, node_port_name
from .errors import ProcessExitedError, StackError, StackWarning, StartTimeoutError
from .ports import allocate_ports, port_moves
from .processes import (
    ClusterNode,
    LangfuseProcess,
    LlmProcess,
    ManagedProcess,
    RestateProcess,
    ServicesProcess,
    cluster_config,
)
from .stack import STATUS_COLUMNS, Stack, home_lock, local_http, resolve_home
from .state import STATE_FILE, StackState, remove_state
from .supervisor import (
    STOP_WAIT_SECS,
    UP_STATES,
    launch_supervisord,
    render_config,
    wait_answering,
)
from .tracing import LangfuseUnreachableError, seed_prompts, tracing_args, tracing_env

if TYPE_CHECKING:
    import pandas as pd

HOME_MARKER = homes.MARKER  # written in a home folder the stack created (reset may delete it)
OPTIONAL_WAIT_S = 15.0
"""How long a start waits for an optional process (the embedded Langfuse) before going on."""


def attach(home: str | os.PathLike[str] | None = None) -> Stack | None:
    """The stack running in `home` (its supervisord answers, all programs up), else None."""
    state = StackState.load(resolve_home(home))
    return _attachable(state) if state else None


def _attachable(state: StackState) -> Stack | None:
    stack = Stack(state)
    if not stack.is_running():
        return None
    try:
        infos = stack.supervisor.all_process_info()
    except (OSError, xmlrpc.client.Error):
        return None
    if any(name not in infos for name in stack.names):
        return None
    required = stack.required_names
    if any(infos[name]["statename"] not in {*UP_STATES, "BACKOFF"} for name in required):
        return None
    return stack


def start(
    home: str | os.PathLike[str] | None = None, *, timeout_s: float = 60.0, **overrides: Any
) -> Stack:
    """Start the stack in `home` (default WORKBENCH_HOME or <project>/.workbench), or attach to
    the one already running there. Waits (at most timeout_s) until every process answers and
    the services deployment is registered with Restate.

    A fresh start reuses the ports of the last run when free, moves the services' existing
    Restate deployment to their address (instead of registering a new one), resumes the
    invocations of that deployment that an outage paused, and removes a deployment it
    registered itself if it then fails. What it can run without is a `StackWarning` (one line,
    naming the URL): the embedded Langfuse not coming up, a configured Langfuse not answering,
    the model not answering `GET /models`.

    Options (each also settable by environment where noted):
      nodes=1             Restate nodes: 1, or 3+ for a local cluster named restate-1..N
                          (WORKBENCH_RESTATE_NODES); ports ingress_2, admin_2, node_2, ...
      persistent=True     False: stopped by an atexit reaper when this interpreter exits
      <name>_port=        llm, ingress, admin, node, services, supervisor (WORKBENCH_<NAME>_PORT);
                          an explicit port must be free (PortTakenError), a default one is
                          replaced by a free one when taken
      openai_base_url=    a real model endpoint: no embedded llm (OPENAI_BASE_URL)
      restate_admin_url=, restate_ingress_url=   an existing Restate server: no restate-server
                          (RESTATE_ADMIN_URL + RESTATE_INGRESS_URL; a cluster's several URLs
                          comma-separated); restate_token= (RESTATE_AUTH_TOKEN) for Restate Cloud
      restate_bin=        the restate-server binary (RESTATE_SERVER_BIN)
      restate_args=[...]  extra restate-server flags, e.g. ["--tracing-endpoint", url]
      llm_command=, services_command=   argv templates with {host} and {port}
      llm_latency_ms=     simulated model latency (WORKBENCH_LLM_LATENCY_MS)
      env={"services": {...}}           extra environment per process
      service_version="v1", register=True, poll_interval_s=0.05, registration_timeout_s=15,
      project=            the project folder (default: the one holding pyproject.toml)
    """
    config = StackConfig.resolve(home, **overrides)
    with home_lock(config.home):
        state = StackState.load(config.home)
        if state is not None:
            stack = _attach_healthy(config, state, timeout_s)
            if stack is not None:
                return stack
            # stale or unhealthy: clean up (we hold the home lock), then start fresh
            Stack(state).stop(STOP_WAIT_SECS, lock_home=False)
        stack = _start_fresh(config, timeout_s)
    if not config.persistent:
        stack.stop_at_exit()
    return stack


def _attach_healthy(config: StackConfig, state: StackState, timeout_s: float) -> Stack | None:
    """The stack `state` describes when it runs and every required process answers within
    timeout_s (the ports asked for but not used are a warning); None when it must be replaced
    by a fresh start (which reports any error)."""
    stack = _attachable(state)
    if stack is None:
        return None
    try:
        deadline = time.monotonic() + timeout_s
        for name in stack.required_names:
            stack.wait_ready(
                name,
                timeout_s=max(deadline - time.monotonic(), 0.1),
                poll_interval_s=config.poll_interval_s,
            )
    except (StackError, OSError, xmlrpc.client.Error, httpx.HTTPError):
        return None
    _warn_ignored_ports(config, stack)
    _warn_other_nodes(config, stack)
    homes.secure(config.home)
    _check_model(stack, config.environ, timeout_s=2.0)
    return stack


def _warn_ignored_ports(config: StackConfig, stack: Stack) -> None:
    running = stack.ports
    for name, request in config.ports.items():
        if request.explicit is not None and running.get(name) not in (None, request.explicit):
            warnings.warn(
                f"{request.source} asks for port {request.explicit}, but the stack already "
                f"running in {stack.home} uses {running[name]} for {name}; it was attached to "
                "as it is. Stop it first (`python -m workbench down`) to change ports.",
                stacklevel=4,  # the caller of start()
            )


def _warn_other_nodes(config: StackConfig, stack: Stack) -> None:
    running = len(stack.restate_nodes)
    if config.nodes_asked and config.embedded_restate and running and running != config.nodes:
        warnings.warn(
            f"{config.nodes} Restate node(s) asked for, but the stack already running in "
            f"{stack.home} has {running}; it was attached to as it is. Stop it first "
            "(`python -m workbench down`) to change the number of nodes.",
            stacklevel=4,  # the caller of start()
        )


def _build_processes(
    config: StackConfig, ports: dict[str, int], record: homes.HomeRecord | None = None
) -> list[ManagedProcess]:
    """The processes of a fresh start, in start order: the embedded Langfuse, model server and
    restate-server (each unless configured as an external service), then the services, wired
    to whichever of those runs. `record` (the home's) says which Restate deployment the services
    served last time, with its journal revision, and the older ones they drain (each moved to
    the new address instead of duplicated)."""
    record = record or homes.HomeRecord()
    common = {"WORKBENCH_HOME": str(config.home), "PYTHONUNBUFFERED": "1"}
    langfuse = (
        _langfuse_process(config, ports["langfuse"], common) if config.embedded_langfuse else None
    )
    if langfuse is not None:
        langfuse_url: str | None = langfuse.url
    else:
        langfuse_url = str(config.langfuse_base_url) if config.tracing else None
    llm = _llm_process(config, ports["llm"], common) if config.embedded_llm else None
    restate = _restate_processes(config, ports, langfuse_url) if config.embedded_restate else []
    services = _services_process(
        config,
        ports["services"],
        common,
        langfuse_url=langfuse_url,
        openai_base_url=llm.openai_base_url if llm else str(config.openai_base_url),
        admin_url=",".join(r.admin_url for r in restate) or str(config.restate_admin_url),
        ingress_url=",".join(r.ingress_url for r in restate) or str(config.restate_ingress_url),
        node_urls=[r.node_url for r in restate] if config.nodes > 1 else [],
        deployment_id=record.deployments.get("services"),
        deployment_revision=record.deployment_revision("services"),
        older_deployments=record.older_deployments.get("services"),
    )
    return [p for p in (langfuse, llm, *restate, services) if p is not None]


def _command(template: Sequence[str], port: int) -> list[str]:
    """An argv template (`llm_command=`, ...) with its {host} and {port} filled in."""
    return [part.format(host=HOST, port=port) for part in template]


def _langfuse_process(config: StackConfig, port: int, common: dict[str, str]) -> LangfuseProcess:
    """The embedded Langfuse, its database in the home folder."""
    return LangfuseProcess(
        command=[
            *_command(config.langfuse_command, port),
            "--db",
            str(config.home / "langfuse.sqlite3"),
            "--prompt-changes",
            str(config.home / PROMPT_CHANGES_FILE),
        ],
        port=port,
        env={  # keys in the environment (a 0600 config file), never on the command line
            **common,
            "LANGFUSE_PUBLIC_KEY": str(config.langfuse_public_key),
            "LANGFUSE_SECRET_KEY": str(config.langfuse_secret_key),
            **config.env.get("langfuse", {}),
        },
    )


def _llm_process(config: StackConfig, port: int, common: dict[str, str]) -> LlmProcess:
    """The embedded model server, with the simulated latency asked for."""
    latency = (
        [] if config.llm_latency_ms is None else ["--latency-ms", f"{config.llm_latency_ms:g}"]
    )
    return LlmProcess(
        command=[*_command(config.llm_command, port), *latency],
        port=port,
        env={**common, **config.env.get("llm", {})},
    )


def _restate_processes(
    config: StackConfig, ports: dict[str, int], langfuse_url: str | None
) -> list[RestateProcess]:
    """The embedded restate-server (BinaryNotFoundError when there is none), tracing into
    Langfuse when there is one: one server named `restate`, or `config.nodes` nodes of a
    cluster named `restate-1`, `restate-2`, ... (each with its config file and data folder under
    `<home>/cluster/`; extra environment for all of them under `env={"restate": ...}`)."""
    binary = config.restate_server()
    extra_args = [*(tracing_args(langfuse_url) if langfuse_url else []), *config.restate_args]
    env = {**(tracing_env(config) if langfuse_url else {}), **config.env.get("restate", {})}
    if config.nodes == 1:
        return [
            RestateProcess(
                binary=binary,
                base_dir=config.home / "restate",
                port=ports["ingress"],
                admin_port=ports["admin"],
                node_port=ports["node"],
                extra_args=extra_args,
                env=env,
            )
        ]
    nodes = [
        ClusterNode(
            number,
            ingress_port=ports[node_port_name("ingress", number)],
            admin_port=ports[node_port_name("admin", number)],
            node_port=ports[node_port_name("node", number)],
        )
        for number in range(1, config.nodes + 1)
    ]
    folder = config.home / "cluster"
    name = cluster_name(config.home)
    return [
        RestateProcess(
            name=node.name,
            binary=binary,
            port=node.ingress_port,
            admin_port=node.admin_port,
            node_port=node.node_port,
            config_file=folder / f"{node.name}.toml",
            config_text=cluster_config(node, nodes, cluster_name=name, base_dir=folder / node.name),
            extra_args=extra_args,
            env={**env, **config.env.get(node.name, {})},
        )
        for node in nodes
    ]


def cluster_name(home: Path) -> str:
    """The name of the home's local cluster: the same at every start (Restate keeps it in its
    data), different per home (two homes' clusters never join each other)."""
    return f"workbench-{hashlib.sha1(str(home).encode()).hexdigest()[:10]}"


def _services_process(
    config: StackConfig,
    port: int,
    common: dict[str, str],
    *,
    langfuse_url: str | None,
    openai_base_url: str,
    admin_url: str,
    ingress_url: str,
    node_urls: Sequence[str],
    deployment_id: str | None,
    deployment_revision: int | None = None,
    older_deployments: Mapping[str, int] | None = None,
) -> ServicesProcess:
    """The services (the claim workflow and its steps), told where the model, Langfuse and
    Restate answer; registered with Restate once ready (or moved into `deployment_id`)."""
    langfuse_env = (
        {
            "LANGFUSE_BASE_URL": langfuse_url,
            "LANGFUSE_PUBLIC_KEY": str(config.langfuse_public_key),
            "LANGFUSE_SECRET_KEY": str(config.langfuse_secret_key),
        }
        if langfuse_url
        else {}
    )
    env = {
        **common,
        **langfuse_env,
        "OPENAI_BASE_URL": openai_base_url,
        "WORKBENCH_DATA_DIR": str(config.data_dir),
        "SERVICE_VERSION": config.service_version,
        "RESTATE_INGRESS_URL": ingress_url,
        "RESTATE_ADMIN_URL": admin_url,
    }
    if config.embedded_langfuse:  # it announces every prompt change (services.prompts)
        env[PROMPT_CHANGES_ENV] = PROMPT_CHANGES_ANNOUNCED
    if config.restate_token:  # Restate Cloud: the registration needs it
        env["RESTATE_AUTH_TOKEN"] = config.restate_token
    if node_urls:  # a local cluster: where `kill_leader` finds the partitions' leaders
        env["WORKBENCH_RESTATE_NODE_URLS"] = ",".join(node_urls)
        restatectl = config.restatectl()
        if restatectl:
            env["RESTATECTL_BIN"] = str(restatectl)
    if config.embedded_llm or not config.environ.get("OPENAI_API_KEY"):
        env["OPENAI_API_KEY"] = LOCAL_OPENAI_API_KEY  # a real key is inherited instead
    workers = ["--workers", str(config.services_workers)] if config.services_workers > 1 else []
    return ServicesProcess(
        command=[*_command(config.services_command, port), *workers],
        port=port,
        env={**env, **config.env.get("services", {})},
        admin_url=admin_url,
        register=config.register,
        deployment_id=deployment_id,
        deployment_revision=deployment_revision,
        older_deployments=older_deployments,
    )


def _check_external_restate(config: StackConfig, timeout_s: float) -> None:
    """Wait until one of the configured Restate admin APIs answers GET /health."""
    headers = {"authorization": f"Bearer {config.restate_token}"} if config.restate_token else {}
    deadline = time.monotonic() + timeout_s
    with local_http() as http:
        while True:
            reasons = []
            for admin in config.restate_admin_urls:
                try:
                    answer = http.get(f"{admin}/health", headers=headers)
                    if answer.status_code == 200:
                        return
                    reasons.append(f"{admin}: HTTP {answer.status_code}")
                except httpx.HTTPError as exc:
                    reasons.append(f"{admin}: {type(exc).__name__} {exc}")
            reason = "; ".join(reasons)
            if time.monotonic() >= deadline:
                raise StartTimeoutError(
                    f"The Restate server at RESTATE_ADMIN_URL={config.restate_admin_url} does not "
                    f"answer GET /health ({reason}). Start it, or unset RESTATE_ADMIN_URL and "
                    "RESTATE_INGRESS_URL to run the embedded restate-server.",
                    name="restate",
                    log_path=None,
                    log_tail="",
                )
            time.sleep(config.poll_interval_s)


BIND_ATTEMPTS = 3
"""Starts tried when a process finds its port taken between our choice and its bind."""


def _start_fresh(config: StackConfig, timeout_s: float) -> Stack:
    """Start every process in `config.home` (callers hold the home lock) and wait until it is
    ready (`_start_once`). A port chosen free can be taken by another program before our process
    binds it (two stacks starting at once): that start is undone and tried again on ports free
    now, at most BIND_ATTEMPTS times, with a warning naming the port."""
    deadline = time.monotonic() + timeout_s
    for attempt in range(1, BIND_ATTEMPTS + 1):
        try:
            return _start_once(config, deadline)
        except ProcessExitedError as exc:
            if not _lost_its_port(exc.log_tail):
                raise
            if attempt == BIND_ATTEMPTS:
                raise ProcessExitedError(
                    f"{exc}\nHint: {exc.name!r} could not bind its port: it was free when the "
                    f"start chose it, and another program took it before the process bound it, "
                    f"{BIND_ATTEMPTS} times (or an explicit WORKBENCH_<NAME>_PORT is in use). Stop "
                    "that program, or start again: free ports are picked anew.",
                    name=exc.name,
                    log_path=exc.log_path,
                    log_tail=exc.log_tail,
                ) from None
            warnings.warn(
                f"Process {exc.name!r} found its port taken by another program between the "
                f"choice and its bind; starting again on other ports (attempt {attempt + 1} of "
                f"{BIND_ATTEMPTS}).",
                StackWarning,
                stacklevel=3,
            )
    raise AssertionError("unreachable")


def _lost_its_port(log_tail: str) -> bool:
    """Whether a process's last log lines say its address was in use (hypercorn, Python,
    restate-server and the embedded servers word it this way)."""
    text = log_tail.lower()
    return "address already in use" in text or "addrinuse" in text


def _start_once(config: StackConfig, deadline: float) -> Stack:
    """One start: what can fail before anything runs fails first, then stack.json is written
    and supervisord launched. A failed start stops what it started and removes the deployments
    it registered; a start that succeeds records its ports and deployments for the next one."""
    timeout_s = max(deadline - time.monotonic(), 1.0)
    record = homes.HomeRecord.load(config.home)
    ports, processes = _plan(config, record, timeout_s)
    _prepare_home(config.home, record, processes)
    state = _new_state(config, ports, processes, record.ports)
    state.save()  # before launching: a crash from here on can be cleaned up by stack_id
    stack = Stack(state)
    try:
        _launch(stack, state, config, deadline)
    except BaseException:
        _remove_new_deployments(stack)  # a failed start leaves no deployment behind
        stack.stop(grace_s=2.0, lock_home=False)  # nothing started may outlive a failed start
        raise
    _after_start(stack, config, ports)
    return stack


def _plan(
    config: StackConfig, record: homes.HomeRecord, timeout_s: float
) -> tuple[dict[str, int], list[ManagedProcess]]:
    """The ports and processes of this start, checked before anything runs: PortTakenError,
    BinaryNotFoundError, an external Restate that does not answer (StartTimeoutError)."""
    if config.embedded_langfuse:  # generated once per home, kept in home.json (0600)
        config.langfuse_public_key, config.langfuse_secret_key = record.keys()
    # the ports of the last run when free
    ports = allocate_ports(config.ports, previous=record.ports)
    processes = _build_processes(config, ports, record)
    if not config.embedded_restate:
        _check_external_restate(config, timeout_s)
    return ports, processes


def _prepare_home(
    home: Path, record: homes.HomeRecord, processes: Sequence[ManagedProcess]
) -> None:
    """The home folder's layout, its record (the keys, before any process uses them), the
    config files of a cluster's nodes, and an empty log for each process of this run (the
    previous run's kept as <name>.previous.log)."""
    homes.prepare(home)
    record.save(home)
    for process in processes:
        if isinstance(process, RestateProcess):
            process.write_config()
    for process in processes:
        log = process.log_path(home)
        if log.exists():
            log.replace(log.with_name(f"{process.name}.previous.log"))


def _new_state(
    config: StackConfig,
    ports: dict[str, int],
    processes: Sequence[ManagedProcess],
    previous_ports: Mapping[str, int],
) -> StackState:
    """What stack.json records of this start: a new stack id, supervisord (its config written,
    its pid not known yet), the processes, the URLs of each part, which parts are external, and
    the ports moved off their default (or off `previous_ports`, the last run's)."""
    stack_id = uuid.uuid4().hex
    return StackState(
        home=str(config.home),
        project=str(config.project),
        stack_id=stack_id,
        persistent=config.persistent,
        started_at=time.time(),
        supervisor=_write_supervisor_config(
            config, ports["supervisor"], processes, identifier=f"workbench-{stack_id[:12]}"
        ),
        processes={process.name: {**process.to_state(), "pid": None} for process in processes},
        urls=_urls(config, processes),
        restate=_restate_endpoints(config, processes),
        external={
            "llm": not config.embedded_llm,
            "restate": not config.embedded_restate,
            "langfuse": not config.embedded_langfuse,
        },
        langfuse_keys=[str(config.langfuse_public_key), str(config.langfuse_secret_key)]
        if config.tracing
        else [],
        ports=ports,
        moved_ports=[
            asdict(move) for move in port_moves(config.ports, ports, previous=previous_ports)
        ],
    )


def _write_supervisor_config(
    config: StackConfig, port: int, processes: Sequence[ManagedProcess], *, identifier: str
) -> dict[str, Any]:
    """Write supervisord.conf (0600: it holds a new XML-RPC password) for `processes`; returns
    what stack.json records of supervisord."""
    username, password = "workbench", secrets.token_urlsafe(18)
    config_path = config.home / "supervisord.conf"
    text = render_config(
        home=config.home,
        project=config.project,
        port=port,
        username=username,
        password=password,
        identifier=identifier,
        processes=processes,
    )
    fd = os.open(config_path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "w") as file:
        file.write(text)
    return {
        "pid": None,
        "port": port,
        "url": f"http://127.0.0.1:{port}",
        "username": username,
        "password": password,
        "identifier": identifier,
        "config": str(config_path),
    }


def _urls(config: StackConfig, processes: Sequence[ManagedProcess]) -> dict[str, Any]:
    """Where each part answers: the embedded process's address, else the configured URL."""

    def embedded(kind: type[ManagedProcess], attribute: str, configured: Any) -> Any:
        return next((getattr(p, attribute) for p in processes if isinstance(p, kind)), configured)

    first = _restate_endpoints(config, processes)
    return {
        "ingress": first["ingress"][0],
        "admin": first["admin"][0],
        "llm": embedded(LlmProcess, "openai_base_url", config.openai_base_url),
        "services": next(p.url for p in processes if isinstance(p, ServicesProcess)),
        "langfuse": embedded(
            LangfuseProcess, "url", config.langfuse_base_url if config.tracing else None
        ),
    }


def _restate_endpoints(config: StackConfig, processes: Sequence[ManagedProcess]) -> dict[str, Any]:
    """Every Restate node's ingress, admin and node-to-node address (the embedded ones, else the
    configured URLs), restatectl for a cluster, and the configured token (Restate Cloud)."""
    nodes = [p for p in processes if isinstance(p, RestateProcess)]
    if nodes:
        ingress = [n.ingress_url for n in nodes]
        admin = [n.admin_url for n in nodes]
        node_urls = [n.node_url for n in nodes] if len(nodes) > 1 else []
    else:
        ingress, admin, node_urls = config.restate_ingress_urls, config.restate_admin_urls, []
    restatectl = config.restatectl() if node_urls else None
    return {
        "ingress": ingress,
        "admin": admin,
        "nodes": node_urls,
        "restatectl": str(restatectl) if restatectl else None,
        "token": config.restate_token,
    }


def _launch(stack: Stack, state: StackState, config: StackConfig, deadline: float) -> None:
    """Run supervisord and record its pid once it answers; wait until every required process
    is ready (any exit fails the start) and the optional ones are up or warned about (the
    prompts seeded into Langfuse meanwhile); then register the services with Restate and record
    the pids."""
    launch_supervisord(
        stack.config_path,
        env={
            **config.environ,
            "WORKBENCH_STACK_ID": state.stack_id,
            "WORKBENCH_HOME": str(stack.home),
            "PYTHONUNBUFFERED": "1",
        },
        output_path=stack.home / "logs" / "supervisord.out",
        timeout_s=max(deadline - time.monotonic(), 5.0),
    )
    state.supervisor["pid"] = wait_answering(
        stack.supervisor,
        timeout_s=max(deadline - time.monotonic(), 5.0),
        poll_interval_s=config.poll_interval_s,
    )
    state.save()
    # Langfuse (optional) answers in 1-2 s, the services after their import (5 s): its wait and
    # the prompts' seeding are done while the services import, not after them.
    _wait_optional(stack, deadline, config.poll_interval_s)
    _seed(config, stack.langfuse_url)
    stack.wait_up(
        stack.required_names,
        timeout_s=max(deadline - time.monotonic(), 0.0),
        poll_interval_s=config.poll_interval_s,
        starting=True,
    )
    with local_http() as http:
        for process in stack.processes.values():
            process.after_ready(
                http,
                timeout_s=min(config.registration_timeout_s, max(deadline - time.monotonic(), 1.0)),
                poll_interval_s=config.poll_interval_s,
            )
    stack.record_pids()


def _after_start(stack: Stack, config: StackConfig, ports: dict[str, int]) -> None:
    """Remember this start's ports and deployments in home.json (the next start reuses them),
    resume what an outage paused, warn about a model that does not answer, secure the home."""
    deployments = stack.deployment_ids
    services = [p for p in stack.processes.values() if isinstance(p, ServicesProcess)]
    homes.update(
        stack.home,
        ports=ports,
        deployments=deployments,
        journal_revisions={
            **{p.deployment_id: p.deployment_revision for p in services if p.deployment_id},
            **{i: r for p in services for i, r in p.older_deployments.items()},
        },
        older_deployments={p.name: p.older_deployments for p in services},
    )
    _resume_paused(stack, stack.served_deployment_ids)
    _check_model(stack, config.environ)
    homes.secure(stack.home)


def _wait_optional(stack: Stack, deadline: float, poll_interval_s: float) -> None:
    """Wait (briefly) for the optional processes; one that does not come up is a warning."""
    for name in stack.names:
        process = stack.process(name)
        if not process.optional:
            continue
        timeout_s = min(max(deadline - time.monotonic(), 0.5), OPTIONAL_WAIT_S)
        try:
            stack.wait_up([name], timeout_s=timeout_s, poll_interval_s=poll_interval_s)
        except StackError as e:
            first = str(e).splitlines()[0]
            _warn(
                f"the embedded {name} at {process.url} did not come up ({first}); the stack runs "
                f"without it: claims complete untraced, on the prompts of data/prompts/ "
                f"(see {process.log_path(stack.home)})"
            )


def _seed(config: StackConfig, url: str | None) -> None:
    """The prompts of data/prompts/ into the Langfuse at `url` (none: tracing off); Langfuse
    down is a warning, not a stop."""
    if not url:
        return
    try:
        seed_prompts(
            str(url),
            (str(config.langfuse_public_key), str(config.langfuse_secret_key)),
            config.data_dir,
        )
    except LangfuseUnreachableError as e:
        _warn(
            f"{e}: starting anyway; the services use the prompts of data/prompts/ and traces "
            "wait until it answers (the prompts are seeded at the next start)"
        )


def _remove_new_deployments(stack: Stack) -> None:
    """Remove the deployments this (failed) start registered; a deployment it only moved is
    kept, with the invocations pinned to it. Best effort: Restate may be what failed."""
    created = [
        p
        for p in stack.processes.values()
        if isinstance(p, ServicesProcess) and p.created_deployment and p.deployment_id
    ]
    if not created:
        return
    with local_http() as http:
        for process in created:
            with contextlib.suppress(StackError, httpx.HTTPError):
                RestateAdmin(str(process.admin_url), http, token=stack.restate_token).remove(
                    str(process.deployment_id)
                )


def _resume_paused(stack: Stack, deployment_ids: list[str]) -> None:
    """Resume the invocations of our deployments that an outage paused (a model or service
    outage longer than the retry window); one line says how many."""
    if not deployment_ids:
        return
    try:
        with local_http(10.0) as http:
            resumed = stack.admin(http).resume_paused(deployment_ids)
    except (StackError, RestateError, httpx.HTTPError) as e:  # the start itself succeeded
        _warn(f"could not resume the paused invocations at {stack.admin_url}: {e}")
        return
    if resumed:
        _warn(
            f"resumed {len(resumed)} paused invocation(s) at {stack.admin_url} "
            f"(paused by an earlier outage): {', '.join(resumed[:5])}"
            + (" ..." if len(resumed) > 5 else "")
        )


def model_problem(base_url: str, api_key: str, timeout_s: float = 5.0) -> str | None:
    """Why the model endpoint at `base_url` does not answer `GET /models`, or None when it does."""
    url = f"{base_url.rstrip('/')}/models"
    try:
        with httpx.Client(timeout=timeout_s) as http:
            response = http.get(url, headers={"Authorization": f"Bearer {api_key}"})
    except httpx.HTTPError as e:
        return f"GET {url}: {type(e).__name__} {e}".strip()
    if response.status_code in (401, 403):
        return f"GET {url}: HTTP {response.status_code} (check OPENAI_API_KEY)"
    if not response.is_success:
        return f"GET {url}: HTTP {response.status_code} (check OPENAI_BASE_URL)"
    return None


def _check_model(stack: Stack, environ: Mapping[str, str], timeout_s: float = 5.0) -> None:
    """One warning when the model the services use does not answer `GET /models`."""
    base_url = stack.urls.get("llm")
    if not base_url:
        return
    services = [p for p in stack.processes.values() if isinstance(p, ServicesProcess)]
    key = next((p.env["OPENAI_API_KEY"] for p in services if p.env.get("OPENAI_API_KEY")), None)
    problem = model_problem(base_url, key or environ.get("OPENAI_API_KEY", ""), timeout_s)
    if problem:
        _warn(
            f"the model endpoint {base_url} does not answer ({problem}); claims wait for it "
            "(retried, paused after WORKBENCH_OUTAGE_WINDOW_S)"
        )


def _warn(message: str) -> None:
    warnings.warn(StackWarning(message), stacklevel=5)  # start() (its caller when attaching)


def stop(home: str | os.PathLike[str] | None = None, *, grace_s: float = 5.0) -> bool:
    """Stop the stack recorded in `home`. False when there was nothing to stop."""
    path = resolve_home(home)
    if not (path / STATE_FILE).exists():
        return False
    with home_lock(path):
        state = StackState.load(path)
        if state is None:
            remove_state(path)
            return False
        Stack(state).stop(grace_s, lock_home=False)
    return True


def status(home: str | os.PathLike[str] | None = None) -> pd.DataFrame:
    """The status table of the stack recorded in `home` (empty when none is recorded)."""
    import pandas as pd

    state = StackState.load(resolve_home(home))
    if state is None:
        return pd.DataFrame(columns=STATUS_COLUMNS)
    return Stack(state).status()


def status_rows(home: str | os.PathLike[str] | None = None) -> list[dict[str, Any]]:
    """`status(home)` as plain rows, without pandas (empty when no stack is recorded)."""
    state = StackState.load(resolve_home(home))
    return Stack(state).status_rows() if state is not None else []
