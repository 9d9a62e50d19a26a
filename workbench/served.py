"""The handle on services served from the kernel (`wb.serve` returns one): where they answer,
their deployment, and their invocations through Restate's ingress, with journals and traces.

    served = wb.serve(triage)
    done = served.call("run", "Customer C-1007 paid GBP 80 for a GP visit.")   # waits
    inv = served.send("run", "...")                                             # does not
    inv.wait("backing-off"); inv.wait().output
    served.journal(done); done.trace(); served.invocations()
    served.stop()                      # deregister=True also removes the deployment
"""

from __future__ import annotations

import asyncio
import html
import json
import time
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any
from urllib.parse import quote

import httpx
import pandas as pd

from ._aio import run_sync
from .clients.restate import error_message
from .errors import RestateError, ServeError
from .frames import journal_frame, step_journal

if TYPE_CHECKING:
    from ._server_thread import ServerThread
    from .session import Session

__all__ = ["NO_INPUT", "Invocation", "Served", "service_kind"]

NO_INPUT: Any = object()
"""The `input` of a call that sends no body (a handler without an input parameter)."""
KINDS = {"service": "service", "object": "virtual object", "workflow": "workflow"}
FAILED = "failed"
"""The status of an invocation that completed with an error."""


INVOCATION_FRAME_COLUMNS = [
    "id",
    "target",
    "status",
    "retry_count",
    "last_failure",
    "pinned_deployment_id",
    "trace_id",
    "created_at",
    "modified_at",
    "completed_at",
    "completion_result",
    "completion_failure",
]
"""The columns of `Served.invocations()` (Restate leaves out what does not apply: a completed
invocation has no retry count)."""


def _target_of(row: dict[str, Any]) -> str:
    """'Service/handler' or 'Object/key/handler' of a `sys_invocation` row."""
    parts = ("target_service_name", "target_service_key", "target_handler_name")
    return "/".join(str(row[k]) for k in parts if row.get(k))


def service_kind(service: Any) -> str:
    """'service', 'object' or 'workflow'."""
    return str(service.service_tag.kind)


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
        return self.status in ("completed", FAILED)

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

    def wait_for_step(
        self, step: str, *, timeout_s: float = 30.0, poll_interval_s: float = 0.1
    ) -> pd.DataFrame:
        """Wait until the journal records `step`: a step's name (a `ctx.run` name) or kind
        (`model call`, `timer`, `output`); returns the journal then.

        Example:
            >>> inv.wait_for_step("timer")     # it waits on its durable timer now
        """
        return self._served().wait_for_step(
            self, step, timeout_s=timeout_s, poll_interval_s=poll_interval_s
        )

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
    `handlers`; `call`, `send`, `invocation`, `invocations`, `journal`, `wait`,
    `wait_for_step`, `stop`."""

    def __init__(
        self,
        session: Session,
        services: list[Any],
        server: ServerThread,
        deployment_id: str,
        registration: str,
        on_stop: Callable[[Served, bool], None] | None = None,
    ) -> None:
        self.session = session
        self._on_stop = on_stop
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
            kind = KINDS[service_kind(service)]
            lines.append(f"  {name} ({kind}): {', '.join(service.handlers)}")
        lines.append(f"  log: {self.log_path}")
        return "\n".join(lines)

    def _repr_html_(self) -> str:
        state = "running" if self.running else "stopped"
        rows = "".join(
            f"<tr><td><b>{html.escape(name)}</b></td>"
            f"<td>{html.escape(KINDS[service_kind(s)])}</td>"
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
        kind = service_kind(service)
        if kind == "service" and key is not None:
            raise ServeError(
                f"{service.name} is a service: its handlers take no key (got key={key!r}). "
                "Keys address virtual objects and workflows."
            )
        if kind != "service":
            if not isinstance(key, str) or not key:
                raise ServeError(
                    f"{service.name} is a {KINDS[kind]}: pass the key of the instance to "
                    f"invoke, e.g. key='customer-42' (got key={key!r})."
                )
            return service, found, f"/{service.name}/{quote(key, safe='')}/{found.name}"
        return service, found, f"/{service.name}/{found.name}"

    def _encode(self, handler: Any, value: Any) -> bytes | None:
        if value is NO_INPUT:
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
        input: Any = NO_INPUT,  # noqa: A002 - the handler's input, as Restate calls it
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
        input: Any = NO_INPUT,  # noqa: A002 - the handler's input, as Restate calls it
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
        target = _target_of(row)
        found = Invocation(str(row["id"]), target, str(row.get("status")), served=self)
        if found.status == "completed":
            if row.get("completion_result") == "failure":
                found.status, found.error = FAILED, str(row.get("completion_failure") or "")
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
        out = [{"target": _target_of(row), **row} for row in rows]
        frame = pd.DataFrame(out, columns=INVOCATION_FRAME_COLUMNS)
        frame = frame.sort_values("created_at", ascending=False, kind="stable")
        return frame.head(limit).reset_index(drop=True)

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

    def wait_for_step(
        self,
        invocation: Invocation | str,
        step: str,
        *,
        timeout_s: float = 30.0,
        poll_interval_s: float = 0.1,
    ) -> pd.DataFrame:
        """Wait until the invocation's journal records `step` (a step name, or a kind: `model
        call`, `timer`, `output`) and return the journal (see `Invocation.wait_for_step`).

        Example:
            >>> served.wait_for_step(inv, "model call")
        """
        if timeout_s <= 0 or poll_interval_s <= 0:
            raise ValueError(
                f"timeout_s and poll_interval_s must be positive; got {timeout_s}, "
                f"{poll_interval_s}."
            )
        deadline = time.monotonic() + timeout_s
        while True:
            journal = self.journal(invocation)
            if ((journal["step"] == step) | (journal["kind"] == step)).any():
                return journal
            if (journal["kind"] == "output").any():
                raise ServeError(
                    f"The invocation ended without a step {step!r}; its journal has: "
                    f"{list(dict.fromkeys(journal['step']))}."
                )
            if time.monotonic() >= deadline:
                raise TimeoutError(
                    f"No step {step!r} in the journal after {timeout_s:g} s; it has: "
                    f"{list(dict.fromkeys(journal['step']))} (is the service served?)."
                )
            time.sleep(poll_interval_s)

    def journal(self, invocation: Invocation | str, *, raw: bool = False) -> pd.DataFrame:
        """The invocation's journal, one row per step: input, model calls (`call LLM`, each
        journaled by `DurableRunner`), `ctx.run` steps, timers, output, with results and
        timings. `raw=True`: Restate's entries as stored (`sys_journal`).

        Example:
            >>> served.journal(done)[["step", "kind", "result"]]
        """
        invocation_id = invocation.id if isinstance(invocation, Invocation) else invocation
        rows = run_sync(self.session.restate.journal(invocation_id))
        if raw:
            return journal_frame(rows)
        return step_journal(rows).drop(columns="attempt")  # attempts are the claims' evidence

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
        if deregister:
            run_sync(self.session.restate.delete_deployment(self.deployment_id))
        if self._on_stop is not None:
            self._on_stop(self, deregister)
