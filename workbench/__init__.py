"""The resilient agents workbench: what a notebook imports.

    import workbench as wb
    session = wb.start()                       # start the stack, or attach to the running one
    c = wb.submit_claim(wb.samples.get("claim-001"))
    c.outcome, c.journal
    wb.traces.waterfall(c); wb.scores.wait(c)
    wb.faults.panel()

The helpers are grouped by what they work on: `wb.claims`, `wb.samples`, `wb.traces`,
`wb.scores`, `wb.prompts`, `wb.faults`, `wb.deployments`, `wb.experiments`, `wb.serve` (your own
services, served from the kernel), and `wb.aio` (async twins). Each uses
the current session (the one `start()` returned); `Session` objects have the same namespaces for
code that wants its own. Everything runs offline by default (embedded model, embedded Langfuse,
the real Restate server); arguments of `start()` or environment variables point the same code at
OpenAI or any OpenAI-compatible endpoint, a real Langfuse, or an existing Restate server.
"""

from __future__ import annotations

import importlib
import importlib.util
import os
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:  # imported on first use (below): `python -m workbench status` stays fast
    from . import (
        claims,
        deployments,
        experiments,
        faults,
        prompts,
        samples,
        scores,
        traces,
    )
    from .claims import Claim, ClaimBatch
    from .display import WorkbenchWarning
    from .errors import (
        ClaimError,
        ClaimNotFoundError,
        ClaimStateError,
        ClaimTimeoutError,
        DeploymentInUseError,
        DeploymentNotFoundError,
        ExperimentError,
        ExperimentExistsError,
        ExperimentNotFoundError,
        ExperimentTimeoutError,
        LangfuseError,
        NoSessionError,
        PromptError,
        PromptNotFoundError,
        RestateError,
        ScoresTimeoutError,
        ServeError,
        SweepError,
        TraceNotFoundError,
        TraceTimeoutError,
        UnknownPromptLabelError,
        WorkbenchError,
    )
    from .experiments import Comparison, Experiment
    from .faults import Fault
    from .samples import Sample
    from .serving import Served
    from .session import Aio, Session, current
    from .stack import StackError

    aio: Aio

NAMESPACE_MODULES = (
    "claims",
    "cluster",
    "deployments",
    "experiments",
    "faults",
    "prompts",
    "samples",
    "scores",
    "serving",
    "traces",
)
ERROR_NAMES = (
    "ClaimError",
    "ClaimNotFoundError",
    "ClaimStateError",
    "ClaimTimeoutError",
    "DeploymentInUseError",
    "DeploymentNotFoundError",
    "ExperimentError",
    "ExperimentExistsError",
    "ExperimentNotFoundError",
    "ExperimentTimeoutError",
    "LangfuseError",
    "NoSessionError",
    "PromptError",
    "PromptNotFoundError",
    "RestateError",
    "ScoresTimeoutError",
    "ServeError",
    "SweepError",
    "TraceNotFoundError",
    "TraceTimeoutError",
    "UnknownPromptLabelError",
    "WorkbenchError",
)

__all__ = [
    "Claim",
    "ClaimBatch",
    "ClaimError",
    "ClaimNotFoundError",
    "ClaimStateError",
    "ClaimTimeoutError",
    "Comparison",
    "DeploymentInUseError",
    "DeploymentNotFoundError",
    "Experiment",
    "ExperimentError",
    "ExperimentExistsError",
    "ExperimentNotFoundError",
    "ExperimentTimeoutError",
    "Fault",
    "LangfuseError",
    "NoSessionError",
    "PromptError",
    "PromptNotFoundError",
    "RestateError",
    "Sample",
    "ScoresTimeoutError",
    "ServeError",
    "Served",
    "Session",
    "StackError",
    "SweepError",
    "TraceNotFoundError",
    "TraceTimeoutError",
    "UnknownPromptLabelError",
    "WorkbenchError",
    "WorkbenchWarning",
    "aio",
    "claim",
    "claims",
    "cluster",
    "current",
    "deployments",
    "experiments",
    "faults",
    "ledger",
    "prompts",
    "samples",
    "scores",
    "serve",
    "start",
    "stop",
    "submit_claim",
    "timeline",
    "traces",
]

