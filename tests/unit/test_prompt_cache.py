"""The claims' prompt fetch against the embedded Langfuse through the real `langfuse` SDK: one
request per claim once the texts are known, and label moves seen by the very next claim; with
a Langfuse that announces its prompt changes (the embedded one in a stack), no request at all
until one is announced, whoever made it."""

from __future__ import annotations

import asyncio
from collections import Counter
from collections.abc import Iterator
from typing import Any

import pytest
from langfuse import Langfuse
from langfuse._client.resource_manager import LangfuseResourceManager
from opentelemetry.sdk.trace import TracerProvider

from services import prompts
from services.config import settings
from services.names import PROMPT_CHANGES_ANNOUNCED, PROMPT_CHANGES_ENV, PROMPT_CHANGES_FILE
from workbench.clients import LangfuseClient
from workbench.local.langfuse.testing import LocalLangfuse, running_server

PK, SK = "pk-lf-cache", "sk-lf-cache"


@pytest.fixture()
def server(tmp_path, monkeypatch) -> Iterator[LocalLangfuse]:
    monkeypatch.setenv("WORKBENCH_HOME", str(tmp_path))  # where the services look for changes
    settings.cache_clear()
    prompts.forget_labels()
    changes = tmp_path / PROMPT_CHANGES_FILE
    with running_server(tmp_path / "langfuse.db", PK, SK, prompt_changes=changes) as local:
        yield local
    settings.cache_clear()
    prompts.forget_labels()


@pytest.fixture()
def langfuse(server, monkeypatch) -> Iterator[tuple[Langfuse, Counter[str]]]:
    monkeypatch.setenv("LANGFUSE_PUBLIC_KEY", PK)
    monkeypatch.setenv("LANGFUSE_SECRET_KEY", SK)
    monkeypatch.setenv("LANGFUSE_BASE_URL", server.base_url)
    client = Langfuse(
        public_key=PK, secret_key=SK, base_url=server.base_url, tracer_provider=TracerProvider()
    )
    other = Langfuse(  # another client in the same process (a test's, a notebook's)
        public_key="pk-lf-other", secret_key="sk", base_url=server.base_url,
        tracer_provider=TracerProvider(),
    )  # fmt: skip
    calls: Counter[str] = Counter()
    api = client.async_api.prompts
    for method in ("get", "list"):  # count the requests the claims make
        real = getattr(api, method)

        async def counted(*args: Any, _real: Any = real, _name: str = method, **kw: Any) -> Any:
            calls[_name] += 1
            return await _real(*args, **kw)

        setattr(api, method, counted)
    for name in prompts.NAMES:
        client.create_prompt(name=name, prompt=f"{name} one", labels=["production"])
        client.create_prompt(name=name, prompt=f"{name} two", labels=[])
    try:
        yield client, calls
    finally:
        for made, key in ((client, PK), (other, "pk-lf-other")):
            made.shutdown()
            LangfuseResourceManager._instances.pop(key, None)


def _versions(found: Any) -> dict[str, tuple[int, str, str]]:
    return {
        p.name: (p.version, p.label, p.text) for p in (found.parser, found.analyst, found.judge)
    }


async def test_one_request_per_claim_once_the_texts_are_known(langfuse) -> None:
    client, calls = langfuse
    first = await prompts.prompt_set("production")
    assert _versions(first)["claim-analyst"] == (1, "production", "claim-analyst one")
    calls.clear()
    again = await prompts.prompt_set("production")
    assert _versions(again) == _versions(first)
    assert calls == Counter({"list": 1})


async def test_a_label_move_is_seen_by_the_next_claim(langfuse) -> None:
    client, calls = langfuse
    await prompts.prompt_set("production")
    client.update_prompt(name="claim-analyst", version=2, new_labels=["production"])
    moved = _versions(await prompts.prompt_set("production"))
    assert moved["claim-analyst"] == (2, "production", "claim-analyst two")
    assert moved["claim-parser"] == (1, "production", "claim-parser one")


async def test_a_label_on_some_prompts_falls_back_to_production_for_the_others(langfuse) -> None:
    client, _ = langfuse
    client.update_prompt(name="claim-analyst", version=2, new_labels=["staging"])
    found = _versions(await prompts.prompt_set("staging"))
    assert found["claim-analyst"] == (2, "staging", "claim-analyst two")
    assert found["claim-judge"] == (1, "production", "claim-judge one")


async def test_a_label_on_no_prompt_is_refused_with_the_fix(langfuse) -> None:
    with pytest.raises(prompts.UnknownPromptLabelError, match="'nowhere' is on no prompt.*Promote"):
        await prompts.prompt_set("nowhere")


async def test_a_version_deleted_and_created_again_is_not_served_stale(langfuse) -> None:
    client, _ = langfuse
    client.update_prompt(name="claim-judge", version=2, new_labels=["production"])
    assert _versions(await prompts.prompt_set())["claim-judge"][2] == "claim-judge two"
    client.api.prompts.delete("claim-judge", version=2)
    client.create_prompt(name="claim-judge", prompt="claim-judge anew", labels=["production"])
    assert _versions(await prompts.prompt_set())["claim-judge"] == (
        2,
        "production",
        "claim-judge anew",
    )


async def test_announced_changes_spare_the_request_until_a_change_whoever_makes_it(
    langfuse, monkeypatch
) -> None:
    client, calls = langfuse
    monkeypatch.setenv(PROMPT_CHANGES_ENV, PROMPT_CHANGES_ANNOUNCED)
    await prompts.prompt_set("production")
    calls.clear()
    for _ in range(3):
        assert _versions(await prompts.prompt_set())["claim-analyst"][0] == 1
    assert calls == Counter(), "nothing changed: no request"
    client.update_prompt(name="claim-analyst", version=2, new_labels=["production"])  # the SDK
    assert _versions(await prompts.prompt_set())["claim-analyst"] == (
        2,
        "production",
        "claim-analyst two",
    )
    assert calls["list"] == 1  # (and the text of v2, never seen before)
    client.api.prompts.delete("claim-analyst", version=2)  # a deletion is announced too:
    with pytest.raises(LookupError, match="'claim-analyst' has neither"):  # not v2 from memory
        await prompts.prompt_set()


async def test_with_a_ttl_a_change_made_through_the_workbench_is_seen_at_once(
    langfuse, server, tmp_path, monkeypatch
) -> None:
    client, calls = langfuse
    server.app.state.db.prompt_changes = None  # a Langfuse that announces nothing (Cloud)
    monkeypatch.setattr(prompts, "LABEL_TTL_S", 60.0)
    await prompts.prompt_set("production")
    calls.clear()
    await prompts.prompt_set("production")
    assert calls == Counter(), "within the TTL: no request"
    workbench = LangfuseClient(server.base_url, PK, SK, changes_file=tmp_path / PROMPT_CHANGES_FILE)
    workbench.move_labels("claim-parser", 2, ["production"])
    assert _versions(await prompts.prompt_set())["claim-parser"] == (
        2,
        "production",
        "claim-parser two",
    )
    workbench.close()


async def test_claims_asking_at_once_share_one_request_when_answers_are_reusable(
    langfuse, monkeypatch
) -> None:
    _, calls = langfuse
    monkeypatch.setenv(PROMPT_CHANGES_ENV, PROMPT_CHANGES_ANNOUNCED)
    await asyncio.gather(*(prompts.prompt_set() for _ in range(8)))
    assert calls["list"] == 1
