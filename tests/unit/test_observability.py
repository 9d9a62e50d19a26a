"""The trace and score readers and their charts, against the embedded Langfuse in-process.

Two claim traces are exported with the OpenTelemetry SDK's own OTLP exporter, shaped like the
stack's: Restate's spans (resource `service.name=Restate`), the service's step spans (one failed
and retried), agent spans and generations with model, tokens and prompt links. The judge's
`quality` scores are written with the real `langfuse` SDK."""

from __future__ import annotations

import base64
import re
import time
import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

import matplotlib
import matplotlib.pyplot as plt
import pandas as pd
import pytest
from langfuse import Langfuse
from langfuse._client.resource_manager import LangfuseResourceManager
from opentelemetry.exporter.otlp.proto.http.trace_exporter import OTLPSpanExporter
from opentelemetry.sdk.resources import Resource
from opentelemetry.sdk.trace import TracerProvider
from opentelemetry.sdk.trace.export import SimpleSpanProcessor
from opentelemetry.trace import Status, StatusCode, set_span_in_context

from workbench import ScoresTimeoutError, Session, TraceNotFoundError, TraceTimeoutError
from workbench.charts import score_chart, scores_over_time
from workbench.local.langfuse.testing import LocalLangfuse, running_server
from workbench.session import Endpoints

matplotlib.use("Agg")  # render off-screen: the charts are saved to PNG files

PK, SK = "pk-lf-observe", "sk-lf-observe"
MODEL = "workbench-local"


@dataclass
class Seeded:
    server: LocalLangfuse
    sdk: Langfuse
    tracers: dict[str, Any]
    trace_a: str
    trace_b: str
    session: Session


class TraceBuilder:
    """Spans at fixed offsets (ms) from one origin, exported as each one ends."""

    def __init__(self, tracers: dict[str, Any], claim_id: str) -> None:
        self.tracers = tracers
        self.claim_id = claim_id
        self.origin_ns = time.time_ns() - 5_000_000_000

    def span(
        self,
        origin: str,
        name: str,
        parent: Any,
        start_ms: float,
        end_ms: float,
        error: str | None = None,
        **attributes: Any,
    ) -> Any:
        if origin == "service":
            attributes.setdefault("langfuse.trace.metadata.claim_id", self.claim_id)
        span = self.tracers[origin].start_span(
            name,
            context=set_span_in_context(parent) if parent is not None else None,
            start_time=self.origin_ns + int(start_ms * 1e6),
            attributes=attributes,
        )
        if error:
            span.set_status(Status(StatusCode.ERROR, error))
            if origin == "service":
                span.set_attribute("langfuse.observation.level", "ERROR")
                span.set_attribute("langfuse.observation.status_message", error)
        span.end(end_time=self.origin_ns + int(end_ms * 1e6))
        return span


def trace_hex(span: Any) -> str:
    return format(span.get_span_context().trace_id, "032x")


def _step(**extra: Any) -> dict[str, Any]:
    return {"openinference.span.kind": "CHAIN", "langfuse.observation.type": "span", **extra}


def _generation(prompt: str, version: int, tokens_in: int, tokens_out: int) -> dict[str, Any]:
    return {
        "openinference.span.kind": "LLM",
        "llm.model_name": MODEL,
        "llm.token_count.prompt": tokens_in,
        "llm.token_count.completion": tokens_out,
        "langfuse.observation.prompt.name": prompt,
        "langfuse.observation.prompt.version": version,
    }


def _restate(claim_id: str) -> dict[str, Any]:
    return {
        "restate.invocation.id": f"inv_{claim_id}",
        "restate.invocation.target": f"ClaimWorkflow/{claim_id}/run",
    }