_LAZY: dict[str, str] = {
    **{name: f".{name}" for name in NAMESPACE_MODULES},
    **{name: ".claims" for name in ("Claim", "ClaimBatch")},
    "WorkbenchWarning": ".display",
    **{name: ".errors" for name in ERROR_NAMES},
    **{name: ".experiments" for name in ("Comparison", "Experiment")},
    "Fault": ".faults",
    "Sample": ".samples",
    "Served": ".serving",
    **{name: ".session" for name in ("Aio", "Session", "current")},
    "StackError": ".stack",
}
"""Where each public name lives. The package imports a module on first use of one of its names
(PEP 562), so the command line and `import workbench` do not pay for pandas, the OpenAI and
Agents SDKs and Langfuse until a helper needs them."""


def __getattr__(name: str) -> Any:
    if name == "aio":
        from .session import Aio

        value: Any = Aio()  # the async twins: `await wb.aio.claims.submit(doc)`
    elif name in _LAZY:
        module = importlib.import_module(_LAZY[name], __name__)
        value = module if name in NAMESPACE_MODULES else getattr(module, name)
    elif not name.startswith("__") and importlib.util.find_spec(f"{__name__}.{name}"):
        value = importlib.import_module(f".{name}", __name__)  # wb.session, wb.frames, ...
    else:
        raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
    globals()[name] = value  # looked up once
    return value


def __dir__() -> list[str]:
    return sorted({*globals(), *__all__})


def start(
    home: str | os.PathLike[str] | None = None,
    *,
    persistent: bool = True,
    timeout_s: float = 60.0,
    nodes: int | None = None,
    tracing: bool = True,
    model_url: str | None = None,
    langfuse_url: str | None = None,
    restate_ingress_url: str | list[str] | None = None,
    restate_admin_url: str | list[str] | None = None,
    llm_latency_ms: float | None = None,
    langfuse_port: int | None = None,
    llm_port: int | None = None,
    ingress_port: int | None = None,
    admin_port: int | None = None,
    node_port: int | None = None,
    services_port: int | None = None,
    supervisor_port: int | None = None,
    **advanced: Any,
) -> Session:
    """Start the stack (or attach to the one running in `home`) and make its Session the current
    one, which `wb.claims`, `wb.traces`, ... use. Waits until every process answers.

    Args:
        home: the workbench home (default WORKBENCH_HOME, else `<project>/.workbench`): logs,
            Restate's data, the ledger, the embedded Langfuse's database.
        persistent: False stops the stack when this interpreter exits (tests); by default it
            outlives the kernel, and `python -m workbench down` stops it.
        timeout_s: how long to wait for every process to answer.
        nodes: Restate nodes to run: 1 (one restate-server, the default, also
            WORKBENCH_RESTATE_NODES) or 3 and more: a local cluster under the same supervisord,
            processes `restate-1`, `restate-2`, ... (replicated metadata and logs, 2 copies), the
            services registered once; the clients fail over between the nodes, `status()` shows
            each node's health and the partitions it leads, `session.stack.kill("restate-2")`
            kills one node. A cluster keeps its data in `<home>/cluster/`, apart from the single
            server's. Attaching to a running stack keeps its number of nodes (a warning says so
            when `nodes` was given and differs).
        tracing: False runs without Langfuse (no embedded server, no span export).
        model_url: an OpenAI-compatible endpoint to use instead of the embedded model
            (OPENAI_BASE_URL; its key comes from OPENAI_API_KEY).
        langfuse_url: a real Langfuse (Cloud or self-hosted) instead of the embedded one
            (LANGFUSE_BASE_URL; keys from LANGFUSE_PUBLIC_KEY / LANGFUSE_SECRET_KEY).
        restate_ingress_url, restate_admin_url: an existing Restate server instead of the
            embedded one (RESTATE_INGRESS_URL, RESTATE_ADMIN_URL; both or neither); a cluster's
            nodes as a list of URLs, or comma-separated (the clients fail over between them). For
            Restate Cloud also `restate_token=` (RESTATE_AUTH_TOKEN).
        llm_latency_ms: simulated latency of the embedded model per completion.
        langfuse_port, llm_port, ingress_port, admin_port, node_port, services_port,
            supervisor_port: fixed ports (also WORKBENCH_<NAME>_PORT); a port given here must be
            free. Unset, the defaults are used, or free ones when they are taken.
        **advanced: restate_token, restate_bin, restate_args, llm_command, services_command,
            services_workers (worker processes of the services, WORKBENCH_SERVICES_WORKERS),
            langfuse_command, env (extra environment per process), service_version, register,
            poll_interval_s, registration_timeout_s, project: see `workbench.stack.start`.

    Returns:
        The Session: `session.status()`, `session.stack` (kill, restart, logs), its clients
        and namespaces.

    Example:
        >>> session = wb.start()
        >>> session.status()[["name", "state", "port"]]
    """
    from . import stack as stack_module
    from .session import Session

    options: dict[str, Any] = {
        "nodes": nodes,
        "persistent": persistent,
        "tracing": tracing,
        "openai_base_url": model_url,
        "langfuse_base_url": langfuse_url,
        "restate_ingress_url": restate_ingress_url,
        "restate_admin_url": restate_admin_url,
        "llm_latency_ms": llm_latency_ms,
        "langfuse_port": langfuse_port,
        "llm_port": llm_port,
        "ingress_port": ingress_port,
        "admin_port": admin_port,
        "node_port": node_port,
        "services_port": services_port,
        "supervisor_port": supervisor_port,
        **advanced,
    }
    options = {k: v for k, v in options.items() if v is not None}
    stack = stack_module.start(home, timeout_s=timeout_s, **options)
    return Session.of_stack(stack).activate()


