"""The embedded Langfuse's trace viewer, in-process (Starlette's test client): the login and its
session, each page's content, filters, escaping of user-controlled text, and the API left as it
was (Basic auth, JSON errors). The real-browser test is tests/browser/test_langfuse_viewer.py."""

from __future__ import annotations

import base64
import html
import json
import re
import time
from collections.abc import Iterator
from typing import Any

import pytest
from opentelemetry.exporter.otlp.proto.common.trace_encoder import encode_spans
from opentelemetry.sdk.trace import TracerProvider
from opentelemetry.sdk.trace.export import SimpleSpanProcessor
from starlette.testclient import TestClient

from tests._claim_spans import ClaimTrace, Collect, claim_trace
from workbench.local.langfuse import create_app
from workbench.local.langfuse.viewer import _diff, _waterfall
from workbench.local.langfuse.viewer._session import Keys, safe_next

PK, SK = "pk-lf-view", "sk-lf-view"
API = {"Authorization": "Basic " + base64.b64encode(f"{PK}:{SK}".encode()).decode()}
TRACES = "/project/local-workbench/traces"
XSS = "<script>alert('x')</script>"


@pytest.fixture
def client(tmp_path) -> Iterator[TestClient]:
    with TestClient(create_app(tmp_path / "langfuse.db", PK, SK)) as test_client:
        yield test_client


def log_in(client: TestClient) -> None:
    answer = client.post(
        "/login", data={"public_key": PK, "secret_key": SK}, follow_redirects=False
    )
    assert answer.status_code == 303, answer.text


def ingest(client: TestClient, trace: ClaimTrace | bytes) -> None:
    body = trace.body if isinstance(trace, ClaimTrace) else trace
    answer = client.post(
        "/api/public/otel/v1/traces",
        content=body,
        headers={**API, "Content-Type": "application/x-protobuf"},
    )
    assert answer.status_code == 200, answer.text


def api(client: TestClient, method: str, path: str, body: Any) -> Any:
    answer = client.request(method, path, json=body, headers=API)
    assert answer.status_code < 300, answer.text
    return answer.json()


def experiment_item(dataset_id: str, run: str, item: str, output: Any) -> tuple[bytes, str]:
    """The root span the langfuse SDK's run_experiment makes for one item (its attributes)."""
    exporter = Collect()
    provider = TracerProvider()
    provider.add_span_processor(SimpleSpanProcessor(exporter))
    attributes = {
        "langfuse.experiment.id": f"run-{run}",
        "langfuse.experiment.name": run,
        "langfuse.experiment.dataset.id": dataset_id,
        "langfuse.experiment.item.id": item,
        "langfuse.observation.output": json.dumps(output),
    }
    with provider.get_tracer("langfuse-sdk").start_as_current_span(
        "experiment-item-run", attributes=attributes
    ) as span:
        trace_id = format(span.get_span_context().trace_id, "032x")
    provider.shutdown()
    return encode_spans(exporter.spans).SerializeToString(), trace_id


# --- login and session -------------------------------------------------------------------------


def test_pages_send_a_browser_to_the_login_page(client) -> None:
    home = client.get("/", follow_redirects=False)
    assert (home.status_code, home.headers["location"]) == (303, "/login?next=%2F")
    deep = client.get(f"{TRACES}?claim=C-1&level=ERROR", follow_redirects=False)
    assert deep.headers["location"] == "/login?next=%2Fproject%2Flocal-workbench%2Ftraces%3F" + (
        "claim%3DC-1%26level%3DERROR"
    )
    page = client.get("/login?next=/project/local-workbench/prompts")
    assert page.status_code == 200
    assert "Log in to the trace viewer" in page.text
    assert 'name="next" value="/project/local-workbench/prompts"' in page.text
    fragment = client.get(f"{TRACES}/t/observations/o")
    assert fragment.status_code == 401
    assert "log in" in fragment.text


