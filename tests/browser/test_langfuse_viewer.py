"""The embedded Langfuse's trace viewer in a real Chromium: log in with the keys, find a claim's
trace, read its waterfall and score, compare two prompt versions, compare two dataset runs.

The server runs in-process on a loopback port; its data comes from the real clients: OTLP spans
of two claims (as the stack exports them), and the `langfuse` SDK for prompts, a judge's score,
a dataset and two experiment runs on it (`dataset.run_experiment`)."""

from __future__ import annotations

import re
import time
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

import httpx
import pytest
from langfuse import Evaluation, Langfuse
from langfuse._client.resource_manager import LangfuseResourceManager
from opentelemetry.sdk.trace import TracerProvider

from tests._claim_spans import ClaimTrace, claim_trace
from workbench.local.langfuse.testing import LocalLangfuse, running_server

PK, SK = "pk-lf-browser", "sk-lf-browser"
SCORE_COMMENT = "Approved under clause 3: the amount is below the 2,000 EUR review threshold."
ANALYST_V1 = "You are a claims analyst.\nApprove claims up to 5,000 EUR.\nReject duplicates."
ANALYST_V2 = (
    "You are a claims analyst.\nApprove claims up to 2,000 EUR; review the ones above.\n"
    "Reject duplicates."
)
DOCUMENTS = {"doc-1": 800.0, "doc-2": 3200.0, "doc-3": 1500.0}


@dataclass(frozen=True)
class Stocked:
    server: LocalLangfuse
    failing: ClaimTrace
    """Claim C-2001: analyst v1, a failed `check fraud` attempt, a judge score."""
    clean: ClaimTrace
    """Claim C-2002: analyst v2, no error."""
    dataset_id: str
    run_names: tuple[str, str]
    trace_url: str
    """What the SDK's get_trace_url() gives for C-2001."""
    experiment_url: str


def _decide(limit: float) -> Any:
    def task(*, item: Any, **_: Any) -> dict[str, Any]:
        amount = DOCUMENTS[item.input["document"]]
        return {"decision": "approve" if amount <= limit else "review", "amount": amount}

    return task


def _accuracy(*, output: Any, expected_output: Any, **_: Any) -> Evaluation:
    right = output["decision"] == expected_output["decision"]
    why = "matches the expected decision" if right else f"expected {expected_output['decision']}"
    return Evaluation(name="accuracy", value=1.0 if right else 0.0, comment=why)


def _run_mean(*, item_results: Any, **_: Any) -> Evaluation:
    values = [e.value for result in item_results for e in result.evaluations]
    return Evaluation(name="mean accuracy", value=sum(values) / len(values))


@pytest.fixture(scope="module")
def stocked(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Stocked]:
    db = tmp_path_factory.mktemp("viewer") / "langfuse.sqlite3"
    with running_server(db, PK, SK) as server:
        langfuse = Langfuse(
            public_key=PK,
            secret_key=SK,
            base_url=server.base_url,
            tracer_provider=TracerProvider(),
            flush_interval=0.2,
        )
        try:
            yield _stock(server, langfuse)
        finally:
            langfuse.shutdown()
            LangfuseResourceManager._instances.pop(PK, None)  # the SDK keeps one per key


def _stock(server: LocalLangfuse, langfuse: Langfuse) -> Stocked:
    langfuse.create_prompt(
        name="claim-analyst", prompt=ANALYST_V1, labels=["production"], commit_message="first"
    )
    langfuse.create_prompt(
        name="claim-analyst",
        prompt=ANALYST_V2,
        labels=["staging"],
        commit_message="review above 2,000 EUR",
    )
    now = time.time_ns()
    failing = claim_trace("C-2001", start_ns=now - 120 * 10**9, prompt=("claim-analyst", 1))
    clean = claim_trace(
        "C-2002", start_ns=now - 60 * 10**9, prompt=("claim-analyst", 2), failing_step=None
    )
    for claim in (failing, clean):
        answer = httpx.post(
            server.otlp_endpoint,
            content=claim.body,
            headers={**server.auth_header, "Content-Type": "application/x-protobuf"},
        )
        assert answer.status_code == 200, answer.text
    langfuse.create_score(
        name="quality", value=0.82, trace_id=failing.trace_id, comment=SCORE_COMMENT
    )

    langfuse.create_dataset(name="claims-golden", description="documents with expected decisions")
    for doc, amount in DOCUMENTS.items():
        langfuse.create_dataset_item(
            dataset_name="claims-golden",
            id=doc,
            input={"document": doc},
            expected_output={"decision": "approve" if amount <= 2000 else "review"},
        )
    dataset = langfuse.get_dataset("claims-golden")
    runs = ("analyst v1", "analyst v2")
    experiment_url = ""
    for run_name, limit in zip(runs, (5000.0, 2000.0), strict=True):
        result = dataset.run_experiment(
            name="analyst versions",
            run_name=run_name,
            description=f"approve up to {limit:,.0f} EUR",
            task=_decide(limit),
            evaluators=[_accuracy],
            run_evaluators=[_run_mean],
        )
        experiment_url = experiment_url or str(result.experiment_url)
    langfuse.flush()
    trace_url = langfuse.get_trace_url(trace_id=failing.trace_id)
    assert trace_url is not None
    return Stocked(server, failing, clean, dataset.id, runs, trace_url, experiment_url)


