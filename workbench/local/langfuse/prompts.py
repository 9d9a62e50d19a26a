"""Prompts with versions and labels: `/api/public/v2/prompts[/{name}[/versions/{version}]]`.

Rules (as Langfuse's server): a new version is max+1 and gets the label `latest`; a label lives on
one version of a prompt only (setting it elsewhere moves it); tags are shared by all versions;
a prompt's type (text or chat) never changes.
"""

from __future__ import annotations

import json
import re
import sqlite3
from typing import Any
from urllib.parse import quote, unquote

from starlette.concurrency import run_in_threadpool
from starlette.requests import Request
from starlette.responses import Response

from ._errors import BadRequest, Json, MethodNotAllowed, NotFound
from ._http import (
    MAX_INT,
    MAX_PAGE,
    dumps,
    int_param,
    json_object,
    page_meta,
    read_json,
    str_param,
    time_param,
)
from ._time import iso, now_ns
from .db import Database

LATEST = "latest"
DEFAULT_LABEL = "production"
_LABEL = re.compile(r"^[a-z0-9_\-.]{1,36}$")
_PREFIX = b"/api/public/v2/prompts/"
_VERSION_PATH = re.compile(r"^(?P<name>.+)/versions/(?P<version>[^/]+)$")


def _check_name(name: Any) -> str:
    if not isinstance(name, str) or not name.strip():
        raise BadRequest("'name' is required: a non-empty string such as 'claim-analyst'.")
    problems = [
        ("|" in name, "contains '|'"),
        (name.startswith("/") or name.endswith("/"), "starts or ends with '/'"),
        ("//" in name, "contains '//'"),
        (name == "new", "is the reserved word 'new'"),
    ]
    for bad, why in problems:
        if bad:
            raise BadRequest(f"Prompt name '{name}' {why}. Choose another name.")
    return name


def _check_labels(labels: Any, field: str, allow_latest: bool) -> list[str]:
    if labels is None:
        return []
    if not isinstance(labels, list) or not all(isinstance(label, str) for label in labels):
        raise BadRequest(f"'{field}' must be a list of strings such as [\"production\"].")
    for label in labels:
        if not _LABEL.match(label):
            raise BadRequest(
                f"Label '{label}' is not valid: use 1-36 lowercase letters, digits, '_', '-' or "
                "'.' (e.g. 'production', 'staging', 'v2-candidate')."
            )
        if label == LATEST and not allow_latest:
            raise BadRequest(
                "Label 'latest' is always assigned to the latest prompt version; it cannot be set."
            )
    return list(dict.fromkeys(labels))


def _chat_messages(value: Any) -> list[dict[str, Any]]:
    if not isinstance(value, list) or not value:
        raise BadRequest(
            "A chat prompt's 'prompt' must be a non-empty list of messages such as "
            '[{"role": "system", "content": "..."}] (or {"type": "placeholder", "name": "..."}).'
        )
    messages: list[dict[str, Any]] = []
    for index, message in enumerate(value):
        if not isinstance(message, dict):
            raise BadRequest(f"prompt[{index}] must be an object with 'role' and 'content'.")
        if message.get("type") == "placeholder":
            name = message.get("name")
            if not isinstance(name, str) or not name:
                raise BadRequest(f"prompt[{index}] is a placeholder without a 'name'.")
            messages.append({"type": "placeholder", "name": name})
            continue
        role, content = message.get("role"), message.get("content")
        if not isinstance(role, str) or not isinstance(content, str):
            raise BadRequest(f"prompt[{index}] needs string 'role' and 'content'.")
        normalized: dict[str, Any] = {"role": role, "content": content}
        if message.get("type") == "chatmessage":
            normalized["type"] = "chatmessage"
        messages.append(normalized)
    return messages


def _labels(conn: sqlite3.Connection, name: str, version: int) -> list[str]:
    rows = conn.execute(
        "SELECT label FROM prompt_labels WHERE name = ? AND version = ? ORDER BY label",
        (name, version),
    )
    return [row[0] for row in rows]


def _tags(conn: sqlite3.Connection, name: str) -> list[str]:
    row = conn.execute("SELECT tags FROM prompt_tags WHERE name = ?", (name,)).fetchone()
    return json.loads(row[0]) if row else []


