"""`python -m workbench.local.langfuse --host 127.0.0.1 --port P --db PATH`, with the keys it
accepts in LANGFUSE_PUBLIC_KEY / LANGFUSE_SECRET_KEY (the environment, not the command line,
which any user can read with `ps`). `--public-key`/`--secret-key` are a fallback for a quick
manual run."""

from __future__ import annotations

import argparse
import os
import sys
from pathlib import Path

import uvicorn

from .app import create_app


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(
        prog="python -m workbench.local.langfuse",
        description="Serve the embedded Langfuse-API-compatible server (SQLite).",
    )
    parser.add_argument("--host", default="127.0.0.1", help="interface to bind (127.0.0.1)")
    parser.add_argument("--port", type=int, default=3000, help="port to listen on (3000)")
    parser.add_argument("--db", type=Path, required=True, help="SQLite file (created if missing)")
    parser.add_argument(
        "--public-key",
        default=os.environ.get("LANGFUSE_PUBLIC_KEY"),
        help="public key (default: LANGFUSE_PUBLIC_KEY)",
    )
    parser.add_argument(
        "--secret-key",
        default=os.environ.get("LANGFUSE_SECRET_KEY"),
        help="secret key (default: LANGFUSE_SECRET_KEY; prefer it: the command line is public)",
    )
    parser.add_argument(
        "--prompt-changes",
        type=Path,
        default=None,
        help="a file to append one byte to after every prompt version, label move or deletion "
        "(whoever made it), so the services know when where labels point has changed",
    )
    parser.add_argument("--project-name", default="workbench", help="project name (workbench)")
    parser.add_argument("--log-level", default="warning", help="uvicorn log level (warning)")
    args = parser.parse_args(argv)
    if not args.public_key or not args.secret_key:
        parser.error(
            "no keys: set LANGFUSE_PUBLIC_KEY and LANGFUSE_SECRET_KEY (or pass --public-key and "
            "--secret-key) to the key pair clients must send"
        )
    app = create_app(
        args.db,
        args.public_key,
        args.secret_key,
        args.project_name,
        prompt_changes=args.prompt_changes,
    )
    print(
        f"workbench-local langfuse on http://{args.host}:{args.port} (db {args.db}, "
        f"public key {args.public_key})",
        file=sys.stderr,
        flush=True,
    )
    uvicorn.run(
        app,
        host=args.host,
        port=args.port,
        log_level=args.log_level,
        access_log=False,
    )


if __name__ == "__main__":
    main()
