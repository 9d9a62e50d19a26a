"""The Session: what a notebook talks to. It owns the stack (when the workbench runs one) and one
client per protocol, and carries the namespaced helpers bound to them.

    session = workbench.start()       # start the stack, or attach to the one running
    session.claims.submit(doc)        # the same as wb.claims.submit(doc) once it is current
    session.restate, session.langfuse, session.fault_store, session.ledger_store   # clients

`workbench.start()` makes the session it returns the *current* one, which the module-level
helpers (`wb.claims`, `wb.traces`, ...) use. Code that wants its own (a benchmark, a test, two
stacks side by side) builds a Session and calls its namespaces directly; nothing global changes.
The current session is kept here and nowhere else.
"""

from __future__ import annotations

import html
import os
import sys
import threading
from collections.abc import Callable
from dataclasses import dataclass, field
from functools import cached_property
from pathlib import Path
from typing import TYPE_CHECKING, Any

from services.names import PROMPT_CHANGES_FILE

from .clients import FaultStoreClient, LangfuseClient, LedgerClient, RestateClient
from .errors import NoSessionError

if TYPE_CHECKING:
    import pandas as pd

    from .claims import AsyncClaims, Claims
    from .cluster import Cluster
    from .deployments import Deployments
    from .experiments import Experiments
    from .faults import Faults
    from .prompts import Prompts
    from .scores import Scores
    from .serving import Serving
    from .stack import Stack
    from .traces import Traces

__all__ = ["Aio", "Endpoints", "Namespace", "Session", "current", "home_folder"]


def home_folder(home: str | os.PathLike[str] | None = None) -> Path:
    """The workbench home: the argument, else WORKBENCH_HOME, else `<project>/.workbench`."""
    from .stack import resolve_home

    return resolve_home(home)


@dataclass(frozen=True)
class Endpoints:
    """Where the parts of a stack answer."""

    ingress_url: str
    admin_url: str
    langfuse_url: str | None = None
    langfuse_public_key: str | None = None
    langfuse_secret_key: str | None = field(default=None, repr=False)
    llm_url: str | None = None
    llm_api_key: str | None = field(default=None, repr=False)
    """The key sent to the model endpoint (the services' OPENAI_API_KEY)."""
    ingress_urls: tuple[str, ...] = ()
    """Every Restate node's ingress (a cluster's); empty: `ingress_url` alone."""
    admin_urls: tuple[str, ...] = ()
    """Every Restate node's admin API (a cluster's); empty: `admin_url` alone."""
    restate_token: str | None = field(default=None, repr=False)
    """Sent to Restate as `Authorization: Bearer` (Restate Cloud's API key)."""

    @property
    def has_langfuse(self) -> bool:
        return bool(self.langfuse_url and self.langfuse_public_key and self.langfuse_secret_key)

    @classmethod
    def of_stack(cls, stack: Stack) -> Endpoints:
        keys = stack.langfuse_keys or (None, None)
        return cls(
            stack.ingress_url.rstrip("/"),
            stack.admin_url.rstrip("/"),
            stack.langfuse_url.rstrip("/") if stack.langfuse_url else None,
            keys[0],
            keys[1],
            stack.llm_url,
            _model_key(stack),
            tuple(stack.ingress_urls),
            tuple(stack.admin_urls),
            stack.restate_token,
        )

    @classmethod
    def from_environment(cls, environ: dict[str, str] | None = None) -> Endpoints | None:
        """An existing Restate server or cluster named by RESTATE_INGRESS_URL + RESTATE_ADMIN_URL
        (each one URL, or a cluster's several, comma-separated; RESTATE_AUTH_TOKEN for Restate
        Cloud), and a Langfuse by LANGFUSE_BASE_URL + keys; None without Restate URLs."""
        from .clients.restate import url_list

        env = os.environ if environ is None else environ
        ingress, admin = env.get("RESTATE_INGRESS_URL"), env.get("RESTATE_ADMIN_URL")
        if not (ingress and admin):
            return None
        ingress_urls, admin_urls = url_list(ingress), url_list(admin)
        langfuse = env.get("LANGFUSE_BASE_URL") or env.get("LANGFUSE_HOST")
        return cls(
            ingress_urls[0],
            admin_urls[0],
            langfuse.rstrip("/") if langfuse else None,
            env.get("LANGFUSE_PUBLIC_KEY"),
            env.get("LANGFUSE_SECRET_KEY"),
            env.get("OPENAI_BASE_URL"),
            env.get("OPENAI_API_KEY"),
            tuple(ingress_urls),
            tuple(admin_urls),
            env.get("RESTATE_AUTH_TOKEN") or None,
        )


def _model_key(stack: Stack) -> str:
    """The model key the stack's services use: the one the stack gave them (the embedded model's),
    else the real one they inherit (OPENAI_API_KEY here, or in the project's .env)."""
    from .stack.config import LOCAL_OPENAI_API_KEY, dotenv_values

    services = stack.processes.get("services")
    given = services.env.get("OPENAI_API_KEY") if services is not None else None
    return (
        given
        or os.environ.get("OPENAI_API_KEY")
        or dotenv_values(stack.project).get("OPENAI_API_KEY")
        or LOCAL_OPENAI_API_KEY
    )


