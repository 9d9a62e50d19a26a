"""The Restate client: the only code of the notebook layer that speaks to Restate's ingress
(invoking handlers, attaching to workflows) and admin API (SQL introspection, deployments,
invocation management).

    restate = RestateClient("http://127.0.0.1:8080", "http://127.0.0.1:9070")
    await restate.invocation("ClaimWorkflow", "claim-1")    # sys_invocation row, or None
    await restate.journal(invocation_id)                    # sys_journal rows, in order
    await restate.resume(invocation_id)

Every method of `RestateClient` is a coroutine; a sync caller runs it through
`workbench._aio.run_sync`. HTTP connections are pooled per event loop (an httpx client belongs to
the loop that made it). `RestateAdmin` is the same admin API, synchronous, for the stack's own
calls while it starts, restarts and stops processes (register a deployment and retry until
Restate reaches it, move one in place, remove one, resume or purge invocations). Both build
their SQL with the same functions (`invocations_sql`, `journal_sql`).
"""

from __future__ import annotations

import asyncio
import re
import time
import weakref
from collections.abc import Callable, Iterable, Mapping, Sequence
from typing import Any

import httpx

from ..errors import AdminError, RegistrationError, RestateError

__all__ = [
    "INVOCATION_COLUMNS",
    "JOURNAL_COLUMNS",
    "RestateAdmin",
    "RestateClient",
    "deployment_uri",
    "url_list",
    "invocations_sql",
    "journal_sql",
    "sql_literal",
]

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
SCHEMA_WAIT_S = 5.0
"""How long a cluster's passing errors are asked again: an ingress answering "service not found"
(404; right after a registration the new schema reaches the other nodes within about a second),
an admin query that reached a node as it died (500)."""
CLUSTER_START_WAIT_S = 30.0
"""How long the stack's own admin queries ask again on a cluster: at a fresh cluster's start a
node answers `expecting a partition store` (500) until its partitions are set up, which can take
longer than a passing error after a node's death."""
_CONNECT_FAILED = (httpx.ConnectError, httpx.ConnectTimeout)
"""Transport errors raised before the request left: another node can always be asked."""


def url_list(urls: str | Sequence[str]) -> list[str]:
    """One URL, a comma-separated list, or a sequence of them: the URLs, without trailing
    slashes and duplicates (ValueError when there is none)."""
    parts = urls.split(",") if isinstance(urls, str) else [str(u) for u in urls]
    found = [*dict.fromkeys(u.strip().rstrip("/") for u in parts if u and u.strip())]
    if not found:
        raise ValueError(
            f"No Restate URL in {urls!r}: give one URL or several (a list, or comma-separated)."
        )
    return found


def _service_not_found(response: httpx.Response) -> bool:
    """The ingress's 404 for a service it does not know (yet): `service 'X' not found`."""
    return response.status_code == 404 and "not found, make sure to register" in response.text


NODE_LOST = ("External error", "No such scanner")
"""What a cluster's admin query answers (HTTP 500) when it reached a node that just died or
restarted: `node N1:2 was shut down or removed`, `No such scanner. It could have expired`."""


def _node_lost(response: httpx.Response) -> bool:
    """A cluster's admin query that reached a node which just died or restarted: another node,
    or a moment later, answers."""
    return response.status_code == 500 and any(text in response.text for text in NODE_LOST)


def _passing(kind: str, response: httpx.Response, cluster: bool) -> bool:
    """An answer worth asking again (another node, or the same a moment later)."""
    if kind == "ingress":
        return cluster and _service_not_found(response)
    return cluster and _node_lost(response)


def sql_literal(value: str) -> str:
    """`value` as a SQL string literal; refuses anything but letters, digits and ._:/-."""
    if not isinstance(value, str) or not _SAFE.match(value):
        raise ValueError(
            f"{value!r} cannot be used in a Restate query: only letters, digits and ._:/- are."
        )
    return f"'{value}'"


