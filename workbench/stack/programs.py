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

from .errors import StackError
from .processes import ManagedProcess
from .stack import Stack, home_lock, local_http
from .supervisor import STOP_WAIT_SECS, render_program

__all__ = ["add_program", "remove_program", "replace_program"]


def with_section(text: str, name: str, section: list[str] | None) -> str:
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
    path = stack.config_path
    section = (
        render_program(process, home=stack.home, project=stack.project)
        if process is not None
        else None
    )
    text = with_section(path.read_text(), name, section)
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


def add_program(stack: Stack, process: ManagedProcess, *, timeout_s: float = 30.0) -> None:
    """Run `process` as a new program of the running stack; return once it answers its probe
    (and, for a services process, once `after_ready` registered it if it registers itself).
    If it does not come up, it is removed again and the error says why."""
    with home_lock(stack.home):
        stack.reload()
        _require_running(stack)
        if process.name in stack.processes:
            raise StackError(
                f"The stack already runs a program {process.name!r}: pick another name, or "
                "replace_program() it."
            )
        _write_section(stack, process, process.name)
        added, _, _ = stack.supervisor.reload_config()
        if process.name not in added:
            raise StackError(
                f"supervisord did not see the new program {process.name!r} in "
                f"{stack.config_path} (added: {added})"
            )
        stack.record_process(process)
        stack.supervisor.add_group(process.name)
    try:
        _ready(stack, process, timeout_s)
    except BaseException:
        remove_program(stack, process.name)
        raise


def replace_program(stack: Stack, process: ManagedProcess, *, timeout_s: float = 30.0) -> None:
    """Stop the program named `process.name` and run `process` in its place (same name, new
    command or environment); return once it answers (and re-registered, for services)."""
    with home_lock(stack.home):
        stack.reload()
        _require_running(stack)
        if process.name not in stack.processes:
            raise StackError(f"No program {process.name!r} to replace; it runs {stack.names}.")
        _write_section(stack, process, process.name)
        stack.supervisor.reload_config()
        stack.record_process(process)
        stack.supervisor.stop_process(process.name, timeout_s=STOP_WAIT_SECS + 10)
        stack.supervisor.remove_group(process.name)
        stack.supervisor.add_group(process.name)  # from the section just written
    _ready(stack, process, timeout_s)


def remove_program(stack: Stack, name: str) -> None:
    """Stop the program `name` (SIGINT, SIGKILL after the grace period) and forget it."""
    with home_lock(stack.home):
        stack.reload()
        if name not in stack.processes:
            raise StackError(f"No program {name!r} to remove; it runs {stack.names}.")
        if stack.is_running():
            try:
                stack.supervisor.stop_process(name, timeout_s=STOP_WAIT_SECS + 10)
            except xmlrpc.client.Fault as fault:
                if "BAD_NAME" not in fault.faultString:
                    raise
        _write_section(stack, None, name)
        if stack.is_running():
            _, _, removed = stack.supervisor.reload_config()
            if name in removed:
                stack.supervisor.remove_group(name)
        stack.forget_process(name)


def _ready(stack: Stack, process: ManagedProcess, timeout_s: float) -> None:
    # restarts count as starting (a new group may show STOPPED before its first spawn); only
    # FATAL (supervisord gave up) fails early
    stack.wait_up([process.name], timeout_s=timeout_s)
    with local_http() as http:
        process.after_ready(http, timeout_s=timeout_s, poll_interval_s=0.05)
    with home_lock(stack.home):
        stack.record_pids()
