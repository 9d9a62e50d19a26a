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
from pathlib import Path
from typing import TYPE_CHECKING, Any
from urllib.parse import quote

import httpx

from ..errors import LangfuseError

if TYPE_CHECKING:
    from langfuse.api import LangfuseAPI

__all__ = ["LangfuseClient", "RunItemsUnsupportedError", "describe_error"]

OBSERVATION_FIELDS = "core,basic,time,model,usage,prompt,metadata"
OBSERVATION_PAGE = 500
SCORE_PAGE = 100
PROMPT_PAGE = 100


class LangfuseClient:
    """One Langfuse project, by its base URL and API keys."""

    def __init__(
        self,
        url: str,
        public_key: str,
        secret_key: str,
        *,
        timeout_s: float = 10.0,
        changes_file: Path | None = None,
    ):
        self.url = url.rstrip("/")
        self.public_key = public_key
        self._secret_key = secret_key
        self.timeout_s = timeout_s
        self.changes_file = changes_file
        """Appended to after every prompt version or label written (the services of the stack
        whose home holds it then drop what they cached of where labels point)."""

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
        try:
            yield
        except httpx.TransportError as e:
            raise LangfuseError(
                f"{what}: Langfuse at {self.url} does not answer ({type(e).__name__}: {e}). "
                "Start the stack with workbench.start(), or check LANGFUSE_BASE_URL."
            ) from None
        except Exception as e:  # the SDK's errors, imported only when one is raised: a call
            # made with plain HTTP (get_json) does not pay the SDK's import (0.5 s)
            from langfuse.api import AccessDeniedError, UnauthorizedError

            if isinstance(e, (UnauthorizedError, AccessDeniedError)):
                raise self._keys_refused(what, describe_error(e)) from None
            raise

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

    def prompt_labels(self) -> set[str]:
        """The labels some prompt carries, in plain HTTP (the prompt list, every page): what a
        claim checks before it is sent, without the SDK's import on a kernel's first claim."""
        labels: set[str] = set()
        page = 1
        while True:
            answer = self.get_json(
                "/api/public/v2/prompts", "Listing prompts", page=page, limit=PROMPT_PAGE
            )
            for prompt in answer.get("data") or []:
                labels.update(prompt.get("labels") or [])
            if page >= ((answer.get("meta") or {}).get("totalPages") or 1):
                return labels
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
                created: Any = ChatPromptClient(self.api.prompts.create(request=request))
            else:
                request = CreateTextPromptRequest(name=name, prompt=prompt, **fields)
                created = TextPromptClient(self.api.prompts.create(request=request))
        self._prompts_changed()
        return created

    def move_labels(self, name: str, version: int, labels: list[str]) -> None:
        """Put `labels` on one version of a prompt (off the version that had them)."""
        with self.guard(f"Moving labels {labels} to {name} v{version}"):
            self.api.prompt_version.update(quote(name, safe=""), version, new_labels=labels)
        self._prompts_changed()

    def _prompts_changed(self) -> None:
        if self.changes_file is not None and self.changes_file.parent.is_dir():
            with self.changes_file.open("ab") as f:  # size and mtime change: seen at once
                f.write(b".")

    # -- datasets and their runs ---------------------------------------------------------------
    def dataset(self, name: str) -> Any | None:
        """A dataset by name (the SDK's object), or None when there is none."""
        from langfuse.api import NotFoundError
        from langfuse.api.core import ApiError

        what = f"Reading dataset {name!r}"
        try:
            with self.guard(what):
                return self.api.datasets.get(quote(name, safe=""))
        except NotFoundError:
            return None
        except ApiError as e:
            raise LangfuseError(
                f"{what}: Langfuse refused it (HTTP {e.status_code}): {describe_error(e)}"
            ) from None

    def upsert_dataset(self, name: str, **fields: Any) -> Any:
        """Create the dataset `name`, or update the fields given (description, metadata)."""
        fields = {k: v for k, v in fields.items() if v is not None}
        with self.refused(f"Creating dataset {name!r}"):
            return self.api.datasets.create(name=name, **fields)

    def upsert_dataset_items(
        self, dataset: str, items: list[dict[str, Any]], *, workers: int = 8
    ) -> list[Any]:
        """Create or update items (each a dict with `id`, `input`, `expected_output`,
        `metadata`) of `dataset`, `workers` requests at a time; the same id updates the item."""
        from concurrent.futures import ThreadPoolExecutor

        def one(item: dict[str, Any]) -> Any:
            with self.refused(f"Writing item {item.get('id')!r} of dataset {dataset!r}"):
                return self.api.dataset_items.create(dataset_name=dataset, **item)

        with ThreadPoolExecutor(max_workers=max(1, min(workers, len(items)))) as pool:
            return list(pool.map(one, items))

    def dataset_items(self, dataset: str) -> list[Any]:
        """Every item of a dataset (all pages)."""
        out: list[Any] = []
        page = 1
        while True:
            with self.refused(f"Reading the items of dataset {dataset!r}"):
                answer = self.api.dataset_items.list(dataset_name=dataset, page=page, limit=100)
            out.extend(answer.data)
            if page >= (answer.meta.total_pages or 1):
                return out
            page += 1

    def dataset_run(self, dataset: str, run: str) -> dict[str, Any] | None:
        """A dataset run with its items (`datasetRunItems`), or None when there is none."""
        path = f"/api/public/datasets/{quote(dataset, safe='')}/runs/{quote(run, safe='')}"
        return self.get_json(path, f"Reading run {run!r} of dataset {dataset!r}", missing_ok=True)

    def dataset_runs(self, dataset: str) -> list[dict[str, Any]]:
        """The runs of a dataset, newest first (all pages)."""
        out: list[dict[str, Any]] = []
        page = 1
        while True:
            answer = self.get_json(
                f"/api/public/datasets/{quote(dataset, safe='')}/runs",
                f"Listing the runs of dataset {dataset!r}",
                page=page,
                limit=100,
            )
            out.extend(answer.get("data") or [])
            if page >= (answer.get("meta") or {}).get("totalPages", 1):
                return out
            page += 1

    def link_run_item(
        self,
        run: str,
        dataset_item_id: str,
        trace_id: str,
        *,
        description: str | None = None,
        metadata: dict[str, Any] | None = None,
    ) -> dict[str, Any]:
        """Link a dataset item to the trace that ran it, in the run `run` (created when new):
        `POST /api/public/dataset-run-items`. RunItemsUnsupportedError when this Langfuse has no
        such endpoint (Langfuse v4 records runs as spans: `link_run_item_as_span`)."""
        body: dict[str, Any] = {
            "runName": run,
            "datasetItemId": dataset_item_id,
            "traceId": trace_id,
        }
        if description is not None:
            body["runDescription"] = description
        if metadata is not None:
            body["metadata"] = metadata
        what = f"Linking trace {trace_id} to item {dataset_item_id!r} in run {run!r}"
        with self.guard(what):
            response = self.http.post("/api/public/dataset-run-items", json=body)
        if response.status_code in (401, 403):
            raise self._keys_refused(what, describe_response(response))
        if response.status_code in (404, 405, 410) and _endpoint_missing(response):
            raise RunItemsUnsupportedError(
                f"{what}: {self.url} has no dataset-run-items API (HTTP {response.status_code})."
            )
        if not response.is_success:
            raise LangfuseError(
                f"{what}: HTTP {response.status_code} from {self.url}: "
                f"{describe_response(response)}"
            )
        return response.json()

    def link_run_item_as_span(
        self,
        *,
        run_id: str,
        run: str,
        dataset_id: str,
        dataset_item_id: str,
        trace_id: str,
        description: str | None = None,
        metadata: dict[str, Any] | None = None,
        expected_output: Any = None,
    ) -> None:
        """The same link as Langfuse v4 records it: one span in the claim's trace carrying the
        `langfuse.experiment.*` attributes the SDK's `run_experiment` sets (OTLP/JSON). Its span
        id derives from the run and the item, so sending it again replaces it."""
        import hashlib
        import json
        import time

        span_id = hashlib.sha256(f"{run_id}\0{dataset_item_id}\0{trace_id}".encode()).hexdigest()
        now = time.time_ns()
        attributes = {
            "langfuse.experiment.id": run_id,
            "langfuse.experiment.name": run,
            "langfuse.experiment.dataset.id": dataset_id,
            "langfuse.experiment.item.id": dataset_item_id,
            "langfuse.experiment.item.root_observation_id": span_id[:16],
            "langfuse.experiment.description": description,
            "langfuse.experiment.metadata": None if metadata is None else json.dumps(metadata),
            "langfuse.experiment.item.expected_output": (
                None if expected_output is None else json.dumps(expected_output)
            ),
            "langfuse.observation.type": "span",
        }
        span = {
            "traceId": trace_id,
            "spanId": span_id[:16],
            "name": "experiment-item-run",
            "kind": 1,
            "startTimeUnixNano": str(now),
            "endTimeUnixNano": str(now),
            "attributes": [
                {"key": key, "value": {"stringValue": value}}
                for key, value in attributes.items()
                if value is not None
            ],
        }
        body = {
            "resourceSpans": [
                {
                    "resource": {
                        "attributes": [
                            {"key": "service.name", "value": {"stringValue": "workbench"}}
                        ]
                    },
                    "scopeSpans": [{"scope": {"name": "langfuse-sdk"}, "spans": [span]}],
                }
            ]
        }
        what = f"Recording trace {trace_id} as item {dataset_item_id!r} of run {run!r}"
        with self.guard(what):
            response = self.http.post("/api/public/otel/v1/traces", json=body)
        if response.status_code in (401, 403):
            raise self._keys_refused(what, describe_response(response))
        if not response.is_success:
            raise LangfuseError(
                f"{what}: HTTP {response.status_code} from {self.url}: "
                f"{describe_response(response)}"
            )

    def experiments(self, since: Any, **filters: Any) -> list[Any]:
        """Experiments (the SDK's objects, Langfuse v4's read API) with items since `since`,
        all pages; filters: name, dataset_id, fields, ..."""
        out: list[Any] = []
        cursor: str | None = None
        while True:
            with self.refused("Listing experiments"):
                answer = self.api.experiments.list(
                    from_start_time=since, cursor=cursor, limit=100, **filters
                )
            out.extend(answer.data)
            cursor = answer.meta.cursor
            if not cursor:
                return out


class RunItemsUnsupportedError(LangfuseError):
    """This Langfuse has no `dataset-run-items` API (Langfuse v4): record runs as spans."""


def _endpoint_missing(response: httpx.Response) -> bool:
    """A 404/405/410 that says the endpoint is not there (not "dataset item not found")."""
    if response.status_code in (405, 410):
        return True
    text = describe_response(response).lower()
    return "item" not in text or "no endpoint" in text


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