def export_claim_trace(
    tracers: dict[str, Any], claim_id: str, analyst_version: int, *, failures: bool
) -> str:
    """A claim's trace as the stack exports it; with `failures`, a first invocation attempt that
    crashed and an FX step that failed once before it succeeded."""
    b = TraceBuilder(tracers, claim_id)
    root = tracers["restate"].start_span(
        "ingress ClaimWorkflow/run", start_time=b.origin_ns, attributes=_restate(claim_id)
    )
    b.span("restate", "invocation-start", root, 2, 4, **_restate(claim_id))
    first = 5
    if failures:
        crashed = b.span(
            "restate", "invocation-attempt", root, 5, 200, "service crashed", **_restate(claim_id)
        )
        b.span("service", "fetch prompts", crashed, 8, 30, **_step(prompt_label="production"))
        workflow = b.span("service", "Agent workflow", crashed, 35, 190, **_step())
        parser = b.span(
            "service", "Parser", workflow, 36, 188, **{"openinference.span.kind": "AGENT"}
        )
        b.span("service", "generation", parser, 40, 185, **_generation("claim-parser", 1, 300, 60))
        first = 250
    attempt = b.span("restate", "invocation-attempt", root, first, 880, **_restate(claim_id))
    if not failures:
        b.span("service", "fetch prompts", attempt, first + 3, first + 25, **_step())
        b.span(
            "service",
            "generation",
            attempt,
            first + 30,
            first + 180,
            **_generation("claim-parser", 1, 280, 55),
        )
    if failures:
        b.span("service", "convert to EUR", attempt, 260, 272, "FX table unavailable", **_step())
    b.span("service", "convert to EUR", attempt, 300, 310, **_step())
    analyst_flow = b.span("service", "Agent workflow", attempt, 320, 700, **_step())
    analyst = b.span(
        "service", "Analyst", analyst_flow, 322, 698, **{"openinference.span.kind": "AGENT"}
    )
    g = _generation("claim-analyst", analyst_version, 500, 40)
    b.span("service", "generation", analyst, 330, 450, **g)
    b.span("service", "check fraud", analyst, 460, 480, **{"openinference.span.kind": "TOOL"})
    b.span("service", "lookup policy", analyst, 490, 510, **{"openinference.span.kind": "TOOL"})
    b.span("service", "generation", analyst, 520, 690, **{**g, "llm.token_count.prompt": 700})
    b.span("service", "reimburse", attempt, 720, 760, **_step())
    b.span("restate", "invocation-end", root, 880, 885, **_restate(claim_id))
    root.end(end_time=b.origin_ns + int(900 * 1e6))
    return trace_hex(root)


@pytest.fixture(scope="module")
def seeded(tmp_path_factory) -> Iterator[Seeded]:
    home = tmp_path_factory.mktemp("observe")
    with running_server(home / "langfuse.db", PK, SK) as local:
        endpoints = Endpoints("http://127.0.0.1:9", "http://127.0.0.1:9", local.base_url, PK, SK)
        session = Session(endpoints, home=home)  # Restate is not there: only Langfuse answers
        token = base64.b64encode(f"{PK}:{SK}".encode()).decode()
        providers = {}
        for origin, resource in (
            ("restate", {"service.name": "Restate", "service.version": "1.7.12"}),
            ("service", {"service.name": "claim-services", "service.version": "v1"}),
            ("service-v2", {"service.name": "claim-services", "service.version": "v2"}),
        ):
            exporter = OTLPSpanExporter(
                endpoint=local.otlp_endpoint, headers={"Authorization": f"Basic {token}"}
            )
            provider = TracerProvider(resource=Resource.create(resource))
            provider.add_span_processor(SimpleSpanProcessor(exporter))
            providers[origin] = provider
        tracers = {k: p.get_tracer("openinference.openai_agents") for k, p in providers.items()}
        trace_a = export_claim_trace(tracers, "claim-A", 1, failures=True)
        tracers_b = {"restate": tracers["restate"], "service": tracers["service-v2"]}
        trace_b = export_claim_trace(tracers_b, "claim-B", 2, failures=False)
        providers["sdk"] = TracerProvider()
        sdk = Langfuse(
            public_key=PK,
            secret_key=SK,
            base_url=local.base_url,
            tracer_provider=providers["sdk"],
            flush_interval=0.1,
        )
        try:
            yield Seeded(local, sdk, tracers, trace_a, trace_b, session)
        finally:
            sdk.shutdown()
            for provider in providers.values():
                provider.shutdown()
            session.close()
            LangfuseResourceManager._instances.pop(PK, None)


# --- traces --------------------------------------------------------------------------------------


