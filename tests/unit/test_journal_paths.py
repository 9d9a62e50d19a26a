"""The services serve each journal revision they replay under its own path."""

from __future__ import annotations

import asyncio
from typing import Any

import pytest

from services import journal


def _serve(path: str) -> tuple[list[int], list[dict[str, Any]]]:
    seen: list[int] = []
    sent: list[dict[str, Any]] = []

    async def inner(scope: dict[str, Any], receive: Any, send: Any) -> None:
        seen.append(journal.journal_revision())

    async def send(message: dict[str, Any]) -> None:
        sent.append(message)

    app = journal.serve_journal_revisions(inner)
    asyncio.run(app({"type": "http", "path": path}, None, send))
    return seen, sent


def test_the_root_serves_the_current_revision_and_a_path_an_older_one(monkeypatch) -> None:
    monkeypatch.delenv("WORKBENCH_JOURNAL_REVISION", raising=False)
    assert _serve("/invoke/ClaimWorkflow/run") == ([journal.JOURNAL_REVISION], [])
    assert _serve("/journal/r1/invoke/ClaimWorkflow/run") == ([1], [])
    assert _serve("/journal/r1/discover") == ([1], [])
    assert _serve("/journal/r12x/discover")[0] == [journal.JOURNAL_REVISION]  # not a revision path
    assert journal.journal_revision() == journal.JOURNAL_REVISION  # nothing leaks out
    monkeypatch.setenv("WORKBENCH_JOURNAL_REVISION", "1")
    assert _serve("/discover") == ([1], [])


def test_a_revision_this_code_does_not_replay_is_answered_404_with_the_reason() -> None:
    seen, sent = _serve("/journal/r9/invoke/ClaimWorkflow/run")
    assert seen == []
    assert sent[0]["status"] == 404
    assert b"journal revision 9 is not served by this code" in sent[1]["body"]
    with pytest.raises(ValueError, match="Journal revision 9 is not one this code replays"):
        journal.journal_path(9)
    assert journal.journal_path(journal.JOURNAL_REVISION) == ""
    assert journal.journal_path(1) == "/journal/r1"


def test_a_deployment_uri_names_the_services_and_the_revision_served_there() -> None:
    assert journal.served_at("http://127.0.0.1:9080/journal/r1/") == ("http://127.0.0.1:9080", 1)
    assert journal.served_at("http://127.0.0.1:9080") == (
        "http://127.0.0.1:9080",
        journal.JOURNAL_REVISION,
    )
