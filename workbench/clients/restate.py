"""The Restate client: the only code of the notebook layer that speaks to Restate's ingress
(invoking handlers, attaching to workflows) and admin API (SQL introspection, deployments,
invocation management).

    restate = RestateClient("http://127.0.0.1:8080", "http://127.0.0.1:9070")
    await restate.invocation("ClaimWorkflow", "claim-1")    # sys_invocation row, or None
    await restate.journal(invocation_id)                    # sys_journal rows, in order
    await restate.resume(invocation_id)

Every method is a coroutine; a sync caller runs it through `workbench._aio.run_sync`. HTTP
connections are pooled per event loop (an httpx client belongs to the loop that made it).
"""

from __future__ import annotations

import asyncio
import re
import weakref
from typing import Any

import httpx

from ..errors import RestateError

__all__ = ["INVOCATION_COLUMNS", "JOURNAL_COLUMNS", "RestateClient", "sql_literal"]

INVOCATION_COLUMNS = (
    "id",
    "target_service_name",
    "target_handler_name",
    "target_service_key",
    "status",
    "retry_count",
    "last_failure",
    "last_failure_error_code",
    "pinned_deployment_id",
    "trace_id",
    "created_at",
    "modified_at",
    "completed_at",
    "completion_result",
    "completion_failure",
)
"""The columns of `sys_invocation` that `invocation()` and `invocations()` return."""

JOURNAL_COLUMNS = ("index", "entry_type", "name", "entry_json", "entry_lite_json", "appended_at")
"""The columns of `sys_journal` that `journal()` returns."""

_SAFE = re.compile(r"^[A-Za-z0-9._:/-]+$")
UNAVAILABLE = frozenset({502, 503, 504})
"""Ingress answers meaning "Restate is not there right now" (restarting, behind a proxy)."""


def sql_literal(value: str) -> str:
    """`value` as a SQL string literal; refuses anything but letters, digits and ._:/-."""
    if not isinstance(value, str) or not _SAFE.match(value):
        raise ValueError(
            f"{value!r} cannot be used in a Restate query: only letters, digits and ._:/- are."
        )
    return f"'{value}'"