def test_traces_of_a_claim(seeded) -> None:
    obs = seeded.session.traces.get("claim-A")
    assert set(obs["trace_id"]) == {seeded.trace_a}
    assert obs["start"].is_monotonic_increasing
    assert obs.iloc[0]["name"] == "ingress ClaimWorkflow/run" and obs.iloc[0]["is_root"]
    by_name = obs.groupby("name")
    assert by_name.size()["generation"] == 3
    restate = obs[obs["restate"]]
    assert set(restate["name"]) == {
        "ingress ClaimWorkflow/run",
        "invocation-start",
        "invocation-attempt",
        "invocation-end",
    }
    generations = obs[obs["type"] == "GENERATION"]
    assert set(generations["model"]) == {MODEL}
    assert generations["input_tokens"].tolist() == [300, 500, 700]
    assert generations["output_tokens"].tolist() == [60, 40, 40]
    assert generations["total_tokens"].tolist() == [360, 540, 740]
    assert list(zip(generations["prompt_name"], generations["prompt_version"], strict=True)) == [
        ("claim-parser", 1),
        ("claim-analyst", 1),
        ("claim-analyst", 1),
    ]
    assert set(obs.loc[~obs["restate"], "version"]) == {"v1"}
    parse = generations.iloc[0]
    assert parse["duration_ms"] == pytest.approx(145.0)
    parent = obs.set_index("id").loc[parse["parent"]]
    assert (parent["name"], parent["type"]) == ("Parser", "AGENT")


def test_failed_and_retried_steps_are_marked(seeded) -> None:
    obs = seeded.session.traces.get(trace_id=seeded.trace_a)
    fx = obs[obs["name"] == "convert to EUR"]
    assert fx["level"].tolist() == ["ERROR", "DEFAULT"]
    assert fx["status_message"].iloc[0] == "FX table unavailable"
    assert fx["attempt"].tolist() == [1, 2] and fx["retried"].all()
    attempts = obs[obs["name"] == "invocation-attempt"]
    assert attempts["level"].tolist() == ["ERROR", "DEFAULT"] and attempts["retried"].all()
    # an agent calls the model several times by design: that is no retry
    assert not obs.loc[obs["name"] == "generation", "retried"].any()


def test_traces_with_filters(seeded) -> None:
    traces = seeded.session.traces
    errors = traces.get(level="ERROR")
    assert set(errors["name"]) == {"convert to EUR", "invocation-attempt"}
    v2 = traces.get(version="v2", type="GENERATION")
    assert set(v2["trace_id"]) == {seeded.trace_b}
    assert v2["prompt_version"].tolist() == [1, 2, 2]  # parser v1, analyst v2 twice
    assert "input" not in v2.columns
    with_io = traces.get(trace_id=seeded.trace_b, io=True, limit=3)
    assert len(with_io) == 3 and {"input", "output"} <= set(with_io.columns)
    with pytest.raises(TypeError, match=r"unknown filter 'colour'.*environment"):
        traces.get(colour="red")
    with pytest.raises(ValueError, match=r"Trace id 'abc' is not a W3C trace id"):
        traces.get(trace_id="abc")


def test_unknown_claim_says_what_was_tried(seeded) -> None:
    with pytest.raises(
        TraceNotFoundError,
        match=r"No trace found for claim 'claim-Z': Langfuse at .* has no trace with metadata "
        r"claim_id='claim-Z'; Restate could not be asked",
    ):
        seeded.session.traces.get("claim-Z")


def test_wait_for_trace_by_claim_id(seeded) -> None:
    traces = seeded.session.traces
    frame = traces.wait("claim-A", timeout_s=5)  # default: root, generation, parents
    assert frame.iloc[0]["name"] == "ingress ClaimWorkflow/run"
    assert (frame["type"] == "GENERATION").any()
    named = traces.wait(trace_id=seeded.trace_b, expect=["reimburse", "check fraud"], timeout_s=5)
    assert set(named["trace_id"]) == {seeded.trace_b}


def test_wait_for_trace_polls_until_the_span_is_there(seeded) -> None:
    emitted: list[str] = []
    tracer = seeded.tracers["service"]
    root = tracer.start_span("slow root")
    trace_id = trace_hex(root)

    def done(frame: pd.DataFrame) -> bool:
        if not emitted:  # first look: nothing there yet; now the span ends and is exported
            assert frame.empty
            root.end()
            emitted.append(trace_id)
            return False
        return list(frame["name"]) == ["slow root"]

    result = seeded.session.traces.wait(
        trace_id=trace_id, expect=done, timeout_s=5, poll_interval_s=0.02
    )
    assert result["name"].tolist() == ["slow root"]