def test_login_with_the_keys_sets_a_session_and_goes_back(client) -> None:
    answer = client.post(
        "/login",
        data={"public_key": PK, "secret_key": SK, "next": f"{TRACES}?claim=C-7"},
        follow_redirects=False,
    )
    assert (answer.status_code, answer.headers["location"]) == (303, f"{TRACES}?claim=C-7")
    cookie = answer.headers["set-cookie"]
    assert re.match(r"workbench_viewer_[0-9a-f]{10}=\d+\.[0-9a-f]{64};", cookie)
    assert "HttpOnly" in cookie and "SameSite=lax" in cookie and "Max-Age=604800" in cookie
    page = client.get(TRACES)
    assert page.status_code == 200
    policy = page.headers["content-security-policy"]
    nonce = re.search(r"script-src 'nonce-([^']+)'", policy)
    assert nonce is not None and "default-src 'none'" in policy
    scripts = re.findall(r"<script([^>]*)>", page.text)
    assert scripts and all(f'nonce="{nonce.group(1)}"' in attrs for attrs in scripts)
    assert page.headers["cache-control"] == "no-store"
    again = client.get("/login?next=/project/local-workbench/scores", follow_redirects=False)
    assert again.headers["location"] == "/project/local-workbench/scores"  # already in
    out = client.post("/logout", follow_redirects=False)
    assert out.headers["location"] == "/login"
    assert client.get(TRACES, follow_redirects=False).status_code == 303


@pytest.mark.parametrize(
    "public_key, secret_key, message",
    [
        (PK, "sk-lf-wrong", f"Wrong keys: public key '{PK}' with this secret key"),
        ("pk-lf-other", SK, "Wrong keys: public key 'pk-lf-other' with this secret key"),
        (PK, "", "Enter both keys"),
        (SK, PK, "Wrong keys"),
    ],
    ids=["wrong-secret", "wrong-public", "missing-secret", "swapped"],
)
def test_wrong_keys_are_refused_on_the_login_page(
    client, public_key: str, secret_key: str, message: str
) -> None:
    answer = client.post(
        "/login", data={"public_key": public_key, "secret_key": secret_key}, follow_redirects=False
    )
    assert answer.status_code == 401
    assert message in html.unescape(answer.text)
    assert "set-cookie" not in answer.headers
    assert secret_key not in answer.text or secret_key == ""  # the secret is never echoed
    assert client.get(TRACES, follow_redirects=False).status_code == 303


@pytest.mark.parametrize(
    "target, expected",
    [
        ("/project/local-workbench/prompts", "/project/local-workbench/prompts"),
        ("//evil.example/x", "/"),
        ("https://evil.example/", "/"),
        ("/\\evil.example", "/"),
        ("", "/"),
    ],
    ids=["path", "scheme-relative", "absolute", "backslash", "empty"],
)
def test_after_login_only_paths_on_this_server(client, target: str, expected: str) -> None:
    answer = client.post(
        "/login",
        data={"public_key": PK, "secret_key": SK, "next": target},
        follow_redirects=False,
    )
    assert answer.headers["location"] == expected
    assert safe_next(target) == expected


def test_forged_expired_or_other_keys_sessions_are_refused(client) -> None:
    keys = Keys(PK, SK)
    for token in (
        "9999999999.0000",
        keys.issue(now_s=time.time() - 8 * 24 * 3600),  # a week and a day old
        Keys(PK, "sk-lf-previous").issue(),  # signed by the keys the server had before
        "not-a-token",
        "9" * 5000 + ".00",
    ):
        client.cookies.set(keys.cookie_name, token)
        assert client.get(TRACES, follow_redirects=False).status_code == 303, token
    client.cookies.set(keys.cookie_name, keys.issue())
    assert client.get(TRACES, follow_redirects=False).status_code == 200


def test_basic_auth_opens_pages_and_the_session_never_opens_the_api(client) -> None:
    assert client.get(TRACES, headers=API).status_code == 200  # curl -u pk:sk
    log_in(client)
    answer = client.get("/api/public/projects")
    assert answer.status_code == 401  # the API keeps Basic auth only
    assert answer.json()["error"] == "Unauthorized"
    assert (
        client.get("/api/public/nothing", headers=API)
        .json()["message"]
        .startswith("No endpoint GET /api/public/nothing")
    )
    assert client.get("/api/public/health").status_code == 200


# --- pages -------------------------------------------------------------------------------------


