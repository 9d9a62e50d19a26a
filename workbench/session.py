"""The stack this kernel talks to: the one `workbench.start()` returned, or one named by the
environment (`RESTATE_INGRESS_URL` + `RESTATE_ADMIN_URL`, an existing Restate server;
`LANGFUSE_BASE_URL` + keys, a real Langfuse)."""

from __future__ import annotations

import os
from dataclasses import dataclass

LOCAL_LANGFUSE_PUBLIC_KEY = "pk-lf-local"
LOCAL_LANGFUSE_SECRET_KEY = "sk-lf-local"


@dataclass(frozen=True)
class Endpoints:
    ingress_url: str
    admin_url: str
    langfuse_url: str | None = None
    langfuse_public_key: str | None = None
    langfuse_secret_key: str | None = None

    @property
    def has_langfuse(self) -> bool:
        return bool(self.langfuse_url and self.langfuse_public_key and self.langfuse_secret_key)


_current: Endpoints | None = None


def use(
    ingress_url: str,
    admin_url: str,
    langfuse_url: str | None = None,
    langfuse_public_key: str | None = None,
    langfuse_secret_key: str | None = None,
) -> Endpoints:
    global _current
    _current = Endpoints(
        ingress_url.rstrip("/"),
        admin_url.rstrip("/"),
        langfuse_url.rstrip("/") if langfuse_url else None,
        langfuse_public_key,
        langfuse_secret_key,
    )
    return _current


def endpoints() -> Endpoints:
    if _current is not None:
        return _current
    ingress, admin = os.environ.get("RESTATE_INGRESS_URL"), os.environ.get("RESTATE_ADMIN_URL")
    if ingress and admin:
        return use(
            ingress,
            admin,
            os.environ.get("LANGFUSE_BASE_URL") or os.environ.get("LANGFUSE_HOST"),
            os.environ.get("LANGFUSE_PUBLIC_KEY"),
            os.environ.get("LANGFUSE_SECRET_KEY"),
        )
    raise RuntimeError(
        "No workbench stack is known to this kernel: call workbench.start() first "
        "(it attaches to a running stack), or set RESTATE_INGRESS_URL and RESTATE_ADMIN_URL."
    )


def langfuse_endpoints() -> Endpoints:
    """The endpoints, checked to name a Langfuse (embedded or real)."""
    current = endpoints()
    if not current.has_langfuse:
        raise RuntimeError(
            "This stack has no Langfuse: start it with workbench.start() (the embedded one "
            "starts by default) or set LANGFUSE_BASE_URL, LANGFUSE_PUBLIC_KEY and "
            "LANGFUSE_SECRET_KEY."
        )
    return current
