"""Service versions side by side (`wb.deployments`): deploy a new version beside the old one, see
which version every claim is pinned to, retire the old one once drained, and what goes wrong
without it.

    wb.deployments.deploy("v2")      # services-v2: another supervised process, a NEW deployment
    wb.deployments.list()            # id, version, uri, created, latest, pinned in-flight claims
    wb.deployments.in_flight()       # what still runs, by the deployment it is pinned to
    wb.deployments.pinning(claims)   # per claim: pinned deployment and its version, the trace's
    wb.deployments.retire("v1")      # refused while something is pinned to v1

Restate sends a new invocation to the latest deployment of its service and keeps an invocation
that started on a deployment there (`sys_invocation.pinned_deployment_id`) through every retry
and replay, so a claim waiting days for a human finishes on the code that wrote its journal.

The counter-example, replacing code in place under the same deployment:

    wb.deployments.replace_code("v1", with_version="v2")  # v1's process now runs v2's code
    wb.claims.approve(waiting, wait=False)                 # the replay meets v2's extra step
    wb.deployments.wait_for_failure(waiting)               # Restate: [570 Journal mismatch]
    wb.deployments.restore_code("v1")                      # v1's code back on that deployment
    wb.claims.wait(waiting)                                # it finishes, nothing lost or doubled
"""

from __future__ import annotations

import json
import re
import time
from pathlib import Path
from typing import TYPE_CHECKING, Any

import pandas as pd

from services import names
from services.journal import served_at

from ._aio import run_sync
from .claims import Claim, ClaimsLike, claim_ids
from .errors import DeploymentInUseError, DeploymentNotFoundError, RestateError
from .frames import as_table
from .session import Namespace, module_namespace

if TYPE_CHECKING:
    from .evidence import Attempts
    from .stack import Stack
    from .stack.processes import ServicesProcess

__all__ = ["Deployments"]

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
    "journal_revision",
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
    "restate_status",
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


def check_version(version: str) -> str:
    """`version` if it is a version name (1-32 letters, digits, '.', '_', '-')."""
    if not isinstance(version, str) or not _VERSION.match(version):
        raise ValueError(
            f"Version {version!r} is not a version name: use 1-32 letters, digits, '.', '_' "
            "or '-', such as 'v2'."
        )
    return version


def _code_version(process: ServicesProcess) -> str:
    return process.env.get("SERVICE_VERSION", "v1")


