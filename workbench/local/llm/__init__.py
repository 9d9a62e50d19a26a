"""The embedded model: an OpenAI-compatible HTTP server that is a deterministic, RULE-BASED
STAND-IN for a language model. It is not a language model: it does not generate text, it applies
fixed rules, so the same request always gets the same answer, with no API key and no network.

It answers the three agents of the claim workflow, recognised by the title of the JSON schema of
their structured output (the OpenAI Agents SDK sends the output type's class name):

- `ClaimData` (`parser`): reads customer id, date, amount, currency, category and receipt from a
  claim written in English, German, French, Spanish or Italian, in any common format;
- `ClaimAssessment` (`analyst`): first calls the offered `check_fraud` and `lookup_policy` tools,
  then applies the policy clauses of the system prompt by their wording (`clauses`), and reports
  the clauses it cannot apply in `unrecognized_clauses`;
- `JudgeVerdict` (`judge`): scores each weighted rubric item of the system prompt with a comment;
  the score is their weighted mean.

Any other agent gets its function tools called once each (schema-valid arguments filled from the
conversation), then a deterministic instance of its output schema, through Chat Completions or
the Responses API, streamed or not. `unrecognized_clauses(prompt)` says, without a model call,
which clauses of an analyst prompt this stand-in would not apply; `perf.cpu_per_call()` measures
its CPU cost per request. Point `OPENAI_BASE_URL` and `OPENAI_API_KEY` at OpenAI, Ollama, vLLM or
LM Studio to replace it with no code change.

Run it with `python -m workbench.local.llm --port 8787 [--latency-ms 50]`; see `README.md`.
"""

from __future__ import annotations

from .app import create_app
from .clauses import unrecognized_clauses

__all__ = ["create_app", "unrecognized_clauses"]
