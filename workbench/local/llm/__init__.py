"""The embedded model: an OpenAI-compatible HTTP server that is a deterministic, RULE-BASED
STAND-IN for a language model. It is not a language model: it does not generate text, it applies
fixed rules, so the same request always gets the same answer, with no API key and no network.

It answers the three agents of the claim workflow, choosing the task by the title of the JSON
schema in `response_format` (the OpenAI Agents SDK sends the output type's class name):

- `ClaimData` (`parser`): reads customer id, date, amount, currency, category and receipt from the
  claim text with regular expressions and keyword tables;
- `ClaimAssessment` (`analyst`): first asks for the offered `check_fraud` and `lookup_policy` tool
  calls, then applies the policy clauses (`N. [id] text`) it finds in the system prompt, so a
  different prompt version can change the decision;
- `JudgeVerdict` (`judge`): scores the evidence against the weighted rubric lines
  (`- [id] (-0.5) text`) it finds in the system prompt.

Any other request without a schema gets a short plain-text note saying what this server is. Token
usage is reported (characters / 4) and a fixed latency can be simulated. Point `OPENAI_BASE_URL`
and `OPENAI_API_KEY` at OpenAI, Ollama, vLLM or LM Studio to replace it with no code change.

Run it with `python -m workbench.local.llm --port 8787 [--latency-ms 50]`; see `README.md`.
"""

from __future__ import annotations

from .app import create_app

__all__ = ["create_app"]
