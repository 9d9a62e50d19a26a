"""The analyst agent: checks the fraud database and the customer's policy (durable tools), then
decides under the policy clauses of its prompt."""

from __future__ import annotations

from agents import Agent, AgentOutputSchema
from restate.ext.openai import durable_function_tool

from . import reference_data
from .config import settings
from .models import ClaimAssessment, PromptRef
from .steps import step


@durable_function_tool
async def check_fraud(customer_id: str) -> str:
    """Look the customer up in the fraud database.

    Args:
        customer_id: The customer id from the claim, like 'C-1001'.
    """
    result = await step("check fraud", reference_data.check_fraud, customer_id)
    return result.model_dump_json()


@durable_function_tool
async def lookup_policy(customer_id: str, category: str) -> str:
    """Look up the customer's insurance policy: whether the category is covered, the per-claim
    limit and the review threshold, in EUR.

    Args:
        customer_id: The customer id from the claim, like 'C-1001'.
        category: The claim's category as parsed (medical, dental, pharmacy, vision, travel,
            other, or the expense's own kind such as wellness).
    """
    result = await step("lookup policy", reference_data.lookup_policy, customer_id, category)
    return result.model_dump_json()


CLAIM_ASSESSMENT_SCHEMA = AgentOutputSchema(ClaimAssessment)
"""Built once: the agents SDK would otherwise rebuild the JSON schema of `ClaimAssessment` on every
model call of every run (pydantic's schema generation, ~5% of the services' CPU)."""


def analyst_agent(prompt: PromptRef) -> Agent:
    return Agent(
        name="Analyst",
        instructions=prompt.text,
        model=settings().model,
        tools=[check_fraud, lookup_policy],
        output_type=CLAIM_ASSESSMENT_SCHEMA,
    )
