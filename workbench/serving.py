"""Your own Restate services, defined in the notebook and served from the kernel (`wb.serve`).

    import restate
    triage = restate.Service("Triage")

    @triage.handler()
    async def run(ctx: restate.Context, message: str) -> Ticket:
        return (await DurableRunner.run(agent, message)).final_output

    served = wb.serve(triage)             # in a thread, registered with the stack's Restate
    done = served.call("run", "Customer C-1007 paid GBP 80 for a GP visit.")
    done.output, done.journal             # the answer, and what Restate recorded on the way
    wb.traces.waterfall(trace_id=done.trace_id)
    served.stop()                         # wb.serve(triage) again comes back at the same address

The server runs in a background thread of the kernel, on its own event loop, bound to 127.0.0.1
on a port kept per service name in the workbench home (`served.json`), so a restarted kernel
serves again at the SAME address: Restate's retries of the invocations that were in flight then
reach it and they resume from their journal. Serving again re-registers the address (force), so
the deployment keeps its id; when the old port is taken, the existing deployment is moved to the
new address in place (`PATCH /deployments/{id}`), never duplicated.

The served code runs like the stack's services: the Agents SDK's default client points at the
stack's model and its traces go to the stack's Langfuse, each agent span a child of the Restate
invocation's span (OpenInference + `RestateTracer`), so an invocation has a journal AND a trace.
Those are settings of the Agents SDK, global to the kernel (`agents=False` leaves them alone).

Servers are resources of this process (a thread and a port each): the ones running are kept
here, by workbench home and service name, and stopped when the kernel exits.
"""

from __future__ import annotations

import importlib
import json
import re
import threading
from pathlib import Path
from typing import TYPE_CHECKING, Any

from ._aio import run_sync
from ._server_thread import ServerThread
from .errors import NotAServiceError, RestateError, ServeError
from .served import Invocation, Served
from .session import Namespace, Session, module_namespace
from .stack.ports import free_port, port_is_free, port_owner

if TYPE_CHECKING:
    from collections.abc import Iterable, Iterator

__all__ = ["Invocation", "Served", "Serving", "check_services"]

RECORD_FILE = "served.json"
"""In the workbench home: per service name, the port it is served on and its deployment id."""
HOST = "127.0.0.1"

_running_lock = threading.Lock()
_running: dict[tuple[str, str], Served] = {}
"""(home, service name) -> the server running it in this process."""


# -- what is served --------------------------------------------------------------------------------
def _service_classes() -> tuple[type, ...]:
    import restate

    return (restate.Service, restate.VirtualObject, restate.Workflow)


def _import(spec: str) -> Any:
    """The object named by 'package.module:attribute'."""
    module_name, _, attribute = spec.partition(":")
    if not module_name or not attribute:
        raise NotAServiceError(
            f"{spec!r} does not name a service: pass the service object itself, or a string "
            "'module:attribute' such as 'my_agents:triage'."
        )
    try:
        module = importlib.import_module(module_name)
    except Exception as e:  # noqa: BLE001 - any import failure is the user's to see, named
        raise ServeError(
            f"Could not import {module_name!r} for {spec!r}: {type(e).__name__}: {e}. Fix the "
            "module (it must import in this kernel: check sys.path and the error above), then "
            "call wb.serve again."
        ) from e
    try:
        return getattr(module, attribute)
    except AttributeError:
        raise ServeError(
            f"Module {module_name!r} has no {attribute!r}: it defines "
            f"{sorted(n for n in vars(module) if not n.startswith('_'))[:20]}."
        ) from None


def _describe(item: Any) -> str:
    text = repr(item)
    return text if len(text) <= 80 else text[:77] + "..."


def _flatten(items: Iterable[Any]) -> Iterator[Any]:
    for item in items:
        if isinstance(item, list | tuple | set):
            yield from _flatten(item)
        else:
            yield item


def check_services(items: Iterable[Any]) -> list[Any]:
    """The Restate services among `items` (objects, 'module:attribute' strings, or lists of
    them), checked: each a service with handlers, no name twice."""
    kinds = _service_classes()
    found: list[Any] = []
    for item in _flatten(items):
        service = _import(item) if isinstance(item, str) else item
        if not isinstance(service, kinds):
            hint = ""
            if callable(service) and hasattr(service, "__wrapped__"):
                hint = " It looks like a handler function: pass the service it belongs to."
            elif type(service).__name__ == "Agent":
                hint = " An Agent is not a service: call it from a handler of one (see below)."
            raise NotAServiceError(
                f"wb.serve serves Restate services (restate.Service, restate.VirtualObject or "
                f"restate.Workflow); got {_describe(service)} of type "
                f"{type(service).__name__}.{hint} Define one with "
                "`svc = restate.Service('Triage')` and an async handler decorated with "
                "`@svc.handler()`, then `wb.serve(svc)`."
            )
        if not service.handlers:
            raise ServeError(
                f"Service {service.name!r} has no handlers: decorate an async function "
                f"`async def run(ctx, ...)` with `@<service>.handler()` before serving it."
            )
        found.append(service)
    if not found:
        raise NotAServiceError("wb.serve needs at least one Restate service: wb.serve(my_service).")
    seen: set[str] = set()
    for service in found:
        if service.name in seen:
            raise ServeError(
                f"Two services are named {service.name!r}: Restate addresses services by "
                "name, so each must have its own."
            )
        seen.add(service.name)
    return found


