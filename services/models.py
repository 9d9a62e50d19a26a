"""The types that cross a boundary: the workflow's input and output, the agents' outputs, the
tools' answers. Each is a pydantic model, so Restate serializes it and the OpenAI Agents SDK turns
it into a strict JSON schema (`response_format.json_schema.schema.title` is the class name, which
is how the embedded model knows which task it is asked to do)."""

from __future__ import annotations

from typing import Literal

from pydantic import BaseModel, Field, field_validator

MAX_DOCUMENT_CHARS = 20_000
"""Longer documents are refused before anything is sent: a claim form is a page, not a book."""

CATEGORIES = ("medical", "dental", "pharmacy", "vision", "travel", "other")
"""The categories the plans in data/policies.json are written for. A claim may name another
(wellness, cosmetic, veterinary, hearing, ...): it is kept as written, in lower case, never
squashed to "other", and a plan that does not list it does not cover it."""
Category = str
Decision = Literal["approve", "reject", "review"]
Status = Literal["paid", "rejected", "invalid", "failed"]


class ClaimRequest(BaseModel):
    """What a user submits: the claim document as free-form text."""

    document: str = Field(description="The claim document: an e-mail, a form, a note.")
    prompt_label: str = Field(
        default="production", description="Which label of the agents' prompts to use."
    )
    prompt_versions: dict[str, int] = Field(
        default_factory=dict,
        description="Prompt versions to use, by prompt name (an experiment pins them); the "
        "prompts not named here come by prompt_label.",
    )
    review_policy: Literal["approve", "reject"] | None = Field(
        default=None,
        description="Settle a decision of 'review' at once this way (an experiment's policy) "
        "instead of waiting for a human.",
    )
    experiment: str | None = Field(
        default=None,
        description="The experiment this claim is an item of; it is told when the claim starts "
        "waiting for a human.",
    )

    @field_validator("prompt_versions")
    @classmethod
    def _versions_are_positive(cls, value: dict[str, int]) -> dict[str, int]:
        for name, version in value.items():
            if not name or version < 1:
                raise ValueError(
                    f"Prompt version {name!r}: {version} is not a version. Give each prompt "
                    "name a version number from 1, e.g. {'claim-analyst': 3}."
                )
        return value

    @field_validator("document")
    @classmethod
    def _document_fits(cls, value: str) -> str:
        if not value.strip():
            raise ValueError("The claim document is empty. Pass the text of the claim.")
        if len(value) > MAX_DOCUMENT_CHARS:
            raise ValueError(
                f"The claim document has {len(value):,} characters; the limit is "
                f"{MAX_DOCUMENT_CHARS:,}. Submit the claim form itself, not its attachments."
            )
        return value

    @field_validator("prompt_label")
    @classmethod
    def _label_is_a_word(cls, value: str) -> str:
        if not value or len(value) > 64 or any(c.isspace() for c in value):
            raise ValueError(
                f"Prompt label {value!r} is not a label. Use a single word such as 'production'."
            )
        return value


class ClaimData(BaseModel):
    """The parser agent's output: the fields of the claim, `null` where the document lacks one."""

    customer_id: str | None = Field(
        description="The customer id as written, upper case ('C-1001', 'CUST-4411'); the house "
        "form is C-NNNN ('customer number 1021' is 'C-1021')."
    )
    claim_date: str | None = Field(description="The date of the expense, ISO format YYYY-MM-DD.")
    amount: float | None = Field(description="The amount claimed, in the claim's currency.")
    currency: str | None = Field(description="ISO 4217 code of the amount, upper case: EUR, USD.")
    category: Category | None = Field(
        description="What the expense was for, lower case: medical, dental, pharmacy, vision, "
        "travel or other, or the expense's own kind when none of these fits (wellness, cosmetic, "
        "veterinary, ...)."
    )
    has_receipt: bool = Field(description="Whether the document says a receipt is attached.")
    description: str = Field(description="One sentence saying what was bought or done.")
    problems: list[str] = Field(description="What could not be read from the document.")

    @field_validator("category")
    @classmethod
    def _category_lower_case(cls, value: str | None) -> str | None:
        return " ".join(value.lower().split()) or None if value is not None else None


class AnalystInput(BaseModel):
    """The user message the analyst agent receives (as JSON)."""

    claim: ClaimData
    amount_eur: float
    submitted_on: str | None = None
    """The day the claim was submitted (ISO), for clauses on the claim's age."""


class ClaimAssessment(BaseModel):
    """The analyst agent's output: a decision under the policy clauses of its prompt."""

    decision: Decision = Field(description="approve, reject, or review (a human decides).")
    reason: str = Field(description="Why, naming the policy clause that decided.")
    clauses: list[str] = Field(description="The ids of the policy clauses that applied.")
    unrecognized_clauses: list[str] = Field(
        default_factory=list,
        description="The policy clauses of the prompt that could not be applied, as written "
        "with why ([] when every clause was understood). Never leave one out silently.",
    )


class FraudCheck(BaseModel):
    """The fraud database's answer for one customer."""

    customer_id: str
    flagged: bool
    reason: str | None


class PolicyInfo(BaseModel):
    """The policy database's answer for one customer and category (amounts in EUR)."""

    customer_id: str
    found: bool
    plan: str | None
    covered: bool
    per_claim_limit_eur: float | None
    review_threshold_eur: float | None


