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

import asyncio
import html
import importlib
import json
import re
import threading
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

import httpx
import pandas as pd

from ._aio import run_sync
from ._server_thread import ServerThread
from .clients.restate import error_message
from .errors import NotAServiceError, RestateError, ServeError
from .frames import journal_frame, step_journal
from .session import Session, module_namespace, resolve
from .stack.ports import free_port, port_is_free, port_owner

if TYPE_CHECKING:
    from collections.abc import Iterable

__all__ = ["Invocation", "Served", "Serving", "serve"]

RECORD_FILE = "served.json"
"""In the workbench home: per service name, the port it is served on and its deployment id."""
HOST = "127.0.0.1"
_NO_INPUT: Any = object()
_KINDS = {"service": "service", "object": "virtual object", "workflow": "workflow"}
_FAILED = "failed"

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


def check_services(items: Iterable[Any]) -> list[Any]:
    """The Restate services among `items` (objects, 'module:attribute' strings, or lists of
    them), checked: each a service with handlers, no name twice."""
    kinds = _service_classes()
    found: list[Any] = []
    for item in items:
        if isinstance(item, list | tuple | set):
            found.extend(check_services(item))
            continue
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


def _kind(service: Any) -> str:
    return str(service.service_tag.kind)


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


# -- an invocation ---------------------------------------------------------------------------------
@dataclass
class Invocation:
    """One invocation of a served handler: its id, target, status (Restate's: `completed`,
    `running`, `backing-off`, `suspended`, ...; `failed` when it completed with an error), and
    its output once completed."""

    id: str
    target: str
    status: str
    output: Any = None
    error: str | None = None
    served: Served | None = field(default=None, repr=False, compare=False)

    @property
    def done(self) -> bool:
        return self.status in ("completed", _FAILED)

    def _served(self) -> Served:
        if self.served is None:
            raise ServeError(f"Invocation {self.id} is not bound to a served handle.")
        return self.served

    def refresh(self) -> Invocation:
        """Read the invocation's status again from Restate (and its output once it completed).

        Example:
            >>> inv.refresh().status
            'backing-off'
        """
        fresh = self._served().invocation(self.id)
        self.status, self.output, self.error = fresh.status, fresh.output, fresh.error
        return self

    def wait(
        self,
        status: str | Iterable[str] = "completed",
        *,
        timeout_s: float = 60.0,
        poll_interval_s: float = 0.1,
    ) -> Invocation:
        """Wait until Restate reports `status` (or one of several: `"backing-off"` to see an
        attempt fail while the server is down); `"completed"` (the default) also waits for the
        output. TimeoutError saying where it stands after `timeout_s`.

        Example:
            >>> inv.wait("backing-off")     # Restate tried and could not reach the server
            >>> inv.wait().output
        """
        fresh = self._served().wait(
            self, status, timeout_s=timeout_s, poll_interval_s=poll_interval_s
        )
        self.status, self.output, self.error = fresh.status, fresh.output, fresh.error
        return self

    @property
    def journal(self) -> pd.DataFrame:
        """What Restate recorded, one row per step (model calls, `ctx.run` steps, timers,
        output), with results and timings.

        Example:
            >>> inv.journal[["step", "kind", "result"]]
        """
        return self._served().journal(self)

    @property
    def journal_entries(self) -> pd.DataFrame:
        """The journal as Restate stores it (`sys_journal`), one row per entry.

        Example:
            >>> inv.journal_entries["name"].tolist()
        """
        return self._served().journal(self, raw=True)

    @property
    def trace_id(self) -> str | None:
        """The invocation's trace id in Langfuse (Restate's, shared by the agent's spans).

        Example:
            >>> wb.traces.waterfall(trace_id=inv.trace_id)
        """
        row = run_sync(self._served().session.restate.invocation_by_id(self.id))
        value = (row or {}).get("trace_id")
        return str(value) if value else None

    def trace(self, *, timeout_s: float = 30.0, expect: Any = None) -> pd.DataFrame:
        """The invocation's trace from Langfuse, once complete (as `wb.traces.wait`): Restate's
        spans and the agent's spans and generations. `expect` names spans that must be there
        (a handler that calls no model has no generation to wait for).

        Example:
            >>> inv.trace()[["name", "type", "parent"]]
        """
        trace_id = self.trace_id
        if trace_id is None:
            raise ServeError(
                f"Restate has no trace id for invocation {self.id}: is tracing on for the stack "
                "(wb.start(tracing=True), the default)?"
            )
        return self._served().session.traces.wait(
            trace_id=trace_id, timeout_s=timeout_s, expect=expect
        )

    def __repr__(self) -> str:
        text = f"Invocation({self.id}, {self.target}, {self.status}"
        if self.error:
            text += f": {self.error}"
        elif self.status == "completed":
            shown = repr(self.output)
            text += f": {shown if len(shown) <= 300 else shown[:297] + '...'}"
        return text + ")"


