"""`workbench.prompts` and the label-switcher widget against the embedded Langfuse, in-process
(served on a loopback port in a thread); prompts are seeded with the real `langfuse` SDK."""

from __future__ import annotations

import html
from collections.abc import Iterator
from dataclasses import dataclass

import pytest
from langfuse import Langfuse
from langfuse._client.resource_manager import LangfuseResourceManager
from opentelemetry.sdk.trace import TracerProvider

from workbench import LangfuseError, PromptError, PromptNotFoundError, Session
from workbench.local.langfuse.testing import LocalLangfuse, free_port, running_server
from workbench.prompts import Prompts
from workbench.session import Endpoints

PK, SK = "pk-lf-prompts", "sk-lf-prompts"
ANALYST_V1 = "You assess insurance claims.\nApprove up to 3000 EUR.\nA receipt is needed."
ANALYST_V2 = (
    "You assess insurance claims.\nApprove up to 3000 EUR.\nReject any claim without a receipt."
)


def session_on(home, url: str, secret_key: str = SK) -> Session:
    return Session(
        Endpoints("http://127.0.0.1:9", "http://127.0.0.1:9", url, PK, secret_key), home=home
    )


@dataclass
class Server:
    local: LocalLangfuse
    session: Session

    @property
    def base_url(self) -> str:
        return self.local.base_url


@pytest.fixture(scope="module")
def server(tmp_path_factory) -> Iterator[Server]:
    home = tmp_path_factory.mktemp("prompts")
    with running_server(home / "langfuse.db", PK, SK) as local:
        session = session_on(home, local.base_url)
        provider = TracerProvider()
        seed = Langfuse(
            public_key=PK, secret_key=SK, base_url=local.base_url, tracer_provider=provider
        )
        seed.create_prompt(
            name="claim-analyst",
            prompt=ANALYST_V1,
            labels=["production"],
            commit_message="Analyst: the v1 clauses.",
        )
        seed.create_prompt(
            name="claim-analyst",
            prompt=ANALYST_V2,
            labels=["staging"],
            config={"temperature": 0},
            commit_message="Analyst: stricter receipt clause.",
        )
        seed.create_prompt(name="claim-parser", prompt="Extract the fields.", labels=["production"])
        try:
            yield Server(local, session)
        finally:
            seed.shutdown()
            provider.shutdown()
            session.close()
            LangfuseResourceManager._instances.pop(PK, None)


@pytest.fixture
def prompts(server) -> Prompts:
    return server.session.prompts


def test_list_has_one_row_per_version(prompts) -> None:
    frame = prompts.list()
    assert list(frame.columns[:5]) == ["name", "version", "labels", "commit_message", "created"]
    analyst = frame[frame["name"] == "claim-analyst"]
    assert analyst["version"].tolist() == [1, 2]
    assert analyst["labels"].tolist() == [["production"], ["latest", "staging"]]
    assert analyst["commit_message"].tolist() == [
        "Analyst: the v1 clauses.",
        "Analyst: stricter receipt clause.",
    ]
    assert prompts.list("claim-parser")["version"].tolist() == [1]


def test_get_by_label_version_and_default(prompts) -> None:
    assert prompts.get("claim-analyst").version == 1  # production by default
    staging = prompts.get("claim-analyst", label="staging")
    assert (staging.version, staging.text, staging.config) == (2, ANALYST_V2, {"temperature": 0})
    assert prompts.get("claim-analyst", version=1).text == ANALYST_V1
    assert "claim-analyst v2 [latest, staging]" in str(staging)
    assert "stricter receipt clause" in staging._repr_html_()
    assert repr(staging).startswith("Prompt(claim-analyst v2 [latest, staging]: ")


def test_get_errors_say_what_exists(prompts) -> None:
    with pytest.raises(PromptNotFoundError, match=r"No prompt named 'claim-anlyst'.*claim-analyst"):
        prompts.get("claim-anlyst")
    with pytest.raises(
        PromptNotFoundError, match=r"'claim-analyst' has no label 'gold' \(versions: 1, 2; labels"
    ):
        prompts.get("claim-analyst", label="gold")
    with pytest.raises(PromptNotFoundError, match=r"has no version 9"):
        prompts.get("claim-analyst", version=9)
    with pytest.raises(ValueError, match="either label= or version="):
        prompts.get("claim-analyst", label="staging", version=2)