def invocations_sql(
    *,
    service: str | None = None,
    key: str | None = None,
    keys: Iterable[str] | None = None,
    key_prefix: str | None = None,
    handler: str | None = None,
    unfinished: bool = False,
    status: str | None = None,
    deployment_ids: Iterable[str] | None = None,
    limit: int | None = None,
    columns: Iterable[str] = INVOCATION_COLUMNS,
) -> str | None:
    """The one `sys_invocation` query, newest first, filtered by target (a key, keys or a key
    prefix), state and pinned deployment; None when an empty `keys` or `deployment_ids` means
    there is nothing to ask."""
    where = []
    for column, value in (
        ("target_service_name", service),
        ("target_service_key", key),
        ("target_handler_name", handler),
        ("status", status),
    ):
        if value is not None:
            where.append(f"{column} = {sql_literal(value)}")
    for column, values in (("target_service_key", keys), ("pinned_deployment_id", deployment_ids)):
        if values is not None:
            listed = [sql_literal(v) for v in values]
            if not listed:
                return None
            where.append(f"{column} IN ({', '.join(listed)})")
    if key_prefix is not None:
        where.append(f"starts_with(target_service_key, {sql_literal(key_prefix)})")
    if unfinished:
        where.append("status != 'completed'")
    query = f"SELECT {', '.join(columns)} FROM sys_invocation"
    if where:
        query += " WHERE " + " AND ".join(where)
    query += " ORDER BY created_at DESC"
    if limit is not None:
        query += f" LIMIT {int(limit)}"
    return query


def journal_sql(invocation_id: str) -> str:
    """The one `sys_journal` query: an invocation's entries, in order."""
    return (
        f"SELECT {', '.join(JOURNAL_COLUMNS)} FROM sys_journal "
        f"WHERE id = {sql_literal(invocation_id)} ORDER BY index"
    )


def deployment_uri(deployment: Mapping[str, Any]) -> str | None:
    """The address of a deployment as the admin API lists it."""
    uri = deployment.get("uri") or (deployment.get("http") or {}).get("uri")
    return str(uri).rstrip("/") if uri else None


