"""Service versions side by side: deploy a new version beside the old one, see which version
every claim is pinned to, retire the old one once drained, and what goes wrong without it.

    wb.deploy("v2")          # services-v2: another supervised process, a NEW Restate deployment
    wb.deployments()         # id, version, uri, created, latest, pinned in-flight invocations
    wb.in_flight()           # the claims still running, by the deployment they are pinned to
    wb.pinning(claims)       # per claim: pinned deployment and its version, the trace's version
    wb.retire("v1")          # refused while something is pinned to v1; removed once drained

Restate sends a new invocation to the latest deployment of its service and keeps an invocation
that started on a deployment there (`sys_invocation.pinned_deployment_id`) through every retry
and replay, so a claim waiting days for a human finishes on the code that wrote its journal.

The counter-example, replacing code in place under the same deployment:

    wb.replace_code("v1", with_version="v2")   # the v1 deployment's process now runs v2 code
    wb.approve(waiting.id, wait=False)         # the replay meets v2's extra step: mismatch
    wb.wait_for_failure(waiting.id)            # Restate: [570 Journal mismatch] ..., retrying
    wb.restore_code("v1")                      # v1 code back on that deployment
    wb.wait_for_claim(waiting.id)              # the claim finishes, nothing lost or doubled
"""

from __future__ import annotations

import asyncio
import json
import re
import time
from pathlib import Path
from typing import Any

import httpx
import pandas as pd

from ._aio import run_sync
from .restate_admin import RestateAdmin, _literal
from .session import endpoints

__all__ = [
    "DeploymentInUseError",
    "DeploymentNotFoundError",
    "deploy",
    "deployments",
    "in_flight",
    "pinning",
    "replace_code",
    "restore_code",
    "retire",
    "wait_for_claim",
    "wait_for_failure",
]

WORKFLOW = "ClaimWorkflow"
HISTORY_FILE = "deployments.json"
"""In the stack's home: every deployment seen, with the version it was registered as (kept
after it is retired, so old claims stay attributable)."""
_VERSION = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._-]{0,31}$")
DEPLOYMENT_COLUMNS = [
    "id",
    "version",
    "code",
    "process",
    "uri",
    "created",
    "latest",
    "pinned_in_flight",
    "pinned_claims",
]
IN_FLIGHT_COLUMNS = [
    "deployment_id",
    "version",
    "claim_id",
    "target",
    "status",
    "retry_count",
    "last_failure",
]
PINNING_COLUMNS = [
    "claim_id",
    "status",
    "service_version",
    "deployment_id",
    "deployment_version",
    "trace_version",
]


class DeploymentInUseError(RuntimeError):
    """A deployment cannot be retired yet: invocations are pinned to it, or it serves new
    claims. The message names them and says what to do."""


class DeploymentNotFoundError(LookupError):
    """No deployment runs that version; the message lists the versions there are."""


# -- the stack and Restate ------------------------------------------------------------------------
def _stack() -> Any:
    from . import current
    from .stack.programs import refresh

    return refresh(current())


def _check_version(version: str) -> str:
    if not isinstance(version, str) or not _VERSION.match(version):
        raise ValueError(
            f"Version {version!r} is not a version name: use 1-32 letters, digits, '.', '_' "
            "or '-', such as 'v2'."
        )
    return version


def _admin_get(path: str) -> Any:
    with httpx.Client(timeout=30.0, trust_env=False) as http:
        response = http.get(f"{endpoints().admin_url}{path}")
    response.raise_for_status()
    return response.json()


def _sql(sql: str) -> list[dict[str, Any]]:
    return run_sync(RestateAdmin(endpoints().admin_url).aquery(sql))


def _unfinished() -> list[dict[str, Any]]:
    return _sql(
        "SELECT id, target_service_name, target_handler_name, target_service_key, status, "
        "retry_count, last_failure, pinned_deployment_id, created_at FROM sys_invocation "
        "WHERE status != 'completed' ORDER BY created_at"
    )