class RestateClient:
    """Restate's ingress and admin API for one server (or cluster entry point)."""

    def __init__(self, ingress_url: str, admin_url: str, *, timeout_s: float = 30.0) -> None:
        self.ingress_url = ingress_url.rstrip("/")
        self.admin_url = admin_url.rstrip("/")
        self.timeout_s = timeout_s
        self._clients: weakref.WeakKeyDictionary[
            asyncio.AbstractEventLoop, tuple[httpx.AsyncClient, httpx.AsyncClient]
        ] = weakref.WeakKeyDictionary()

    def __repr__(self) -> str:
        return f"RestateClient(ingress={self.ingress_url}, admin={self.admin_url})"

    # -- connections ---------------------------------------------------------------------------
    def _pair(self) -> tuple[httpx.AsyncClient, httpx.AsyncClient]:
        loop = asyncio.get_running_loop()
        pair = self._clients.get(loop)
        if pair is None or pair[0].is_closed:
            # trust_env=False: a proxy configured for the internet must not see loopback calls;
            # read=None on the ingress: a workflow's answer comes when it has ended
            ingress = httpx.AsyncClient(
                base_url=self.ingress_url,
                timeout=httpx.Timeout(self.timeout_s, read=None),
                trust_env=False,
            )
            admin = httpx.AsyncClient(
                base_url=self.admin_url, timeout=self.timeout_s, trust_env=False
            )
            pair = self._clients[loop] = (ingress, admin)
        return pair

    @property
    def _ingress(self) -> httpx.AsyncClient:
        return self._pair()[0]

    @property
    def _admin(self) -> httpx.AsyncClient:
        return self._pair()[1]

    async def aclose(self) -> None:
        """Close the connections made on the running loop."""
        pair = self._clients.pop(asyncio.get_running_loop(), None)
        for client in pair or ():
            await client.aclose()

    # -- ingress -------------------------------------------------------------------------------
    async def post(
        self,
        path: str,
        body: str | bytes | None = None,
        *,
        headers: dict[str, str] | None = None,
    ) -> httpx.Response:
        """POST to the ingress (`/Service/key/handler`, `/.../send`): the raw response. A body
        is sent as JSON; none, for a handler without input."""
        if body is not None:
            headers = {"content-type": "application/json", **(headers or {})}
        return await self._ingress.post(path, content=body, headers=headers)

    async def call(self, service: str, key: str | None, handler: str, body: Any = None) -> Any:
        """Call a handler and wait for its JSON answer; raises RestateError with Restate's
        message when it answers an error."""
        path = "/".join(p for p in ("", service, key, handler) if p is not None)
        response = await self.post(path, _json(body))
        raise_for(response, f"Calling {path}")
        return response.json() if response.content else None

    async def send(
        self,
        service: str,
        key: str | None,
        handler: str,
        body: Any = None,
        *,
        idempotency_key: str | None = None,
    ) -> str:
        """Start a handler without waiting (`/send`); returns the invocation id."""
        path = "/".join(p for p in ("", service, key, handler, "send") if p is not None)
        headers = {"idempotency-key": idempotency_key} if idempotency_key else None
        response = await self.post(path, _json(body), headers=headers)
        raise_for(response, f"Sending {path}")
        return str(response.json()["invocationId"])

    async def run_workflow(self, workflow: str, key: str, body: str | bytes) -> httpx.Response:
        """Start a workflow's `run` and answer with its output in one request. A key that ran
        before is not run again (Restate answers 409): its first run is attached to instead."""
        response = await self.post(f"/{workflow}/{key}/run", body)
        if response.status_code == 409:
            return await self.attach_workflow(workflow, key)
        return response

    async def attach(self, invocation_id: str) -> httpx.Response:
        """Wait for any invocation's result by its id (the raw response: 200 with the output,
        or Restate's error)."""
        return await self._ingress.get(
            f"/restate/invocation/{sql_literal(invocation_id)[1:-1]}/attach"
        )

    async def attach_workflow(self, workflow: str, key: str) -> httpx.Response:
        """Wait for a workflow's output (the raw response: 200 with the output, or an error)."""
        return await self._ingress.get(f"/restate/workflow/{workflow}/{key}/attach")

    # -- admin: SQL ----------------------------------------------------------------------------
    async def sql(self, query: str) -> list[dict[str, Any]]:
        """Rows of a query over Restate's system tables (`sys_invocation`, `sys_journal`, ...)."""
        try:
            response = await self._admin.post(
                "/query", json={"query": query}, headers={"accept": "application/json"}
            )
        except httpx.TransportError as e:
            raise RestateError(
                f"Restate's admin API at {self.admin_url} does not answer ({type(e).__name__}). "
                "Is the stack running (`python -m workbench status`)?"
            ) from None
        if not response.is_success:
            raise RestateError(
                f"Restate admin query failed (HTTP {response.status_code}): "
                f"{response.text.strip()[:500]}"
            )
        return list(response.json().get("rows", []))

    async def invocation(
        self, service: str, key: str, handler: str = "run"
    ) -> dict[str, Any] | None:
        """The newest invocation of `service/key/handler` (a `sys_invocation` row), or None."""
        rows = await self.invocations(service=service, key=key, handler=handler, limit=1)
        return rows[0] if rows else None

    async def invocation_by_id(self, invocation_id: str) -> dict[str, Any] | None:
        """One invocation (a `sys_invocation` row) by its id, or None."""
        rows = await self.sql(
            f"SELECT {', '.join(INVOCATION_COLUMNS)} FROM sys_invocation "
            f"WHERE id = {sql_literal(invocation_id)}"
        )
        return rows[0] if rows else None

    async def invocations(
        self,
        *,
        service: str | None = None,
        key: str | None = None,
        keys: list[str] | None = None,
        handler: str | None = None,
        unfinished: bool = False,
        limit: int | None = None,
    ) -> list[dict[str, Any]]:
        """`sys_invocation` rows, newest first, filtered by target and state."""
        where = []
        if service is not None:
            where.append(f"target_service_name = {sql_literal(service)}")
        if key is not None:
            where.append(f"target_service_key = {sql_literal(key)}")
        if keys is not None:
            if not keys:
                return []
            where.append(f"target_service_key IN ({', '.join(map(sql_literal, keys))})")
        if handler is not None:
            where.append(f"target_handler_name = {sql_literal(handler)}")
        if unfinished:
            where.append("status != 'completed'")
        query = f"SELECT {', '.join(INVOCATION_COLUMNS)} FROM sys_invocation"
        if where:
            query += " WHERE " + " AND ".join(where)
        query += " ORDER BY created_at DESC"
        if limit is not None:
            query += f" LIMIT {int(limit)}"
        return await self.sql(query)

    async def journal(self, invocation_id: str) -> list[dict[str, Any]]:
        """The journal of an invocation (`sys_journal` rows, in order)."""
        return await self.sql(
            f"SELECT {', '.join(JOURNAL_COLUMNS)} FROM sys_journal "
            f"WHERE id = {sql_literal(invocation_id)} ORDER BY index"
        )

    # -- admin: deployments and services -------------------------------------------------------
    async def _admin_call(self, method: str, path: str, what: str, **kwargs: Any) -> Any:
        try:
            response = await self._admin.request(method, path, **kwargs)
        except httpx.TransportError as e:
            raise RestateError(
                f"{what}: Restate's admin API at {self.admin_url} does not answer "
                f"({type(e).__name__}). Is the stack running (`python -m workbench status`)?"
            ) from None
        if not response.is_success:
            raise RestateError(
                f"{what}: HTTP {response.status_code} from Restate: {response.text.strip()[:500]}"
            )
        return response.json() if response.content else None

    async def deployments(self) -> list[dict[str, Any]]:
        """The registered deployments (admin `GET /deployments`)."""
        answer = await self._admin_call("GET", "/deployments", "Listing deployments")
        return list(answer.get("deployments", []))

    async def services(self) -> list[dict[str, Any]]:
        """The registered services, each with the deployment new invocations go to."""
        answer = await self._admin_call("GET", "/services", "Listing services")
        return list(answer.get("services", []))

    async def register(self, uri: str, *, force: bool = False) -> dict[str, Any]:
        """Register a deployment at `uri` (force: re-discover the same URI in place)."""
        return await self._admin_call(
            "POST",
            "/deployments",
            f"Registering {uri}",
            json={"uri": uri, "force": force},
        )

    async def update_deployment(self, deployment_id: str, uri: str) -> dict[str, Any]:
        """Move an existing deployment to another address, keeping its id, so invocations
        pinned to it continue there (admin `PATCH /deployments/{id}`)."""
        return await self._admin_call(
            "PATCH",
            f"/deployments/{deployment_id}",
            f"Moving deployment {deployment_id} to {uri}",
            json={"uri": uri, "overwrite": True},
        )

    async def delete_deployment(self, deployment_id: str, *, force: bool = True) -> None:
        """Remove a deployment (Restate 1.7 deletes only with force)."""
        await self._admin_call(
            "DELETE",
            f"/deployments/{deployment_id}",
            f"Deleting deployment {deployment_id}",
            params={"force": str(force).lower()},
        )

    # -- admin: invocations --------------------------------------------------------------------
    async def _invocation_action(self, invocation_id: str, action: str, **params: str) -> None:
        await self._admin_call(
            "PATCH",
            f"/invocations/{invocation_id}/{action}",
            f"{action.capitalize()} invocation {invocation_id}",
            params=params or None,
        )

    async def resume(self, invocation_id: str, *, deployment: str | None = None) -> None:
        """Resume a paused (or suspended) invocation now; `deployment` ("latest", "keep" or an
        id) moves a paused one to another deployment."""
        extra = {"deployment": deployment} if deployment else {}
        await self._invocation_action(invocation_id, "resume", **extra)

    async def pause(self, invocation_id: str) -> None:
        await self._invocation_action(invocation_id, "pause")

    async def cancel(self, invocation_id: str) -> None:
        """Cancel: the handler sees a cancellation at its next step and may compensate."""
        await self._invocation_action(invocation_id, "cancel")

    async def kill(self, invocation_id: str) -> None:
        """Kill: stop at once, without running the handler again."""
        await self._invocation_action(invocation_id, "kill")


def _json(body: Any) -> str | bytes | None:
    if body is None or isinstance(body, str | bytes):
        return body
    if hasattr(body, "model_dump_json"):
        return str(body.model_dump_json())
    import json

    return json.dumps(body)


def error_message(response: httpx.Response) -> str:
    """Restate's message from an error answer (its JSON `message`, else the text)."""
    try:
        body = response.json()
    except ValueError:
        return response.text.strip()[:500]
    if isinstance(body, dict) and body.get("message"):
        return str(body["message"])
    return response.text.strip()[:500]


def raise_for(response: httpx.Response, what: str) -> None:
    """Raise RestateError naming `what` and Restate's message, unless the answer is a success."""
    if not response.is_success:
        raise RestateError(f"{what} failed: HTTP {response.status_code}: {error_message(response)}")
