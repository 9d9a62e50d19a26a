"""`wb.serve`'s parts that need no Restate server: which objects are services, how a handler is
addressed, the server thread (its own loop, cut requests on stop, logs kept off stderr), the
journal's timers, and the Agents SDK settings for served code."""

from __future__ import annotations

import asyncio
import json
import logging
import socket
import threading
from pathlib import Path
from typing import Any

import agents
import httpx
import pytest
import restate
from pydantic import BaseModel

import workbench as wb
from workbench import _served_runtime
from workbench._server_thread import ServerThread
from workbench.errors import NotAServiceError
from workbench.frames import step_journal
from workbench.served import Served
from workbench.serving import check_services
from workbench.stack.ports import free_port, port_is_free


def _service(name: str = "Greeter") -> Any:
    service = restate.Service(name)

    @service.handler()
    async def greet(ctx: restate.Context, who: str) -> str:
        return f"hello {who}"

    return service


def _object(name: str = "Cart") -> Any:
    obj = restate.VirtualObject(name)

    @obj.handler()
    async def add(ctx: restate.ObjectContext, item: str) -> int:
        return 1

    return obj


# -- which objects are services ---------------------------------------------------------------
def test_services_objects_and_lists_are_accepted() -> None:
    a, b, c = _service("A"), _object("B"), _service("C")
    assert [s.name for s in check_services([a, [b, (c,)]])] == ["A", "B", "C"]


@pytest.mark.parametrize(
    ("value", "message"),
    [
        (42, r"got 42 of type int\. Define one with"),
        ("not a path", r"'not a path' does not name a service: .*'module:attribute'"),
        (
            agents.Agent(name="triage", instructions="x"),
            r"type Agent\. An Agent is not a service: call it from a handler",
        ),
    ],
    ids=["int", "string-without-colon", "agent"],
)
def test_what_is_not_a_service_is_named(value: Any, message: str) -> None:
    with pytest.raises(NotAServiceError, match=message):
        check_services([value])


def test_a_handler_function_is_told_to_pass_its_service() -> None:
    service = restate.Service("Svc")

    @service.handler()
    async def run(ctx: restate.Context, x: int) -> int:
        return x

    with pytest.raises(wb.ServeError, match=r"looks like a handler function: pass the service"):
        check_services([run])


def test_a_service_without_handlers_two_with_one_name_and_none_at_all() -> None:
    with pytest.raises(wb.ServeError, match=r"'Empty' has no handlers"):
        check_services([restate.Service("Empty")])
    with pytest.raises(wb.ServeError, match=r"Two services are named 'Twin'"):
        check_services([_service("Twin"), _service("Twin")])
    with pytest.raises(NotAServiceError, match=r"at least one Restate service"):
        check_services([])
    assert issubclass(NotAServiceError, TypeError) and issubclass(NotAServiceError, wb.ServeError)


def test_a_module_path_is_imported_or_its_failure_named(tmp_path: Path, monkeypatch) -> None:
    (tmp_path / "my_services.py").write_text(
        "import restate\nsvc = restate.Service('FromModule')\n\n"
        "@svc.handler()\nasync def run(ctx: restate.Context) -> str:\n    return 'ok'\n"
    )
    (tmp_path / "bad_services.py").write_text("raise ImportError('no module named secrets_file')")
    monkeypatch.syspath_prepend(str(tmp_path))
    assert [s.name for s in check_services(["my_services:svc"])] == ["FromModule"]
    with pytest.raises(wb.ServeError, match=r"Could not import 'bad_services'.*secrets_file"):
        check_services(["bad_services:svc"])
    with pytest.raises(wb.ServeError, match=r"Module 'my_services' has no 'other'.*'svc'"):
        check_services(["my_services:other"])


# -- addressing a handler ---------------------------------------------------------------------
def _served(*services: Any) -> Served:
    return Served(None, list(services), None, "dp_test", "a new deployment")  # type: ignore[arg-type]