def _latest_ids() -> set[str]:
    """The deployments new invocations go to (the latest one of each service)."""
    answer = _admin_get("/services")
    return {s["deployment_id"] for s in answer.get("services", []) if s.get("deployment_id")}


# -- the history of versions ----------------------------------------------------------------------
def _history_path(stack: Any) -> Path:
    return Path(stack.home) / HISTORY_FILE


def _history(stack: Any) -> dict[str, dict[str, Any]]:
    try:
        return json.loads(_history_path(stack).read_text())
    except (FileNotFoundError, json.JSONDecodeError):
        return {}


def _save_history(stack: Any, history: dict[str, dict[str, Any]]) -> None:
    path = _history_path(stack)
    tmp = path.with_suffix(".json.tmp")
    tmp.write_text(json.dumps(history, indent=2) + "\n")
    tmp.replace(path)


def _services_processes(stack: Any) -> dict[str, Any]:
    """URI -> the stack's services process serving it."""
    from .stack.processes import ServicesProcess

    return {
        p.url.rstrip("/"): p for p in stack._processes.values() if isinstance(p, ServicesProcess)
    }


def _code_version(process: Any) -> str:
    return process.env.get("SERVICE_VERSION", "v1")


def _version_of(stack: Any) -> dict[str, str]:
    """Deployment id -> the version it was registered as (retired ones included)."""
    return {i: d["version"] for i, d in _history(stack).items() if d.get("version")}


# -- the tables -----------------------------------------------------------------------------------
def deployments() -> pd.DataFrame:
    """One row per deployment registered with Restate: its id, the `version` it was registered
    as, the `code` version its process runs now (they differ only after `replace_code`), the
    stack process serving it, its uri, when it was created, whether it is the `latest` (new
    claims go there), and the in-flight invocations pinned to it (count and claim ids)."""
    stack = _stack()
    listed = _admin_get("/deployments").get("deployments", [])
    processes = _services_processes(stack)
    history = _history(stack)
    unfinished = _unfinished()
    latest = _latest_ids()
    rows = []
    changed = False
    for d in listed:
        uri = str(d.get("uri") or (d.get("http") or {}).get("uri") or "").rstrip("/")
        process = processes.get(uri)
        code = _code_version(process) if process is not None else None
        known = history.get(d["id"])
        if known is None:
            known = {"version": code, "uri": uri, "created": d.get("created_at"), "retired": None}
            history[d["id"]] = known
            changed = True
        pinned = [u for u in unfinished if u.get("pinned_deployment_id") == d["id"]]
        rows.append(
            {
                "id": d["id"],
                "version": known.get("version") or code,
                "code": code,
                "process": process.name if process is not None else None,
                "uri": uri,
                "created": pd.Timestamp(d["created_at"]) if d.get("created_at") else pd.NaT,
                "latest": d["id"] in latest,
                "pinned_in_flight": len(pinned),
                "pinned_claims": sorted({str(u["target_service_key"]) for u in pinned}),
            }
        )
    if changed:
        _save_history(stack, history)
    frame = pd.DataFrame(rows, columns=DEPLOYMENT_COLUMNS)
    return frame.sort_values("created", kind="stable").reset_index(drop=True)


def in_flight() -> pd.DataFrame:
    """Every invocation not completed yet (the claims' workflows, the judge's evaluations), with
    the deployment it is pinned to and that deployment's version; none pinned yet: not started."""
    deployments()  # records the version of any deployment not seen before
    versions = _version_of(_stack())
    rows = [
        {
            "deployment_id": u.get("pinned_deployment_id"),
            "version": versions.get(u.get("pinned_deployment_id") or ""),
            "claim_id": u["target_service_key"],
            "target": f"{u['target_service_name']}/{u['target_handler_name']}",
            "status": u["status"],
            "retry_count": u.get("retry_count"),
            "last_failure": u.get("last_failure"),
        }
        for u in _unfinished()
    ]
    frame = pd.DataFrame(rows, columns=IN_FLIGHT_COLUMNS)
    frame["retry_count"] = pd.to_numeric(frame["retry_count"]).astype("Int64")
    return frame.sort_values(["version", "claim_id"], kind="stable").reset_index(drop=True)


