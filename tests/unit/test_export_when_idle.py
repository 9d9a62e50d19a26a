"""The services export their spans when no request is in flight (`tracing.export_when_idle`), not
in the middle of a claim: never while a request runs, promptly once the last one has ended."""

from __future__ import annotations

import asyncio
import time

import pytest

from services import tracing


async def _noop_receive() -> dict:
    return {"type": "http.request", "body": b"", "more_body": False}


async def _noop_send(message: dict) -> None:
    return None


@pytest.fixture
def exports(monkeypatch: pytest.MonkeyPatch) -> list[float]:
    monkeypatch.setattr(tracing, "_tracer", object())  # tracing on
    return []


def _served(exports: list[float]) -> tuple[object, dict[str, asyncio.Event]]:
    """An app whose requests, by path, wait until their event is set; and its idle-exporting
    wrapper, whose exports are recorded with the time they happened."""
    releases: dict[str, asyncio.Event] = {}

    async def app(scope: dict, receive: object, send: object) -> None:
        await releases[scope["path"]].wait()

    def flush() -> None:
        exports.append(time.monotonic())

    return tracing.export_when_idle(app, flush=flush), releases


def test_exports_once_the_last_request_has_ended(exports: list[float]) -> None:
    async def scenario() -> None:
        served, releases = _served(exports)
        releases["/a"], releases["/b"] = asyncio.Event(), asyncio.Event()
        a = asyncio.create_task(served({"type": "http", "path": "/a"}, _noop_receive, _noop_send))
        b = asyncio.create_task(served({"type": "http", "path": "/b"}, _noop_receive, _noop_send))
        await asyncio.sleep(0.05)
        releases["/a"].set()
        await a
        await asyncio.sleep(4 * tracing.IDLE_EXPORT_AFTER_S)
        assert exports == [], "exported while a request was still in flight"
        releases["/b"].set()
        await b
        ended = time.monotonic()
        for _ in range(100):
            if exports:
                break
            await asyncio.sleep(0.02)
        assert len(exports) == 1, "no export after the last request ended"
        assert exports[0] - ended >= tracing.IDLE_EXPORT_AFTER_S * 0.9, "exported before quiet"

    asyncio.run(scenario())


def test_a_request_within_the_quiet_time_postpones_the_export(exports: list[float]) -> None:
    async def scenario() -> None:
        served, releases = _served(exports)
        releases["/1"] = asyncio.Event()
        releases["/1"].set()
        await served({"type": "http", "path": "/1"}, _noop_receive, _noop_send)
        await asyncio.sleep(tracing.IDLE_EXPORT_AFTER_S / 3)
        releases["/3"] = asyncio.Event()
        third = asyncio.create_task(
            served({"type": "http", "path": "/3"}, _noop_receive, _noop_send)
        )
        await asyncio.sleep(3 * tracing.IDLE_EXPORT_AFTER_S)
        assert exports == [], "exported although a request had started in the quiet time"
        releases["/3"].set()
        await third
        for _ in range(100):
            if exports:
                break
            await asyncio.sleep(0.02)
        assert len(exports) == 1

    asyncio.run(scenario())


def test_untraced_services_are_served_unwrapped(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(tracing, "_tracer", None)

    async def app(scope: dict, receive: object, send: object) -> None:
        return None

    assert tracing.export_when_idle(app) is app