def test_handlers_are_found_by_name_path_or_function() -> None:
    greeter, cart = _service("Greeter"), _object("Cart")
    served = _served(greeter, cart)
    assert served._target("greet", None)[2] == "/Greeter/greet"
    assert served._target("Cart/add", "c-1")[2] == "/Cart/c-1/add"
    assert served._target(cart.handlers["add"].fn, "c-2")[2] == "/Cart/c-2/add"
    with pytest.raises(wb.ServeError, match=r"No handler 'nope' is served here.*'Greeter/greet'"):
        served._target("nope", None)
    with pytest.raises(wb.ServeError, match=r"Cart is a virtual object: pass the key"):
        served._target("add", None)
    with pytest.raises(wb.ServeError, match=r"Greeter is a service: its handlers take no key"):
        served._target("greet", "k")
    with pytest.raises(TypeError, match=r"named by a string"):
        served._target(3, None)


def test_a_handler_name_two_services_share_must_be_qualified() -> None:
    served = _served(_service("One"), _service("Two"))
    with pytest.raises(wb.ServeError, match=r"'greet' is ambiguous.*'One/greet', 'Two/greet'"):
        served._target("greet", None)
    assert served._target("Two/greet", None)[2] == "/Two/greet"


class Order(BaseModel):
    item: str
    qty: int


def test_inputs_are_encoded_by_the_handler_and_outputs_decoded_by_it() -> None:
    shop = restate.Service("Shop")

    @shop.handler()
    async def place(ctx: restate.Context, order: Order) -> Order:
        return order

    served = _served(shop)
    handler = shop.handlers["place"]
    sent = served._encode(handler, Order(item="pen", qty=2))
    assert json.loads(sent) == {"item": "pen", "qty": 2}
    assert json.loads(served._encode(handler, {"item": "ink", "qty": 1})) == {
        "item": "ink",
        "qty": 1,
    }
    assert served._decode(handler, b'{"item": "pen", "qty": 2}') == Order(item="pen", qty=2)
    assert served._encode(_service().handlers["greet"], "ana") == b'"ana"'


# -- the server thread ------------------------------------------------------------------------
def test_the_server_answers_on_its_own_loop_and_stops(tmp_path: Path) -> None:
    port = free_port()
    server = ServerThread(restate.app(services=[_service()]), name="G", log_path=tmp_path / "g.log")
    server.start(port)
    try:
        assert server.running
        assert httpx.get(f"{server.url}/health", timeout=5).status_code == 200
    finally:
        server.stop()
    assert not server.running
    assert port_is_free(port)
    assert "Running on" in (tmp_path / "g.log").read_text()  # hypercorn's log: a file, not stderr


def test_a_taken_port_is_an_os_error_and_nothing_keeps_running(tmp_path: Path) -> None:
    squatter = socket.socket()
    squatter.bind(("127.0.0.1", 0))
    squatter.listen(1)
    try:
        port = squatter.getsockname()[1]
        server = ServerThread(restate.app(services=[_service()]), name="T", log_path=tmp_path / "t")
        with pytest.raises(OSError, match=r"[Aa]ddress already in use"):
            server.start(port)
        assert not server.running
    finally:
        squatter.close()


def test_stop_cuts_a_request_that_would_wait_forever(tmp_path: Path) -> None:
    """Restate keeps an invocation's stream open while the handler waits; stop() must end it
    (the request reads a disconnect) instead of hanging."""
    seen: list[str] = []
    entered = threading.Event()

    async def app(scope: dict, receive: Any, send: Any) -> None:
        if scope["type"] != "http":
            return
        if scope["path"] == "/health":
            await send({"type": "http.response.start", "status": 200, "headers": []})
            await send({"type": "http.response.body", "body": b"ok"})
            return
        entered.set()
        while True:
            message = await receive()
            seen.append(message["type"])
            if message["type"] == "http.disconnect":
                return

    server = ServerThread(app, name="Hang", log_path=tmp_path / "hang.log")
    server.start(free_port())
    client = socket.create_connection(("127.0.0.1", server.port))
    try:  # a body announced as 100 bytes, of which 5 come: the app waits for the rest
        client.sendall(b"POST /wait HTTP/1.1\r\nHost: x\r\nContent-Length: 100\r\n\r\nhello")
        assert entered.wait(10)
        server.stop(timeout_s=10)  # raises TimeoutError if the request kept the thread alive
    finally:
        client.close()
    assert not server.running
    assert seen[-1] == "http.disconnect"