class Session:
    """A stack's endpoints, its clients, and the helpers bound to them.

    Attributes: `stack` (the `workbench.stack.Stack`, None when attached to endpoints only),
    `home` (where plans, the ledger and logs live), `endpoints`, the clients `restate`,
    `langfuse`, `fault_store`, `ledger_store`, and the namespaces `claims`, `traces`, `scores`,
    `prompts`, `faults`, `deployments`, `experiments`, `serving` (your own services,
    `wb.serve`), `cluster` (a Restate cluster's nodes and partitions) and `aio` (async twins).

    Example:
        >>> session = workbench.start()
        >>> session.claims.submit(workbench.samples.pick(1)[0]).status
        'paid'
    """

    def __init__(self, endpoints: Endpoints, *, home: Path, stack: Stack | None = None) -> None:
        self.endpoints = endpoints
        self.home = Path(home)
        self.stack = stack
        self.restate = RestateClient(
            endpoints.ingress_urls or endpoints.ingress_url,
            endpoints.admin_urls or endpoints.admin_url,
            token=endpoints.restate_token,
        )
        self.fault_store = FaultStoreClient(self.home)
        self.ledger_store = LedgerClient(self.home)

    @classmethod
    def of_stack(cls, stack: Stack) -> Session:
        """A session on a running stack."""
        return cls(Endpoints.of_stack(stack), home=stack.home, stack=stack)

    # -- clients -------------------------------------------------------------------------------
    @property
    def has_langfuse(self) -> bool:
        return self.endpoints.has_langfuse

    @cached_property
    def langfuse(self) -> LangfuseClient:
        """The Langfuse client (embedded or real); NoSessionError when the stack has none."""
        e = self.endpoints
        if not e.has_langfuse:
            raise NoSessionError(
                "This stack has no Langfuse: start it with workbench.start() (the embedded one "
                "starts by default, unless tracing=False) or set LANGFUSE_BASE_URL, "
                "LANGFUSE_PUBLIC_KEY and LANGFUSE_SECRET_KEY."
            )
        assert e.langfuse_url and e.langfuse_public_key and e.langfuse_secret_key
        return LangfuseClient(
            e.langfuse_url,
            e.langfuse_public_key,
            e.langfuse_secret_key,
            changes_file=self.home / PROMPT_CHANGES_FILE,
        )

    # -- namespaces ----------------------------------------------------------------------------
    @cached_property
    def claims(self) -> Claims:
        from .claims import Claims

        return Claims(self)

    @cached_property
    def traces(self) -> Traces:
        from .traces import Traces

        return Traces(self)

    @cached_property
    def scores(self) -> Scores:
        from .scores import Scores

        return Scores(self)

    @cached_property
    def prompts(self) -> Prompts:
        from .prompts import Prompts

        return Prompts(self)

    @cached_property
    def faults(self) -> Faults:
        from .faults import Faults

        return Faults(self)

    @cached_property
    def deployments(self) -> Deployments:
        from .deployments import Deployments

        return Deployments(self)

    @cached_property
    def experiments(self) -> Experiments:
        from .experiments import Experiments

        return Experiments(self)

    @cached_property
    def serving(self) -> Serving:
        from .serving import Serving

        return Serving(self)

    @cached_property
    def cluster(self) -> Cluster:
        from .cluster import Cluster

        return Cluster(self)

    @cached_property
    def aio(self) -> Aio:
        return Aio(self)

    def ledger(self, claims: Any = None) -> pd.DataFrame:
        """Every payment made, one row per idempotency key (so one per paid claim); or those of
        `claims` (a Claim, a ClaimBatch, an id or a list of them).

        Example:
            >>> session.ledger(batch)["amount_eur"].sum()
        """
        from .claims import claim_ids
        from .frames import as_table

        return as_table(self.ledger_store.payments(None if claims is None else claim_ids(claims)))

    # -- the stack -----------------------------------------------------------------------------
    def _require_stack(self) -> Stack:
        if self.stack is None:
            raise NoSessionError(
                "This session is attached to endpoints only (RESTATE_INGRESS_URL/ADMIN_URL): "
                "the workbench runs no processes to show, kill or restart here."
            )
        return self.stack

    def status(self) -> pd.DataFrame:
        """One row per process: name, state, pid, port, url, uptime, restarts, log; on a
        cluster also each node's node_id, health, the partitions it leads and the replication.

        Example:
            >>> session.status()[["name", "state", "health", "leads"]]
        """
        import pandas as pd

        from .frames import as_table

        if self.stack is not None:
            return as_table(self.stack.status())
        return as_table(
            pd.DataFrame(
                [
                    {"name": "restate", "state": "EXTERNAL", "url": url}
                    for url in self.endpoints.ingress_urls or [self.endpoints.ingress_url]
                ]
                + [
                    {"name": "langfuse", "state": "EXTERNAL", "url": self.endpoints.langfuse_url},
                ]
            )
        )

    @property
    def urls(self) -> dict[str, str | None]:
        """Where each part answers (the Restate UI is the admin URL)."""
        if self.stack is not None:
            return self.stack.urls
        e = self.endpoints
        return {"ingress": e.ingress_url, "admin": e.admin_url, "langfuse": e.langfuse_url}

    def close(self) -> None:
        """Close this session's clients (the stack keeps running)."""
        if "langfuse" in self.__dict__:
            self.langfuse.close()
            del self.__dict__["langfuse"]
        self.fault_store.close()
        _forget(self)

    def stop(self) -> None:
        """Stop the stack this session runs (every process ends) and close the clients."""
        stack = self.stack
        self.close()
        if stack is not None:
            stack.stop()

    def activate(self) -> Session:
        """Make this the current session (the one `wb.claims`, `wb.traces`, ... use)."""
        global _current
        with _lock:
            previous, _current = _current, self
        if previous is not None and previous is not self:
            previous.close()
        return self

    def __repr__(self) -> str:
        if self.stack is not None:
            return f"Session(home={self.home})\n{self.stack!r}"
        return f"Session(home={self.home}, endpoints={self.endpoints})"

    def _repr_html_(self) -> str:
        if self.stack is not None:
            return self.stack._repr_html_()
        return f"<p><b>Session</b> {html.escape(repr(self.endpoints))}</p>"