def _prompt(conn: sqlite3.Connection, row: sqlite3.Row) -> dict[str, Any]:
    return {
        "type": row["type"],
        "name": row["name"],
        "version": row["version"],
        "prompt": json.loads(row["prompt"]),
        "config": json.loads(row["config"]),
        "labels": _labels(conn, row["name"], row["version"]),
        "tags": _tags(conn, row["name"]),
        "commitMessage": row["commit_message"],
        "createdAt": iso(row["created_ns"]),  # real Langfuse sends it; the spec's Prompt allows it
    }


def _move_labels(conn: sqlite3.Connection, name: str, version: int, labels: list[str]) -> None:
    conn.executemany(
        "INSERT OR REPLACE INTO prompt_labels (name, label, version) VALUES (?, ?, ?)",
        [(name, label, version) for label in labels],
    )


def create(db: Database, body: dict[str, Any]) -> dict[str, Any]:
    name = _check_name(body.get("name"))
    prompt_type = body.get("type") or "text"
    if prompt_type not in ("text", "chat"):
        raise BadRequest(f"'type' has value {prompt_type!r}. Use 'text' or 'chat'.")
    if prompt_type == "text":
        if not isinstance(body.get("prompt"), str):
            hint = (
                ' (a list of messages needs "type": "chat")'
                if isinstance(body.get("prompt"), list)
                else ""
            )
            raise BadRequest(f"A text prompt's 'prompt' must be a string{hint}.")
        content: Any = body["prompt"]
    else:
        content = _chat_messages(body.get("prompt"))
    labels = _check_labels(body.get("labels"), "labels", allow_latest=True)
    tags = body.get("tags")
    if tags is not None and (
        not isinstance(tags, list) or not all(isinstance(tag, str) for tag in tags)
    ):
        raise BadRequest("'tags' must be a list of strings.")
    commit_message = body.get("commitMessage")
    if commit_message is not None and not isinstance(commit_message, str):
        raise BadRequest("'commitMessage' must be a string.")
    config = body.get("config")
    now = now_ns()
    with db.write() as conn:
        last = conn.execute(
            "SELECT version, type FROM prompts WHERE name = ? ORDER BY version DESC LIMIT 1",
            (name,),
        ).fetchone()
        if last is not None and last["type"] != prompt_type:
            raise BadRequest(
                f"Prompt '{name}' is a {last['type']} prompt; a new version cannot be "
                f"{prompt_type}. Keep the type, or create the {prompt_type} prompt under another "
                "name."
            )
        version = 1 if last is None else last["version"] + 1
        conn.execute(
            "INSERT INTO prompts (name, version, type, prompt, config, commit_message, "
            "created_ns, updated_ns) VALUES (?, ?, ?, ?, ?, ?, ?, ?)",
            (
                name,
                version,
                prompt_type,
                dumps(content),
                dumps(config if config is not None else {}),
                commit_message,
                now,
                now,
            ),
        )
        _move_labels(conn, name, version, list(dict.fromkeys([*labels, LATEST])))
        if tags is not None:
            conn.execute(
                "INSERT OR REPLACE INTO prompt_tags (name, tags) VALUES (?, ?)",
                (name, dumps(list(dict.fromkeys(tags)))),
            )
        else:
            conn.execute("INSERT OR IGNORE INTO prompt_tags (name, tags) VALUES (?, '[]')", (name,))
        row = conn.execute(
            "SELECT * FROM prompts WHERE name = ? AND version = ?", (name, version)
        ).fetchone()
        return _prompt(conn, row)


def get(db: Database, name: str, version: int | None, label: str | None) -> dict[str, Any]:
    if version is not None and label is not None:
        raise BadRequest("Pass either 'version' or 'label', not both.")
    conn = db.connection()
    if version is not None:
        row = conn.execute(
            "SELECT * FROM prompts WHERE name = ? AND version = ?", (name, version)
        ).fetchone()
        wanted = f"version {version}"
    else:
        label = label or DEFAULT_LABEL
        row = conn.execute(
            "SELECT p.* FROM prompts p JOIN prompt_labels l ON l.name = p.name AND "
            "l.version = p.version WHERE p.name = ? AND l.label = ?",
            (name, label),
        ).fetchone()
        wanted = f"label '{label}'"
    if row is None:
        raise NotFound(_not_found(conn, name, wanted))
    return _prompt(conn, row)