@pytest.fixture
def stocked(client) -> dict[str, Any]:
    """Two claims (one with a failed step), two analyst versions, a score, a dataset with two
    runs; logged in."""
    api(client, "POST", "/api/public/v2/prompts", {
        "name": "claim-analyst", "prompt": "Approve up to 5000 EUR.\nReject duplicates.",
        "labels": ["production"], "commitMessage": "first",
    })  # fmt: skip
    api(client, "POST", "/api/public/v2/prompts", {
        "name": "claim-analyst", "prompt": "Approve up to 2000 EUR.\nReject duplicates.",
        "labels": ["staging"],
    })  # fmt: skip
    now = time.time_ns()
    failing = claim_trace("C-3001", start_ns=now - 10**10, service_version="v1")
    clean = claim_trace(
        "C-3002", start_ns=now, prompt=("claim-analyst", 2), failing_step=None, service_version="v2"
    )
    ingest(client, failing)
    ingest(client, clean)
    api(client, "POST", "/api/public/scores", {
        "name": "quality", "value": 0.4, "traceId": failing.trace_id,
        "comment": "Paid although the policy lapsed: clause 7 was ignored.",
    })  # fmt: skip
    api(client, "POST", "/api/public/scores", {
        "name": "tool-ok", "value": 1, "dataType": "BOOLEAN", "traceId": failing.trace_id,
        "observationId": failing.span_ids["lookup policy"],
    })  # fmt: skip
    dataset = api(client, "POST", "/api/public/v2/datasets", {"name": "golden"})
    for item in ("doc-1", "doc-2"):
        api(client, "POST", "/api/public/dataset-items", {
            "datasetName": "golden", "id": item, "input": {"doc": item},
            "expectedOutput": {"decision": "approve"},
        })  # fmt: skip
    run_traces = {}
    for run in ("baseline", "candidate"):
        for item in ("doc-1", "doc-2"):
            decision = "review" if (run, item) == ("candidate", "doc-2") else "approve"
            body, trace_id = experiment_item(dataset["id"], run, item, {"decision": decision})
            ingest(client, body)
            run_traces[run, item] = trace_id
            api(client, "POST", "/api/public/scores", {
                "name": "accuracy", "value": 1.0 if decision == "approve" else 0.0,
                "traceId": trace_id, "comment": f"{run} on {item}",
            })  # fmt: skip
    api(client, "POST", "/api/public/scores", {
        "name": "run accuracy", "value": 0.5, "datasetRunId": "run-candidate",
    })  # fmt: skip
    log_in(client)
    return {"failing": failing, "clean": clean, "dataset": dataset, "run_traces": run_traces}


def text(answer: Any) -> str:
    """A page's text with the HTML entities decoded (to assert on what a reader sees)."""
    return html.unescape(answer.text)


def trace_ids(page: str) -> list[str]:
    return re.findall(r'data-trace-id="([0-9a-f]{32})"', page)


def test_traces_list_and_its_filters(client, stocked) -> None:
    failing, clean = stocked["failing"].trace_id, stocked["clean"].trace_id
    page = client.get(TRACES).text
    claims = [t for t in trace_ids(page) if t in (clean, failing)]
    assert claims == [clean, failing] and len(trace_ids(page)) == 6  # newest first
    assert "6 traces" in page and "1 error" in page and "quality 0.4" in page
    cases = {
        "claim=3001": [failing],
        "claim=C-30": [clean, failing],
        "claim=C-9": [],
        "level=ERROR": [failing],
        "level=OK": [t for t in trace_ids(page) if t != failing],
        "prompt=claim-analyst": [clean, failing],
        "prompt=claim-analyst%7C2": [clean],
        "prompt=claim-analyst%7C1": [failing],
        "version=v2": [clean],
        "name=C-3002": [clean],
        "claim=C-30&level=ERROR&version=v1": [failing],
    }
    for query, expected in cases.items():
        assert trace_ids(client.get(f"{TRACES}?{query}").text) == expected, query
    empty = client.get(f"{TRACES}?claim=nothing-like-this").text
    assert "No trace matches these filters." in empty
    wildcard = client.get(f"{TRACES}?claim=%25").text  # LIKE wildcards are literal
    assert trace_ids(wildcard) == []
    for page_number in ("zero", "0", "²", "1" * 12):
        bad = client.get(f"{TRACES}?page={page_number}")
        assert bad.status_code == 400
        assert f"'page' has value '{page_number}'. Use a whole number from 1" in text(bad)
    huge = client.get(f"{TRACES}?prompt=claim-analyst%7C{'9' * 30}")
    assert huge.status_code == 200 and trace_ids(huge.text) == []  # no such prompt name
    bad_level = client.get(f"{TRACES}?level=fatal")
    assert bad_level.status_code == 400 and "Use one of: ERROR, WARNING, OK" in bad_level.text


