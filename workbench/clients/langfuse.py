"""The Langfuse client: the only code of the notebook layer that speaks to Langfuse (embedded or
real): observations, traces, scores, prompts and datasets.

It is the real `langfuse` SDK's API client (`langfuse.api.LangfuseAPI`: the typed public API,
without the tracing client's per-key global state and background threads; a notebook reads and
manages, the services trace), and plain HTTP with Basic auth where the API client has no call
(the v1 traces list filtered by metadata). Errors come out as `LangfuseError`s that say what to
do: an unreachable server, keys refused, a query refused.

    langfuse = LangfuseClient("http://127.0.0.1:3000", "pk-...", "sk-...")
    langfuse.observations({"trace_id": tid})
    langfuse.scores({"name": "quality", "trace_id": tid})
    langfuse.prompt("claim-analyst", label="production")
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from functools import cached_property
from typing import TYPE_CHECKING, Any
from urllib.parse import quote

import httpx

from ..errors import LangfuseError

if TYPE_CHECKING:
    from langfuse.api import LangfuseAPI

__all__ = ["LangfuseClient", "describe_error"]

OBSERVATION_FIELDS = "core,basic,time,model,usage,prompt,metadata"
OBSERVATION_PAGE = 500
SCORE_PAGE = 100
PROMPT_PAGE = 100


class LangfuseClient:
    """One Langfuse project, by its base URL and API keys."""

    def __init__(self, url: str, public_key: str, secret_key: str, *, timeout_s: float = 10.0):
        self.url = url.rstrip("/")
        self.public_key = public_key
        self._secret_key = secret_key
        self.timeout_s = timeout_s

    def __repr__(self) -> str:
        return f"LangfuseClient({self.url}, public_key={self.public_key!r})"

    # -- clients -------------------------------------------------------------------------------
    @cached_property
    def http(self) -> httpx.Client:
        """An httpx client with Basic auth, based at this Langfuse."""
        return httpx.Client(
            base_url=self.url,
            auth=(self.public_key, self._secret_key),
            timeout=self.timeout_s,
            trust_env=False,
        )

    @cached_property
    def api(self) -> LangfuseAPI:
        """The SDK's typed client of Langfuse's public API, for this project."""
        from langfuse.api import LangfuseAPI

        return LangfuseAPI(
            base_url=self.url,
            username=self.public_key,
            password=self._secret_key,
            x_langfuse_public_key=self.public_key,
            x_langfuse_sdk_name="python",
            httpx_client=self.http,
            timeout=self.timeout_s,
        )

    def close(self) -> None:
        """Close the HTTP connections."""
        self.__dict__.pop("api", None)
        http = self.__dict__.pop("http", None)
        if http is not None:
            http.close()

    # -- errors --------------------------------------------------------------------------------
    @contextmanager
    def guard(self, what: str) -> Iterator[None]:
        """Turn an unreachable server, refused keys or a refused query into a LangfuseError
        that says what to do."""
        from langfuse.api import AccessDeniedError, UnauthorizedError

        try:
            yield
        except httpx.TransportError as e:
            raise LangfuseError(
                f"{what}: Langfuse at {self.url} does not answer ({type(e).__name__}: {e}). "
                "Start the stack with workbench.start(), or check LANGFUSE_BASE_URL."
            ) from None
        except (UnauthorizedError, AccessDeniedError) as e:
            raise self._keys_refused(what, describe_error(e)) from None

    @contextmanager
    def refused(self, what: str) -> Iterator[None]:
        """A query Langfuse refused (a bad filter value): its message, as a LangfuseError."""
        from langfuse.api.core import ApiError

        try:
            with self.guard(what):
                yield
        except ApiError as e:
            raise LangfuseError(
                f"{what}: Langfuse refused the query (HTTP {e.status_code}): {describe_error(e)}"
            ) from None

    def _keys_refused(self, what: str, detail: str) -> LangfuseError:
        return LangfuseError(
            f"{what}: Langfuse at {self.url} refused the keys (public key "
            f"{self.public_key!r}): {detail}. Check LANGFUSE_PUBLIC_KEY and LANGFUSE_SECRET_KEY."
        )

    def get_json(self, path: str, what: str, *, missing_ok: bool = False, **params: Any) -> Any:
        """GET a JSON answer with Basic auth (for the endpoints the SDK has no call for); None
        for a 404 when `missing_ok`."""
        with self.guard(what):
            response = self.http.get(
                path, params={k: v for k, v in params.items() if v is not None}
            )
        if response.status_code in (401, 403):
            raise self._keys_refused(what, describe_response(response))
        if response.status_code == 404 and missing_ok:
            return None
        if not response.is_success:
            raise LangfuseError(
                f"{what}: HTTP {response.status_code} from {self.url}: "
                f"{describe_response(response)}"
            )
        return response.json()

    # -- observations, traces, scores ----------------------------------------------------------
    def observations(
        self,
        query: dict[str, Any],
        *,
        fields: str = OBSERVATION_FIELDS,
        io: bool = False,
        limit: int | None = None,
    ) -> list[Any]:
        """Observations (the SDK's v2 objects) matching `query` (the v2 API's parameters), all
        pages, at most `limit`."""
        fields = fields + (",io" if io else "")
        out: list[Any] = []
        cursor: str | None = None
        what = "Reading observations" + (
            f" of trace {query['trace_id']}" if "trace_id" in query else ""
        )
        while True:
            page = OBSERVATION_PAGE if limit is None else min(OBSERVATION_PAGE, limit - len(out))
            with self.refused(what):
                answer = self.api.observations.get_many(
                    fields=fields, limit=page, cursor=cursor, **query
                )
            out.extend(answer.data)
            cursor = getattr(answer.meta, "cursor", None)
            if not cursor or not answer.data or (limit is not None and len(out) >= limit):
                return out

    def scores(self, query: dict[str, Any]) -> list[Any]:
        """Scores (the SDK's v3 objects) matching `query`, all pages."""
        out: list[Any] = []
        cursor: str | None = None
        while True:
            with self.refused("Reading scores"):
                answer = self.api.scores.get_many(
                    fields="details,subject", limit=SCORE_PAGE, cursor=cursor, **query
                )
            out.extend(answer.data)
            cursor = getattr(answer.meta, "cursor", None)
            if not cursor or not answer.data:
                return out

    def trace(self, trace_id: str, *, fields: str = "core,io") -> dict[str, Any] | None:
        """One trace (v1 API), or None when Langfuse has none with that id."""
        return self.get_json(
            f"/api/public/traces/{trace_id}",
            f"Reading trace {trace_id}",
            missing_ok=True,
            fields=fields,
        )

    def traces(self, *, filter: str | None = None, **params: Any) -> list[dict[str, Any]]:
        """Traces (v1 API) matching a Langfuse `filter` (JSON) and list parameters."""
        answer = self.get_json("/api/public/traces", "Listing traces", filter=filter, **params)
        return list(answer.get("data") or [])

    @cached_property
    def project_id(self) -> str:
        """The id of the project these keys belong to (for links into Langfuse's UI)."""
        with self.guard("Reading the project"):
            projects = self.api.projects.get().data
        if not projects:
            raise LangfuseError(f"Langfuse at {self.url} lists no project for these keys.")
        return str(projects[0].id)

    def trace_url(self, trace_id: str) -> str:
        """Where a trace opens in Langfuse's UI (the embedded Langfuse's viewer, or a real
        Langfuse: the same path)."""
        return f"{self.url}/project/{self.project_id}/traces/{trace_id}"

    # -- prompts -------------------------------------------------------------------------------
    def prompt_meta(self, name: str) -> Any | None:
        """The prompt's list entry (versions and labels), or None when it does not exist."""
        with self.guard(f"Reading prompt {name!r}"):
            answer = self.api.prompts.list(name=name, limit=1)
        return next((p for p in answer.data if p.name == name), None)

    def prompt_metas(self) -> list[Any]:
        """Every prompt's list entry."""
        out: list[Any] = []
        page = 1
        while True:
            with self.guard("Listing prompts"):
                answer = self.api.prompts.list(page=page, limit=PROMPT_PAGE)
            out.extend(answer.data)
            if page >= (answer.meta.total_pages or 1):
                return out
            page += 1

    def prompt(self, name: str, *, label: str | None = None, version: int | None = None) -> Any:
        """One version of a prompt as the SDK's prompt client (`compile()`), read without a
        cache; raises the SDK's NotFoundError when there is none."""
        from langfuse.model import ChatPromptClient, TextPromptClient

        wanted = f"version {version}" if version is not None else f"label {label!r}"
        with self.guard(f"Reading prompt {name!r} ({wanted})"):
            found = self.api.prompts.get(quote(name, safe=""), version=version, label=label)
        return (
            ChatPromptClient(found) if isinstance(found.prompt, list) else TextPromptClient(found)
        )

    def prompt_version(self, name: str, version: int) -> Any:
        """One version's full record (labels, commit message, created)."""
        with self.guard(f"Reading prompt {name!r} version {version}"):
            return self.api.prompts.get(quote(name, safe=""), version=version)

    def create_prompt(self, *, name: str, prompt: str | list[dict[str, Any]], **fields: Any) -> Any:
        """A new version of a prompt (text or chat); returns it as a prompt client."""
        from langfuse.api.prompts.types import CreateChatPromptRequest, CreateTextPromptRequest
        from langfuse.model import ChatPromptClient, TextPromptClient

        fields = {k: v for k, v in fields.items() if v is not None}
        fields.setdefault("config", {})
        with self.guard(f"Creating a version of prompt {name!r}"):
            if isinstance(prompt, list):
                request: Any = CreateChatPromptRequest(
                    name=name, prompt=prompt, type="chat", **fields
                )
                return ChatPromptClient(self.api.prompts.create(request=request))
            request = CreateTextPromptRequest(name=name, prompt=prompt, **fields)
            return TextPromptClient(self.api.prompts.create(request=request))

    def move_labels(self, name: str, version: int, labels: list[str]) -> None:
        """Put `labels` on one version of a prompt (off the version that had them)."""
        with self.guard(f"Moving labels {labels} to {name} v{version}"):
            self.api.prompt_version.update(quote(name, safe=""), version, new_labels=labels)


def describe_error(error: Exception) -> str:
    """A one-line reason from an SDK or HTTP error (the server's JSON message when it sent one)."""
    body: Any = getattr(error, "body", None)
    if isinstance(body, dict) and body.get("message"):
        return str(body["message"])
    response = getattr(error, "response", None)
    if isinstance(response, httpx.Response):
        return describe_response(response)
    return str(error) or type(error).__name__


def describe_response(response: httpx.Response) -> str:
    try:
        body = response.json()
    except ValueError:
        return response.text[:300]
    if isinstance(body, dict) and body.get("message"):
        return str(body["message"])
    return response.text[:300]
