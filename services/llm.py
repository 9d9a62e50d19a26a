"""The model client: the standard OpenAI client, pointed by `OPENAI_BASE_URL`/`OPENAI_API_KEY`.

Pointing those at OpenAI, Ollama, vLLM or LM Studio replaces the embedded model with no code
change. Retries are Restate's job (each model call is a journaled step; `model_errors` decides
which failures are retried and which end the claim), so the client itself does not retry."""

from __future__ import annotations

import os
import urllib.request

import httpx2
from agents import set_default_openai_api, set_default_openai_client, set_tracing_disabled
from openai import AsyncOpenAI, DefaultAsyncHttpxClient

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
        http_client=model_http_client(timeout_s),
    )
    set_default_openai_client(client, use_for_tracing=False)
    set_default_openai_api("chat_completions")
    set_tracing_disabled(True)
    _configured = True
    return client


def wrapped(transport: httpx2.AsyncBaseTransport) -> httpx2.AsyncBaseTransport:
    """What every model request goes through, outermost first: the classification of errors
    (outages wait: retried, then paused; refusals fail at once), then the fault injection (model
    faults, Retry-After, unparsable answers retried), then the network."""
    return model_errors.ModelErrors(faults.ModelTransport(transport))


def model_http_client(timeout_s: float = 60.0) -> httpx2.AsyncClient:
    """The HTTP client of the model client, built with the wrapped transport (and the same for
    each proxy the environment names; hosts in NO_PROXY go direct, still wrapped)."""
    proxies = urllib.request.getproxies()
    mounts: dict[str, httpx2.AsyncBaseTransport | None] = {}
    for scheme in ("http", "https"):
        if proxies.get(scheme):
            proxy_transport = httpx2.AsyncHTTPTransport(proxy=proxies[scheme])
            mounts[f"{scheme}://"] = wrapped(proxy_transport)
    for host in (proxies.get("no") or "").split(","):
        host = host.strip().lstrip(".")
        if host == "*":
            mounts = {}
            break
        if host:
            mounts[f"all://{host}"] = None  # direct, through the client's own (wrapped) transport
            mounts[f"all://*.{host}"] = None
    return DefaultAsyncHttpxClient(
        transport=wrapped(httpx2.AsyncHTTPTransport()),
        mounts=mounts,
        trust_env=False,  # the proxies are the mounts above
        timeout=timeout_s,
    )