def test_logs_made_on_a_server_thread_go_to_its_file_not_stderr(tmp_path: Path, caplog) -> None:
    """A record made on a server thread never reaches the kernel's handlers (in a notebook
    there are none, and Python's last resort prints to stderr: a red box in any cell)."""
    server = ServerThread(restate.app(services=[_service()]), name="Quiet", log_path=tmp_path / "q")
    server.start(free_port())
    try:

        def fail_in_a_handler() -> None:
            try:
                raise ValueError("the user's bug")
            except ValueError:
                logging.getLogger("restate.server").exception("Exception in Restate handler")

        worker = threading.Thread(target=fail_in_a_handler, name=server._thread.name)
        worker.start()
        worker.join()
        logging.getLogger("restate.server").warning("made elsewhere")  # not a server thread
    finally:
        server.stop()
    text = (tmp_path / "q").read_text()
    assert "Exception in Restate handler" in text and "the user's bug" in text
    assert "made elsewhere" not in text
    assert "the user's bug" not in caplog.text and "made elsewhere" in caplog.text


# -- the journal's timers ---------------------------------------------------------------------
def test_a_durable_timer_is_one_journal_row_with_its_duration() -> None:
    def entry(index: int, body: dict, at: str) -> dict:
        return {"index": index, "entry_json": json.dumps(body), "appended_at": at}

    day = "2026-11-27T10:00:0"
    rows = [
        entry(0, {"Command": {"Input": {}}}, f"{day}0.000Z"),
        entry(1, {"Command": {"Sleep": {"completion_id": 1, "name": ""}}}, f"{day}0.100Z"),
        entry(2, {"Notification": {"Completion": {"Sleep": {"completion_id": 1}}}}, f"{day}2.100Z"),
        entry(3, {"Command": {"Output": {"result": {"Success": list(b'{"n":3}')}}}}, f"{day}2.2Z"),
    ]
    frame = step_journal(rows)
    assert list(frame["kind"]) == ["input", "timer", "output"]
    assert frame.loc[1, "step"] == "sleep" and frame.loc[1, "ms"] == 2000.0
    assert frame.loc[2, "result"] == '{"n": 3}'  # an output that is not a claim's, as itself


# -- the Agents SDK settings for served code --------------------------------------------------
def test_the_tracer_works_outside_a_handler_too() -> None:
    from opentelemetry.sdk.trace import TracerProvider
    from opentelemetry.sdk.trace.export import SimpleSpanProcessor
    from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter

    exported = InMemorySpanExporter()
    provider = TracerProvider()
    provider.add_span_processor(SimpleSpanProcessor(exported))
    tracer = _served_runtime.HandlerTracer(provider.get_tracer("t"))
    tracer.start_span("in a cell").end()  # a plain RestateTracer raises here
    with tracer.start_as_current_span("also current"):
        pass
    assert [s.name for s in exported.get_finished_spans()] == ["in a cell", "also current"]


def test_the_model_client_serves_any_event_loop(tmp_path: Path) -> None:
    """The served handlers run on the server's loop and a cell's agent on the kernel's: the one
    default client must work from both (one connection pool per loop)."""
    from agents.models import _openai_shared

    async def models(scope: dict, receive: Any, send: Any) -> None:
        if scope["type"] != "http":
            return
        body = json.dumps({"object": "list", "data": [{"id": "m", "object": "model"}]})
        headers = [(b"content-type", b"application/json")]
        await send({"type": "http.response.start", "status": 200, "headers": headers})
        await send({"type": "http.response.body", "body": body.encode()})

    server = ServerThread(models, name="Models", log_path=tmp_path / "m.log")
    server.start(free_port())
    previous = _openai_shared.get_default_openai_client()
    _served_runtime.reset()
    try:
        _served_runtime.configure_model(f"{server.url}/v1", "key-1")
        client = _openai_shared.get_default_openai_client()
        assert str(client.base_url) == f"{server.url}/v1/" and client.api_key == "key-1"

        async def list_models() -> list[str]:
            return [m.id async for m in client.models.list()]

        assert asyncio.run(list_models()) == ["m"]
        assert asyncio.run(list_models()) == ["m"]  # a second loop, the first one closed
    finally:
        server.stop()
        _served_runtime.reset()
    assert _openai_shared.get_default_openai_client() is previous  # reset() puts it back
