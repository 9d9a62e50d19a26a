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


# -- experiments (services/experiment.py) ---------------------------------------------------------
EXPERIMENT: Final = "Experiment"
"""The experiment workflow (keyed by the experiment's name): one claim per document, variant and
repeat."""
ITEM_WAITING: Final = "item_waiting"
"""The experiment's shared handler a claim calls (one-way) when it starts waiting for a human."""
REJUDGE: Final = "ExperimentRejudge"
"""The workflow that scores an experiment's finished claims again under another judge version
(keyed by `rejudge_key`)."""
JUDGE_REJUDGE: Final = "rejudge"
"""The judge object's handler that scores one claim again under another judge version."""
REVIEW_POLICIES: Final = ("approve", "reject", "leave")
"""How an experiment settles its claims that wait for review: approve or reject them at once, or
leave them to a human."""

# State keys of the experiment workflow and of the judge object.
DEFINITION_KEY: Final = "definition"
VERSIONS_KEY: Final = "versions"
ITEM_KEY_PREFIX: Final = "item/"
JUDGE_REQUEST_KEY: Final = "request"
JUDGE_RESULT_KEY: Final = "result"

_PART_LIMITS = {"experiment": 48, "variant": 24, "document": 40}


def check_part(kind: str, value: str) -> str:
    """`value` if it can name an experiment, a variant or a document in claim ids (ValueError
    saying what can)."""
    limit = _PART_LIMITS[kind]
    ok = (
        isinstance(value, str)
        and 0 < len(value) <= limit
        and value[0].isascii()
        and value[0].isalnum()
        and all(c.isascii() and (c.isalnum() or c in "._-") for c in value)
    )
    if not ok:
        raise ValueError(
            f"{kind.capitalize()} name {value!r} cannot be used: use 1-{limit} letters, digits, "
            "'.', '_' or '-', starting with a letter or digit."
        )
    return value


def experiment_claim_id(experiment: str, variant: str, document: str, repeat: int) -> str:
    """The claim id of one experiment item: the same for the same experiment, variant, document
    and repeat (1-based), so a resumed or re-run experiment finds its claims again."""
    for kind, value in (("experiment", experiment), ("variant", variant), ("document", document)):
        check_part(kind, value)
    return f"{experiment}:{variant}:{document}:{repeat}"


def item_state_key(claim_id: str) -> str:
    """The experiment's state key holding one finished item."""
    return f"{ITEM_KEY_PREFIX}{claim_id}"


def rejudge_state_key(judge_version: int) -> str:
    """The judge object's state key holding its verdict under another judge version."""
    return f"rejudge/v{judge_version}"


SCORE: Final = "quality"
"""The judge's score on a claim's trace."""


def rejudge_score_name(judge_version: int) -> str:
    """The score a re-judging writes: `quality` under another judge version, beside the first."""
    return f"{SCORE}-judge-v{judge_version}"


def rejudge_key(experiment: str, judge_version: int) -> str:
    """The key of the workflow that re-judges an experiment under one judge version."""
    return f"{experiment}:judge-v{judge_version}"


PROMPT_CHANGES_FILE: Final = "prompts.changed"
"""In the home: one byte is appended to it after every prompt version, label move or deletion,
by the embedded Langfuse (whoever asked: the workbench, the Langfuse SDK, curl) and by the
workbench's own client (for a Langfuse elsewhere), so the services see at once that what they
remember of where labels point is out of date (`services.prompts`)."""
PROMPT_CHANGES_ENV: Final = "WORKBENCH_PROMPT_CHANGES"
PROMPT_CHANGES_ANNOUNCED: Final = "announced"
"""`WORKBENCH_PROMPT_CHANGES=announced`: the Langfuse the services use announces every prompt
change in PROMPT_CHANGES_FILE (the embedded one does), so an answer stays good until it changes."""
