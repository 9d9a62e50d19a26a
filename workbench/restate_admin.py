"""Restate's admin API: SQL introspection (invocations, journals) and deployments."""

from __future__ import annotations

import json
import re
from typing import Any

import httpx
import pandas as pd

from ._aio import run_sync

_SAFE = re.compile(r"^[A-Za-z0-9._:/-]+$")


def _literal(value: str) -> str:
    if not _SAFE.match(value):
        raise ValueError(
            f"{value!r} cannot be used in a query: only letters, digits and ._:/- are."
        )
    return f"'{value}'"


class AdminError(RuntimeError):
    """The admin API answered with an error."""


class RestateAdmin:
    def __init__(self, url: str, timeout_s: float = 10.0) -> None:
        self.url = url.rstrip("/")
        self.timeout_s = timeout_s

    async def aquery(self, sql: str) -> list[dict[str, Any]]:
        async with httpx.AsyncClient(timeout=self.timeout_s) as http:
            response = await http.post(
                f"{self.url}/query", json={"query": sql}, headers={"accept": "application/json"}
            )
        if not response.is_success:
            raise AdminError(
                f"Restate admin query failed (HTTP {response.status_code}): {response.text}"
            )
        return response.json().get("rows", [])

    def query(self, sql: str) -> pd.DataFrame:
        return pd.DataFrame(run_sync(self.aquery(sql)))

    async def aworkflow_invocation(self, service: str, key: str) -> dict[str, Any] | None:
        rows = await self.aquery(
            "SELECT id, status, retry_count, last_failure, pinned_deployment_id, created_at, "
            "modified_at, completed_at FROM sys_invocation "
            f"WHERE target_service_name = {_literal(service)} "
            f"AND target_service_key = {_literal(key)} AND target_handler_name = 'run' "
            "ORDER BY created_at DESC LIMIT 1"
        )
        return rows[0] if rows else None

    def journal(self, invocation_id: str) -> pd.DataFrame:
        """One row per journal entry: its type, the step name, and a short detail (the state key
        set, the call made, the result of a completion)."""
        rows = run_sync(
            self.aquery(
                "SELECT index, entry_type, name, entry_lite_json, appended_at FROM sys_journal "
                f"WHERE id = {_literal(invocation_id)} ORDER BY index"
            )
        )
        for row in rows:
            row["detail"] = _detail(row.pop("entry_lite_json", None))
        return pd.DataFrame(rows, columns=["index", "entry_type", "name", "detail", "appended_at"])


def _detail(lite_json: str | None) -> str:
    """A readable digest of an entry's `entry_lite_json`."""
    if not lite_json:
        return ""
    try:
        entry = json.loads(lite_json)
    except ValueError:
        return ""
    kind, body = next(iter(entry.items()))
    if kind == "Notification":
        result = body.get("result")
        return f"result: {result}" if isinstance(result, str) else ""
    command, fields = next(iter(body.items()))
    if not isinstance(fields, dict):
        return ""
    if "key" in fields:
        what = "promise" if "Promise" in command else "state"
        return f"{what} {fields['key']!r}"
    target = fields.get("invocation_target")
    if isinstance(target, dict):
        inner = next(iter(target.values()))
        if isinstance(inner, dict):
            return "/".join(
                str(inner.get(k, "")) for k in ("name", "key", "handler") if inner.get(k)
            )
    if "result" in fields:
        return f"result: {fields['result']}"
    return ""
