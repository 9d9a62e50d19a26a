"""The stack this kernel talks to: the one `workbench.start()` returned, or one named by the
environment (`RESTATE_INGRESS_URL` + `RESTATE_ADMIN_URL`, an existing Restate server)."""

from __future__ import annotations

import os
from dataclasses import dataclass


@dataclass(frozen=True)
class Endpoints:
    ingress_url: str
    admin_url: str


_current: Endpoints | None = None


def use(ingress_url: str, admin_url: str) -> Endpoints:
    global _current
    _current = Endpoints(ingress_url.rstrip("/"), admin_url.rstrip("/"))
    return _current


def endpoints() -> Endpoints:
    if _current is not None:
        return _current
    ingress, admin = os.environ.get("RESTATE_INGRESS_URL"), os.environ.get("RESTATE_ADMIN_URL")
    if ingress and admin:
        return use(ingress, admin)
    raise RuntimeError(
        "No workbench stack is known to this kernel: call workbench.start() first "
        "(it attaches to a running stack), or set RESTATE_INGRESS_URL and RESTATE_ADMIN_URL."
    )
