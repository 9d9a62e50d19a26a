"""The deployable unit: the Restate ASGI app serving the claim workflow and the judge."""

from __future__ import annotations

import restate

from .llm import configure_model_client
from .tracing import configure_tracing
from .workflow import claim_judge, claim_workflow

configure_model_client()
configure_tracing()

app = restate.app(services=[claim_workflow, claim_judge])