# -- a served set of services ----------------------------------------------------------------------
class Served:
    """Services served from this kernel and registered with Restate: `url`, `deployment_id`,
    `handlers`; `call`, `send`, `invocation`, `invocations`, `journal`, `wait`, `stop`."""

    def __init__(
        self,
        session: Session,
        services: list[Any],
        server: ServerThread,
        deployment_id: str,
        registration: str,
    ) -> None:
        self.session = session
        self.services = {s.name: s for s in services}
        self.server = server
        self.deployment_id = deployment_id
        self.registration = registration
        """How Restate took it: a new deployment, registered again at the same address, or an
        existing deployment moved to this address."""

    # -- what it is ------------------------------------------------------------------------------
    @property
    def url(self) -> str:
        return self.server.url

    @property
    def port(self) -> int:
        assert self.server.port is not None
        return self.server.port

    @property
    def running(self) -> bool:
        return self.server.running

    @property
    def log_path(self) -> Path:
        return self.server.log_path

    @property
    def handlers(self) -> dict[str, list[str]]:
        """Service name -> its handler names."""
        return {name: list(s.handlers) for name, s in self.services.items()}

    def __repr__(self) -> str:
        state = "running" if self.running else "stopped"
        lines = [
            f"Served({state} at {self.url}, deployment {self.deployment_id}, {self.registration})"
        ]
        for name, service in self.services.items():
            handlers = ", ".join(service.handlers)
            lines.append(f"  {name} ({_KINDS.get(_kind(service), _kind(service))}): {handlers}")
        lines.append(f"  log: {self.log_path}")
        return "\n".join(lines)

    def _repr_html_(self) -> str:
        state = "running" if self.running else "stopped"
        rows = "".join(
            f"<tr><td><b>{html.escape(name)}</b></td>"
            f"<td>{html.escape(_KINDS.get(_kind(s), _kind(s)))}</td>"
            f"<td>{html.escape(', '.join(s.handlers))}</td></tr>"
            for name, s in self.services.items()
        )
        return (
            f"<p><b>Served</b> ({state}) at <code>{html.escape(self.url)}</code>, deployment "
            f"<code>{html.escape(self.deployment_id)}</code> ({html.escape(self.registration)})"
            f"</p><table><tr><th>service</th><th>kind</th><th>handlers</th></tr>{rows}</table>"
            f"<p><small>log: {html.escape(str(self.log_path))}</small></p>"
        )

    # -- addressing a handler --------------------------------------------------------------------
    def _target(self, handler: Any, key: str | None) -> tuple[Any, Any, str]:
        """(service, handler, ingress path without /send)."""
        matches: list[tuple[Any, Any]] = []
        if callable(handler) and not isinstance(handler, str):
            for service in self.services.values():
                for h in service.handlers.values():
                    if h.fn is handler or getattr(h.fn, "__wrapped__", None) is handler:
                        matches.append((service, h))
            wanted = getattr(handler, "__name__", repr(handler))
        elif isinstance(handler, str):
            wanted = handler
            service_name, _, handler_name = handler.rpartition("/")
            for service in self.services.values():
                if service_name and service.name != service_name:
                    continue
                if handler_name in service.handlers:
                    matches.append((service, service.handlers[handler_name]))
        else:
            raise TypeError(
                f"A handler is named by a string ('run' or 'Triage/run') or given as the "
                f"decorated function; got {type(handler).__name__}."
            )
        known = [f"{s}/{h}" for s, hs in self.handlers.items() for h in hs]
        if not matches:
            raise ServeError(f"No handler {wanted!r} is served here; these are: {known}.")
        if len(matches) > 1:
            raise ServeError(
                f"Handler {wanted!r} is ambiguous here: say which, one of "
                f"{[f'{s.name}/{h.name}' for s, h in matches]}."
            )
        service, found = matches[0]
        kind = _kind(service)
        if kind == "service" and key is not None:
            raise ServeError(
                f"{service.name} is a service: its handlers take no key (got key={key!r}). "
                "Keys address virtual objects and workflows."
            )
        if kind != "service":
            if not isinstance(key, str) or not key:
                raise ServeError(
                    f"{service.name} is a {_KINDS[kind]}: pass the key of the instance to "
                    f"invoke, e.g. key='customer-42' (got key={key!r})."
                )
            return service, found, f"/{service.name}/{key}/{found.name}"
        return service, found, f"/{service.name}/{found.name}"

    def _encode(self, handler: Any, value: Any) -> bytes | None:
        if value is _NO_INPUT:
            return None
        if isinstance(value, bytes):
            return value
        try:
            return bytes(handler.handler_io.input_serde.serialize(value))
        except Exception:  # noqa: BLE001 - the handler's serde wants its own type: plain JSON
            import pydantic_core

            return pydantic_core.to_json(value)

    def _decode(self, handler: Any, content: bytes) -> Any:
        if not content:
            return None
        try:
            return handler.handler_io.output_serde.deserialize(content)
        except Exception:  # noqa: BLE001 - show what came back rather than fail
            try:
                return json.loads(content)
            except ValueError:
                return content.decode(errors="replace")

    # -- invoking --------------------------------------------------------------------------------
    def send(
        self,
        handler: Any,
        input: Any = _NO_INPUT,  # noqa: A002 - the handler's input, as Restate calls it
        key: str | None = None,
        *,
        idempotency_key: str | None = None,
    ) -> Invocation:
        """Start a handler through Restate's ingress without waiting: the invocation, status
        as Restate accepted it. `handler` is a name ('run', or 'Service/run' when several
        services have one) or the decorated function; `key` addresses a virtual object or
        workflow; a repeated `idempotency_key` returns the same invocation.

        Example:
            >>> inv = served.send("run", "Customer C-1007 paid GBP 80 for a GP visit.")
            >>> inv.wait().output
        """
        service, found, path = self._target(handler, key)
        body = self._encode(found, input)
        headers = {"idempotency-key": idempotency_key} if idempotency_key else None
        response = run_sync(self._post(f"{path}/send", body, headers))
        if not response.is_success:
            raise RestateError(
                f"Restate refused {path[1:]}: HTTP {response.status_code}: "
                f"{error_message(response)}"
            )
        target = path[1:]
        return Invocation(str(response.json()["invocationId"]), target, "accepted", served=self)

    def call(
        self,
        handler: Any,
        input: Any = _NO_INPUT,  # noqa: A002 - the handler's input, as Restate calls it
        key: str | None = None,
        *,
        idempotency_key: str | None = None,
        timeout_s: float | None = None,
    ) -> Invocation:
        """Invoke a handler through Restate's ingress and wait for its output (in
        `.output`, typed as the handler returns it). A handler that fails for good raises
        RestateError with Restate's message and the invocation id; `timeout_s` bounds the wait
        (the invocation itself goes on in Restate).

        Example:
            >>> done = served.call("run", "Kundennr. K-77: Brille, 77,50 EUR, Beleg anbei.")
            >>> done.output
        """
        invocation = self.send(handler, input, key, idempotency_key=idempotency_key)
        return self.wait(invocation, timeout_s=timeout_s if timeout_s is not None else 1e9)

    async def _post(
        self, path: str, body: bytes | None, headers: dict[str, str] | None
    ) -> httpx.Response:
        restate = self.session.restate
        try:
            return await restate.post(path, body, headers=headers)
        except httpx.TransportError as e:
            raise RestateError(
                f"Restate's ingress at {restate.ingress_url} does not answer "
                f"({type(e).__name__}). Is the stack running (`python -m workbench status`)?"
            ) from None

    def invocation(self, invocation: Invocation | str) -> Invocation:
        """An invocation as Restate knows it now (status, and output once completed).

        Example:
            >>> served.invocation("inv_1gd...").status
        """
        invocation_id = invocation.id if isinstance(invocation, Invocation) else invocation
        row = run_sync(self.session.restate.invocation_by_id(invocation_id))
        if row is None:
            raise ServeError(f"Restate knows no invocation {invocation_id!r}.")
        return self._from_row(row)

    def _from_row(self, row: dict[str, Any]) -> Invocation:
        target = "/".join(
            str(row[k])
            for k in ("target_service_name", "target_service_key", "target_handler_name")
            if row.get(k)
        )
        found = Invocation(str(row["id"]), target, str(row.get("status")), served=self)
        if found.status == "completed":
            if row.get("completion_result") == "failure":
                found.status, found.error = _FAILED, str(row.get("completion_failure") or "")
            else:
                found.output = self._output(found.id, target)
        return found

    def _output(self, invocation_id: str, target: str) -> Any:
        response = run_sync(self.session.restate.attach(invocation_id))
        if not response.is_success:
            raise RestateError(
                f"Reading the output of {invocation_id} ({target}) failed: HTTP "
                f"{response.status_code}: {error_message(response)}"
            )
        return self._decode(self._handler_of(target), response.content)

    def _handler_of(self, target: str) -> Any:
        parts = target.split("/")
        service = self.services.get(parts[0])
        return service.handlers.get(parts[-1]) if service is not None else None

    def invocations(self, *, unfinished: bool = False, limit: int = 50) -> pd.DataFrame:
        """This server's invocations (every service it serves), newest first: id, target,
        status, retries, last failure, the deployment each is pinned to, trace id.

        Example:
            >>> served.invocations()[["id", "target", "status", "retry_count"]]
        """
        rows: list[dict[str, Any]] = []
        for name in self.services:
            rows.extend(
                run_sync(
                    self.session.restate.invocations(
                        service=name, unfinished=unfinished, limit=limit
                    )
                )
            )
        frame = pd.DataFrame(rows)
        if frame.empty:
            return pd.DataFrame(
                columns=["id", "target", "status", "retry_count", "last_failure", "trace_id"]
            )
        frame.insert(
            1,
            "target",
            [
                "/".join(str(r[k]) for k in ("target_service_name", "target_service_key",
                                              "target_handler_name") if r.get(k))
                for r in rows
            ],
        )  # fmt: skip
        return frame.sort_values("created_at", ascending=False).head(limit).reset_index(drop=True)

    def wait(
        self,
        invocation: Invocation | str,
        status: str | Iterable[str] = "completed",
        *,
        timeout_s: float = 60.0,
        poll_interval_s: float = 0.1,
    ) -> Invocation:
        """Wait until the invocation reaches `status` (see `Invocation.wait`) and return it.
        `"completed"` waits for the output; a failed invocation raises RestateError with
        Restate's message.

        Example:
            >>> served.wait(inv, "backing-off")
        """
        wanted = {status} if isinstance(status, str) else set(status)
        if timeout_s <= 0 or poll_interval_s <= 0:
            raise ValueError(
                f"timeout_s and poll_interval_s must be positive; got {timeout_s}, "
                f"{poll_interval_s}."
            )
        invocation_id = invocation.id if isinstance(invocation, Invocation) else invocation
        deadline = time.monotonic() + timeout_s
        if wanted == {"completed"}:
            return self._wait_done(invocation_id, deadline, timeout_s)
        current = None
        while True:
            current = self.invocation(invocation_id)
            if current.status in wanted:
                return current
            if current.done:
                raise ServeError(
                    f"Invocation {invocation_id} ended ({current.status}) without reaching "
                    f"{sorted(wanted)}: {current!r}"
                )
            if time.monotonic() >= deadline:
                raise TimeoutError(
                    f"Invocation {invocation_id} did not reach {sorted(wanted)} in "
                    f"{timeout_s:g} s: it is {current.status} now."
                )
            time.sleep(poll_interval_s)

    def _wait_done(self, invocation_id: str, deadline: float, timeout_s: float) -> Invocation:
        restate = self.session.restate

        async def attach() -> httpx.Response | None:
            try:
                return await asyncio.wait_for(
                    restate.attach(invocation_id), max(deadline - time.monotonic(), 0.01)
                )
            except TimeoutError:
                return None

        response = run_sync(attach())
        if response is None:
            now = self.invocation(invocation_id)
            raise TimeoutError(
                f"Invocation {invocation_id} ({now.target}) did not complete in {timeout_s:g} "
                f"s: it is {now.status} now (it goes on in Restate; wait again, or read "
                "served.invocations() for its last failure)."
            )
        row = run_sync(restate.invocation_by_id(invocation_id)) or {}
        found = self._from_row({**row, "id": invocation_id}) if row else None
        target = found.target if found is not None else "?"
        if not response.is_success:
            raise RestateError(
                f"Invocation {invocation_id} ({target}) failed: HTTP {response.status_code}: "
                f"{error_message(response)}. Its journal: served.journal({invocation_id!r})."
            )
        output = self._decode(self._handler_of(target), response.content)
        return Invocation(invocation_id, target, "completed", output, served=self)

    def journal(self, invocation: Invocation | str, *, raw: bool = False) -> pd.DataFrame:
        """The invocation's journal, one row per step: input, model calls (`call LLM`, each
        journaled by `DurableRunner`), `ctx.run` steps, timers, output, with results and
        timings. `raw=True`: Restate's entries as stored (`sys_journal`).

        Example:
            >>> served.journal(done)[["step", "kind", "result"]]
        """
        invocation_id = invocation.id if isinstance(invocation, Invocation) else invocation
        rows = run_sync(self.session.restate.journal(invocation_id))
        return journal_frame(rows) if raw else step_journal(rows)

    # -- stopping --------------------------------------------------------------------------------
    def stop(self, *, deregister: bool = False, timeout_s: float = 10.0) -> None:
        """Stop the server (requests in flight are cut after a short grace period; Restate
        retries them, and they resume when the service is served again at this address).
        `deregister=True` also removes the deployment from Restate (invocations still pinned to
        it then fail) and forgets the port.

        Example:
            >>> served.stop()
        """
        self.server.stop(timeout_s=timeout_s)
        home = str(self.session.home)
        with _running_lock:
            for name in self.services:
                if _running.get((home, name)) is self:
                    del _running[(home, name)]
        if deregister:
            run_sync(self.session.restate.delete_deployment(self.deployment_id))
            records = _load_records(self.session)
            for name in self.services:
                records.pop(name, None)
            _save_records(self.session, records)