class Valuation(BaseModel):
    """The result of the `convert to EUR` step: the amount in EUR and what it is checked against.
    `today` is read inside the journaled step, so a retried or replayed claim sees the same day."""

    amount_eur: float
    rate: float
    """EUR per one unit of the claim's currency."""
    today: str
    """The day the step ran (ISO): the workflow's "today" for the date checks."""
    policy_start: str | None
    """The day the customer's policy began (ISO), None for a customer without a policy."""


class JudgeInput(BaseModel):
    """The user message the judge agent receives (as JSON): the decision and its evidence."""

    claim: ClaimData
    amount_eur: float | None
    assessment: ClaimAssessment | None
    fraud: FraudCheck | None
    policy: PolicyInfo | None
    final_status: Status
    document: str | None = None
    """The claim document as submitted (to check the amount and currency against)."""
    analyst_policy: str | None = None
    """The analyst's prompt, whose clauses the decision should follow."""
    submitted_on: str | None = None


class RubricScore(BaseModel):
    """One rubric item of the judge's prompt, scored."""

    id: str = Field(description="The item's id, as in the rubric ('receipt').")
    weight: float = Field(description="The item's weight in the rubric.")
    score: float | None = Field(description="From 0 to 1; null when the evidence cannot tell.")
    comment: str = Field(description="Why, in a few words.")


class JudgeVerdict(BaseModel):
    """The judge agent's output: how good the decision was, against the rubric of its prompt."""

    score: float = Field(description="The weighted mean of the items, from 0 to 1.")
    reason: str = Field(description="What the score rests on, item by item.")
    items: list[RubricScore] = Field(
        default_factory=list, description="Each rubric item with its score and comment."
    )


class PromptRef(BaseModel):
    """One prompt as fetched: its text and the version that produced it."""

    name: str
    version: int
    label: str
    text: str


class PromptSet(BaseModel):
    """The agents' prompts for one claim, fetched in one durable step."""

    parser: PromptRef
    analyst: PromptRef
    judge: PromptRef

    def versions(self) -> dict[str, int]:
        return {p.name: p.version for p in (self.parser, self.analyst, self.judge)}


class Review(BaseModel):
    """A human's decision on a claim that waits for review."""

    approved: bool
    reviewer: str = "reviewer"
    note: str = ""


class Payment(BaseModel):
    """A ledger entry. `duplicate` is true when the ledger refused a second payment with the same
    idempotency key and answered with the first one instead."""

    payment_id: str
    idempotency_key: str
    claim_id: str
    customer_id: str
    amount_eur: float
    paid_at: str
    duplicate: bool = False


class ClaimOutcome(BaseModel):
    """How a claim ended. `status` is paid, rejected, invalid (the document could not be processed)
    or failed (a step failed for good, e.g. the model kept answering nonsense)."""

    claim_id: str
    status: Status
    reason: str
    claim: ClaimData | None = None
    amount_eur: float | None = None
    decision: Decision | None = None
    reviewed_by: str | None = None
    paid_eur: float | None = None
    payment_id: str | None = None
    prompt_versions: dict[str, int] = Field(default_factory=dict)
    prompt_label: str = "production"
    service_version: str = "v1"
    trace_id: str | None = None
    """The claim's trace (W3C trace id, 32 hex) in Langfuse, when tracing is on."""
    unrecognized_clauses: list[str] = Field(default_factory=list)
    """Clauses of the analyst's prompt that the model could not apply (never silently dropped)."""
    submitted_on: str | None = None
    """The day the workflow took as "today" for the date checks (ISO)."""

    def __repr__(self) -> str:
        parts = [f"ClaimOutcome({self.claim_id}: {self.status.upper()}"]
        c = self.claim
        if c is not None and c.amount is not None:
            money = f"{c.amount:,.2f} {c.currency or '?'}"
            if self.amount_eur is not None and c.currency != "EUR":
                money += f" = {self.amount_eur:,.2f} EUR"
            parts.append(f"{c.customer_id or '?'} {c.category or '?'} {money}")
        if self.paid_eur is not None:
            parts.append(f"paid {self.paid_eur:,.2f} EUR ({self.payment_id})")
        if self.reviewed_by:
            parts.append(f"reviewed by {self.reviewed_by}")
        parts.append(self.reason)
        if self.unrecognized_clauses:
            parts.append(f"clauses not applied: {len(self.unrecognized_clauses)}")
        if self.prompt_versions:
            versions = ", ".join(f"{k} v{v}" for k, v in sorted(self.prompt_versions.items()))
            parts.append(f"prompts: {versions}")
        return " | ".join(parts) + ")"

    __str__ = __repr__


class ClaimStatus(BaseModel):
    """What a running claim is doing now (readable while it runs)."""

    claim_id: str
    step: str
    outcome: ClaimOutcome | None = None


class EvaluationRequest(BaseModel):
    """Sent one-way to the judge when a claim ends."""

    claim_id: str
    outcome: ClaimOutcome
    assessment: ClaimAssessment | None = None
    prompt_label: str = "production"
    judge_prompt: PromptRef | None = None
    trace_id: str | None = None
    document: str | None = None
    analyst_prompt: PromptRef | None = None
    submitted_on: str | None = None