class Deployments(Namespace):
    """Service versions side by side (`wb.deployments`): deploy, list, in_flight, pinning,
    retire, and the counter-example replace_code / restore_code / wait_for_failure."""

    # -- the stack and Restate -----------------------------------------------------------------
    def _stack(self) -> Stack:
        stack = self.session.stack
        if stack is None:
            raise DeploymentNotFoundError(
                "This session is attached to endpoints only: the workbench runs no services "
                "processes here to deploy versions of. Start the stack with wb.start()."
            )
        return stack.reload()

    def _services_processes(self, stack: Stack) -> dict[str, ServicesProcess]:
        """URI -> the stack's services process serving it."""
        from .stack.processes import ServicesProcess

        return {
            p.url.rstrip("/"): p for p in stack.processes.values() if isinstance(p, ServicesProcess)
        }

    def _history_path(self) -> Path:
        return self.session.home / HISTORY_FILE

    def _history(self) -> dict[str, dict[str, Any]]:
        try:
            return json.loads(self._history_path().read_text())
        except (FileNotFoundError, json.JSONDecodeError):
            return {}

    def _save_history(self, history: dict[str, dict[str, Any]]) -> None:
        path = self._history_path()
        tmp = path.with_suffix(".json.tmp")
        tmp.write_text(json.dumps(history, indent=2) + "\n")
        tmp.replace(path)

    def _versions(self) -> dict[str, str]:
        """Deployment id -> the version it was registered as (retired ones included)."""
        return {i: d["version"] for i, d in self._history().items() if d.get("version")}

    # -- the tables ----------------------------------------------------------------------------
    def list(self) -> pd.DataFrame:
        """One row per deployment registered with Restate: its id, the `version` it was
        registered as, the `code` version its process runs now (they differ only after
        `replace_code`), the stack process serving it, its uri, the journal revision it replays
        (an older one drains on its own path of the same process: `services.journal`), when it
        was created, whether it is the `latest` (new claims go there), and the in-flight
        invocations pinned to it.

        Example:
            >>> wb.deployments.list()[["version", "latest", "pinned_in_flight"]]
        """
        stack = self._stack()
        restate = self.session.restate
        listed = run_sync(restate.deployments())
        unfinished = run_sync(restate.invocations(unfinished=True))
        latest = {
            s["deployment_id"] for s in run_sync(restate.services()) if s.get("deployment_id")
        }
        processes = self._services_processes(stack)
        history = self._history()
        rows, changed = [], False
        for d in listed:
            uri = str(d.get("uri") or (d.get("http") or {}).get("uri") or "").rstrip("/")
            base, revision = served_at(uri)  # an older revision drains on its own path
            process = processes.get(base)
            code = _code_version(process) if process is not None else None
            known = history.get(d["id"])
            if known is None:
                known = {
                    "version": code,
                    "uri": uri,
                    "created": d.get("created_at"),
                    "retired": None,
                }
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
                    "journal_revision": revision,
                    "created": pd.Timestamp(d["created_at"]) if d.get("created_at") else pd.NaT,
                    "latest": d["id"] in latest,
                    "pinned_in_flight": len(pinned),
                    "pinned_claims": sorted({str(u["target_service_key"]) for u in pinned}),
                }
            )
        if changed:
            self._save_history(history)
        frame = as_table(pd.DataFrame(rows, columns=DEPLOYMENT_COLUMNS))
        return frame.sort_values("created", kind="stable").reset_index(drop=True)

    def in_flight(self) -> pd.DataFrame:
        """Every invocation not completed yet (the claims' workflows, the judge's evaluations),
        with the deployment it is pinned to and that deployment's version (none pinned yet: not
        started), its status (a claim's as `wb.claims.get` words it: awaiting review, running,
        retrying, paused), Restate's own status, retries and last failure.

        Example:
            >>> wb.deployments.in_flight().query("version == 'v1'")
        """
        from .claims import AsyncClaims

        self.list()  # records the version of any deployment not seen before
        versions = self._versions()
        unfinished = run_sync(self.session.restate.invocations(unfinished=True))
        runs = [
            str(u["target_service_key"])
            for u in unfinished
            if (u["target_service_name"], u["target_handler_name"]) == (names.WORKFLOW, names.RUN)
        ]
        claims = run_sync(AsyncClaims(self.session).get_many(runs)) if runs else []
        status = {c.id: c.status for c in claims}
        rows = [
            {
                "deployment_id": u.get("pinned_deployment_id"),
                "version": versions.get(u.get("pinned_deployment_id") or ""),
                "claim_id": u["target_service_key"],
                "target": f"{u['target_service_name']}/{u['target_handler_name']}",
                "status": status.get(str(u["target_service_key"]), u["status"])
                if u["target_handler_name"] == names.RUN
                else u["status"],
                "restate_status": u["status"],
                "retry_count": u.get("retry_count"),
                "last_failure": u.get("last_failure"),
            }
            for u in unfinished
        ]
        frame = as_table(pd.DataFrame(rows, columns=IN_FLIGHT_COLUMNS))
        frame["retry_count"] = pd.to_numeric(frame["retry_count"]).astype("Int64")
        return frame.sort_values(["version", "claim_id"], kind="stable").reset_index(drop=True)

    def pinning(
        self, claims: ClaimsLike, *, trace: bool = True, timeout_s: float = 30.0
    ) -> pd.DataFrame:
        """Per claim: its status, the service version in its outcome, the deployment its workflow
        is pinned to and that deployment's version, and (trace=True) the `service.version` its
        trace's spans carry (waits up to timeout_s for the trace).

        Example:
            >>> wb.deployments.pinning([*waiting, *new])
        """
        self.list()
        versions = self._versions()
        session = self.session
        rows = []
        for claim_id in claim_ids(claims):
            current = session.claims.get(claim_id)
            assert isinstance(current, Claim)
            invocation = run_sync(session.restate.invocation(names.WORKFLOW, claim_id))
            deployment_id = (invocation or {}).get("pinned_deployment_id")
            rows.append(
                {
                    "claim_id": claim_id,
                    "status": current.status,
                    "service_version": current.outcome.service_version if current.outcome else None,
                    "deployment_id": deployment_id,
                    "deployment_version": versions.get(deployment_id or ""),
                    "trace_version": self._trace_version(current, timeout_s) if trace else None,
                }
            )
        return as_table(pd.DataFrame(rows, columns=PINNING_COLUMNS))

    def _trace_version(self, claim: Claim, timeout_s: float) -> str | None:
        """The service version on the trace's own (non-Restate) observations, once exported."""
        traces = self.session.traces
        trace_id = traces.trace_id(claim)
        deadline = time.monotonic() + timeout_s
        while True:
            frame = traces.get(trace_id=trace_id)
            found = frame.loc[~frame["restate"].astype(bool), "version"].dropna()
            if not found.empty:
                return str(found.mode().iloc[0])
            if time.monotonic() >= deadline:
                return None
            time.sleep(0.25)

    # -- deploy and retire ---------------------------------------------------------------------
    def deploy(self, version: str, *, timeout_s: float = 60.0) -> pd.DataFrame:
        """Run `version` of the services as another supervised process on a free port (named
        `services-<version>`, or `services` when that name is free) with
        SERVICE_VERSION=version, and register it with Restate as a new deployment beside the
        others: new claims go to it, claims in flight stay on the deployment they started on.
        Idempotent: a version already running is not deployed twice; if it is not the latest
        (another version took the new claims since), it is registered again in place (same
        deployment id, pinned claims untouched) and takes the new claims again. Returns
        `list()`.

        Example:
            >>> wb.deployments.deploy("v2")
        """
        from .errors import WorkbenchError
        from .stack.ports import free_port, port_is_free
        from .stack.processes import ServicesProcess

        check_version(version)
        stack = self._stack()
        table = self.list()
        running = (table["version"] == version) & (table["code"] == version)
        ours = table[running & table["process"].notna()]
        if not ours.empty:
            if not ours["latest"].astype(bool).any():  # make it the latest again
                run_sync(self.session.restate.register(str(ours.iloc[-1]["uri"]), force=True))
                return self.list()
            return table
        processes = self._services_processes(stack)
        if not processes:
            raise WorkbenchError(
                f"The stack in {stack.home} runs no services process to deploy a version beside."
            )
        template = stack.processes.get("services") or next(iter(processes.values()))
        name = "services" if "services" not in stack.names else f"services-{version}"
        if name in stack.names:
            raise WorkbenchError(
                f"A process {name!r} already runs (code version "
                f"{_code_version(stack.process(name))}): restore_code({version!r}) or retire it."
            )
        port = free_port()
        if name == "services":  # the primary slot comes back on its own address when it can
            previous = str(stack.urls.get("services") or "").rsplit(":", 1)[-1]
            if previous.isdigit() and port_is_free(int(previous)):
                port = int(previous)
        process = ServicesProcess(
            name=name,
            command=[
                str(port) if part == str(template.port) else part for part in template.command
            ],
            port=port,
            env={**template.env, "SERVICE_VERSION": version},
            admin_url=template.admin_url,
            register=False,  # registered below, without force: a new URI is a new deployment
        )
        stack.add_program(process, timeout_s=timeout_s)
        try:
            registered = run_sync(self.session.restate.register(process.url, force=False))
        except BaseException:
            stack.remove_program(name)
            raise
        self._record_deployment(stack, process, registered, version)
        return self.list()

    def _record_deployment(
        self, stack: Stack, process: ServicesProcess, registered: dict[str, Any], version: str
    ) -> None:
        from .stack.stack import home_lock

        history = self._history()
        history[registered["id"]] = {
            "version": version,
            "uri": process.url,
            "created": pd.Timestamp.now(tz="UTC").isoformat(),
            "retired": None,
        }
        self._save_history(history)
        with home_lock(stack.home):  # from now on the stack re-registers it if it goes missing,
            process.register = True  # and moves this deployment in place if its port moves
            process.deployment_id = registered["id"]
            stack.record_process(process)

    def _rows_for(self, table: pd.DataFrame, version: str) -> pd.DataFrame:
        rows = table[table["version"] == version]
        if rows.empty:
            there = ", ".join(sorted(table["version"].dropna().unique())) or "none"
            raise DeploymentNotFoundError(
                f"No deployment registered as version {version!r}; the versions deployed are: "
                f"{there}. See wb.deployments.list()."
            )
        return rows

    def retire(self, version: str) -> pd.DataFrame:
        """Remove the deployment(s) of `version` from Restate and stop their process, once
        nothing is pinned to them. Refuses (DeploymentInUseError, naming the claims) while an
        invocation is pinned to it, and while it is the latest (it would still receive new
        claims). Returns `list()`.

        Example:
            >>> wb.deployments.retire("v1")
        """
        check_version(version)
        stack = self._stack()
        rows = self._rows_for(self.list(), version)
        for row in rows.itertuples():
            if row.pinned_in_flight:
                raise DeploymentInUseError(
                    f"Deployment {row.id} (version {version}) cannot be retired: "
                    f"{row.pinned_in_flight} in-flight invocation(s) are pinned to it, for claims "
                    f"{', '.join(row.pinned_claims)}. They can only finish on it: approve or "
                    "reject the ones awaiting review (or wait for them to end), then retire "
                    "again. wb.deployments.in_flight() lists them."
                )
            if row.latest:
                raise DeploymentInUseError(
                    f"Deployment {row.id} (version {version}) cannot be retired: it is the "
                    "latest deployment, so new claims go to it. Deploy the version that "
                    "replaces it first (wb.deployments.deploy(...)), then retire this one."
                )
        history = self._history()
        for row in rows.itertuples():
            try:  # nothing is pinned (checked above)
                run_sync(self.session.restate.delete_deployment(row.id, force=True))
            except RestateError as e:
                raise RestateError(f"Restate refused to retire version {version}: {e}") from None
            history.setdefault(row.id, {"version": version, "uri": row.uri})
            history[row.id]["retired"] = pd.Timestamp.now(tz="UTC").isoformat()
            if row.process:
                stack.remove_program(row.process)
        self._save_history(history)
        return self.list()

    # -- the counter-example -------------------------------------------------------------------
    def replace_code(
        self, deployment_version: str = "v1", with_version: str = "v2", *, timeout_s: float = 60.0
    ) -> pd.DataFrame:
        """What not to do: restart the process of the `deployment_version` deployment with
        SERVICE_VERSION=`with_version`, under the same URI, and register it again (force: same
        deployment id, new code). Invocations pinned to it replay their journal on code that
        takes a different path: Restate reports a journal mismatch and retries (then pauses);
        it never runs the new code on the old journal. `restore_code` puts the old code back.

        Example:
            >>> wb.deployments.replace_code("v1", with_version="v2")
        """
        from .stack.processes import ServicesProcess

        check_version(deployment_version)
        check_version(with_version)
        stack = self._stack()
        rows = self._rows_for(self.list(), deployment_version)  # records its version first
        named = rows[rows["process"].notna()]
        if named.empty:
            raise DeploymentNotFoundError(
                f"The deployment of version {deployment_version!r} has no process in this stack "
                "(it runs elsewhere, or was retired)."
            )
        current = stack.process(named.iloc[0]["process"])
        if _code_version(current) != with_version:
            replacement = ServicesProcess(
                name=current.name,
                command=current.command,
                port=current.port,
                env={**current.env, "SERVICE_VERSION": with_version},
                admin_url=current.admin_url,
                register=True,  # re-registered with force: the same deployment id keeps serving
            )
            stack.replace_program(replacement, timeout_s=timeout_s)
        return self.list()

    def restore_code(
        self, deployment_version: str = "v1", *, timeout_s: float = 60.0
    ) -> pd.DataFrame:
        """Put `deployment_version`'s own code back on its deployment (undoes `replace_code`):
        the claims pinned to it replay on the code that wrote their journal and finish.

        Example:
            >>> wb.deployments.restore_code("v1")
        """
        return self.replace_code(deployment_version, deployment_version, timeout_s=timeout_s)

    def wait_for_failure(
        self, claim: Claim | str, *, match: str = "Journal mismatch", timeout_s: float = 60.0
    ) -> Attempts:
        """Wait until Restate reports a last failure containing `match` for the claim's
        workflow; returns its attempts (status, retry count, the failure as Restate words it).
        TimeoutError with the last failure seen otherwise.

        Example:
            >>> print(wb.deployments.wait_for_failure(victim).last_failure)
        """
        faults = self.session.faults
        claim_id = claim_ids(claim)[0]
        deadline = time.monotonic() + timeout_s
        while True:
            seen = faults.attempts(claim_id)
            if seen.last_failure and match in seen.last_failure:
                return seen
            if seen.status == "completed":
                raise RuntimeError(
                    f"Claim {claim_id!r} completed without a failure matching {match!r}: its "
                    "deployment ran code that replays its journal (see wb.deployments.list())."
                )
            if time.monotonic() >= deadline:
                raise TimeoutError(
                    f"Claim {claim_id!r} reported no failure matching {match!r} within "
                    f"{timeout_s:g} s (Restate status {seen.status}, last failure: "
                    f"{seen.last_failure or 'none'})."
                )
            time.sleep(0.25)


__getattr__, __dir__ = module_namespace(__name__, Deployments)