def _not_found(conn: sqlite3.Connection, name: str, wanted: str) -> str:
    versions = [r[0] for r in conn.execute("SELECT version FROM prompts WHERE name = ?", (name,))]
    if not versions:
        return (
            f"Prompt not found: '{name}' does not exist. "
            "Create it with POST /api/public/v2/prompts."
        )
    labels = sorted(
        {r[0] for r in conn.execute("SELECT label FROM prompt_labels WHERE name = ?", (name,))}
    )
    return (
        f"Prompt not found: '{name}' has no {wanted} (versions {versions}, labels {labels}). "
        "Promote a version with PATCH /api/public/v2/prompts/{name}/versions/{version} "
        '{"newLabels": [...]}.'
    )


def set_labels(db: Database, name: str, version: int, body: dict[str, Any]) -> dict[str, Any]:
    if "newLabels" not in body:
        raise BadRequest('Send {"newLabels": ["production", ...]}: the labels to add.')
    labels = _check_labels(body["newLabels"], "newLabels", allow_latest=False)
    with db.write() as conn:
        row = conn.execute(
            "SELECT * FROM prompts WHERE name = ? AND version = ?", (name, version)
        ).fetchone()
        if row is None:
            raise NotFound(_not_found(conn, name, f"version {version}"))
        _move_labels(conn, name, version, labels)
        conn.execute(
            "UPDATE prompts SET updated_ns = ? WHERE name = ? AND version = ?",
            (now_ns(), name, version),
        )
        return _prompt(conn, row)


def delete(db: Database, name: str, version: int | None, label: str | None) -> None:
    with db.write() as conn:
        sql = "SELECT version FROM prompts p WHERE name = ?"
        params: list[Any] = [name]
        if version is not None:
            sql += " AND version = ?"
            params.append(version)
        if label is not None:
            sql += (
                " AND EXISTS (SELECT 1 FROM prompt_labels l WHERE l.name = p.name "
                "AND l.version = p.version AND l.label = ?)"
            )
            params.append(label)
        doomed = [row[0] for row in conn.execute(sql, params)]
        if not doomed:
            what = " and ".join(
                part
                for part in (
                    f"version {version}" if version is not None else "",
                    f"label '{label}'" if label is not None else "",
                )
                if part
            )
            raise NotFound(
                f"Prompt not found: '{name}'" + (f" with {what}" if what else "") + " to delete."
            )
        marks = ",".join("?" * len(doomed))
        conn.execute(
            f"DELETE FROM prompts WHERE name = ? AND version IN ({marks})", [name, *doomed]
        )
        conn.execute(
            f"DELETE FROM prompt_labels WHERE name = ? AND version IN ({marks})", [name, *doomed]
        )
        newest = conn.execute("SELECT MAX(version) FROM prompts WHERE name = ?", (name,)).fetchone()
        if newest[0] is None:
            conn.execute("DELETE FROM prompt_tags WHERE name = ?", (name,))
        else:
            conn.execute(
                "INSERT OR IGNORE INTO prompt_labels (name, label, version) VALUES (?, ?, ?)",
                (name, LATEST, newest[0]),
            )


