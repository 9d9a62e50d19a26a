"""The parser agent: reads a free-form claim document into typed `ClaimData`."""

from __future__ import annotations

from agents import Agent

from .config import settings
from .models import ClaimData, PromptRef


def parser_agent(prompt: PromptRef) -> Agent:
    return Agent(
        name="Parser",
        instructions=prompt.text,
        model=settings().model,
        output_type=ClaimData,
    )
