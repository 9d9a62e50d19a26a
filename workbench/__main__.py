"""`python -m workbench up|down|status|logs [name] [-n N]|reset [--yes]`: the stack outside Jupyter.

Mistakes (a bad setting, a port taken, a folder that is not a workbench home) are one `error:`
line and exit status 1, never a traceback; what the stack can run without (Langfuse or the model
endpoint not answering) is one `warning:` line."""

from __future__ import annotations

import argparse
import sys
import warnings
from collections.abc import Sequence
from pathlib import Path
from typing import Any


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
    reset = commands.add_parser(
        "reset",
        help="stop the stack and delete its home folder (journals, payments, traces, prompts): "
        "shows what goes, asks on a terminal, needs --yes otherwise",
    )
    reset.add_argument("-y", "--yes", action="store_true", help="delete without asking")
    return parser


def _one_line_warnings(
    message: Warning | str,
    category: type[Warning],
    filename: str,
    lineno: int,
    file: Any = None,
    line: str | None = None,
) -> None:
    print(f"warning: {message}", file=sys.stderr)


def main(argv: Sequence[str] | None = None) -> int:
    args = _parser().parse_args(argv)
    from workbench import stack as wb

    warnings.showwarning = _one_line_warnings
    try:
        home = wb.resolve_home(args.home)
        if args.command == "up":
            running = wb.start(home, timeout_s=args.timeout)
            print(running.status().to_string(index=False))
            print(f"\nRestate UI: {running.ui_url}")
            print(f"Ingress:    {running.ingress_url}")
            print(f"Model API:  {running.llm_url}")
            if running.langfuse_url:
                print(f"Langfuse:   {running.langfuse_url} (keys in {home / 'home.json'})")
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
            return _reset(home, yes=args.yes)
    except (wb.StackError, ValueError, OSError) as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 1
    except KeyboardInterrupt:
        print("error: interrupted", file=sys.stderr)
        return 130
    return 0


def _reset(home: Path, *, yes: bool) -> int:
    from workbench import stack as wb

    plan = wb.reset_plan(home)
    if not plan.exists:
        print(plan.describe())
        return 0
    if not plan.ours:
        wb.reset(home)  # raises ResetRefusedError, saying why
    print(plan.describe())
    if not yes:
        if not sys.stdin.isatty():
            raise wb.ResetRefusedError(
                "not confirmed: run `python -m workbench reset --yes` to delete it"
            )
        answer = input("Delete all of this? [y/N] ").strip().lower()
        if answer not in ("y", "yes"):
            print("nothing deleted")
            return 1
    print(f"deleted {wb.reset(home, yes=True)}")
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
