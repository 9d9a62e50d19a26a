"""Start (or attach to), stop and reset the stack in a home folder: the module functions."""

from __future__ import annotations

import atexit
import contextlib
import os
import secrets
import time
import uuid
import warnings
import xmlrpc.client
from collections.abc import Mapping, Sequence
from dataclasses import asdict
from typing import TYPE_CHECKING, Any

import httpx

from ..clients.restate import RestateAdmin
from . import home as homes
from .config import HOST, LOCAL_OPENAI_API_KEY, StackConfig
from .errors import StackError, StackWarning, StartTimeoutError
from .ports import allocate_ports, port_moves
from .processes import (
    LangfuseProcess,
    LlmProcess,
    ManagedProcess,
    RestateProcess,
    ServicesProcess,
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
    if not stack._is_ours():
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
      persistent=True     False: stopped by an atexit reaper when this interpreter exits
      <name>_port=        llm, ingress, admin, node, services, supervisor (WORKBENCH_<NAME>_PORT);
                          an explicit port must be free (PortTakenError), a default one is
                          replaced by a free one when taken
      openai_base_url=    a real model endpoint: no embedded llm (OPENAI_BASE_URL)
      restate_admin_url=, restate_ingress_url=   an existing Restate server: no restate-server
                          (RESTATE_ADMIN_URL + RESTATE_INGRESS_URL)
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
            stack = _attachable(state)
            if stack is not None:
                try:
                    deadline = time.monotonic() + timeout_s
                    for name in stack.required_names:
                        stack.wait_ready(
                            name,
                            timeout_s=max(deadline - time.monotonic(), 0.1),
                            poll_interval_s=config.poll_interval_s,
                        )
                except (StackError, OSError, xmlrpc.client.Error, httpx.HTTPError):
                    pass  # unhealthy: replaced by a fresh start (which reports any error)
                else:
                    _warn_ignored_ports(config, stack)
                    homes.secure(config.home)
                    _check_model(stack, config.environ, timeout_s=2.0)
                    return stack
            Stack(state)._stop(grace_s=STOP_WAIT_SECS)  # stale: clean up, then start fresh
        stack = _start_fresh(config, timeout_s)
    if not config.persistent:
        atexit.register(stack._reap_at_exit)
    return stack


def _warn_ignored_ports(config: StackConfig, stack: Stack) -> None:
    running = stack.ports
    for name, request in config.ports.items():
        if request.explicit is not None and running.get(name) not in (None, request.explicit):
            warnings.warn(
                f"{request.source} asks for port {request.explicit}, but the stack already "
                f"running in {stack.home} uses {running[name]} for {name}; it was attached to "
                "as it is. Stop it first (`python -m workbench down`) to change ports.",
                stacklevel=3,
            )


def _build_processes(
    config: StackConfig, ports: dict[str, int], deployments: dict[str, str] | None = None
) -> list[ManagedProcess]:
    """The processes of a fresh start. `deployments` maps a services process name to the Restate
    deployment it served last time (it is moved to the new address instead of duplicated)."""
    home = config.home
    common = {"WORKBENCH_HOME": str(home), "PYTHONUNBUFFERED": "1"}
    processes: list[ManagedProcess] = []

    def command(template: Sequence[str], port: int) -> list[str]:
        return [part.format(host=HOST, port=port) for part in template]

    if config.embedded_langfuse:
        langfuse = LangfuseProcess(
            command=[
                *command(config.langfuse_command, ports["langfuse"]),
                "--db",
                str(home / "langfuse.sqlite3"),
            ],
            port=ports["langfuse"],
            env={  # keys in the environment (a 0600 config file), never on the command line
                **common,
                "LANGFUSE_PUBLIC_KEY": str(config.langfuse_public_key),
                "LANGFUSE_SECRET_KEY": str(config.langfuse_secret_key),
                **config.env.get("langfuse", {}),
            },
        )
        processes.append(langfuse)
        langfuse_url = langfuse.url
    else:
        langfuse_url = str(config.langfuse_base_url) if config.tracing else None
    langfuse_env = (
        {
            "LANGFUSE_BASE_URL": langfuse_url,
            "LANGFUSE_PUBLIC_KEY": str(config.langfuse_public_key),
            "LANGFUSE_SECRET_KEY": str(config.langfuse_secret_key),
        }
        if langfuse_url
        else {}
    )

    if config.embedded_llm:
        latency = (
            [] if config.llm_latency_ms is None else ["--latency-ms", f"{config.llm_latency_ms:g}"]
        )
        llm = LlmProcess(
            command=[*command(config.llm_command, ports["llm"]), *latency],
            port=ports["llm"],
            env={**common, **config.env.get("llm", {})},
        )
        processes.append(llm)
        openai_base_url = llm.openai_base_url
    else:
        openai_base_url = str(config.openai_base_url)

    if config.embedded_restate:
        restate = RestateProcess(
            binary=config.restate_server(),
            base_dir=home / "restate",
            port=ports["ingress"],
            admin_port=ports["admin"],
            node_port=ports["node"],
            extra_args=[
                *(tracing_args(langfuse_url) if langfuse_url else []),
                *config.restate_args,
            ],
            env={**(tracing_env(config) if langfuse_url else {}), **config.env.get("restate", {})},
        )
        processes.append(restate)
        admin_url, ingress_url = restate.admin_url, restate.ingress_url
    else:
        admin_url, ingress_url = str(config.restate_admin_url), str(config.restate_ingress_url)

    services_env = {
        **common,
        **langfuse_env,
        "OPENAI_BASE_URL": openai_base_url,
        "WORKBENCH_DATA_DIR": str(config.data_dir),
        "SERVICE_VERSION": config.service_version,
        "RESTATE_INGRESS_URL": ingress_url,
        "RESTATE_ADMIN_URL": admin_url,
    }
    if config.embedded_llm or not config.environ.get("OPENAI_API_KEY"):
        services_env["OPENAI_API_KEY"] = LOCAL_OPENAI_API_KEY  # a real key is inherited instead
    processes.append(
        ServicesProcess(
            command=command(config.services_command, ports["services"]),
            port=ports["services"],
            env={**services_env, **config.env.get("services", {})},
            admin_url=admin_url,
            register=config.register,
            deployment_id=(deployments or {}).get("services"),
        )
    )
    return processes


def _check_external_restate(config: StackConfig, timeout_s: float) -> None:
    url = f"{config.restate_admin_url}/health"
    deadline = time.monotonic() + timeout_s
    with local_http() as http:
        while True:
            try:
                if http.get(url).status_code == 200:
                    return
                reason = "not HTTP 200"
            except httpx.HTTPError as exc:
                reason = f"{type(exc).__name__} {exc}"
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


def _start_fresh(config: StackConfig, timeout_s: float) -> Stack:
    deadline = time.monotonic() + timeout_s
    home = config.home
    record = homes.HomeRecord.load(home)
    if config.embedded_langfuse:  # generated once per home, kept in home.json (0600)
        config.langfuse_public_key, config.langfuse_secret_key = record.keys()
    # the ports of the last run when free (PortTakenError before anything runs)
    ports = allocate_ports(config.ports, previous=record.ports)
    # BinaryNotFoundError before anything runs
    processes = _build_processes(config, ports, record.deployments)
    if not config.embedded_restate:
        _check_external_restate(config, timeout_s)
    homes.prepare(home)
    record.save(home)  # the keys, before any process uses them
    for process in processes:  # this run's log starts empty; keep the previous one
        log = process.log_path(home)
        if log.exists():
            log.replace(log.with_name(f"{process.name}.previous.log"))

    stack_id = uuid.uuid4().hex
    username, password = "workbench", secrets.token_urlsafe(18)
    identifier = f"workbench-{stack_id[:12]}"
    config_path = home / "supervisord.conf"
    text = render_config(
        home=home,
        project=config.project,
        port=ports["supervisor"],
        username=username,
        password=password,
        identifier=identifier,
        processes=processes,
    )
    fd = os.open(config_path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "w") as file:
        file.write(text)

    state = StackState(
        home=str(home),
        project=str(config.project),
        stack_id=stack_id,
        persistent=config.persistent,
        started_at=time.time(),
        supervisor={
            "pid": None,
            "port": ports["supervisor"],
            "url": f"http://127.0.0.1:{ports['supervisor']}",
            "username": username,
            "password": password,
            "identifier": identifier,
            "config": str(config_path),
        },
        processes={process.name: {**process.to_state(), "pid": None} for process in processes},
        urls={
            "ingress": next(
                (p.ingress_url for p in processes if isinstance(p, RestateProcess)),
                config.restate_ingress_url,
            ),
            "admin": next(
                (p.admin_url for p in processes if isinstance(p, RestateProcess)),
                config.restate_admin_url,
            ),
            "llm": next(
                (p.openai_base_url for p in processes if isinstance(p, LlmProcess)),
                config.openai_base_url,
            ),
            "services": next(p.url for p in processes if isinstance(p, ServicesProcess)),
            "langfuse": next(
                (p.url for p in processes if isinstance(p, LangfuseProcess)),
                config.langfuse_base_url if config.tracing else None,
            ),
        },
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
            asdict(move) for move in port_moves(config.ports, ports, previous=record.ports)
        ],
    )
    state.save()  # before launching: a crash from here on can be cleaned up by stack_id
    env = {
        **config.environ,
        "WORKBENCH_STACK_ID": stack_id,
        "WORKBENCH_HOME": str(home),
        "PYTHONUNBUFFERED": "1",
    }
    stack = Stack(state)
    try:
        launch_supervisord(
            config_path,
            env=env,
            output_path=home / "logs" / "supervisord.out",
            timeout_s=max(deadline - time.monotonic(), 5.0),
        )
        state.supervisor["pid"] = wait_answering(
            stack.supervisor,
            timeout_s=max(deadline - time.monotonic(), 5.0),
            poll_interval_s=config.poll_interval_s,
        )
        state.save()
        stack._wait(
            stack.required_names,
            timeout_s=max(deadline - time.monotonic(), 0.0),
            poll_interval_s=config.poll_interval_s,
            fresh=True,
        )
        _wait_optional(stack, deadline, config.poll_interval_s)
        with local_http() as http:
            for process in stack.processes.values():
                remaining_s = max(deadline - time.monotonic(), 1.0)
                process.after_ready(
                    http,
                    timeout_s=min(config.registration_timeout_s, remaining_s),
                    poll_interval_s=config.poll_interval_s,
                )
                if isinstance(process, ServicesProcess):
                    state.processes[process.name]["deployment_id"] = process.deployment_id
        _seed(config, state)
        stack.record_pids()
    except BaseException:
        _remove_new_deployments(stack)  # a failed start leaves no deployment behind
        stack._stop(grace_s=2.0)  # nothing started may outlive a failed start
        raise
    deployments = {
        p.name: p.deployment_id
        for p in stack.processes.values()
        if isinstance(p, ServicesProcess) and p.deployment_id
    }
    homes.update(home, ports=ports, deployments=deployments)
    _resume_paused(stack, list(deployments.values()))
    _check_model(stack, config.environ)
    homes.secure(home)
    return stack