def _log_in(page: Any, base_url: str, public_key: str = PK, secret_key: str = SK) -> None:
    page.fill("#public_key", public_key)
    page.fill("#secret_key", secret_key)
    page.click("button[type=submit]")


def test_wrong_keys_stay_on_the_login_page_with_an_error(
    stocked: Stocked, page: Any, screenshot: Any, page_errors: list[str]
) -> None:
    from playwright.sync_api import expect

    page.goto(stocked.server.base_url + "/")
    expect(page).to_have_url(re.compile(r"/login\?next=%2F$"))
    expect(page.locator("h1")).to_have_text("Log in to the trace viewer")
    screenshot(page, "login")
    _log_in(page, stocked.server.base_url, PK, "sk-lf-wrong")
    expect(page.locator("#login-error")).to_contain_text(f"Wrong keys: public key '{PK}'")
    expect(page.locator("#public_key")).to_have_value(PK)  # kept; the secret is not echoed
    expect(page.locator("#secret_key")).to_have_value("")
    screenshot(page, "wrong-keys")
    page.goto(stocked.server.base_url + "/project/local-workbench/traces")
    expect(page).to_have_url(re.compile(r"/login\?next="))  # still not let in
    assert page_errors == []


def test_log_in_find_a_claim_and_read_its_waterfall(
    stocked: Stocked, page: Any, screenshot: Any, page_errors: list[str]
) -> None:
    from playwright.sync_api import expect

    base = stocked.server.base_url
    page.goto(base + "/")
    _log_in(page, base)
    expect(page).to_have_url(re.compile(r"/project/local-workbench/traces$"))
    rows = page.locator("#traces tbody tr")
    # two claims, plus one trace per experiment item (3 items x 2 runs)
    expect(rows).to_have_count(8)
    screenshot(page, "traces")

    page.fill("input[name=claim]", "2001")
    page.click("#trace-filters button[type=submit]")
    expect(page).to_have_url(re.compile(r"claim=2001"))
    expect(rows).to_have_count(1)
    row = rows.first
    expect(row).to_have_attribute("data-trace-id", stocked.failing.trace_id)
    expect(row).to_contain_text("C-2001")
    expect(row).to_contain_text("1 error")
    expect(row).to_contain_text("claim-analyst v1")
    expect(row).to_contain_text("quality 0.82")
    screenshot(page, "traces-filtered")

    page.locator("#trace-filters select[name=prompt]").select_option("claim-analyst|2")
    page.fill("input[name=claim]", "")
    page.click("#trace-filters button[type=submit]")
    expect(rows).to_have_count(1)
    expect(rows.first).to_have_attribute("data-trace-id", stocked.clean.trace_id)

    page.goto(base + "/project/local-workbench/traces?claim=C-2001")
    page.click("#traces a.trace-link")
    expect(page.locator("#trace-name")).to_have_text("claim C-2001")
    bars = page.locator("#waterfall .wf-row")
    expect(bars).to_have_count(len(stocked.failing.names))
    expect(bars.locator(".wf-label")).to_have_text(stocked.failing.names)  # tree order = start
    failed = page.locator("#waterfall .wf-row.error")
    expect(failed).to_have_count(1)
    expect(failed).to_have_attribute("data-observation-id", stocked.failing.span_ids["check fraud"])
    expect(failed).to_have_attribute("title", re.compile("ERROR: ConnectionError"))
    depth = {
        name: int(bars.nth(i).get_attribute("data-depth") or -1)
        for i, name in enumerate(stocked.failing.names)
    }
    assert (depth["ingress"], depth["invocation-attempt"], depth["analyze"]) == (0, 1, 2)
    assert depth["lookup policy"] == 3  # nested under the analyst agent
    root_bar = bars.first.locator(".wf-bar").bounding_box()
    reimburse = bars.nth(stocked.failing.names.index("reimburse")).locator(".wf-bar")
    reimburse_bar = reimburse.bounding_box()
    assert root_bar is not None and reimburse_bar is not None
    # bars on one time axis: reimburse starts ~156 ms into a 180 ms trace and lasts 12 ms
    assert reimburse_bar["x"] > root_bar["x"] + 0.8 * root_bar["width"]
    assert reimburse_bar["width"] < 0.15 * root_bar["width"]
    expect(page.locator("#scores")).to_contain_text(SCORE_COMMENT)
    expect(page.locator("#error-count")).to_have_text("1")
    screenshot(page, "trace")

    generation = bars.filter(has=page.locator(".t-GENERATION")).first
    generation.click()
    detail = page.locator("#detail .observation")
    expect(detail).to_have_attribute("data-observation-id", stocked.failing.span_ids["call LLM"])
    expect(detail.locator(".usage")).to_have_text("412 → 96 (508)")
    expect(detail.locator(".prompt-link")).to_have_text("claim-analyst v1")
    expect(detail).to_contain_text("workbench-local")
    expect(detail).to_contain_text("Claim C-2001: water damage")  # the input's chat messages
    expect(page).to_have_url(re.compile(r"observation=" + stocked.failing.span_ids["call LLM"]))
    screenshot(page, "trace-generation")

    page.goto(stocked.trace_url)  # the SDK's link to the trace opens the same page
    expect(page.locator("#trace-name")).to_have_text("claim C-2001")
    assert page_errors == []


