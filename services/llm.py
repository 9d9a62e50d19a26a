"""The model client: the standard OpenAI client, pointed by `OPENAI_BASE_URL`/`OPENAI_API_KEY`.

Pointing those at OpenAI, Ollama, vLLM or LM Studio replaces the embedded model with no code
change. Retries are Restate's job (each model call is a journaled step; `model_errors` decides
which failures are retried and which end the claim), so the client itself does not retry."""

from __future__ import annotations

import os

from agents import set_default_openai_api, set_default_openai_client, set_tracing_disabled
from openai import AsyncOpenAI

from . import faults, model_errors

_configured = False


class ModelConfigError(RuntimeError):
    """No model endpoint is configured."""


def configure_model_client(timeout_s: float = 60.0) -> AsyncOpenAI:
    """Make the Agents SDK use the configured endpoint through chat completions.

    Tracing to OpenAI's platform is switched off: traces go to Langfuse, never to OpenAI, and no
    warning about a missing OpenAI key is printed."""
    global _configured
    if not os.environ.get("OPENAI_API_KEY") and not os.environ.get("OPENAI_BASE_URL"):
        raise ModelConfigError(
            "No model endpoint is configured: set OPENAI_BASE_URL (an OpenAI-compatible server) "
            "and/or OPENAI_API_KEY. The workbench stack sets both for its embedded model."
        )
    client = AsyncOpenAI(
        api_key=os.environ.get("OPENAI_API_KEY") or "workbench-local",
        max_retries=0,
        timeout=timeout_s,
    )
    faults.wrap_transport(client)  # model faults, Retry-After, unparsable answers retried
    model_errors.install(client)  # outages wait (retried, then paused); refusals fail at once
    set_default_openai_client(client, use_for_tracing=False)
    set_default_openai_api("chat_completions")
    set_tracing_disabled(True)
    _configured = True
    return client