def _trace_version(trace_id: str | None, timeout_s: float) -> str | None:
    """The service version on the trace's own (non-Restate) observations, once exported."""
    if not trace_id:
        return None
    from .observability import traces

    deadline = time.monotonic() + timeout_s
    while True:
        frame = traces(trace_id=trace_id)
        versions = frame.loc[~frame["restate"].astype(bool), "version"].dropna()
        if not versions.empty:
            return str(versions.mode().iloc[0])
        if time.monotonic() >= deadline:
            return None
        time.sleep(0.25)


def pinning(claims: Any, *, trace: bool = True, timeout_s: float = 30.0) -> pd.DataFrame:
    """Per claim (Claim objects or ids): its status, the service version in its outcome, the
    deployment its workflow is pinned to and that deployment's version, and (trace=True) the
    `service.version` its trace's spans carry (waits up to timeout_s for the trace)."""
    from .claims import claim as read_claim
    from .observability import trace_id_for

    ids = [c if isinstance(c, str) else c.id for c in ([claims] if _single(claims) else claims)]
    deployments()
    versions = _version_of(_stack())
    rows = []
    for claim_id in ids:
        current = read_claim(claim_id)
        pinned = _sql(
            "SELECT pinned_deployment_id FROM sys_invocation "
            f"WHERE target_service_name = {_literal(WORKFLOW)} "
            f"AND target_service_key = {_literal(claim_id)} AND target_handler_name = 'run' "
            "ORDER BY created_at DESC LIMIT 1"
        )
        deployment_id = pinned[0].get("pinned_deployment_id") if pinned else None
        trace_id = current.outcome.trace_id if current.outcome else None
        if trace and trace_id is None:
            trace_id = trace_id_for(claim_id)
        rows.append(
            {
                "claim_id": claim_id,
                "status": current.status,
                "service_version": current.outcome.service_version if current.outcome else None,
                "deployment_id": deployment_id,
                "deployment_version": versions.get(deployment_id or ""),
                "trace_version": _trace_version(trace_id, timeout_s) if trace else None,
            }
        )
    return pd.DataFrame(rows, columns=PINNING_COLUMNS)


def _single(claims: Any) -> bool:
    return isinstance(claims, str) or hasattr(claims, "outcome")


# -- deploy and retire ----------------------------------------------------------------------------
def deploy(version: str, *, timeout_s: float = 60.0) -> pd.DataFrame:
    """Run `version` of the services as another supervised process on a free port (named
    `services-<version>`, or `services` when that name is free) with SERVICE_VERSION=version,
    and register it with Restate as a new deployment beside the others: new claims go to it,
    claims in flight stay on the deployment they started on. Idempotent: a version already
    running is not deployed twice. Returns `deployments()`."""
    from .stack.errors import StackError
    from .stack.ports import free_port, port_is_free
    from .stack.processes import ServicesProcess, register_deployment
    from .stack.programs import add_program
    from .stack.stack import local_http

    _check_version(version)
    stack = _stack()
    table = deployments()
    running = (table["version"] == version) & (table["code"] == version)
    if (running & table["process"].notna()).any():
        return table
    processes = _services_processes(stack)
    if not processes:
        raise StackError(
            f"The stack in {stack.home} runs no services process to deploy a version beside."
        )
    template = stack._processes.get("services") or next(iter(processes.values()))
    name = "services" if "services" not in stack.names else f"services-{version}"
    if name in stack.names:
        raise StackError(
            f"A process {name!r} already runs (code version "
            f"{_code_version(stack._processes[name])}): restore_code({version!r}) or retire it."
        )
    port = free_port()
    if name == "services":  # the primary slot comes back on its own address when it can
        previous = str(stack._state.urls.get("services") or "").rsplit(":", 1)[-1]
        if previous.isdigit() and port_is_free(int(previous)):
            port = int(previous)
    process = ServicesProcess(
        name=name,
        command=[str(port) if part == str(template.port) else part for part in template.command],
        port=port,
        env={**template.env, "SERVICE_VERSION": version},
        admin_url=template.admin_url,
        register=False,  # registered below, without force: a new URI is a new deployment
    )
    add_program(stack, process, timeout_s=timeout_s)
    try:
        with local_http() as http:
            registered = register_deployment(
                http,
                str(template.admin_url),
                process.url,
                timeout_s=timeout_s,
                poll_interval_s=0.05,
                force=False,
            )
    except BaseException:
        from .stack.programs import remove_program

        remove_program(stack, name)
        raise
    _record_deployment(stack, process, registered, version)
    return deployments()