def _wait_optional(stack: Stack, deadline: float, poll_interval_s: float) -> None:
    """Wait (briefly) for the optional processes; one that does not come up is a warning."""
    for name in stack.names:
        process = stack.process(name)
        if not process.optional:
            continue
        timeout_s = min(max(deadline - time.monotonic(), 0.5), OPTIONAL_WAIT_S)
        try:
            stack._wait([name], timeout_s=timeout_s, poll_interval_s=poll_interval_s, fresh=False)
        except StackError as e:
            first = str(e).splitlines()[0]
            _warn(
                f"the embedded {name} at {process.url} did not come up ({first}); the stack runs "
                f"without it: claims complete untraced, on the prompts of data/prompts/ "
                f"(see {process.log_path(stack.home)})"
            )


def _seed(config: StackConfig, state: StackState) -> None:
    """The prompts of data/prompts/ into Langfuse; Langfuse down is a warning, not a stop."""
    url = state.urls.get("langfuse")
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
                RestateAdmin(str(process.admin_url), http).remove(str(process.deployment_id))


def _resume_paused(stack: Stack, deployment_ids: list[str]) -> None:
    """Resume the invocations of our deployments that an outage paused (a model or service
    outage longer than the retry window); one line says how many."""
    if not deployment_ids:
        return
    try:
        with local_http(10.0) as http:
            resumed = RestateAdmin(stack.admin_url, http).resume_paused(deployment_ids)
    except (StackError, httpx.HTTPError) as e:
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
    warnings.warn(StackWarning(message), stacklevel=4)


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
        Stack(state)._stop(grace_s)
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
