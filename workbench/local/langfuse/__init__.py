"""The embedded Langfuse-compatible server: OTLP span ingest, prompts, scores, observations,
traces, datasets, stored in one SQLite file. See README.md beside this file."""

from __future__ import annotations

from .app import SERVER_VERSION, create_app

__all__ = ["SERVER_VERSION", "create_app"]