def stop() -> None:
    """Stop the current session's stack (every process it runs ends) and forget the session.

    Example:
        >>> wb.stop()
    """
    from .session import current_or_none

    session = current_or_none()
    if session is not None:
        session.stop()


def submit_claim(claim: Any, id: str | None = None, **options: Any) -> Claim:
    """Submit one claim and wait for it: the shortcut for `wb.claims.submit` (see there for
    the options: wait, prompt_label, faults).

    Example:
        >>> c = wb.submit_claim(wb.samples.pick(status="paid")[0])
        >>> c.outcome
    """
    from . import claims

    return claims.submit(claim, id, **options)


def claim(claim: Claim | str) -> Claim:
    """A claim's status, outcome and journal now: the shortcut for `wb.claims.get`.

    Example:
        >>> wb.claim("claim-001").status
    """
    from . import claims
    from .claims import Claim

    found = claims.get(claim)
    assert isinstance(found, Claim)
    return found


def timeline(claim: Claim | str, *, live: bool = True) -> Any:
    """One claim on one time axis, as a widget that refreshes while it runs: the shortcut for
    `wb.claims.timeline` (journal, attempts, faults, review wait, trace, score).

    Example:
        >>> wb.timeline(c)
    """
    from . import claims

    return claims.timeline(claim, live=live)


def serve(*services: Any, **options: Any) -> Served:
    """Serve Restate services defined in this kernel (your own agent as a `restate.Service`,
    `VirtualObject` or `Workflow`) from a background thread, registered with the current
    session's Restate, at an address kept per service name: the shortcut for
    `wb.serving.serve` (options: port, agents, timeout_s).

    Example:
        >>> served = wb.serve(triage)
        >>> done = served.call("run", "Customer C-1007 paid GBP 80 for a GP visit.")
        >>> done.output, done.journal
    """
    from . import serving

    return serving.serve(*services, **options)


def ledger(claims: Any = None) -> Any:
    """Every payment made (one row per paid claim), or those of `claims`: the current session's
    ledger.

    Example:
        >>> wb.ledger(batch)["amount_eur"].sum()
    """
    from .session import current

    return current().ledger(claims)