def test_labels_map(prompts) -> None:
    assert prompts.labels() == {
        "latest": ["claim-analyst v2", "claim-parser v1"],
        "production": ["claim-analyst v1", "claim-parser v1"],
        "staging": ["claim-analyst v2"],
    }


def test_diff_marks_added_and_removed_lines(prompts) -> None:
    change = prompts.diff("claim-analyst", "production", 2)
    text = str(change)
    assert text.startswith("--- claim-analyst v1\n+++ claim-analyst v2")
    assert "-A receipt is needed." in text and "+Reject any claim without a receipt." in text
    assert '+config: {"temperature": 0}' in text  # configs differ too
    shown = change._repr_html_()
    assert "background:#ffebee" in shown and "background:#e8f5e9" in shown
    assert repr(change) == "PromptDiff(claim-analyst: v1 -> v2, +2 -2 lines)"
    same = prompts.diff("claim-analyst", 1, 1)
    assert not same.changed and str(same) == "claim-analyst: v1 and v1 are identical."


def test_create_and_promote(prompts) -> None:
    first = prompts.create("promo", "Version one.", labels=["production"], commit_message="one")
    second = prompts.create("promo", "Version two.", commit_message="two")
    assert (first.version, second.version, second.labels) == (1, 2, ("latest",))
    promoted = prompts.promote("promo", 2)
    assert promoted.labels == ("latest", "production")
    assert prompts.get("promo").version == 2  # no stale cache
    assert prompts.get("promo", version=1).labels == ()
    chat = prompts.create("promo-chat", [{"role": "system", "content": "Judge {{claim}}."}])
    assert chat.type == "chat" and chat.compile(claim="C-1")[0]["content"] == "Judge C-1."


def test_create_and_promote_errors(prompts) -> None:
    with pytest.raises(PromptNotFoundError, match=r"'promo' has no version 7 \(versions: 1, 2"):
        prompts.promote("promo", 7)
    with pytest.raises(PromptNotFoundError, match=r"No prompt named 'nothing'"):
        prompts.promote("nothing", 1)
    with pytest.raises(ValueError, match="'latest' always marks the newest version"):
        prompts.promote("promo", 1, "latest")
    with pytest.raises(TypeError, match="an int such as 2; got '2'"):
        prompts.promote("promo", "2")  # type: ignore[arg-type]
    with pytest.raises(ValueError, match="the text is empty"):
        prompts.create("promo", "  ")
    with pytest.raises(PromptError, match=r"refused the new version.*Label 'Prod!' is not valid"):
        prompts.create("promo", "x", labels=["Prod!"])
    with pytest.raises(PromptError, match=r"'promo' is a text prompt"):
        prompts.create("promo", [{"role": "user", "content": "x"}])


def test_wrong_keys_and_unreachable_server(server, tmp_path) -> None:
    wrong = session_on(tmp_path, server.base_url, "sk-wrong")
    gone = session_on(tmp_path, f"http://127.0.0.1:{free_port()}")
    try:
        with pytest.raises(LangfuseError, match="refused the keys.*pk-lf-prompts"):
            wrong.prompts.list()
        with pytest.raises(LangfuseError, match="does not answer.*workbench.start"):
            gone.prompts.get("claim-analyst")
    finally:
        wrong.close()
        gone.close()


def test_label_switcher_promotes_headless(prompts) -> None:
    prompts.create("switch", "One.", labels=["production"], commit_message="first")
    prompts.create("switch", "Two.", labels=["staging"], commit_message="second")
    switcher = prompts.switcher("switch")
    assert "first" in switcher.table.value and "second" in switcher.table.value
    assert [value for _, value in switcher.version.options] == [1, 2]
    assert switcher.label.value == "production"
    assert set(switcher.label.options) == {"production", "staging"}

    switcher.version.value = 2
    switcher.button.click()
    assert "switch: production is now v1 \u2192 v2" in switcher.status.value
    assert prompts.get("switch").version == 2
    assert switcher.labels_now["production"] == 2
    assert "v2  (latest, production, staging)" in [text for text, _ in switcher.version.options]

    switcher.label.value = "latest"
    switcher.button.click()
    assert "cannot be moved" in switcher.status.value and "#c62828" in switcher.status.value
    assert prompts.get("switch", label="latest").version == 2


def test_label_switcher_shows_errors_in_the_widget(prompts) -> None:
    switcher = prompts.switcher("no-such-prompt")
    assert "No prompt named 'no-such-prompt'" in html.unescape(switcher.status.value)
    switcher.button.click()
    assert "Pick a version first." in switcher.status.value
