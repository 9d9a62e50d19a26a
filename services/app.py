"""The deployable unit: the Restate ASGI app serving the claim workflow, the judge, and the
experiments (variants of the prompts compared on the same documents, and their re-judging)."""

from __future__ import annotations

import restate

from . import logs
from .experiment import experiment_workflow, rejudge_workflow
from .journal import serve_journal_revisions
from .llm import configure_model_client
from .tracing import configure_tracing, export_when_idle
from .workflow import claim_judge, claim_workflow

logs.install()  # a failed attempt that Restate retries is one line, not a traceback each
configure_model_client()
configure_tracing()

app = export_when_idle(
    serve_journal_revisions(
        restate.app(services=[claim_workflow, claim_judge, experiment_workflow, rejudge_workflow])
    )
)
"""Every journal revision this code replays, each under its path (`versions.journal_path`)."""
