"""Programs added to, replaced in and removed from a running stack (supervisord keeps running).

The stack's generated `supervisord.conf` gains, changes or loses one `[program:<name>]` section;
supervisord re-reads it (`reloadConfig`) and starts, restarts or forgets that program's group,
as `supervisorctl update` does. `stack.json` records the change, so `attach()`, `status()` and
`stop()` see the same programs as supervisord (and `stop()` still leaves nothing behind). A fresh
start rewrites the config from scratch: what was added at runtime does not come back.

    add_program(stack, ServicesProcess(name="services-v2", ...))   # started, ready
    replace_program(stack, process)                                 # same name, new command/env
    remove_program(stack, "services-v2")                            # stopped and forgotten
"""

from __future__ import annotations

import os
import xmlrpc.client
from pathlib import Path

from .errors import StackError
from .processes import ManagedProcess
from .stack import Stack, home_lock, local_http
from .state import StackState
from .supervisor import STOP_WAIT_SECS, render_program

__all__ = ["add_program", "refresh", "remove_program", "replace_program"]


def refresh(stack: Stack) -> Stack:
    """Re-read `stack.json`, so a handle made before another kernel changed the programs sees
    them (same stack only: a handle on a stopped or replaced stack is left as it is)."""
    state = StackState.load(stack.home)
    if state is not None and state.stack_id == stack._state.stack_id:
        stack._state = state
        stack._processes = {
            name: ManagedProcess.from_state(process) for name, process in state.processes.items()
        }
    return stack


def _config_path(stack: Stack) -> Path:
    return Path(stack._state.supervisor.get("config") or stack.home / "supervisord.conf")


def _with_section(text: str, name: str, section: list[str] | None) -> str:
    """The config text without the `[program:name]` section, plus `section` when given."""
    header = f"[program:{name}]"
    kept: list[str] = []
    skipping = False
    for line in text.splitlines():
        if line.startswith("["):
            skipping = line.strip() == header
        if not skipping:
            kept.append(line)
    result = "\n".join(kept).rstrip("\n") + "\n\n"
    return result + "\n".join(section) + "\n" if section else result


def _write_section(stack: Stack, process: ManagedProcess | None, name: str) -> None:
    path = _config_path(stack)
    section = (
        render_program(process, home=stack.home, project=Path(stack._state.project))
        if process is not None
        else None
    )
    text = _with_section(path.read_text(), name, section)
    tmp = path.with_suffix(".conf.tmp")
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)  # holds the RPC password
    with os.fdopen(fd, "w") as file:
        file.write(text)
    os.replace(tmp, path)


def _require_running(stack: Stack) -> None:
    if not stack.is_running():
        raise StackError(
            f"The stack in {stack.home} is not running: start it (workbench.start()) before "
            "adding, replacing or removing a program."
        )


def _record(stack: Stack, process: ManagedProcess | None, name: str) -> None:
    if process is None:
        stack._processes.pop(name, None)
        stack._state.processes.pop(name, None)
    else:
        stack._processes[name] = process
        stack._state.processes[name] = {**process.to_state(), "pid": None}
    stack._state.save()


def add_program(stack: Stack, process: ManagedProcess, *, timeout_s: float = 30.0) -> None:
    """Run `process` as a new program of the running stack; return once it answers its probe
    (and, for a services process, once `after_ready` registered it if it registers itself).
    If it does not come up, it is removed again and the error says why."""
    with home_lock(stack.home):
        refresh(stack)
        _require_running(stack)
        if process.name in stack._processes:
            raise StackError(
                f"The stack already runs a program {process.name!r}: pick another name, or "
                "replace_program() it."
            )
        _write_section(stack, process, process.name)
        added, _, _ = stack._client.reload_config()
        if process.name not in added:
            raise StackError(
                f"supervisord did not see the new program {process.name!r} in "
                f"{_config_path(stack)} (added: {added})"
            )
        _record(stack, process, process.name)
        stack._client.add_group(process.name)
    try:
        _ready(stack, process, timeout_s)
    except BaseException:
        remove_program(stack, process.name)
        raise


def replace_program(stack: Stack, process: ManagedProcess, *, timeout_s: float = 30.0) -> None:
    """Stop the program named `process.name` and run `process` in its place (same name, new
    command or environment); return once it answers (and re-registered, for services)."""
    with home_lock(stack.home):
        refresh(stack)
        _require_running(stack)
        if process.name not in stack._processes:
            raise StackError(f"No program {process.name!r} to replace; it runs {stack.names}.")
        _write_section(stack, process, process.name)
        stack._client.reload_config()
        _record(stack, process, process.name)
        stack._client.stop_process(process.name, timeout_s=STOP_WAIT_SECS + 10)
        stack._client.remove_group(process.name)
        stack._client.add_group(process.name)  # from the section just written
    _ready(stack, process, timeout_s)


def remove_program(stack: Stack, name: str) -> None:
    """Stop the program `name` (SIGINT, SIGKILL after the grace period) and forget it."""
    with home_lock(stack.home):
        refresh(stack)
        if name not in stack._processes:
            raise StackError(f"No program {name!r} to remove; it runs {stack.names}.")
        if stack.is_running():
            try:
                stack._client.stop_process(name, timeout_s=STOP_WAIT_SECS + 10)
            except xmlrpc.client.Fault as fault:
                if "BAD_NAME" not in fault.faultString:
                    raise
        _write_section(stack, None, name)
        if stack.is_running():
            _, _, removed = stack._client.reload_config()
            if name in removed:
                stack._client.remove_group(name)
        _record(stack, None, name)


def _ready(stack: Stack, process: ManagedProcess, timeout_s: float) -> None:
    # restarts count as starting (a new group may show STOPPED before its first spawn); only
    # FATAL (supervisord gave up) fails early
    stack._wait([process.name], timeout_s=timeout_s, poll_interval_s=0.05, fresh=False)
    with local_http() as http:
        process.after_ready(http, timeout_s=timeout_s, poll_interval_s=0.05)
    with home_lock(stack.home):
        stack._record_pids()
