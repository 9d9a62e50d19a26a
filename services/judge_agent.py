"""The judge agent: scores a finished claim's decision against the rubric of its prompt."""

from __future__ import annotations

from agents import Agent

from .config import settings
from .models import JudgeVerdict, PromptRef


def judge_agent(prompt: PromptRef) -> Agent:
    return Agent(
        name="Judge",
        instructions=prompt.text,
        model=settings().model,
        output_type=JudgeVerdict,
    )