def _record_deployment(stack: Any, process: Any, registered: dict[str, Any], version: str) -> None:
    from .stack.stack import home_lock

    history = _history(stack)
    history[registered["id"]] = {
        "version": version,
        "uri": process.url,
        "created": pd.Timestamp.now(tz="UTC").isoformat(),
        "retired": None,
    }
    _save_history(stack, history)
    with home_lock(stack.home):  # from now on the stack re-registers it if it goes missing
        process.register = True
        stack._state.processes[process.name].update(register=True)
        if process.name == "services":
            stack._state.urls["services"] = process.url
        stack._state.save()


def _rows_for(table: pd.DataFrame, version: str) -> pd.DataFrame:
    rows = table[table["version"] == version]
    if rows.empty:
        there = ", ".join(sorted(table["version"].dropna().unique())) or "none"
        raise DeploymentNotFoundError(
            f"No deployment registered as version {version!r}; the versions deployed are: "
            f"{there}. See workbench.deployments()."
        )
    return rows


def retire(version: str) -> pd.DataFrame:
    """Remove the deployment(s) of `version` from Restate and stop their process, once nothing
    is pinned to them. Refuses (DeploymentInUseError, naming the claims) while an invocation
    is pinned to it, and while it is the latest (it would still receive new claims). Returns
    `deployments()`."""
    from .stack.programs import remove_program

    _check_version(version)
    stack = _stack()
    rows = _rows_for(deployments(), version)
    for row in rows.itertuples():
        if row.pinned_in_flight:
            claims = ", ".join(row.pinned_claims)
            raise DeploymentInUseError(
                f"Deployment {row.id} (version {version}) cannot be retired: "
                f"{row.pinned_in_flight} in-flight invocation(s) are pinned to it, for claims "
                f"{claims}. They can only finish on it: approve or reject the ones awaiting "
                "review (or wait for them to end), then retire again. workbench.in_flight() "
                "lists them."
            )
        if row.latest:
            raise DeploymentInUseError(
                f"Deployment {row.id} (version {version}) cannot be retired: it is the latest "
                "deployment, so new claims go to it. Deploy the version that replaces it first "
                "(workbench.deploy(...)), then retire this one."
            )
    history = _history(stack)
    with httpx.Client(timeout=30.0, trust_env=False) as http:
        for row in rows.itertuples():
            # Restate 1.7 deletes only with force (501 otherwise); nothing is pinned (checked)
            response = http.delete(f"{endpoints().admin_url}/deployments/{row.id}?force=true")
            if not response.is_success:
                raise RuntimeError(
                    f"Restate refused to delete deployment {row.id}: HTTP "
                    f"{response.status_code} {response.text.strip()[:500]}"
                )
            history.setdefault(row.id, {"version": version, "uri": row.uri})
            history[row.id]["retired"] = pd.Timestamp.now(tz="UTC").isoformat()
            if row.process:
                remove_program(stack, row.process)
    _save_history(stack, history)
    return deployments()


