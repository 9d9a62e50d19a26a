"""The resilient agents workbench: what a notebook imports.

    import workbench as wb
    stack = wb.start()                 # or attach to the running stack
    c = wb.submit_claim(wb.sample("claim-001"))
    c.outcome, c.journal

Everything runs offline by default (embedded model, real Restate server); environment variables
point the same code at OpenAI or any OpenAI-compatible endpoint, or at an existing Restate server.
"""

from __future__ import annotations

from typing import Any

from . import faults, prompts, session, widgets
from .claims import (
    Claim,
    ClaimBatch,
    ClaimError,
    aapprove,
    aclaim,
    approve,
    areject,
    asubmit_claim,
    asubmit_claims,
    claim,
    reject,
    submit_claim,
    submit_claims,
)
from .deployments import (
    DeploymentInUseError,
    deploy,
    deployments,
    in_flight,
    pinning,
    replace_code,
    restore_code,
    retire,
    wait_for_claim,
    wait_for_failure,
)
from .evidence import payment_attempts, resumption_report
from .faults import Fault
from .ledger_view import ledger
from .observability import scores, trace_id_for, traces, wait_for_scores, wait_for_trace
from .panel import panel
from .samples import Sample, sample, samples, samples_table
from .score_charts import score_chart, scores_over_time
from .waterfall import waterfall

__all__ = [
    "Claim",
    "ClaimBatch",
    "ClaimError",
    "DeploymentInUseError",
    "Fault",
    "Sample",
    "aapprove",
    "aclaim",
    "approve",
    "areject",
    "asubmit_claim",
    "asubmit_claims",
    "claim",
    "current",
    "deploy",
    "deployments",
    "faults",
    "in_flight",
    "ledger",
    "panel",
    "payment_attempts",
    "pinning",
    "prompts",
    "reject",
    "replace_code",
    "restore_code",
    "resumption_report",
    "retire",
    "sample",
    "samples",
    "samples_table",
    "score_chart",
    "scores",
    "scores_over_time",
    "start",
    "stop",
    "submit_claim",
    "submit_claims",
    "trace_id_for",
    "traces",
    "wait_for_claim",
    "wait_for_failure",
    "wait_for_scores",
    "wait_for_trace",
    "waterfall",
    "widgets",
]

_stack: Any = None


def start(**kwargs: Any) -> Any:
    """Start the stack (or attach to the one running) and make it this kernel's stack."""
    global _stack
    from . import stack as _stack_module

    _stack = _stack_module.start(**kwargs)
    keys = _stack.langfuse_keys or (None, None)
    session.use(_stack.ingress_url, _stack.admin_url, _stack.langfuse_url, *keys)
    return _stack


def current() -> Any:
    """The stack this kernel uses (started or attached by `start()`)."""
    if _stack is None:
        raise RuntimeError("No stack yet: call workbench.start() first.")
    return _stack


def stop() -> None:
    """Stop the stack this kernel started or attached to: every process it runs ends."""
    global _stack
    if _stack is not None:
        _stack.stop()
        _stack = None
    from . import _langfuse_client

    _langfuse_client.close()  # the SDK keeps one client per key: drop the one for this stack
