"""`python -m workbench up|down|status|logs [name] [-n N]|reset`: the stack outside Jupyter."""

from __future__ import annotations

import argparse
import sys
from collections.abc import Sequence
from pathlib import Path


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="python -m workbench",
        description="Start, inspect and stop the workbench stack (model server, Restate, "
        "services) running in the background under supervisord.",
    )
    parser.add_argument(
        "--home", help="workbench home folder (default: WORKBENCH_HOME or <project>/.workbench)"
    )
    commands = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")
    up = commands.add_parser("up", help="start the stack (or attach to the running one)")
    up.add_argument("--timeout", type=float, default=60.0, help="seconds to wait (default 60)")
    down = commands.add_parser("down", help="stop the stack; nothing of it keeps running")
    down.add_argument("--grace", type=float, default=5.0, help="seconds before SIGKILL")
    commands.add_parser("status", help="show the status table")
    logs = commands.add_parser("logs", help="show the end of a process log")
    logs.add_argument("name", nargs="?", help="llm, restate, services or supervisord")
    logs.add_argument("-n", "--lines", type=int, default=50, help="lines per log (default 50)")
    commands.add_parser("reset", help="stop the stack and delete its data (Restate, ledger, logs)")
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    args = _parser().parse_args(argv)
    from workbench import stack as wb

    home = wb.resolve_home(args.home)
    try:
        if args.command == "up":
            running = wb.start(home, timeout_s=args.timeout)
            print(running.status().to_string(index=False))
            print(f"\nRestate UI: {running.ui_url}")
            print(f"Ingress:    {running.ingress_url}")
            print(f"Model API:  {running.llm_url}")
            _print_viewer(running.viewer_url)
        elif args.command == "down":
            stopped = wb.stop(home, grace_s=args.grace)
            print(f"stopped the stack in {home}" if stopped else f"no stack running in {home}")
        elif args.command == "status":
            table = wb.status(home)
            if table.empty:
                print(f"no stack running in {home}")
                return 1
            print(table.to_string(index=False))
            _print_viewer(_recorded_viewer_url(home))
        elif args.command == "logs":
            return _logs(home, args.name, args.lines)
        elif args.command == "reset":
            print(f"reset {wb.reset(home)}: Restate data, databases and logs deleted")
    except wb.StackError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 1
    return 0


def _print_viewer(url: str | None) -> None:
    if url:
        print(f"Traces:     {url}  (log in with the stack's Langfuse keys)")


def _recorded_viewer_url(home: Path) -> str | None:
    from workbench.stack import Stack
    from workbench.stack.state import StackState

    state = StackState.load(home)
    return Stack(state).viewer_url if state else None


def _logs(home: Path, name: str | None, lines: int) -> int:
    from workbench.stack.supervisor import tail_lines

    logs_dir = home / "logs"
    names = [name] if name else sorted(p.stem for p in logs_dir.glob("*.log") if "." not in p.stem)
    if not names:
        print(f"no logs in {logs_dir}", file=sys.stderr)
        return 1
    for each in names:
        path = logs_dir / f"{each}.log"
        if not path.exists():
            print(f"no log {path}", file=sys.stderr)
            return 1
        if len(names) > 1:
            print(f"==> {path} <==")
        print(tail_lines(path, lines))
    return 0


if __name__ == "__main__":
    sys.exit(main())
