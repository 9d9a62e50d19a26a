"""The judge agent: scores a finished claim's decision against the rubric of its prompt."""

from __future__ import annotations

from agents import Agent, AgentOutputSchema

from .config import settings
from .models import JudgeVerdict, PromptRef

JUDGE_VERDICT_SCHEMA = AgentOutputSchema(JudgeVerdict)
"""Built once: the agents SDK would otherwise rebuild the JSON schema of `JudgeVerdict` on every
model call of every run (pydantic's schema generation, ~5% of the services' CPU)."""


def judge_agent(prompt: PromptRef) -> Agent:
    return Agent(
        name="Judge",
        instructions=prompt.text,
        model=settings().model,
        output_type=JUDGE_VERDICT_SCHEMA,
    )