# -- the namespace ---------------------------------------------------------------------------------
class Serving:
    """Services defined in the notebook, served from the kernel (`wb.serve`): `serve`,
    `served`, `stop_all`."""

    def __init__(self, session: Session | None = None) -> None:
        self._bound = session

    @property
    def session(self) -> Session:
        return resolve(self._bound)

    def __repr__(self) -> str:
        return "<wb.serving: serve, served, stop_all>"

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
        replaces its server. `agents=True` points the Agents SDK's default client at the stack's
        model and sends its traces to the stack's Langfuse. `port` forces a port.

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
                f"Restate refused to register {names} at {server.url}: {e}"
                + (f"\nThe server's log ends with:\n{tail}" if tail else "")
            ) from None

        for name in names:
            records[name] = {"port": server.port, "deployment_id": deployment_id, "url": server.url}
        _save_records(session, records)
        served = Served(session, checked, server, deployment_id, how)
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
            return str(answer["id"]), f"moved from {old} (that port was taken)"
        answer = run_sync(restate.register(url, force=True))
        return str(answer["id"]), "a new deployment"


def _tail(path: Path, lines: int = 15) -> str:
    try:
        return "\n".join(path.read_text(errors="replace").splitlines()[-lines:])
    except OSError:
        return ""


def serve(*services: Any, **options: Any) -> Served:
    """Serve Restate services defined in this kernel and register them with the current
    session's Restate: the shortcut for `wb.serving.serve` (see there for the options).

    Example:
        >>> served = wb.serve(triage)
        >>> served.call("run", "Customer C-1007 paid GBP 80 for a GP visit.").output
    """
    return resolve(None).serving.serve(*services, **options)


__getattr__, __dir__ = module_namespace(__name__, Serving)
