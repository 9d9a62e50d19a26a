"""The viewer's pages: login, traces, one trace's waterfall, scores, prompts with a diff,
datasets with their runs side by side. Each handler reads in a worker thread and renders there."""

from __future__ import annotations

import logging
import secrets
from collections.abc import Awaitable, Callable
from typing import Any
from urllib.parse import parse_qsl, quote, urlencode

from jinja2 import Environment, PackageLoader, StrictUndefined, select_autoescape
from starlette.applications import Starlette
from starlette.concurrency import run_in_threadpool
from starlette.datastructures import URL
from starlette.exceptions import HTTPException
from starlette.middleware import Middleware
from starlette.requests import Request
from starlette.responses import HTMLResponse, RedirectResponse, Response
from starlette.routing import Route
from starlette.types import ASGIApp, Receive, Scope, Send

from .._errors import ApiError, BadRequest
from .._http import loads, read_body
from ..db import Database
from . import _diff, _format, _queries, _waterfall
from ._session import SESSION_TTL_S, Keys, safe_next

_log = logging.getLogger(__name__)
LOGIN_BODY_LIMIT = 16 * 1024
OPEN_PATHS = frozenset({"/login", "/favicon.ico"})


class Links:
    """Every URL a page links to (Langfuse's URL scheme), with its parts quoted."""

    def __init__(self, project_id: str) -> None:
        self.project_id = project_id
        self.base = f"/project/{quote(project_id, safe='')}"

    @staticmethod
    def _query(path: str, params: dict[str, Any]) -> str:
        kept = {key: value for key, value in params.items() if value not in (None, "")}
        return f"{path}?{urlencode(kept)}" if kept else path

    def traces(self, **filters: Any) -> str:
        return self._query(f"{self.base}/traces", filters)

    def trace(self, trace_id: str, observation: str | None = None) -> str:
        path = f"{self.base}/traces/{quote(trace_id, safe='')}"
        return self._query(path, {"observation": observation})

    def observation(self, trace_id: str, observation_id: str) -> str:
        trace = quote(trace_id, safe="")
        return f"{self.base}/traces/{trace}/observations/{quote(observation_id, safe='')}"

    def scores(self, **filters: Any) -> str:
        return self._query(f"{self.base}/scores", filters)

    def prompts(self) -> str:
        return f"{self.base}/prompts"

    def prompt(self, name: str, version: int | None = None, compare: int | None = None) -> str:
        path = f"{self.base}/prompts/{quote(name, safe='')}"
        return self._query(path, {"version": version, "compare": compare})

    def datasets(self) -> str:
        return f"{self.base}/datasets"

    def dataset(self, dataset_id: str) -> str:
        return f"{self.base}/datasets/{quote(dataset_id, safe='')}"


def _environment() -> Environment:
    env = Environment(
        loader=PackageLoader("workbench.local.langfuse.viewer", "templates"),
        autoescape=select_autoescape(["html"]),
        undefined=StrictUndefined,
        trim_blocks=True,
        lstrip_blocks=True,
    )
    env.filters.update(
        duration=_format.duration,
        when=_format.when,
        iso_ms=_format.iso_ms,
        pretty=_format.pretty,
        preview=_format.preview,
        score_value=_format.score_value,
        tokens=_format.tokens,
    )
    env.globals.update(chat_messages=_format.chat_messages, ns_duration=_format.ns_duration)
    return env


class _Viewer:
    """What every page needs: the store, the project, the keys and the templates."""

    def __init__(self, db: Database, project_id: str, project_name: str, keys: Keys) -> None:
        self.db = db
        self.project_id = project_id
        self.project_name = project_name
        self.keys = keys
        self.links = Links(project_id)
        self.env = _environment()

    def render(self, template_name: str, /, status_code: int = 200, **context: Any) -> HTMLResponse:
        """The page, with a policy that runs only the page's own scripts (a nonce per response):
        text that escaped the escaping still could not run."""
        nonce = secrets.token_urlsafe(16)
        template = self.env.get_template(template_name)
        text = template.render(u=self.links, project_name=self.project_name, nonce=nonce, **context)
        headers = {
            "Content-Security-Policy": (
                f"default-src 'none'; script-src 'nonce-{nonce}'; style-src 'unsafe-inline'; "
                "img-src 'self' data:; connect-src 'self'; form-action 'self'; base-uri 'none'"
            ),
            "X-Content-Type-Options": "nosniff",
            "Referrer-Policy": "same-origin",
            "Cache-Control": "no-store",
        }
        return HTMLResponse(text, status_code=status_code, headers=headers)


