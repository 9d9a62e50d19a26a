"""`python -m workbench.local.llm --host 127.0.0.1 --port 8787 [--latency-ms N]`."""

from __future__ import annotations

import argparse
import sys

import uvicorn

from .app import create_app


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(
        prog="python -m workbench.local.llm",
        description="Serve the embedded rule-based model (OpenAI-compatible, deterministic).",
    )
    parser.add_argument("--host", default="127.0.0.1", help="interface to bind (127.0.0.1)")
    parser.add_argument("--port", type=int, default=8787, help="port to listen on (8787)")
    parser.add_argument(
        "--latency-ms", type=float, default=0.0, help="simulated latency per completion (0)"
    )
    parser.add_argument("--log-level", default="warning", help="uvicorn log level (warning)")
    args = parser.parse_args(argv)
    if args.latency_ms < 0:
        parser.error("--latency-ms must be >= 0")
    print(
        f"workbench-local model on http://{args.host}:{args.port}/v1 "
        f"(rule-based stand-in, latency {args.latency_ms:g} ms)",
        file=sys.stderr,
        flush=True,
    )
    uvicorn.run(
        create_app(latency_ms=args.latency_ms),
        host=args.host,
        port=args.port,
        log_level=args.log_level,
        access_log=False,
    )


if __name__ == "__main__":
    main()
