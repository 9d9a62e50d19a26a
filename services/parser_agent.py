"""The parser agent: reads a free-form claim document into typed `ClaimData`."""

from __future__ import annotations

from agents import Agent, AgentOutputSchema

from .config import settings
from .models import ClaimData, PromptRef

CLAIM_DATA_SCHEMA = AgentOutputSchema(ClaimData)
"""Built once: the agents SDK would otherwise rebuild the JSON schema of `ClaimData` on every
model call of every run (pydantic's schema generation, ~5% of the services' CPU)."""


def parser_agent(prompt: PromptRef) -> Agent:
    return Agent(
        name="Parser",
        instructions=prompt.text,
        model=settings().model,
        output_type=CLAIM_DATA_SCHEMA,
    )