def _viewer(request: Request) -> _Viewer:
    viewer: _Viewer = request.app.state.viewer
    return viewer


def _text(request: Request, name: str) -> str:
    return request.query_params.get(name, "").strip()


def _int(request: Request, name: str, default: int | None = None) -> int | None:
    raw = _text(request, name)
    if not raw:
        return default
    if not (raw.isascii() and raw.isdigit() and len(raw) <= 9) or int(raw) < 1:
        raise BadRequest(
            f"'{name}' has value '{raw}'. Use a whole number from 1 to 999999999 (e.g. {name}=1)."
        )
    return int(raw)


def _check_project(request: Request) -> _Viewer:
    viewer = _viewer(request)
    project_id = request.path_params.get("project_id")
    if project_id is not None and project_id != viewer.project_id:
        raise HTTPException(
            404,
            f"No project '{project_id}' here: this server holds one project, "
            f"'{viewer.project_id}'.",
        )
    return viewer


Page = Callable[[Request], Awaitable[Response]]


def _page(build: Callable[[Request, _Viewer], Response]) -> Page:
    """A handler that checks the project, then reads and renders in a worker thread."""

    def guarded(request: Request, viewer: _Viewer) -> Response:
        try:
            return build(request, viewer)
        except (ApiError, HTTPException):
            raise
        except Exception as exc:  # one log line and a page that says so; the server goes on
            return _failure_page(request, viewer, exc)

    async def handler(request: Request) -> Response:
        viewer = _check_project(request)
        return await run_in_threadpool(guarded, request, viewer)

    handler.__name__ = build.__name__
    return handler


# --- login ------------------------------------------------------------------------------------


def _signed_in(request: Request, keys: Keys) -> bool:
    if keys.valid(request.cookies.get(keys.cookie_name)):
        return True
    return keys.match_basic(request.headers.get("authorization", ""))


async def login(request: Request) -> Response:
    viewer = _viewer(request)
    target = safe_next(request.query_params.get("next"))
    if request.method == "GET":
        if _signed_in(request, viewer.keys):
            return RedirectResponse(target, status_code=303)
        return viewer.render("login.html", next=target, public_key="", error=None)
    form = dict(parse_qsl((await read_body(request, LOGIN_BODY_LIMIT)).decode(errors="replace")))
    target = safe_next(form.get("next") or request.query_params.get("next"))
    public_key, secret_key = form.get("public_key", "").strip(), form.get("secret_key", "").strip()
    if not public_key or not secret_key:
        error = "Enter both keys: the public key (pk-lf-…) and the secret key (sk-lf-…)."
    elif not viewer.keys.match(public_key, secret_key):
        error = (
            f"Wrong keys: public key '{public_key}' with this secret key is not the pair this "
            "server was started with. Use the stack's Langfuse keys."
        )
    else:
        response = RedirectResponse(target, status_code=303)
        response.set_cookie(
            viewer.keys.cookie_name,
            viewer.keys.issue(),
            max_age=SESSION_TTL_S,
            path="/",
            httponly=True,
            samesite="lax",
        )
        return response
    return viewer.render(
        "login.html", status_code=401, next=target, public_key=public_key, error=error
    )


async def logout(request: Request) -> Response:
    viewer = _viewer(request)
    response = RedirectResponse("/login", status_code=303)
    response.delete_cookie(viewer.keys.cookie_name, path="/")
    return response


async def favicon(request: Request) -> Response:
    return Response(status_code=204)


async def home(request: Request) -> Response:
    return RedirectResponse(_viewer(request).links.traces(), status_code=303)


def _project_home(request: Request, viewer: _Viewer) -> Response:
    return RedirectResponse(viewer.links.traces(), status_code=303)


# --- traces -----------------------------------------------------------------------------------