def test_trace_page_shows_the_waterfall_scores_and_an_observation(client, stocked) -> None:
    failing: ClaimTrace = stocked["failing"]
    page = text(client.get(f"{TRACES}/{failing.trace_id}"))
    rows = re.findall(r'<a class="wf-row ([^"]*)"[^>]*data-observation-id="([0-9a-f]+)"', page)
    assert len(rows) == len(failing.names) == 12
    errors = [obs for classes, obs in rows if "error" in classes.split()]
    assert errors == [failing.span_ids["check fraud"]]
    depths = [int(d) for d in re.findall(r'data-depth="(\d+)"', page)]
    assert depths == [0, 1, 2, 2, 3, 2, 2, 3, 3, 3, 3, 2]
    assert re.findall(r'class="wf-label">([^<]*)<', page) == failing.names
    widths = [float(w) for w in re.findall(r"left: [\d.]+%; width: ([\d.]+)%", page)]
    assert widths[0] == 100.0 and 6.6 < widths[-1] < 6.7  # reimburse: 12 of 180 ms
    assert "Paid although the policy lapsed: clause 7 was ignored." in page
    assert "tool-ok True" in page  # the observation's score on its row
    assert "prompt claim-analyst v1" in page and "412 → 96 (508) tokens" in page
    assert 'id="error-count">1<' in page

    generation = failing.span_ids["call LLM"]
    selected = text(client.get(f"{TRACES}/{failing.trace_id}?observation={generation}"))
    assert f'id="observation-{generation}"' in selected
    assert "Claim C-3001: water damage, 1,250.00 EUR." in selected  # the chat input
    fragment = client.get(f"{TRACES}/{failing.trace_id}/observations/{generation}")
    assert fragment.status_code == 200 and not fragment.text.lstrip().startswith("<!doctype")
    assert 'class="usage">412 → 96 (508)<' in fragment.text
    assert ">claim-analyst v1</a>" in fragment.text
    assert '"llm.model_name": "workbench-local"' in text(fragment)  # metadata with attributes
    failed = text(
        client.get(f"{TRACES}/{failing.trace_id}/observations/{failing.span_ids['check fraud']}")
    )
    assert "ConnectionError: the fraud database did not answer" in failed


def test_missing_things_answer_404_pages_that_say_why(client, stocked) -> None:
    missing = client.get(f"{TRACES}/{'0' * 32}")
    assert missing.status_code == 404
    assert "Its spans may not be exported yet" in missing.text
    other = client.get("/project/someone-else/traces")
    assert other.status_code == 404 and "this server holds one project" in other.text
    assert client.get("/nothing/here").status_code == 404
    assert "No page at /nothing/here." in client.get("/nothing/here").text
    assert client.get("/project/local-workbench/prompts/unknown").status_code == 404
    assert client.get("/project/local-workbench/datasets/unknown").status_code == 404
    unknown_run = client.get("/project/local-workbench/experiments/results?baseline=nope")
    assert unknown_run.status_code == 404 and "No dataset run &#39;nope&#39;" in unknown_run.text


def test_scores_page_shows_comments_and_filters_by_name(client, stocked) -> None:
    page = client.get("/project/local-workbench/scores").text
    assert "Paid although the policy lapsed: clause 7 was ignored." in page
    assert "candidate on doc-2" in page and "C-3001" in page
    only = client.get("/project/local-workbench/scores?name=quality").text
    assert "clause 7" in only and "candidate on doc-2" not in only


def test_prompt_pages_versions_labels_and_diff(client, stocked) -> None:
    listing = client.get("/project/local-workbench/prompts").text
    assert "production → v1" in listing and "staging → v2" in listing and "latest → v2" in listing
    shown = client.get("/project/local-workbench/prompts/claim-analyst").text
    assert 'class="shown" data-version="1"' in shown  # production by default
    assert "Approve up to 5000 EUR." in shown
    v2 = client.get("/project/local-workbench/prompts/claim-analyst?version=2").text
    assert "Approve up to 2000 EUR." in v2
    diff = client.get("/project/local-workbench/prompts/claim-analyst?version=2&compare=1").text
    assert "Diff v1 → v2" in diff and "(1 removed, 1 added)" in diff
    assert "<mark>5000</mark>" in diff and "<mark>2000</mark>" in diff
    missing = client.get("/project/local-workbench/prompts/claim-analyst?version=9")
    assert missing.status_code == 404 and "has no version 9" in missing.text
    api(client, "POST", "/api/public/v2/prompts", {"name": "team/a b?c", "prompt": "in a folder"})
    listing = client.get("/project/local-workbench/prompts").text
    assert 'href="/project/local-workbench/prompts/team%2Fa%20b%3Fc"' in listing
    assert "in a folder" in client.get("/project/local-workbench/prompts/team%2Fa%20b%3Fc").text


