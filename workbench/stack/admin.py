"""The Restate admin API calls the stack makes to keep claims alive across restarts: register a
deployment, move one to a new address in place, remove one, and resume or purge invocations.
Each takes an `httpx.Client` and the admin URL (checked against restate-server 1.7.12).

    rehome_deployment(http, admin, "dp_...", "http://127.0.0.1:9081")  # pinned claims follow
    resume_paused(http, admin, deployment_ids=["dp_..."])                # after an outage
    purge_invocation(http, admin, "inv_...")    # frees a claim id whose run was refused (400)
"""

from __future__ import annotations

import time
from collections.abc import Iterable, Mapping
from typing import Any

import httpx

from .errors import RegistrationError, StackError

TRANSIENT_CODES = frozenset({"META0003"})
"""Restate errors worth retrying: META0003 = the deployment could not be reached (yet)."""


class AdminError(StackError):
    """The Restate admin API refused a call; the message quotes its answer."""

    def __init__(self, message: str, *, status_code: int | None = None) -> None:
        super().__init__(message)
        self.status_code = status_code


def deployment_uri(deployment: Mapping[str, Any]) -> str | None:
    uri = deployment.get("uri") or (deployment.get("http") or {}).get("uri")
    return str(uri).rstrip("/") if uri else None


def deployments(http: httpx.Client, admin_url: str) -> list[dict[str, Any]]:
    response = http.get(f"{admin_url}/deployments")
    _check(response, "list the deployments")
    return list(response.json().get("deployments", []))


def deployment(http: httpx.Client, admin_url: str, deployment_id: str) -> dict[str, Any] | None:
    """The deployment `deployment_id`, or None when Restate does not know it."""
    response = http.get(f"{admin_url}/deployments/{deployment_id}")
    if response.status_code == 404:
        return None
    _check(response, f"read deployment {deployment_id}")
    return response.json()


def register_deployment(
    http: httpx.Client,
    admin_url: str,
    uri: str,
    *,
    timeout_s: float,
    poll_interval_s: float,
    force: bool = True,
) -> dict[str, Any]:
    """POST {admin}/deployments {"uri", "force"}, retrying until it succeeds or time is up.
    force=True replaces the deployment registered at the same URI (same id, new code);
    a URI not registered yet is a new deployment either way."""
    return _until_registered(
        lambda: http.post(
            f"{admin_url}/deployments", json={"uri": uri, "force": force}, timeout=30.0
        ),
        f"Registering the services deployment {uri} with the Restate admin API "
        f"({admin_url}/deployments)",
        timeout_s=timeout_s,
        poll_interval_s=poll_interval_s,
    )


def rehome_deployment(
    http: httpx.Client,
    admin_url: str,
    deployment_id: str,
    uri: str,
    *,
    timeout_s: float = 15.0,
    poll_interval_s: float = 0.05,
) -> dict[str, Any]:
    """Point the existing deployment `deployment_id` at `uri` (`PATCH /deployments/{id}`, with
    the schemas re-discovered there). Invocations pinned to it keep their deployment and go on
    at the new address: use it when services come back on another port."""
    return _until_registered(
        lambda: http.patch(
            f"{admin_url}/deployments/{deployment_id}",
            json={"uri": uri, "overwrite": True},
            timeout=30.0,
        ),
        f"Moving deployment {deployment_id} to {uri} (PATCH {admin_url}/deployments/"
        f"{deployment_id})",
        timeout_s=timeout_s,
        poll_interval_s=poll_interval_s,
    )


def remove_deployment(http: httpx.Client, admin_url: str, deployment_id: str) -> bool:
    """Delete a deployment (Restate only deletes by force). False when it did not exist."""
    response = http.delete(
        f"{admin_url}/deployments/{deployment_id}", params={"force": "true"}, timeout=10.0
    )
    if response.status_code == 404:
        return False
    _check(response, f"remove deployment {deployment_id}")
    return True


def query(http: httpx.Client, admin_url: str, sql: str) -> list[dict[str, Any]]:
    response = http.post(
        f"{admin_url}/query", json={"query": sql}, headers={"accept": "application/json"}
    )
    _check(response, "query the invocations")
    return list(response.json().get("rows", []))


def _quoted(values: Iterable[str]) -> str:
    return ", ".join("'" + str(v).replace("'", "''") + "'" for v in values)


def paused_invocations(
    http: httpx.Client, admin_url: str, deployment_ids: Iterable[str] | None = None
) -> list[str]:
    """Ids of the paused invocations (of the given deployments only, when given)."""
    sql = "SELECT id FROM sys_invocation WHERE status = 'paused'"
    if deployment_ids is not None:
        ids = list(deployment_ids)
        if not ids:
            return []
        sql += f" AND pinned_deployment_id IN ({_quoted(ids)})"
    return [row["id"] for row in query(http, admin_url, sql)]


def resume_invocation(
    http: httpx.Client, admin_url: str, invocation_id: str, *, deployment: str | None = None
) -> bool:
    """`PATCH /invocations/{id}/resume` (optionally onto another deployment: an id, `latest`
    or `keep`). True when resumed, False when there was nothing to resume (not paused or
    suspended, or gone)."""
    params = {"deployment": deployment} if deployment else None
    response = http.patch(
        f"{admin_url}/invocations/{invocation_id}/resume", params=params, timeout=10.0
    )
    if response.status_code in (404, 409):
        return False
    _check(response, f"resume invocation {invocation_id}")
    return True


def resume_paused(
    http: httpx.Client, admin_url: str, deployment_ids: Iterable[str] | None = None
) -> list[str]:
    """Resume every paused invocation (of the given deployments); returns the ids resumed."""
    return [
        invocation
        for invocation in paused_invocations(http, admin_url, deployment_ids)
        if resume_invocation(http, admin_url, invocation)
    ]


def purge_invocation(http: httpx.Client, admin_url: str, invocation_id: str) -> bool:
    """Delete a completed invocation and, for a workflow's `run`, its state: the workflow id can
    be used again (e.g. after `run` refused a bad body with 400). False when it was not there."""
    response = http.patch(f"{admin_url}/invocations/{invocation_id}/purge", timeout=10.0)
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
    send: Any, what: str, *, timeout_s: float, poll_interval_s: float
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