class RestateClient:
    """Restate's ingress and admin API for one server, or a cluster's nodes (or Restate Cloud).

    `ingress_url` and `admin_url` are one URL each, or several (a list, or comma-separated): the
    nodes of a cluster. Every request goes to the node that answered last and fails over to the
    next when a node does not answer: a connection refused is always asked elsewhere; a request
    cut off after it was sent only when repeating it is harmless (a read, a workflow's `run`
    (keyed), a `send` with an idempotency key). On a cluster, an ingress answering "service not
    found" right after a registration, and an admin query that reached a node as it died, are
    asked again (other nodes, then the same) for up to SCHEMA_WAIT_S. `token` is sent as
    `Authorization: Bearer` (Restate Cloud's API key)."""

    def __init__(
        self,
        ingress_url: str | Sequence[str],
        admin_url: str | Sequence[str],
        *,
        timeout_s: float = 30.0,
        token: str | None = None,
        schema_wait_s: float = SCHEMA_WAIT_S,
    ) -> None:
        self.ingress_urls = url_list(ingress_url)
        self.admin_urls = url_list(admin_url)
        self.timeout_s = timeout_s
        self.schema_wait_s = schema_wait_s
        self._headers = {"authorization": f"Bearer {token}"} if token else {}
        self._preferred = {"ingress": self.ingress_urls[0], "admin": self.admin_urls[0]}
        self._clients: weakref.WeakKeyDictionary[
            asyncio.AbstractEventLoop, dict[str, httpx.AsyncClient]
        ] = weakref.WeakKeyDictionary()

    def __repr__(self) -> str:
        ingress, admin = ",".join(self.ingress_urls), ",".join(self.admin_urls)
        return f"RestateClient(ingress={ingress}, admin={admin})"

    @property
    def ingress_url(self) -> str:
        """The ingress that answered last (the first one before any request)."""
        return self._preferred["ingress"]

    @property
    def admin_url(self) -> str:
        """The admin API that answered last (the first one before any request)."""
        return self._preferred["admin"]

    @property
    def is_cluster(self) -> bool:
        """More than one node to talk to."""
        return len(self.ingress_urls) > 1 or len(self.admin_urls) > 1

    # -- connections ---------------------------------------------------------------------------
    def _client(self, kind: str, url: str) -> httpx.AsyncClient:
        loop = asyncio.get_running_loop()
        clients = self._clients.setdefault(loop, {})
        key = f"{kind} {url}"
        client = clients.get(key)
        if client is None or client.is_closed:
            # trust_env=False: a proxy configured for the internet must not see loopback calls;
            # read=None on the ingress: a workflow's answer comes when it has ended
            timeout = (
                httpx.Timeout(self.timeout_s, read=None) if kind == "ingress" else self.timeout_s
            )
            client = clients[key] = httpx.AsyncClient(
                base_url=url, timeout=timeout, trust_env=False, headers=self._headers
            )
        return client

    def _order(self, kind: str) -> list[str]:
        """The URLs of `kind`, the one that answered last first."""
        urls = self.ingress_urls if kind == "ingress" else self.admin_urls
        first = self._preferred[kind]
        return [first, *(u for u in urls if u != first)]

    async def _request(
        self, kind: str, method: str, path: str, *, safe: bool, **kwargs: Any
    ) -> httpx.Response:
        """One request to the first node of `kind` that answers (see the class). Raises the
        last transport error when none does; returns the last answer when every node answered
        "unavailable"."""
        deadline = time.monotonic() + self.schema_wait_s
        while True:
            response: httpx.Response | None = None
            failure: httpx.TransportError | None = None
            for url in self._order(kind):
                try:
                    response = await self._client(kind, url).request(method, path, **kwargs)
                except _CONNECT_FAILED as e:
                    failure = e
                    continue
                except httpx.TransportError as e:
                    if not safe:
                        raise
                    failure = e
                    continue
                if response.status_code in UNAVAILABLE:
                    continue
                if _passing(kind, response, self.is_cluster):
                    continue
                self._preferred[kind] = url
                return response
            if response is not None and _passing(kind, response, self.is_cluster):
                if time.monotonic() < deadline:
                    await asyncio.sleep(0.1)
                    continue
                return response
            if response is not None:
                return response
            assert failure is not None
            raise failure

    async def aclose(self) -> None:
        """Close the connections made on the running loop."""
        clients = self._clients.pop(asyncio.get_running_loop(), None)
        for client in (clients or {}).values():
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
        return await self._post(path, body, headers=headers, safe=False)

    async def _post(
        self,
        path: str,
        body: str | bytes | None,
        *,
        headers: dict[str, str] | None = None,
        safe: bool,
    ) -> httpx.Response:
        if body is not None:
            headers = {"content-type": "application/json", **(headers or {})}
        safe = safe or any(k.lower() == "idempotency-key" for k in headers or {})
        return await self._request(
            "ingress", "POST", path, safe=safe, content=body, headers=headers
        )

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
        # keyed: sent again after a node died mid-request, it attaches to the first run
        response = await self._post(f"/{workflow}/{key}/run", body, safe=True)
        if response.status_code == 409:
            return await self.attach_workflow(workflow, key)
        return response

    async def attach(self, invocation_id: str) -> httpx.Response:
        """Wait for any invocation's result by its id (the raw response: 200 with the output,
        or Restate's error)."""
        return await self._request(
            "ingress",
            "GET",
            f"/restate/invocation/{sql_literal(invocation_id)[1:-1]}/attach",
            safe=True,
        )

    async def attach_workflow(self, workflow: str, key: str) -> httpx.Response:
        """Wait for a workflow's output (the raw response: 200 with the output, or an error)."""
        return await self._request(
            "ingress", "GET", f"/restate/workflow/{workflow}/{key}/attach", safe=True
        )

    # -- admin: SQL ----------------------------------------------------------------------------
    async def sql(self, query: str) -> list[dict[str, Any]]:
        """Rows of a query over Restate's system tables (`sys_invocation`, `sys_journal`, ...)."""
        try:
            response = await self._request(
                "admin",
                "POST",
                "/query",
                safe=True,
                json={"query": query},
                headers={"accept": "application/json"},
            )
        except httpx.TransportError as e:
            raise RestateError(
                f"Restate's admin API at {', '.join(self.admin_urls)} does not answer "
                f"({type(e).__name__}). "
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
        key_prefix: str | None = None,
        handler: str | None = None,
        unfinished: bool = False,
        status: str | None = None,
        limit: int | None = None,
    ) -> list[dict[str, Any]]:
        """`sys_invocation` rows, newest first, filtered by target and state."""
        query = invocations_sql(
            service=service,
            key=key,
            keys=keys,
            key_prefix=key_prefix,
            handler=handler,
            unfinished=unfinished,
            status=status,
            limit=limit,
        )
        return await self.sql(query) if query else []

    async def state(
        self,
        service: str,
        *,
        key: str | None = None,
        keys: list[str] | None = None,
        key_prefix: str | None = None,
        names: list[str] | None = None,
        name_prefix: str | None = None,
    ) -> list[dict[str, Any]]:
        """K/V state rows (`service_key`, `key`, `value_utf8`: the value's JSON) of a virtual
        object or workflow, for one key, some keys, or the keys starting with a prefix; only the
        state `names` (or those starting with `name_prefix`) when given. One query, nothing run
        in the services."""
        where = [f"service_name = {sql_literal(service)}"]
        if key is not None:
            where.append(f"service_key = {sql_literal(key)}")
        if keys is not None:
            if not keys:
                return []
            where.append(f"service_key IN ({', '.join(map(sql_literal, keys))})")
        if key_prefix is not None:
            where.append(f"starts_with(service_key, {sql_literal(key_prefix)})")
        if names is not None:
            if not names:
                return []
            where.append(f"key IN ({', '.join(map(sql_literal, names))})")
        if name_prefix is not None:
            where.append(f"starts_with(key, {sql_literal(name_prefix)})")
        return await self.sql(
            f"SELECT service_key, key, value_utf8 FROM state WHERE {' AND '.join(where)}"
        )

    async def state_counts(self, service: str, name_prefix: str) -> dict[str, int]:
        """How many state entries whose name starts with `name_prefix` each key of `service`
        holds (e.g. the items each experiment kept)."""
        rows = await self.sql(
            f"SELECT service_key, COUNT(*) AS n FROM state WHERE service_name = "
            f"{sql_literal(service)} AND starts_with(key, {sql_literal(name_prefix)}) "
            "GROUP BY service_key"
        )
        return {str(row["service_key"]): int(row["n"]) for row in rows}

    async def partition_key(self, invocation_id: str) -> int | None:
        """The partition key of an invocation (which partition, so which node of a cluster,
        runs it), or None when Restate does not know it."""
        rows = await self.sql(
            "SELECT partition_key FROM sys_invocation_status "
            f"WHERE id = {sql_literal(invocation_id)}"
        )
        return int(rows[0]["partition_key"]) if rows else None

    async def journal(self, invocation_id: str) -> list[dict[str, Any]]:
        """The journal of an invocation (`sys_journal` rows, in order)."""
        return await self.sql(journal_sql(invocation_id))

    async def journals(self, invocation_ids: list[str]) -> dict[str, list[dict[str, Any]]]:
        """The journals of several invocations in one query: id -> `sys_journal` rows, in order
        (an id without entries maps to an empty list)."""
        ids = [*dict.fromkeys(invocation_ids)]
        found: dict[str, list[dict[str, Any]]] = {i: [] for i in ids}
        for start in range(0, len(ids), 100):
            chunk = ids[start : start + 100]
            rows = await self.sql(
                f"SELECT id, {', '.join(JOURNAL_COLUMNS)} FROM sys_journal "
                f"WHERE id IN ({', '.join(map(sql_literal, chunk))}) ORDER BY id, index"
            )
            for row in rows:
                found[str(row.pop("id"))].append(row)
        return found

    # -- admin: deployments and services -------------------------------------------------------
    async def _admin_call(self, method: str, path: str, what: str, **kwargs: Any) -> Any:
        try:
            # every admin call is safe to repeat: reads, and writes that set a state
            response = await self._request("admin", method, path, safe=True, **kwargs)
        except httpx.TransportError as e:
            raise RestateError(
                f"{what}: Restate's admin API at {', '.join(self.admin_urls)} does not answer "
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


# -- the admin API, synchronous, for the stack --------------------------------------------------
TRANSIENT_CODES = frozenset({"META0003"})
"""Restate errors worth retrying: META0003 = the deployment could not be reached (yet)."""


class RestateAdmin:
    """Restate's admin API, synchronous: what the stack calls while it starts, restarts and stops
    processes. `admin_url` is one URL or several (a cluster's nodes: a node that does not
    answer is skipped for the next; every admin call is safe to repeat). `http` is the caller's
    httpx client (loopback, no proxy)."""

    def __init__(
        self, admin_url: str | Sequence[str], http: httpx.Client, *, token: str | None = None
    ) -> None:
        self.urls = url_list(admin_url)
        self.url = self.urls[0]
        self.http = http
        self._headers = {"authorization": f"Bearer {token}"} if token else None

    def _send(self, method: str, path: str, **kwargs: Any) -> httpx.Response:
        """`method path` at the first admin API that answers (the last one that did first)."""
        failure: httpx.HTTPError | None = None
        response: httpx.Response | None = None
        if self._headers:
            kwargs["headers"] = {**self._headers, **kwargs.get("headers", {})}
        for url in [self.url, *(u for u in self.urls if u != self.url)]:
            try:
                response = self.http.request(method, f"{url}{path}", **kwargs)
            except httpx.TransportError as e:
                failure = e
                continue
            if response.status_code in UNAVAILABLE:
                continue
            self.url = url
            return response
        if response is not None:
            return response
        assert failure is not None
        raise failure

    def deployments(self) -> list[dict[str, Any]]:
        response = self._send("GET", "/deployments")
        _check(response, "list the deployments")
        return list(response.json().get("deployments", []))

    def deployment(self, deployment_id: str) -> dict[str, Any] | None:
        """The deployment `deployment_id`, or None when Restate does not know it."""
        response = self._send("GET", f"/deployments/{deployment_id}")
        if response.status_code == 404:
            return None
        _check(response, f"read deployment {deployment_id}")
        return response.json()

    def register(
        self, uri: str, *, timeout_s: float, poll_interval_s: float, force: bool = True
    ) -> dict[str, Any]:
        """POST /deployments {"uri", "force"}, retrying until it succeeds or time is up.
        force=True replaces the deployment registered at the same URI (same id, new code); a
        URI not registered yet is a new deployment either way. RegistrationError otherwise."""
        return _until_registered(
            lambda: self._send(
                "POST", "/deployments", json={"uri": uri, "force": force}, timeout=30.0
            ),
            f"Registering the services deployment {uri} with the Restate admin API "
            f"({self.url}/deployments)",
            timeout_s=timeout_s,
            poll_interval_s=poll_interval_s,
        )

    def rehome(
        self,
        deployment_id: str,
        uri: str,
        *,
        timeout_s: float = 15.0,
        poll_interval_s: float = 0.05,
    ) -> dict[str, Any]:
        """Point the existing deployment `deployment_id` at `uri` (`PATCH /deployments/{id}`,
        the schemas re-discovered there). Invocations pinned to it keep their deployment and go
        on at the new address: use it when services come back on another port."""
        return _until_registered(
            lambda: self._send(
                "PATCH",
                f"/deployments/{deployment_id}",
                json={"uri": uri, "overwrite": True},
                timeout=30.0,
            ),
            f"Moving deployment {deployment_id} to {uri} (PATCH {self.url}/deployments/"
            f"{deployment_id})",
            timeout_s=timeout_s,
            poll_interval_s=poll_interval_s,
        )

    def remove(self, deployment_id: str) -> bool:
        """Delete a deployment (Restate only deletes by force). False when it did not exist."""
        response = self._send(
            "DELETE", f"/deployments/{deployment_id}", params={"force": "true"}, timeout=10.0
        )
        if response.status_code == 404:
            return False
        _check(response, f"remove deployment {deployment_id}")
        return True

    def sql(self, query: str, *, timeout_s: float = CLUSTER_START_WAIT_S) -> list[dict[str, Any]]:
        """Rows of a query over the system tables. On a cluster, a query that reached a node
        without the partition's store yet (a fresh cluster, a node that just restarted) is asked
        again, at the next node, for up to `timeout_s`."""
        deadline = time.monotonic() + timeout_s
        while True:
            response = self._send(
                "POST", "/query", json={"query": query}, headers={"accept": "application/json"}
            )
            if len(self.urls) < 2 or not _node_lost(response) or time.monotonic() >= deadline:
                break
            self.url = next((u for u in self.urls if u != self.url), self.url)
            time.sleep(0.2)
        _check(response, "query the invocations")
        return list(response.json().get("rows", []))

    def paused(self, deployment_ids: Iterable[str] | None = None) -> list[str]:
        """Ids of the paused invocations (of the given deployments only, when given)."""
        query = invocations_sql(status="paused", deployment_ids=deployment_ids, columns=("id",))
        return [row["id"] for row in self.sql(query)] if query else []

    def resume(self, invocation_id: str, *, deployment: str | None = None) -> bool:
        """`PATCH /invocations/{id}/resume` (optionally onto another deployment: an id,
        `latest` or `keep`). False when there was nothing to resume (not paused or suspended,
        or gone)."""
        params = {"deployment": deployment} if deployment else None
        response = self._send(
            "PATCH", f"/invocations/{invocation_id}/resume", params=params, timeout=10.0
        )
        if response.status_code in (404, 409):
            return False
        _check(response, f"resume invocation {invocation_id}")
        return True

    def resume_paused(self, deployment_ids: Iterable[str] | None = None) -> list[str]:
        """Resume every paused invocation (of the given deployments); the ids resumed."""
        return [i for i in self.paused(deployment_ids) if self.resume(i)]

    def purge(self, invocation_id: str) -> bool:
        """Delete a completed invocation and, for a workflow's `run`, its state: the workflow
        id can be used again (e.g. after `run` refused a bad body with 400). False when it was
        not there."""
        response = self._send("PATCH", f"/invocations/{invocation_id}/purge", timeout=10.0)
        if response.status_code == 404:
            return False
        _check(response, f"purge invocation {invocation_id}")
        return True


def _check(response: httpx.Response, what: str) -> None:
    if response.is_success:
        return
    raise AdminError(
        f"The Restate admin API refused to {what}: HTTP {response.status_code} "
        f"{response.text.strip()[:500]}",
        status_code=response.status_code,
    )


def _restate_code(response: httpx.Response) -> str | None:
    try:
        return response.json().get("restate_code")
    except ValueError:
        return None


def _until_registered(
    send: Callable[[], httpx.Response], what: str, *, timeout_s: float, poll_interval_s: float
) -> dict[str, Any]:
    deadline = time.monotonic() + timeout_s
    while True:
        status: int | None = None
        try:
            response = send()
            status, text = response.status_code, response.text
            if response.is_success:
                return response.json()
            transient = status in (502, 503, 504) or _restate_code(response) in TRANSIENT_CODES
        except httpx.HTTPError as exc:
            text, transient = f"{type(exc).__name__}: {exc}", True
        if not transient or time.monotonic() >= deadline:
            raise RegistrationError(
                f"{what} failed: {'HTTP ' + str(status) if status else 'no response'} "
                f"{text.strip()[:2000]}\nCheck that the services process serves a Restate app "
                "at that address (see its log), then start again.",
                status_code=status,
                response_text=text,
            )
        time.sleep(poll_interval_s)


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