# -- the counter-example --------------------------------------------------------------------------
def replace_code(
    deployment_version: str = "v1", with_version: str = "v2", *, timeout_s: float = 60.0
) -> pd.DataFrame:
    """What not to do: restart the process of the `deployment_version` deployment with
    SERVICE_VERSION=`with_version`, under the same URI, and register it again (force: same
    deployment id, new code). Invocations pinned to it replay their journal on code that
    takes a different path: Restate reports a journal mismatch and retries (then pauses); it
    never runs the new code on the old journal. `restore_code` puts the old code back."""
    from .stack.processes import ServicesProcess
    from .stack.programs import replace_program

    _check_version(deployment_version)
    _check_version(with_version)
    stack = _stack()
    rows = _rows_for(deployments(), deployment_version)  # records its version first
    named = rows[rows["process"].notna()]
    if named.empty:
        raise DeploymentNotFoundError(
            f"The deployment of version {deployment_version!r} has no process in this stack "
            "(it runs elsewhere, or was retired)."
        )
    current = stack._processes[named.iloc[0]["process"]]
    if _code_version(current) != with_version:
        replacement = ServicesProcess(
            name=current.name,
            command=current.command,
            port=current.port,
            env={**current.env, "SERVICE_VERSION": with_version},
            admin_url=current.admin_url,
            register=True,  # re-registered with force: the same deployment id keeps serving
        )
        replace_program(stack, replacement, timeout_s=timeout_s)
    return deployments()


def restore_code(deployment_version: str = "v1", *, timeout_s: float = 60.0) -> pd.DataFrame:
    """Put `deployment_version`'s own code back on its deployment (undoes `replace_code`):
    the claims pinned to it replay on the code that wrote their journal and finish."""
    return replace_code(deployment_version, deployment_version, timeout_s=timeout_s)


def wait_for_failure(
    claim_id: str, *, match: str = "Journal mismatch", timeout_s: float = 60.0
) -> Any:
    """Wait until Restate reports a last failure containing `match` for the claim's workflow;
    returns `workbench.claim(id).attempts` (status, retry count, the failure as Restate words
    it). Raises TimeoutError with the last failure seen otherwise."""
    from .evidence import attempts

    deadline = time.monotonic() + timeout_s
    while True:
        seen = attempts(claim_id)
        if seen.last_failure and match in seen.last_failure:
            return seen
        if seen.status == "completed":
            raise RuntimeError(
                f"Claim {claim_id!r} completed without a failure matching {match!r}: its "
                "deployment ran code that replays its journal (see workbench.deployments())."
            )
        if time.monotonic() >= deadline:
            raise TimeoutError(
                f"Claim {claim_id!r} reported no failure matching {match!r} within "
                f"{timeout_s:g} s (Restate status {seen.status}, last failure: "
                f"{seen.last_failure or 'none'})."
            )
        time.sleep(0.25)


def wait_for_claim(claim_id: str, *, timeout_s: float = 120.0) -> Any:
    """Wait until the claim ended (for a claim resumed by approve(..., wait=False) or by a
    restored deployment); returns the Claim with its outcome."""
    from .claims import _attach, _check_id, _client, _wait

    _check_id(claim_id)

    async def wait() -> Any:
        async with _client() as http:
            done = _wait(http, claim_id, lambda: _attach(http, claim_id), 0.5, stop_at_review=False)
            try:
                return await asyncio.wait_for(done, timeout_s)
            except TimeoutError:
                raise TimeoutError(
                    f"Claim {claim_id!r} did not end within {timeout_s:g} s: "
                    f"workbench.claim({claim_id!r}).attempts shows why."
                ) from None

    return run_sync(wait())
