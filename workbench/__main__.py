"""`python -m workbench up|down|status|logs [name] [-n N] [-f]|reset [--yes]`: the stack outside
Jupyter.

Mistakes (a bad setting, a port taken, a folder that is not a workbench home, a process name
that does not exist) are one `error:` line and exit status 1, never a traceback; what the stack
can run without (Langfuse or the model endpoint not answering) is one `warning:` line.

`status`, `logs` and `down` import only the stack's own modules (no pandas, no SDKs), so they
answer at once; `python -m workbench status` takes well under a second."""

from __future__ import annotations

import argparse
import os
import signal
import sys
import warnings
from collections.abc import Sequence
from pathlib import Path
from typing import Any


def _processes_help(*, supervisord: bool = False) -> str:
    from workbench.stack.processes import KINDS

    roles = {name: kind.role for name, kind in KINDS.items()}
    if supervisord:
        roles["supervisord"] = "supervisord, which runs and restarts the others"
    width = max(len(name) for name in roles)
    lines = [f"  {name:{width}}  {role}" for name, role in roles.items()]
    return "processes (each with its log in <home>/logs/<name>.log):\n" + "\n".join(lines)


def _parser() -> argparse.ArgumentParser:
    from workbench.stack.processes import KINDS

    names = ", ".join(KINDS)
    parser = argparse.ArgumentParser(
        prog="python -m workbench",
        description=f"Start, inspect and stop the workbench stack ({names}),\n"
        "run in the background by supervisord.",
        epilog=_processes_help(),
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    parser.add_argument(
        "--home", help="workbench home folder (default: WORKBENCH_HOME or <project>/.workbench)"
    )
    commands = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")
    up = commands.add_parser(
        "up",
        help="start the stack (or attach to the running one); says which ports are not their "
        "default",
    )
    up.add_argument("--timeout", type=float, default=60.0, help="seconds to wait (default 60)")
    down = commands.add_parser("down", help="stop the stack; nothing of it keeps running")
    down.add_argument("--grace", type=float, default=5.0, help="seconds before SIGKILL")
    commands.add_parser("status", help="show the status table")
    logs = commands.add_parser(
        "logs",
        help="show the end of the process logs (all, or one), --follow to keep reading",
        description="Show the end of the process logs, or of one of them.",
        epilog=_processes_help(supervisord=True),
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    logs.add_argument(
        "name", nargs="?", help=f"one process: {names}, supervisord (default: every log)"
    )
    logs.add_argument("-n", "--lines", type=int, default=50, help="lines per log (default 50)")
    logs.add_argument(
        "-f",
        "--follow",
        action="store_true",
        help="keep printing what the logs get, as tail -f does, until Ctrl-C",
    )
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
            print(format_table(running.status_rows()))
            print(f"\nRestate UI: {running.ui_url}")
            print(f"Ingress:    {running.ingress_url}")
            print(f"Model API:  {running.llm_url}")
            if running.langfuse_url:
                print(f"Langfuse:   {running.langfuse_url} (keys in {home / 'home.json'})")
            _print_viewer(running.viewer_url)
            _print_moved_ports(running.moved_ports)
        elif args.command == "down":
            stopped = wb.stop(home, grace_s=args.grace)
            print(f"stopped the stack in {home}" if stopped else f"no stack running in {home}")
        elif args.command == "status":
            rows = wb.status_rows(home)
            if not rows:
                print(f"no stack running in {home}")
                return 1
            print(format_table(rows))
            _print_viewer(_recorded_viewer_url(home))
        elif args.command == "logs":
            return _logs(home, args.name, args.lines, follow=args.follow)
        elif args.command == "reset":
            return _reset(home, yes=args.yes)
    except (wb.StackError, ValueError, OSError) as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 1
    except KeyboardInterrupt:
        print("error: interrupted", file=sys.stderr)
        return 130
    return 0


def format_table(rows: Sequence[dict[str, Any]]) -> str:
    """The status rows as a plain-text table (what `DataFrame.to_string(index=False)` prints,
    without pandas): right-aligned numbers, left-aligned text, `-` for nothing."""
    from workbench.stack.stack import STATUS_COLUMNS

    def cell(value: Any) -> str:
        if value is None:
            return "-"
        if isinstance(value, float):
            return f"{value:.1f}"
        return str(value)

    cells = [[cell(row.get(column)) for column in STATUS_COLUMNS] for row in rows]
    numeric = [
        all(isinstance(row.get(column), (int, float)) or row.get(column) is None for row in rows)
        for column in STATUS_COLUMNS
    ]
    widths = [
        max(len(column), *(len(line[i]) for line in cells))
        for i, column in enumerate(STATUS_COLUMNS)
    ]

    def line(values: Sequence[str]) -> str:
        return "  ".join(
            value.rjust(width) if right else value.ljust(width)
            for value, width, right in zip(values, widths, numeric, strict=True)
        ).rstrip()

    return "\n".join([line(STATUS_COLUMNS), *(line(values) for values in cells)])


def _print_moved_ports(moves: Sequence[Any]) -> None:
    if not moves:
        return
    print("\nPorts moved from their default:")
    for move in moves:
        print(f"  {move.describe()}")
    print("  (set WORKBENCH_<NAME>_PORT to choose a port; a port set so is never moved)")


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


def _logs(home: Path, name: str | None, lines: int, *, follow: bool = False) -> int:
    from workbench.stack.logs import LogFollower, log_path, log_paths

    if name:
        paths = {name: log_path(home, name)}  # UnknownProcessError names the valid ones
        if not paths[name].exists() and not follow:
            print(
                f"error: no log for {name} yet ({paths[name]}): the stack has not run it",
                file=sys.stderr,
            )
            return 1
    else:
        every = log_paths(home)
        # following, those that appear later are read from their start
        paths = every if follow else {n: p for n, p in every.items() if p.exists()}
        if not paths:
            print(f"error: no logs in {home / 'logs'}", file=sys.stderr)
            return 1
    with LogFollower(paths) as follower:  # opened before the tail: no line falls between
        tails = follower.tail(lines)
        for path, text in tails:
            if len(paths) > 1:
                print(f"==> {path} <==")
            print(text)
        if not follow:
            return 0
        sys.stdout.flush()

        def write(text: str) -> None:
            sys.stdout.write(text)
            sys.stdout.flush()

        # Ctrl-C ends it, even when started in the background by a shell that ignores SIGINT
        signal.signal(signal.SIGINT, signal.default_int_handler)
        try:
            follower.follow(write)
        except KeyboardInterrupt:  # Ctrl-C is how a follow ends
            return 0
        except BrokenPipeError:  # `... --follow | head`: the reader is gone; nothing to flush
            os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())
            return 0
    return 0


if __name__ == "__main__":
    sys.exit(main())
