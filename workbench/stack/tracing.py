"""What ties the stack to Langfuse: Restate's span export, and the prompts seeded at start."""

from __future__ import annotations

import base64
import json
from pathlib import Path
from typing import TYPE_CHECKING

import httpx

from .errors import StackError

if TYPE_CHECKING:
    from .config import StackConfig

OTLP_PATH = "/api/public/otel/v1/traces"


def basic_auth(public_key: str, secret_key: str) -> str:
    return "Basic " + base64.b64encode(f"{public_key}:{secret_key}".encode()).decode()


def tracing_args(langfuse_url: str) -> list[str]:
    """restate-server exports OTLP/HTTP protobuf to exactly this endpoint (`otlp+http`: plain
    http:// would mean gRPC, which Langfuse does not accept)."""
    return ["--tracing-endpoint", f"otlp+{langfuse_url.rstrip('/')}{OTLP_PATH}"]


def tracing_env(config: StackConfig) -> dict[str, str]:
    return {
        "RESTATE_TRACING_HEADERS__AUTHORIZATION": basic_auth(
            str(config.langfuse_public_key), str(config.langfuse_secret_key)
        ),
        "OTEL_BSP_SCHEDULE_DELAY": "500",  # a finished claim's Restate spans arrive within ~1 s
    }


class LangfuseUnreachableError(StackError):
    """Langfuse does not answer (or answers 5xx): the stack runs without it for now."""


def seed_prompts(
    langfuse_url: str, keys: tuple[str, str], data_dir: Path, *, timeout_s: float = 10.0
) -> list[str]:
    """Create the prompts of data/prompts/ in Langfuse when absent (a prompt that exists there is
    left as it is: what was edited in Langfuse wins). Returns the names created. Raises
    LangfuseUnreachableError when Langfuse does not answer, StackError when it refuses."""
    index = json.loads((data_dir / "prompts" / "index.json").read_text())
    created: list[str] = []
    with httpx.Client(base_url=langfuse_url.rstrip("/"), auth=keys, timeout=timeout_s) as http:
        try:
            listing = http.get("/api/public/v2/prompts", params={"limit": 100})
        except httpx.HTTPError as e:
            raise LangfuseUnreachableError(
                f"Langfuse at {langfuse_url} does not answer ({type(e).__name__}: {e})"
            ) from None
        if listing.status_code >= 500:
            raise LangfuseUnreachableError(
                f"Langfuse at {langfuse_url} answers HTTP {listing.status_code}"
            )
        if listing.status_code == 401:
            raise StackError(
                f"Langfuse at {langfuse_url} refused the keys (HTTP 401). Check "
                "LANGFUSE_PUBLIC_KEY and LANGFUSE_SECRET_KEY (project settings > API keys)."
            )
        listing.raise_for_status()
        present = {p["name"] for p in listing.json().get("data", [])}
        for entry in sorted(index, key=lambda e: (e["name"], e["version"])):
            if entry["name"] in present:
                continue
            response = http.post(
                "/api/public/v2/prompts",
                json={
                    "name": entry["name"],
                    "type": "text",
                    "prompt": (data_dir / "prompts" / entry["file"]).read_text(),
                    "labels": entry.get("labels", []),
                    "tags": ["claims"],
                    "config": {},
                    "commitMessage": entry.get("commit_message"),
                },
            )
            if not response.is_success:
                raise StackError(
                    f"Seeding prompt {entry['name']} v{entry['version']} into Langfuse failed: "
                    f"HTTP {response.status_code} {response.text[:300]}"
                )
            created.append(f"{entry['name']} v{entry['version']}")
    return created