def list_prompts(db: Database, request: Request) -> dict[str, Any]:
    page = int_param(request, "page", 1, minimum=1, maximum=MAX_PAGE)
    limit = int_param(request, "limit", 50, minimum=1, maximum=1000)
    assert page is not None and limit is not None
    clauses: list[str] = []
    params: list[Any] = []
    name = str_param(request, "name")
    if name is not None:
        clauses.append("p.name = ?")
        params.append(name)
    label = str_param(request, "label")
    if label is not None:
        clauses.append(
            "EXISTS (SELECT 1 FROM prompt_labels l WHERE l.name = p.name "
            "AND l.version = p.version AND l.label = ?)"
        )
        params.append(label)
    tag = str_param(request, "tag")
    if tag is not None:
        clauses.append(
            "EXISTS (SELECT 1 FROM prompt_tags t, json_each(t.tags) WHERE t.name = p.name "
            "AND json_each.value = ?)"
        )
        params.append(tag)
    for key, op in (("fromUpdatedAt", ">="), ("toUpdatedAt", "<")):
        moment = time_param(request, key)
        if moment is not None:
            clauses.append(f"p.updated_ns {op} ?")
            params.append(moment)
    where = f"WHERE {' AND '.join(clauses)}" if clauses else ""
    conn = db.connection()
    rows = conn.execute(
        f"SELECT p.name, p.version, p.type, p.config, p.updated_ns FROM prompts p {where} "
        "ORDER BY p.name, p.version",
        params,
    ).fetchall()
    grouped: dict[str, list[sqlite3.Row]] = {}
    for row in rows:
        grouped.setdefault(row["name"], []).append(row)
    names = sorted(grouped)
    data = []
    for prompt_name in names[(page - 1) * limit : page * limit]:
        versions = grouped[prompt_name]
        numbers = [row["version"] for row in versions]
        marks = ",".join("?" * len(numbers))
        labels = conn.execute(
            f"SELECT DISTINCT label FROM prompt_labels WHERE name = ? AND version IN ({marks}) "
            "ORDER BY label",
            [prompt_name, *numbers],
        ).fetchall()
        newest = versions[-1]
        data.append(
            {
                "name": prompt_name,
                "type": newest["type"],
                "versions": numbers,
                "labels": [row[0] for row in labels],
                "tags": _tags(conn, prompt_name),
                "lastUpdatedAt": iso(max(row["updated_ns"] for row in versions)),
                "lastConfig": json.loads(newest["config"]),
            }
        )
    return {"data": data, "meta": page_meta(page, limit, len(names))}


def announce_change(db: Database) -> None:
    """One byte appended to `db.prompt_changes` after a prompt change is committed: its size
    and time change, which the services read before reusing where labels pointed."""
    if db.prompt_changes is not None:
        with db.prompt_changes.open("ab") as f:
            f.write(b".")


def _rest(request: Request) -> str:
    """The still percent-encoded part of the path after /api/public/v2/prompts/."""
    raw = request.scope.get("raw_path")
    if isinstance(raw, bytes) and raw.startswith(_PREFIX):
        return raw[len(_PREFIX) :].decode("latin-1")
    return quote(request.path_params["rest"], safe="/")


async def prompts_collection(request: Request) -> Response:
    """`GET /api/public/v2/prompts` (list) and `POST /api/public/v2/prompts` (new version)."""
    db = request.app.state.db
    if request.method == "POST":
        body = json_object(await read_json(request), "POST /api/public/v2/prompts")
        created = await run_in_threadpool(create, db, body)
        announce_change(db)
        return Json(created)
    return Json(await run_in_threadpool(list_prompts, db, request))


async def prompt_item(request: Request) -> Response:
    """`GET|DELETE /api/public/v2/prompts/{name}`, `PATCH .../{name}/versions/{version}`."""
    db = request.app.state.db
    rest = _rest(request)
    if request.method == "PATCH":
        match = _VERSION_PATH.match(rest)
        if match is None:
            raise MethodNotAllowed(
                "PATCH is for /api/public/v2/prompts/{name}/versions/{version} (name URL-encoded)."
            )
        name = unquote(match["name"])
        try:
            version = int(unquote(match["version"]))
        except ValueError:
            raise BadRequest(
                f"Prompt version '{unquote(match['version'])}' is not an integer."
            ) from None
        if not 1 <= version <= MAX_INT:
            raise BadRequest(f"Prompt version {version} is out of range (1 to {MAX_INT}).")
        body = json_object(await read_json(request), "PATCH .../versions/{version}")
        moved = await run_in_threadpool(set_labels, db, name, version, body)
        announce_change(db)
        return Json(moved)
    name = unquote(rest)
    version = int_param(request, "version")
    label = str_param(request, "label")
    if request.method == "DELETE":
        await run_in_threadpool(delete, db, name, version, label)
        announce_change(db)
        return Response(status_code=204)
    return Json(await run_in_threadpool(get, db, name, version, label))