class Aio:
    """The async twins of the helpers, for code that runs its own event loop (`await` in a
    cell, an async script): `await wb.aio.claims.submit(doc)`."""

    def __init__(self, session: Session | None = None) -> None:
        self._session = session

    @property
    def claims(self) -> AsyncClaims:
        from .claims import AsyncClaims

        return AsyncClaims(self._session)


# -- the current session --------------------------------------------------------------------------
_lock = threading.Lock()
_current: Session | None = None


def current() -> Session:
    """The current session: the one `workbench.start()` returned; else a stack already running in
    the home (attached to, nothing started), else the endpoints named by RESTATE_INGRESS_URL and
    RESTATE_ADMIN_URL. Raises NoSessionError when there is none."""
    global _current
    with _lock:
        if _current is not None:
            return _current
    from .stack import attach

    stack = attach()
    if stack is not None:
        return Session.of_stack(stack).activate()
    endpoints = Endpoints.from_environment()
    if endpoints is not None:
        return Session(endpoints, home=home_folder()).activate()
    raise NoSessionError(
        "No workbench stack is known to this kernel: call workbench.start() first (it attaches "
        "to a running stack), or set RESTATE_INGRESS_URL and RESTATE_ADMIN_URL."
    )


def current_or_none() -> Session | None:
    """The current session if there is one (nothing is attached or started)."""
    with _lock:
        return _current


def _forget(session: Session) -> None:
    global _current
    with _lock:
        if _current is session:
            _current = None


class Namespace:
    """The base of the helper namespaces (`wb.claims`, `wb.traces`, ...): bound to one session,
    or (None) to whichever is current at each call. Its repr names its helpers, in the order the
    class defines them."""

    label = ""
    """How a notebook reaches it (`wb.claims`); by default `wb.<module>`."""

    def __init__(self, session: Session | None = None) -> None:
        self._bound = session

    @property
    def session(self) -> Session:
        return resolve(self._bound)

    def __repr__(self) -> str:
        cls = type(self)
        label = cls.label or f"wb.{cls.__module__.rsplit('.', 1)[-1]}"
        helpers: list[str] = []
        for klass in reversed(cls.__mro__[: cls.__mro__.index(Namespace)]):
            helpers += [n for n in vars(klass) if not n.startswith("_") and n not in helpers]
        helpers = [n for n in helpers if n not in ("label", "session")]
        return f"<{label}: {', '.join(helpers)}>"


def resolve(session: Session | None) -> Session:
    """`session`, or the current one."""
    return session if session is not None else current()


def module_namespace(
    module: str, namespace: type
) -> tuple[Callable[[str], Any], Callable[[], list[str]]]:
    """`__getattr__` and `__dir__` for a helper module, so that `wb.claims.submit(...)` is the
    `submit` of a `Claims` bound to the current session: the module IS the namespace a notebook
    sees (tab completion and help() included), and `Session.claims` the same for one session."""
    default = namespace()

    def getattr_(name: str) -> Any:
        if not name.startswith("_") and hasattr(namespace, name):
            return getattr(default, name)
        raise AttributeError(f"module {module!r} has no attribute {name!r}")

    def dir_() -> list[str]:
        public = set(getattr(sys.modules[module], "__all__", ()))
        return sorted(public | {n for n in dir(namespace) if not n.startswith("_")})

    return getattr_, dir_