def test_wait_for_trace_timeout_says_what_it_found(seeded) -> None:
    traces = seeded.session.traces
    with pytest.raises(
        TraceTimeoutError,
        match=r"claim 'claim-A' \(trace [0-9a-f]{32}\) is not complete after 0.2 s: missing "
        r"spans \['judge'\]; it holds 18 observations \(ingress ClaimWorkflow/run, ",
    ):
        traces.wait("claim-A", expect=["judge"], timeout_s=0.2, poll_interval_s=0.05)
    with pytest.raises(TraceTimeoutError, match=r"No trace for claim 'claim-Q' after 0.1 s"):
        traces.wait("claim-Q", timeout_s=0.1, poll_interval_s=0.05)
    missing = uuid.uuid4().hex
    with pytest.raises(
        TraceTimeoutError, match=r"missing a root span and a generation; it holds no observations"
    ):
        traces.wait(trace_id=missing, timeout_s=0.1, poll_interval_s=0.05)
    unexported = TracerProvider().get_tracer("elsewhere").start_span("never exported")
    orphan = seeded.tracers["service"].start_span("orphan", context=set_span_in_context(unexported))
    orphan.end()
    with pytest.raises(
        TraceTimeoutError,
        match=r"missing a root span and a generation; the parent of 1 span\(s\) is not in the "
        r"trace yet \(Restate exports",
    ):
        traces.wait(trace_id=trace_hex(orphan), timeout_s=0.1, poll_interval_s=0.05)
    with pytest.raises(ValueError, match="exactly one"):
        traces.wait()


# --- scores --------------------------------------------------------------------------------------


def test_scores_are_joined_with_prompt_and_service_versions(seeded) -> None:
    sdk = seeded.sdk
    sdk.create_score(
        name="quality",
        value=0.9,
        trace_id=seeded.trace_a,
        data_type="NUMERIC",
        comment="Right decision, receipt checked.",
        metadata={
            "claim_id": "claim-A",
            "prompt_label": "production",
            "analyst_prompt_version": 1,
            "service_version": "v1",
        },
    )
    # a score whose metadata says little: the trace tells the rest
    sdk.create_score(name="quality", value=0.4, trace_id=seeded.trace_b, comment="Too strict.")
    sdk.create_score(name="helpfulness", value=1.0, trace_id=seeded.trace_b)
    scores = seeded.session.scores
    found = scores.wait(
        trace_ids=[seeded.trace_a, seeded.trace_b], timeout_s=5, poll_interval_s=0.05
    )
    assert found["name"].tolist() == ["quality", "quality"]
    rows = found.set_index("trace_id")
    a, b = rows.loc[seeded.trace_a], rows.loc[seeded.trace_b]
    assert (a["value"], a["comment"], a["claim_id"]) == (
        0.9,
        "Right decision, receipt checked.",
        "claim-A",
    )
    assert (a["prompt_name"], a["prompt_version"], a["prompt_label"], a["service_version"]) == (
        "claim-analyst",
        1,
        "production",
        "v1",
    )
    assert (b["prompt_version"], b["service_version"], b["comment"]) == (2, "v2", "Too strict.")
    assert pd.isna(b["prompt_label"])
    assert b["prompts"] == "claim-analyst v2, claim-parser v1"
    parser = scores.get(prompt="claim-parser")  # not in the metadata: read from the traces
    assert parser[["prompt_name", "prompt_version"]].values.tolist() == [
        ["claim-parser", 1],
        ["claim-parser", 1],
    ]
    assert scores.get(name="helpfulness")["value"].tolist() == [1.0]
    assert scores.get("claim-A")["value"].tolist() == [0.9]
    assert scores.get(value_max=0.5)["trace_id"].tolist() == [seeded.trace_b]


def test_score_errors(seeded) -> None:
    scores = seeded.session.scores
    nobody = uuid.uuid4().hex
    with pytest.raises(
        ScoresTimeoutError, match=rf"1 of 1 traces have no 'quality' score after 0.1 s: {nobody}"
    ):
        scores.wait(trace_ids=nobody, timeout_s=0.1, poll_interval_s=0.05)
    with pytest.raises(TypeError, match=r"unknown filter 'colour'"):
        scores.get(colour="red")
    with pytest.raises(ValueError, match="needs claims.*got none"):
        scores.wait(trace_ids=[])
    assert list(scores.get(name="no-such-score").columns)[:5] == [
        "id",
        "trace_id",
        "observation_id",
        "name",
        "value",
    ]


# --- charts --------------------------------------------------------------------------------------


