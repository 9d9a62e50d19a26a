"""The claim's steps in-process (`flow.InProcessEnv`) against the embedded model: the workflow's
own checks of amounts and dates, unknown customers, clauses the analyst could not apply, and the
judge's rubric items. The durable path runs the same `process_claim` (tests/integration)."""

from __future__ import annotations

import shutil
from collections.abc import Iterator
from datetime import date, timedelta
from pathlib import Path
from typing import Any

import agents
import httpx
import openai
import pytest

from services import flow, reference_data, tracing
from services.config import settings
from services.models import ClaimRequest, Valuation
from workbench.local.llm import create_app

DATA = Path(__file__).resolve().parents[2] / "data"
TODAY = date.today()


@pytest.fixture
def env(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[Path]:
    """Services settings in a private folder (ledger, a copy of data/ whose prompts a test may
    change), and the Agents SDK's default client pointed at the embedded model in-process."""
    from agents.models import _openai_shared

    data = tmp_path / "data"
    shutil.copytree(DATA, data)
    for name in ("LANGFUSE_PUBLIC_KEY", "LANGFUSE_SECRET_KEY", "SERVICE_VERSION"):
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setenv("WORKBENCH_DATA_DIR", str(data))
    monkeypatch.setenv("WORKBENCH_HOME", str(tmp_path))
    monkeypatch.setenv("WORKBENCH_LEDGER", str(tmp_path / "ledger.sqlite3"))
    settings.cache_clear()
    saved = (
        _openai_shared.get_default_openai_client(),
        _openai_shared.get_use_responses_by_default(),
    )
    http = httpx.AsyncClient(transport=httpx.ASGITransport(app=create_app()), base_url="http://t")
    agents.set_default_openai_client(
        openai.AsyncOpenAI(base_url="http://t/v1", api_key="x", http_client=http, max_retries=0),
        use_for_tracing=False,
    )
    agents.set_default_openai_api("chat_completions")
    agents.set_tracing_disabled(True)
    try:
        yield data
    finally:
        settings.cache_clear()
        if saved[0] is not None:
            agents.set_default_openai_client(saved[0], use_for_tracing=False)
        agents.set_default_openai_api("responses" if saved[1] else "chat_completions")


async def run(document: str, claim_id: str = "c1") -> tuple[Any, flow.InProcessEnv]:
    """The outcome and the steps taken; the judge's runs are awaited (`steps.judged`)."""
    steps = flow.InProcessEnv()
    outcome = await flow.process_claim(claim_id, ClaimRequest(document=document), steps)
    steps.judged = await steps.drain()  # type: ignore[attr-defined]
    return outcome, steps


async def test_a_claim_in_german_is_paid_with_the_day_it_was_valued(env: Path) -> None:
    outcome, steps = await run(
        "Kundennummer: C-1027\nBehandlungsdatum: 12.01.2026\nZahnarzt, Füllung\n"
        "Rechnungsbetrag: 286,40 €\nRechnung anbei"
    )
    assert outcome.status == "paid", outcome.reason
    assert outcome.paid_eur == 286.4 and outcome.submitted_on == TODAY.isoformat()
    assert outcome.unrecognized_clauses == []
    assert steps.steps[:4] == ["fetch prompts", "parse", "convert to EUR", "analyze"]
    [result] = steps.judged  # type: ignore[attr-defined]
    assert result.verdict is not None and result.verdict.score == 1.0
    assert [i.id for i in result.verdict.items] == [
        "consistent", "amount", "reason", "receipt", "fraud"
    ]  # fmt: skip


@pytest.mark.parametrize(
    ("document", "reason"),
    [
        (
            "Customer ID: C-1008\nDate: 2026-02-10\nCategory: pharmacy\nAmount: 0.001 EUR\n"
            "Receipt: attached",
            "The amount 0.001 EUR is 0.0010 EUR, less than one cent",
        ),
        (
            "Customer ID: C-1008\nDate: 2026-02-10\nCategory: pharmacy\nAmount: 1 JPY\n"
            "Receipt: attached",
            "The amount 1 JPY is 0.0061 EUR, less than one cent",
        ),
        (
            f"Customer ID: C-1008\nDate of service: {(TODAY + timedelta(days=3)).isoformat()}\n"
            "Category: pharmacy\nAmount: 85.00 EUR\nReceipt: attached",
            f"after today ({TODAY.isoformat()})",
        ),
        (
            "Customer C-1035, physiotherapy on 10 May 2026, EUR 180.00, invoice enclosed.",
            "before the policy of C-1035 began (2026-06-01)",
        ),
    ],
    ids=["tenth-of-a-cent", "one-yen", "tomorrow-plus-two", "before-the-policy"],
)
async def test_amounts_and_dates_that_make_no_sense_end_invalid_before_the_analyst(
    env: Path, document: str, reason: str
) -> None:
    outcome, steps = await run(document)
    assert outcome.status == "invalid"
    assert reason in outcome.reason
    assert "analyze" not in steps.steps and outcome.paid_eur is None


async def test_today_comes_from_the_journaled_step_not_the_clock(
    env: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    real = reference_data.value_claim

    def valued_on_new_years_day(*args: Any) -> Valuation:
        return real(*args).model_copy(update={"today": "2026-01-01"})

    monkeypatch.setattr(reference_data, "value_claim", valued_on_new_years_day)
    outcome, _ = await run(
        "Customer ID: C-1008\nDate: 2026-02-10\nCategory: pharmacy\nAmount: 85 EUR"
    )
    assert outcome.status == "invalid"
    assert "after today (2026-01-01)" in outcome.reason
    assert outcome.submitted_on == "2026-01-01"


async def test_an_unknown_customer_is_rejected_naming_the_id(env: Path) -> None:
    outcome, _ = await run(
        "Hola, soy cliente nuevo. Mi número de cliente es CUST-4411. El 5 de noviembre de 2026 "
        "pagué 95,00 € en la farmacia. Adjunto el recibo."
    )
    assert outcome.status == "rejected"
    assert "unknown customer CUST-4411" in outcome.reason
    assert outcome.claim is not None and outcome.claim.customer_id == "CUST-4411"


async def test_an_uncovered_category_is_kept_and_rejected_by_the_coverage_clause(env: Path) -> None:
    outcome, _ = await run(
        "Codice cliente C-1030. Il 3 marzo 2026 ho portato il mio cane dal veterinario: "
        "140,00 €. Allego la fattura."
    )
    assert outcome.claim is not None and outcome.claim.category == "veterinary"
    assert outcome.status == "rejected"
    assert outcome.reason.startswith("[coverage]") and "does not cover veterinary" in outcome.reason


async def test_clauses_the_analyst_cannot_apply_are_kept_in_the_outcome(env: Path) -> None:
    prompt = env / "prompts" / "claim-analyst.v1.md"
    prompt.write_text(
        prompt.read_text(encoding="utf-8").replace(
            "5. [review]",
            "5. [travel] Send every travel claim to human review.\n"
            "6. [weekend] Reject claims submitted on a weekend.\n7. [review]",
        ),
        encoding="utf-8",
    )
    reviews: list[str] = []

    async def reviewer() -> Any:
        from services.models import Review

        reviews.append("asked")
        return Review(approved=False, reviewer="ana", note="not urgent")

    steps = flow.InProcessEnv(review=reviewer)
    outcome = await flow.process_claim(
        "c2",
        ClaimRequest(
            document="C-1013: hotel after a cancelled flight on 2026-02-27, 450 EUR, "
            "receipt attached."
        ),  # fmt: skip
        steps,
    )
    assert reviews == ["asked"] and outcome.status == "rejected"
    assert outcome.reason.startswith("[travel] ")
    assert outcome.unrecognized_clauses == [
        "[weekend] Reject claims submitted on a weekend. (not understood: submitted, weekend)"
    ]
    [result] = await steps.drain()
    assert result.verdict is not None and result.verdict.items


def test_nonsense_is_a_pure_function_of_the_journaled_valuation() -> None:
    from services.models import ClaimData

    claim = ClaimData(
        customer_id="C-1001",
        claim_date="2026-03-01",
        amount=10.0,
        currency="EUR",
        category="medical",
        has_receipt=True,
        description="",
        problems=[],
    )
    valuation = Valuation(amount_eur=10.0, rate=1.0, today="2026-03-01", policy_start="2026-03-01")
    assert flow.nonsense(claim, valuation) is None
    earlier = valuation.model_copy(update={"today": "2026-02-28"})
    assert "after today" in str(flow.nonsense(claim, earlier))
    later = valuation.model_copy(update={"policy_start": "2026-03-02"})
    assert "before the policy" in str(flow.nonsense(claim, later))
    assert "not a date" in str(
        flow.nonsense(claim.model_copy(update={"claim_date": "March 2026"}), valuation)
    )


def test_the_warning_observation_is_a_warning_level_span(monkeypatch: pytest.MonkeyPatch) -> None:
    started: list[tuple[str, dict[str, Any]]] = []

    class Span:
        def end(self) -> None:
            started.append(("ended", {}))

    class Tracer:
        def start_span(self, name: str, attributes: dict[str, Any]) -> Span:
            started.append((name, attributes))
            return Span()

    monkeypatch.setattr(tracing, "_tracer", Tracer())
    monkeypatch.setattr("restate.server_context.current_context", lambda: object())
    tracing.set_claim("c9")
    tracing.warning("clauses not applied", "1 clause could not be applied: [weekend] ...")
    (name, attributes), ended = started
    assert name == "clauses not applied" and ended[0] == "ended"
    assert attributes["langfuse.observation.level"] == "WARNING"
    assert attributes["langfuse.observation.status_message"].startswith("1 clause")
    assert attributes["langfuse.trace.metadata.claim_id"] == "c9"


def test_no_warning_span_outside_a_restate_handler(monkeypatch: pytest.MonkeyPatch) -> None:
    class Tracer:
        def start_span(self, *args: Any, **kwargs: Any) -> Any:
            raise AssertionError("no span outside a handler")

    monkeypatch.setattr(tracing, "_tracer", Tracer())
    tracing.warning("clauses not applied", "x")  # in-process: nothing, no error
