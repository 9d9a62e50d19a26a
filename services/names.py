"""The names other code addresses the services by: Restate service and handler names, the steps a
claim goes through, the statuses it ends in, the state keys it keeps, and the payment's
idempotency key. The workbench imports them from here, never copying the strings."""

from __future__ import annotations

from typing import Final

WORKFLOW: Final = "ClaimWorkflow"
"""The claim workflow (keyed by the claim id)."""
RUN: Final = "run"
STATUS: Final = "status"
APPROVE: Final = "approve"
REJECT: Final = "reject"

JUDGE: Final = "ClaimJudge"
"""The judge virtual object (keyed by the claim id)."""
EVALUATE: Final = "evaluate"

# The steps of a claim, as the workflow's `step` state and the journal name them.
FETCH_PROMPTS: Final = "fetch prompts"
PARSE: Final = "parse"
VERIFY_DOCUMENTS: Final = "verify documents"
CONVERT: Final = "convert to EUR"
ANALYZE: Final = "analyze"
CHECK_FRAUD: Final = "check fraud"
LOOKUP_POLICY: Final = "lookup policy"
AWAITING_REVIEW: Final = "awaiting review"
REVIEW_DECIDED: Final = "review decided"
REIMBURSE: Final = "reimburse"
EVALUATE_STEP: Final = "evaluate"
"""The one-way send of the evaluation to the judge (the workflow's last step)."""
DONE: Final = "done"
NOT_STARTED: Final = "not started"
CALL_LLM: Final = "call LLM"
"""The name `DurableRunner` gives each journaled model call."""

# The judge's steps (the ClaimJudge object, keyed by the claim id).
FETCH_JUDGE_PROMPT: Final = "fetch judge prompt"
GATHER_EVIDENCE: Final = "gather evidence"
JUDGE_CALL: Final = "judge"
"""The judge agent's model call (its fault step)."""
WRITE_SCORE: Final = "write score"

# State and promise keys of the workflow.
STEP_KEY: Final = "step"
OUTCOME_KEY: Final = "outcome"
REVIEW_PROMISE: Final = "review"

# How a claim ends (ClaimOutcome.status).
PAID: Final = "paid"
REJECTED: Final = "rejected"
INVALID: Final = "invalid"
FAILED: Final = "failed"
FINAL_STATUSES: Final = (PAID, REJECTED, INVALID, FAILED)


def payment_key(claim_id: str) -> str:
    """The ledger's idempotency key for a claim's payment: one payment per claim, whatever
    happens to the process that makes it."""
    return f"claim/{claim_id}/{REIMBURSE}"