def test_waterfall_chart(seeded, tmp_path) -> None:
    traces = seeded.session.traces
    obs = traces.get(trace_id=seeded.trace_a)
    ax = traces.waterfall(obs)
    bars = [p for p in ax.patches if (p.get_gid() or "").startswith("obs-")]
    assert len(bars) == len(obs) == 18
    labels = [t.get_text() for t in ax.get_yticklabels()]
    assert labels[0] == "ingress ClaimWorkflow/run"
    assert labels[labels.index("        \u2514 Parser") + 1] == "            \u2514 generation"
    errors = [line for line in ax.lines if line.get_gid() == "error"]
    assert len(errors) == 2
    title = ax.get_title(loc="left")
    assert (
        seeded.trace_a in title
        and "18 observations, 900 ms, 2 failed, 2 steps retried (4 tries)" in title
    )
    legend = [t.get_text() for t in ax.get_legend().get_texts()]
    assert {"GENERATION", "AGENT", "TOOL", "SPAN", "Restate", "ERROR", "retried"} <= set(legend)
    notes = [t.get_text() for t in ax.texts]
    assert any(
        "workbench-local" in n and "300\u219260 tok" in n and "claim-parser v1" in n for n in notes
    )
    assert any("retry 2/2" in n for n in notes)
    path = tmp_path / "waterfall.png"
    ax.figure.savefig(path, dpi=80)
    assert path.stat().st_size > 10_000
    plt.close(ax.figure)
    by_id = traces.waterfall(trace_id=seeded.trace_b)  # a trace id works too
    assert len([p for p in by_id.patches if (p.get_gid() or "").startswith("obs-")]) == 14
    plt.close(by_id.figure)
    with pytest.raises(ValueError, match="draws one trace; these observations span 2 traces"):
        traces.waterfall(traces.get(type="GENERATION"))


def _score_frame() -> pd.DataFrame:
    start = pd.Timestamp("2025-01-01T10:00:00Z")
    rows = []
    for i in range(12):
        version = 1 if i < 6 else 2
        rows.append(
            {
                "name": "quality",
                "value": (0.55 if version == 1 else 0.8) + (i % 3) * 0.05,
                "timestamp": start + pd.Timedelta(minutes=i),
                "prompt_version": version,
                "prompt_label": "production" if i % 2 else "staging",
                "service_version": "v1",
            }
        )
    rows.append({**rows[0], "prompt_version": None, "value": 0.1})
    frame = pd.DataFrame(rows)
    frame["prompt_version"] = frame["prompt_version"].astype("Int64")
    return frame


def test_score_chart(tmp_path) -> None:
    frame = _score_frame()
    ax = score_chart(frame, by="prompt_version")
    assert [t.get_text() for t in ax.get_xticklabels()] == ["v1", "v2", "unknown"]
    assert ax.get_title() == "Judge quality by analyst prompt version (13 scores)"
    notes = [t.get_text() for t in ax.texts]
    assert notes[0] == "mean 0.60\nn=6" and notes[1] == "mean 0.85\nn=6"
    ax.figure.savefig(tmp_path / "scores.png", dpi=80)
    plt.close(ax.figure)
    by_label = score_chart(frame, by="prompt_label")
    assert [t.get_text() for t in by_label.get_xticklabels()] == ["production", "staging"]
    plt.close(by_label.figure)
    with pytest.raises(ValueError, match=r"no column 'colour'.*prompt_version"):
        score_chart(frame, by="colour")
    with pytest.raises(ValueError, match=r"no scores to chart.*wb\.scores\.wait"):
        score_chart(frame.iloc[0:0], by="prompt_version")


def test_scores_over_time(tmp_path) -> None:
    ax = scores_over_time(_score_frame(), by="prompt_version", window=3)
    legend = [t.get_text() for t in ax.get_legend().get_texts()]
    assert legend == ["v1 (n=6, mean 0.60)", "v2 (n=6, mean 0.85)", "unknown (n=1, mean 0.10)"]
    assert len(ax.lines) == 3 and len(ax.collections) == 3
    assert "rolling mean of 3" in ax.get_title()
    ax.figure.savefig(tmp_path / "over_time.png", dpi=80)
    plt.close(ax.figure)


def test_score_times_read_as_clock_times(tmp_path) -> None:
    """Scores within one minute: the axis shows H:M:S, not bare seconds such as "25, 30"."""
    frame = _score_frame()
    frame["timestamp"] = pd.Timestamp("2025-01-01T10:00:00Z") + pd.to_timedelta(
        range(len(frame)), unit="s"
    )
    ax = scores_over_time(frame, by="prompt_version")
    ax.figure.canvas.draw()
    ticks = [t.get_text() for t in ax.get_xticklabels() if t.get_text()]
    assert ticks and all(re.fullmatch(r"\d\d:\d\d:\d\d", t) for t in ticks), ticks
    assert "2025-01-01 10:00" in ax.get_xlabel()
    plt.close(ax.figure)