def test_prompt_versions_labels_and_diff(
    stocked: Stocked, page: Any, screenshot: Any, page_errors: list[str]
) -> None:
    from playwright.sync_api import expect

    base = stocked.server.base_url
    page.goto(base + "/project/local-workbench/prompts")
    _log_in(page, base)
    expect(page).to_have_url(re.compile(r"/prompts$"))  # back where the login started
    table = page.locator("#prompts")
    expect(table).to_contain_text("production → v1")
    expect(table).to_contain_text("staging → v2")
    screenshot(page, "prompts")
    page.click("#prompts a.prompt-link")
    expect(page.locator("#prompt-name")).to_have_text("claim-analyst")
    expect(page.locator("#versions tbody tr")).to_have_count(2)
    expect(page.locator("#versions tr.shown")).to_have_attribute("data-version", "1")  # production
    expect(page.locator("#prompt-content")).to_contain_text("Approve claims up to 5,000 EUR.")
    screenshot(page, "prompt")
    page.locator("#diff-form select[name=compare]").select_option("1")
    page.locator("#diff-form select[name=version]").select_option("2")
    page.click("#diff-form button[type=submit]")
    expect(page.locator("#diff-title")).to_contain_text("Diff v1 → v2")
    expect(page.locator("#diff tr.del td.text")).to_have_text(["Approve claims up to 5,000 EUR."])
    expect(page.locator("#diff tr.add td.text")).to_have_text(
        ["Approve claims up to 2,000 EUR; review the ones above."]
    )
    expect(page.locator("#diff tr.add mark").first).to_have_text("2")
    expect(page.locator("#diff tr.same")).to_have_count(2)
    screenshot(page, "prompt-diff")
    assert page_errors == []


def test_dataset_runs_side_by_side(
    stocked: Stocked, page: Any, screenshot: Any, page_errors: list[str]
) -> None:
    from playwright.sync_api import expect

    base = stocked.server.base_url
    page.goto(base + "/project/local-workbench/datasets")
    _log_in(page, base)
    expect(page.locator("#datasets tbody tr")).to_have_count(1)
    expect(page.locator("#datasets tbody tr")).to_contain_text("claims-golden")
    screenshot(page, "datasets")
    page.click("#datasets a.dataset-link")
    expect(page.locator("#dataset-name")).to_have_text("claims-golden")
    runs = page.locator("#runs tbody tr")
    expect(runs).to_have_count(2)
    v1, v2 = (page.locator(f'#runs tr[data-run="{name}"]') for name in stocked.run_names)
    expect(v1.locator("td.means")).to_have_text("accuracy 0.6667 n=3")  # doc-2 needed a review
    expect(v2.locator("td.means")).to_have_text("accuracy 1 n=3")
    expect(v1.locator("td.run-scores")).to_have_text("mean accuracy 0.6667")  # run-level
    headers = page.locator("#compare thead th.run")
    expect(headers).to_have_text(list(stocked.run_names))
    doc2 = page.locator('#compare tr[data-item-id="doc-2"] td.run')
    expect(doc2.nth(0)).to_contain_text('"decision": "approve"')
    expect(doc2.nth(0)).to_contain_text("accuracy 0")
    expect(doc2.nth(1)).to_contain_text('"decision": "review"')
    expect(doc2.nth(1)).to_contain_text("accuracy 1")
    screenshot(page, "dataset-runs")

    doc2.nth(1).locator("a.run-trace").click()  # a run item's trace
    expect(page.locator("#trace-name")).to_have_text("experiment-item-run")
    expect(page.locator("#scores")).to_contain_text("matches the expected decision")
    screenshot(page, "run-item-trace")

    page.goto(stocked.experiment_url)  # the SDK's experiment link lands on the dataset
    expect(page.locator("#dataset-name")).to_have_text("claims-golden")
    page.locator("#run-picker input[value]").first.uncheck()
    page.click("#run-picker button[type=submit]")
    expect(headers).to_have_text([stocked.run_names[1]])
    assert page_errors == []