# -- the records in the home -----------------------------------------------------------------------
def _records_path(session: Session) -> Path:
    return session.home / RECORD_FILE


def _load_records(session: Session) -> dict[str, dict[str, Any]]:
    try:
        data = json.loads(_records_path(session).read_text())
    except (FileNotFoundError, json.JSONDecodeError):
        return {}
    services = data.get("services") if isinstance(data, dict) else None
    return services if isinstance(services, dict) else {}


def _save_records(session: Session, records: dict[str, dict[str, Any]]) -> None:
    path = _records_path(session)
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_suffix(".json.tmp")
    tmp.write_text(json.dumps({"services": records}, indent=2, sort_keys=True) + "\n")
    tmp.replace(path)


def _uri(deployment: dict[str, Any]) -> str:
    uri = deployment.get("uri") or (deployment.get("http") or {}).get("uri") or ""
    return str(uri).rstrip("/")


# -- the namespace ---------------------------------------------------------------------------------
class Serving(Namespace):
    """Services defined in the notebook, served from the kernel (`wb.serve`): `serve`,
    `served`, `stop_all`."""

    def serve(
        self,
        *services: Any,
        port: int | None = None,
        agents: bool = True,
        timeout_s: float = 30.0,
    ) -> Served:
        """Serve Restate services defined in this kernel (`restate.Service`, `VirtualObject`,
        `Workflow`, or 'module:attribute' strings naming them) on 127.0.0.1, in a background
        thread, and register them with the stack's Restate. Their port is kept in the workbench
        home per service name, so serving again (after `stop()` or a kernel restart) comes back
        at the same address and the same deployment; serving a service that runs already
        replaces its server (and stops the services served with it). `agents=True` points the
        Agents SDK's default client at the stack's model and sends its traces to the stack's
        Langfuse. `port` forces a port.

        Example:
            >>> served = wb.serve(triage)
            >>> served.call("run", "Customer C-1007 paid GBP 80 for a GP visit.").output
        """
        checked = check_services(services)
        names = [s.name for s in checked]
        if port is not None and (not isinstance(port, int) or not 0 < port < 65536):
            raise ValueError(
                f"port={port!r} is not a TCP port (1-65535); leave it out to use the one kept "
                "for the service (or a free one)."
            )
        session = self.session
        self._require_stack(session)
        restate = session.restate
        try:
            deployments = run_sync(restate.deployments())
            registered = run_sync(restate.services())
        except RestateError as e:
            raise ServeError(
                f"Cannot serve {names}: {e} Start the stack with wb.start() first."
            ) from None
        records = _load_records(session)
        self._refuse_foreign(names, records, deployments, registered)

        home = str(session.home)
        with _running_lock:
            replaced = {id(s): s for n in names if (s := _running.get((home, n))) is not None}
        freed = set()
        for old in replaced.values():
            freed.add(old.port)
            old.stop()

        if agents:
            self._configure_agents(session)

        import restate as restate_sdk

        app = restate_sdk.app(services=checked)
        label = "+".join(sorted(names))
        log_path = session.home / "logs" / f"served-{re.sub(r'[^A-Za-z0-9._-]', '_', label)}.log"
        recorded = next((records[n]["port"] for n in names if n in records), None)
        chosen = self._choose_port(port, recorded, freed)
        server = ServerThread(app, name=label, log_path=log_path, host=HOST)
        try:
            server.start(chosen, timeout_s=timeout_s)
        except OSError:
            if port is not None:
                raise ServeError(
                    f"Port {port} is taken ({port_owner(port) or 'by another program'}): "
                    "choose another, or leave port= out."
                ) from None
            server.start(free_port(HOST), timeout_s=timeout_s)  # lost a race for the port
        except TimeoutError as e:
            raise ServeError(f"Serving {names} failed: {e}") from None

        try:
            deployment_id, how = self._register(session, server.url, names, records, deployments)
        except RestateError as e:
            server.stop()
            tail = _tail(log_path)
            raise ServeError(
                f"Restate refused to register {names} at {server.url}: {e} Restate must reach "
                "this address: a Restate server on another host or in a container cannot reach "
                "127.0.0.1 of this kernel."
                + (f"\nThe server's log ends with:\n{tail}" if tail else "")
            ) from None

        for name in names:
            records[name] = {"port": server.port, "deployment_id": deployment_id, "url": server.url}
        _save_records(session, records)
        served = Served(session, checked, server, deployment_id, how, on_stop=_forget)
        with _running_lock:
            for name in names:
                _running[(home, name)] = served
        return served

    def served(self) -> list[Served]:
        """The servers running in this kernel for this session's home.

        Example:
            >>> [s.url for s in wb.serving.served()]
        """
        home = str(self.session.home)
        with _running_lock:
            found = {id(s): s for (h, _), s in _running.items() if h == home}
        return list(found.values())

    def stop_all(self, *, deregister: bool = False) -> None:
        """Stop every server running in this kernel for this session's home.

        Example:
            >>> wb.serving.stop_all()
        """
        for served in self.served():
            served.stop(deregister=deregister)

    # -- helpers ---------------------------------------------------------------------------------
    @staticmethod
    def _require_stack(session: Session) -> None:
        stack = session.stack
        if stack is not None and not stack.is_running():
            raise ServeError(
                f"The stack in {session.home} is not running: start it with wb.start() (or "
                "`python -m workbench up`), then serve again."
            )

    @staticmethod
    def _configure_agents(session: Session) -> None:
        from . import _served_runtime

        e = session.endpoints
        if e.llm_url:
            _served_runtime.configure_model(e.llm_url, e.llm_api_key or "workbench-local")
        _served_runtime.configure_tracing(
            e.langfuse_url, e.langfuse_public_key, e.langfuse_secret_key
        )

    @staticmethod
    def _choose_port(explicit: int | None, recorded: int | None, freed: set[int]) -> int:
        if explicit is not None:
            if explicit not in freed and not port_is_free(explicit, HOST):
                raise ServeError(
                    f"Port {explicit} is taken ({port_owner(explicit) or 'by another program'})"
                    ": choose another, or leave port= out (the port kept for the service is "
                    "used, or a free one)."
                )
            return explicit
        if recorded is not None and (recorded in freed or port_is_free(recorded, HOST)):
            return int(recorded)
        return free_port(HOST)

    @staticmethod
    def _refuse_foreign(
        names: list[str],
        records: dict[str, dict[str, Any]],
        deployments: list[dict[str, Any]],
        registered: list[dict[str, Any]],
    ) -> None:
        """A name registered by a deployment wb.serve did not make (the stack's own services,
        another team's) is not taken over: new invocations of it would come here."""
        ours = {r.get("deployment_id") for r in records.values()}
        uris = {d["id"]: _uri(d) for d in deployments}
        for service in registered:
            name, deployment = service.get("name"), service.get("deployment_id")
            if name in names and deployment not in ours:
                raise ServeError(
                    f"A service named {name!r} is already registered with Restate by deployment "
                    f"{deployment} ({uris.get(deployment, '?')}), which wb.serve did not create: "
                    f"serving yours would take its invocations. Give yours another name "
                    f"(restate.Service('My{name}')), or remove that deployment first."
                )

    @staticmethod
    def _register(
        session: Session,
        url: str,
        names: list[str],
        records: dict[str, dict[str, Any]],
        deployments: list[dict[str, Any]],
    ) -> tuple[str, str]:
        """Register `url` and return (deployment id, how)."""
        restate = session.restate
        existing = {d["id"]: _uri(d) for d in deployments}
        if url in existing.values():
            answer = run_sync(restate.register(url, force=True))
            return str(answer["id"]), "registered again at the same address"
        previous = [
            records[n]["deployment_id"]
            for n in names
            if n in records and records[n].get("deployment_id") in existing
        ]
        if previous:
            old = existing[previous[0]]
            answer = run_sync(restate.update_deployment(previous[0], url))
            return str(answer["id"]), f"moved from {old}"
        answer = run_sync(restate.register(url, force=True))
        return str(answer["id"]), "a new deployment"


def _forget(served: Served, deregistered: bool) -> None:
    """A server stopped: no longer running here; deregistered, its port is forgotten too."""
    home = str(served.session.home)
    with _running_lock:
        for name in served.services:
            if _running.get((home, name)) is served:
                del _running[(home, name)]
    if deregistered:
        records = _load_records(served.session)
        for name in served.services:
            if records.get(name, {}).get("deployment_id") == served.deployment_id:
                records.pop(name)
        _save_records(served.session, records)


def _tail(path: Path, lines: int = 15) -> str:
    try:
        return "\n".join(path.read_text(errors="replace").splitlines()[-lines:])
    except OSError:
        return ""


__getattr__, __dir__ = module_namespace(__name__, Serving)