def _traces(request: Request, viewer: _Viewer) -> Response:
    level = _text(request, "level").upper()
    if level and level not in _queries.LEVELS:
        raise BadRequest(f"'level' has value '{level}'. Use one of: {', '.join(_queries.LEVELS)}.")
    filters = _queries.TraceFilters(
        claim=_text(request, "claim"),
        name=_text(request, "name"),
        level=level,
        prompt=_text(request, "prompt"),
        version=_text(request, "version"),
        page=_int(request, "page", 1) or 1,
    )
    rows, total = _queries.list_traces(viewer.db, viewer.project_id, filters)
    options = _queries.trace_filter_options(viewer.db)
    pages = max(1, -(-total // _queries.TRACES_PER_PAGE))
    kept = {k: v for k, v in vars(filters).items() if k != "page" and v}
    return viewer.render(
        "traces.html",
        rows=rows,
        total=total,
        filters=filters,
        options=options,
        page=filters.page,
        pages=pages,
        kept=kept,
        levels=_queries.LEVELS,
    )


def _trace(request: Request, viewer: _Viewer) -> Response:
    trace_id = request.path_params["trace_id"]
    detail = _queries.trace_detail(viewer.db, viewer.project_id, trace_id)
    bars, ticks = _waterfall.build(
        detail.observations, detail.start_ns, detail.end_ns, detail.scores
    )
    selected_id = _text(request, "observation")
    selected, selected_scores = None, []
    if selected_id:
        selected = _queries.observation(viewer.db, trace_id, selected_id)
        selected_scores = [s for s in detail.scores if s.get("observationId") == selected_id]
    totals = {
        "errors": sum(1 for bar in bars if bar.is_error),
        "generations": sum(1 for bar in bars if bar.type == "GENERATION"),
        "tokens": sum(_usage_total(obs) for obs in detail.observations),
    }
    metadata = detail.trace.get("metadata")
    return viewer.render(
        "trace.html",
        trace=detail.trace,
        claim_id=metadata.get("claim_id") if isinstance(metadata, dict) else None,
        bars=bars,
        ticks=ticks,
        scores=detail.scores,
        selected=selected,
        selected_scores=selected_scores,
        totals=totals,
        start_ns=detail.start_ns,
        end_ns=detail.end_ns,
    )


def _usage_total(row: Any) -> int:
    usage = loads(row["usage_details"])
    total = usage.get("total") if isinstance(usage, dict) else None
    return int(total) if isinstance(total, int | float) else 0


def _observation(request: Request, viewer: _Viewer) -> Response:
    trace_id = request.path_params["trace_id"]
    obs = _queries.observation(viewer.db, trace_id, request.path_params["observation_id"])
    scores = _queries.observation_scores(viewer.db, trace_id, obs["id"])
    return viewer.render("_observation.html", obs=obs, obs_scores=scores)


# --- scores -----------------------------------------------------------------------------------


def _scores(request: Request, viewer: _Viewer) -> Response:
    name, trace_id = _text(request, "name"), _text(request, "trace")
    page = _int(request, "page", 1) or 1
    scores, total, names = _queries.list_scores(viewer.db, name, trace_id, page)
    return viewer.render(
        "scores.html",
        scores=scores,
        total=total,
        names=names,
        name=name,
        trace_id=trace_id,
        page=page,
        pages=max(1, -(-total // _queries.SCORES_PER_PAGE)),
    )


# --- prompts ----------------------------------------------------------------------------------


def _prompts(request: Request, viewer: _Viewer) -> Response:
    return viewer.render("prompts.html", prompts=_queries.list_prompts(viewer.db))


def _prompt(request: Request, viewer: _Viewer) -> Response:
    name = request.path_params["name"]
    detail = _queries.prompt_detail(
        viewer.db, name, _int(request, "version"), _int(request, "compare")
    )
    lines = None
    if detail.compared is not None:
        lines = _diff.diff(_diff.prompt_lines(detail.compared), _diff.prompt_lines(detail.shown))
    return viewer.render("prompt.html", detail=detail, prompt=detail.shown, diff=lines)


# --- datasets ---------------------------------------------------------------------------------


def _datasets(request: Request, viewer: _Viewer) -> Response:
    return viewer.render(
        "datasets.html", datasets=_queries.list_datasets(viewer.db, viewer.project_id)
    )


def _dataset(request: Request, viewer: _Viewer) -> Response:
    detail = _queries.dataset_detail(viewer.db, viewer.project_id, request.path_params["id"])
    chosen = request.query_params.getlist("runs")
    runs = [run for run in detail.runs if run.id in chosen] if chosen else detail.runs
    gone = {"status": "not in the dataset any more", "input": None, "expectedOutput": None}
    rows = [*detail.items, *({"id": item_id, **gone} for item_id in detail.unlisted_items())]
    return viewer.render("dataset.html", detail=detail, runs=runs, chosen=chosen, rows=rows)


def _experiment_results(request: Request, viewer: _Viewer) -> Response:
    """The SDK's `experiment_url` (`/experiments/results?baseline=<run id>`): the run's dataset."""
    run_id = _text(request, "baseline")
    dataset_id = _queries.experiment_dataset(viewer.db, run_id) if run_id else None
    if dataset_id is None:
        raise HTTPException(
            404,
            f"No dataset run '{run_id}' here. Runs are listed on their dataset's page "
            "(experiments on local data, without a dataset, show as their traces only).",
        )
    return RedirectResponse(viewer.links.dataset(dataset_id), status_code=303)


# --- errors and the gate ----------------------------------------------------------------------


async def _api_error(request: Request, exc: Exception) -> Response:
    assert isinstance(exc, ApiError)
    return _viewer(request).render(
        "error.html", status_code=exc.status_code, title=exc.kind, message=exc.message
    )


async def _http_error(request: Request, exc: Exception) -> Response:
    assert isinstance(exc, HTTPException)
    viewer = _viewer(request)
    if exc.status_code == 404:
        detail = exc.detail if exc.detail != "Not Found" else f"No page at {request.url.path}."
        return viewer.render("error.html", status_code=404, title="Not found", message=detail)
    return viewer.render(
        "error.html", status_code=exc.status_code, title="Error", message=str(exc.detail)
    )


def _failure_page(request: Request, viewer: _Viewer, exc: Exception) -> Response:
    _log.error("viewer failed on %s %s", request.method, request.url.path, exc_info=exc)
    return viewer.render(
        "error.html",
        status_code=500,
        title="The viewer failed",
        message=f"{type(exc).__name__}: {exc}. The server's log (stderr) has the traceback.",
    )


async def _server_error(request: Request, exc: Exception) -> Response:
    return _failure_page(request, _viewer(request), exc)


class SessionGate:
    """ASGI middleware: pages need a session (or the keys as Basic auth); without one, a page
    request is sent to the login page (and back after it), a fragment request gets 401."""

    def __init__(self, app: ASGIApp, *, keys: Keys) -> None:
        self.app = app
        self.keys = keys

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http" or scope["path"] in OPEN_PATHS:
            await self.app(scope, receive, send)
            return
        request = Request(scope)
        if _signed_in(request, self.keys):
            await self.app(scope, receive, send)
            return
        if "/observations/" in scope["path"]:
            response: Response = HTMLResponse(
                '<p class="error">Your session has ended: <a href="/login">log in</a> again.</p>',
                status_code=401,
            )
        else:
            target = URL(scope=scope)
            here = target.path + (f"?{target.query}" if target.query else "")
            response = RedirectResponse(f"/login?{urlencode({'next': here})}", status_code=303)
        await response(scope, receive, send)


def create_viewer(
    db: Database, project_id: str, project_name: str, public_key: str, secret_key: str
) -> Starlette:
    """The viewer as its own Starlette app (HTML errors, its session gate) over `db`."""
    keys = Keys(public_key, secret_key)
    project = "/project/{project_id}"
    routes = [
        Route("/", home, methods=["GET"]),
        Route("/login", login, methods=["GET", "POST"]),
        Route("/logout", logout, methods=["POST"]),
        Route("/favicon.ico", favicon, methods=["GET"]),
        Route(project, _page(_project_home), methods=["GET"]),
        Route(f"{project}/traces", _page(_traces), methods=["GET"]),
        Route(f"{project}/traces/{{trace_id}}", _page(_trace), methods=["GET"]),
        Route(
            f"{project}/traces/{{trace_id}}/observations/{{observation_id}}",
            _page(_observation),
            methods=["GET"],
        ),
        Route(f"{project}/scores", _page(_scores), methods=["GET"]),
        Route(f"{project}/prompts", _page(_prompts), methods=["GET"]),
        Route(f"{project}/prompts/{{name:path}}", _page(_prompt), methods=["GET"]),
        Route(f"{project}/datasets", _page(_datasets), methods=["GET"]),
        Route(f"{project}/datasets/{{id}}", _page(_dataset), methods=["GET"]),
        Route(f"{project}/experiments/results", _page(_experiment_results), methods=["GET"]),
    ]
    app = Starlette(
        routes=routes,
        middleware=[Middleware(SessionGate, keys=keys)],
        exception_handlers={
            ApiError: _api_error,
            HTTPException: _http_error,
            Exception: _server_error,
        },
    )
    app.state.viewer = _Viewer(db, project_id, project_name, keys)
    return app