def test_dataset_pages_put_runs_side_by_side(client, stocked) -> None:
    listing = client.get("/project/local-workbench/datasets").text
    assert re.search(r"golden</a></td>\s*<td></td>\s*<td class=\"num\">2</td>\s*"
                     r"<td class=\"num\">2</td>", listing)  # fmt: skip
    dataset_id = stocked["dataset"]["id"]
    page = client.get(f"/project/local-workbench/datasets/{dataset_id}").text
    assert re.findall(r'<th class="run">([^<]*)</th>', page) == ["baseline", "candidate"]
    assert "accuracy 1 <span" in page and "accuracy 0.5 <span" in page  # means per run
    assert "run accuracy 0.5" in page  # the run-level score
    row = page[page.index('data-item-id="doc-2"') :].split("</tr>")[0]
    assert row.count('class="run-trace"') == 2
    assert stocked["run_traces"]["candidate", "doc-2"] in row
    assert "&#34;decision&#34;: &#34;review&#34;" in row
    again, _ = experiment_item(dataset_id, "baseline", "doc-1", {"decision": "approve"})
    ingest(client, again)  # doc-1 ran a second time in the baseline run
    client.delete("/api/public/dataset-items/doc-2", headers=API)  # and doc-2 left the dataset
    page = text(client.get(f"/project/local-workbench/datasets/{dataset_id}"))
    doc1 = page[page.index('data-item-id="doc-1"') :].split("</tr>")[0]
    assert "ran 2×" in doc1 and doc1.count("ran 2×") == 1
    doc2 = page[page.index('data-item-id="doc-2"') :].split("</tr>")[0]
    assert "not in the dataset any more" in doc2 and doc2.count('class="run-trace"') == 2
    one = client.get(f"/project/local-workbench/datasets/{dataset_id}?runs=run-candidate").text
    assert re.findall(r'<th class="run">([^<]*)</th>', one) == ["candidate"]
    results = client.get(
        "/project/local-workbench/experiments/results?baseline=run-baseline",
        follow_redirects=False,
    )
    assert results.headers["location"] == f"/project/local-workbench/datasets/{dataset_id}"


def test_a_run_linked_through_the_api_shows_beside_the_span_runs(client, stocked) -> None:
    dataset_id = stocked["dataset"]["id"]
    for item in ("doc-1", "doc-2"):  # the candidate's traces, linked again as a third run
        api(client, "POST", "/api/public/dataset-run-items", {
            "runName": "linked", "runDescription": "through the API", "datasetItemId": item,
            "traceId": stocked["run_traces"]["candidate", item],
        })  # fmt: skip
    listing = client.get("/project/local-workbench/datasets").text
    assert re.search(r"golden</a></td>\s*<td></td>\s*<td class=\"num\">2</td>\s*"
                     r"<td class=\"num\">3</td>", listing)  # fmt: skip
    page = client.get(f"/project/local-workbench/datasets/{dataset_id}").text
    assert re.findall(r'<th class="run">([^<]*)</th>', page) == ["baseline", "candidate", "linked"]
    assert "through the API" in page
    row = page[page.index('data-item-id="doc-2"') :].split("</tr>")[0]
    assert row.count(stocked["run_traces"]["candidate", "doc-2"]) == 2  # candidate and linked
    run_id = client.get("/api/public/datasets/golden/runs/linked", headers=API).json()["id"]
    results = client.get(
        f"/project/local-workbench/experiments/results?baseline={run_id}",
        follow_redirects=False,
    )
    assert results.headers["location"] == f"/project/local-workbench/datasets/{dataset_id}"


def test_user_controlled_text_is_shown_escaped(client) -> None:
    api(client, "POST", "/api/public/v2/prompts", {"name": f"p{XSS}", "prompt": XSS})
    trace = claim_trace(f'C-"{XSS}', start_ns=time.time_ns(), step_name_suffix=XSS)
    ingest(client, trace)
    api(client, "POST", "/api/public/scores", {
        "name": f"s{XSS}", "value": "x", "traceId": trace.trace_id, "comment": XSS,
    })  # fmt: skip
    dataset = api(client, "POST", "/api/public/v2/datasets", {"name": XSS, "description": XSS})
    log_in(client)
    pages = [
        TRACES,
        f"{TRACES}?claim={XSS}",
        f"{TRACES}/{trace.trace_id}",
        f"{TRACES}/{trace.trace_id}/observations/{trace.span_ids['reimburse' + XSS]}",
        "/project/local-workbench/scores",
        "/project/local-workbench/prompts",
        "/project/local-workbench/prompts/" + "p%3Cscript%3Ealert('x')%3C%2Fscript%3E",
        "/project/local-workbench/datasets",
        f"/project/local-workbench/datasets/{dataset['id']}",
        f"/login?next={XSS}",
    ]
    for path in pages:
        answer = client.get(path)
        assert answer.status_code == 200, (path, answer.text[:300])
        assert "<script>alert" not in answer.text, path
        assert "&lt;script&gt;alert(&#39;x&#39;)&lt;/script&gt;" in answer.text or (
            path.startswith("/login")
        ), path
    waterfall = client.get(f"{TRACES}/{trace.trace_id}").text
    assert "reimburse&lt;script&gt;" in waterfall


# --- the parts, without HTTP -------------------------------------------------------------------


class Row(dict):  # what the waterfall reads of a sqlite3.Row
    pass


def row(obs_id: str, parent: str | None, start_ms: float, end_ms: float | None) -> Row:
    ms = 1_000_000
    return Row(
        id=obs_id,
        parent_observation_id=parent,
        start_ns=int(start_ms * ms),
        end_ns=None if end_ms is None else int(end_ms * ms),
        name=obs_id,
        type="SPAN",
        level="DEFAULT",
        usage_details=None,
        model=None,
        prompt_name=None,
        prompt_version=None,
        status_message=None,
        version=None,
    )


def test_waterfall_nests_by_parent_and_keeps_orphans_and_cycles() -> None:
    rows = [
        row("root", None, 0, 100),
        row("late-child", "root", 50, 60),
        row("child", "root", 10, 40),
        row("grandchild", "child", 20, 30),
        row("orphan", "not-exported-yet", 5, 8),
        row("open", "root", 90, None),
        row("a", "b", 1, 2),
        row("b", "a", 1, 2),
    ]
    bars, ticks = _waterfall.build(rows, 0, 100 * 1_000_000, [])  # type: ignore[arg-type]
    order = [(bar.id, bar.depth) for bar in bars]
    assert order == [
        ("root", 0),
        ("child", 1),
        ("grandchild", 2),
        ("late-child", 1),
        ("open", 1),
        ("orphan", 0),
        ("a", 0),
        ("b", 1),
    ]
    by_id = {bar.id: bar for bar in bars}
    assert (by_id["child"].left, by_id["child"].width) == (10.0, 30.0)
    assert by_id["open"].is_open and by_id["open"].duration == "open"
    assert [tick.label for tick in ticks] == ["0", "20 ms", "40 ms", "60 ms", "80 ms", "100 ms"]


@pytest.mark.parametrize(
    "span_s, labels",
    [
        (0.18, ["0", "50 ms", "100 ms", "150 ms"]),
        (2.5, ["0", "0.5 s", "1.0 s", "1.5 s", "2.0 s", "2.5 s"]),
        (0.0031, ["0", "0.5 ms", "1.0 ms", "1.5 ms", "2.0 ms", "2.5 ms", "3.0 ms"]),
        (130.0, ["0", "20 s", "40 s", "60 s", "80 s", "100 s", "120 s"]),
    ],
    ids=["180ms", "2.5s", "3ms", "130s"],
)
def test_axis_ticks_are_round_numbers(span_s: float, labels: list[str]) -> None:
    assert [tick.label for tick in _waterfall.ticks(span_s)] == labels


def test_prompt_diff_marks_changed_lines_and_words() -> None:
    old = {"type": "text", "prompt": "Approve up to 5000.\nReject duplicates.", "config": {}}
    new = {"type": "text", "prompt": "Approve up to 2000.\nReject duplicates.\nBe brief.",
           "config": {"temperature": 0}}  # fmt: skip
    lines = _diff.diff(_diff.prompt_lines(old), _diff.prompt_lines(new))
    kinds = [(line.kind, line.old, line.new) for line in lines]
    assert kinds[:3] == [("del", 1, None), ("add", None, 1), ("same", 2, 2)]
    assert [seg for seg in lines[1].segments if seg[0]] == [(True, "2000")]
    added = ["".join(text for _, text in line.segments) for line in lines if line.kind == "add"]
    assert added[1:] == ["Be brief.", "[config]", "{", '  "temperature": 0', "}"]
    chat = {"type": "chat", "prompt": [{"role": "system", "content": "Hi"},
                                       {"type": "placeholder", "name": "history"}]}  # fmt: skip
    assert _diff.prompt_lines(chat) == ["[system]", "Hi", "[placeholder: history]"]
