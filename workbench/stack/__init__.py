"""Starts, watches, restarts and stops the workbench's background processes (the embedded model
server, restate-server, the services deployment) under supervisord, driven over XML-RPC.

    stack = workbench.stack.start()     # or attach to the stack already running in the home
    stack.status()                      # DataFrame: name, state, pid, port, url, uptime_s, ...
    stack.kill("services")              # crash it; supervisord restarts it
    stack.wait_ready("services")        # ...and it answers again
    stack.stop()                        # nothing of ours remains

    stack.paused(); stack.resume()      # invocations an outage paused (PATCH .../resume)
    stack.purge(invocation_id)          # frees a claim id whose run was refused (400)
    stack.rehome_deployment(dp, uri)    # a deployment's services moved: pinned claims follow
    reset_plan(home).describe(); reset(home, yes=True)   # only a home the stack created

The stack outlives the interpreter (notebook kernels restart) unless started with
persistent=False; `python -m workbench down` stops it, and `up` brings it back on the same ports
when they are free (the services' deployment is moved in place when they are not).
"""

from __future__ import annotations

from .config import DEFAULT_PORTS, StackConfig, find_restate_server
from .errors import (
    BinaryNotFoundError,
    NotRunningError,
    PortTakenError,
    ProcessExitedError,
    RegistrationError,
    ResetRefusedError,
    StackError,
    StackWarning,
    StartTimeoutError,
)
from .lifecycle import attach, model_problem, start, status, status_rows, stop
from .processes import LlmProcess, ManagedProcess, RestateProcess, ServicesProcess
from .reset import ResetPlan, reset, reset_plan
from .stack import Stack, resolve_home

__all__ = [
    "DEFAULT_PORTS",
    "BinaryNotFoundError",
    "LlmProcess",
    "ManagedProcess",
    "NotRunningError",
    "PortTakenError",
    "ProcessExitedError",
    "RegistrationError",
    "ResetPlan",
    "ResetRefusedError",
    "RestateProcess",
    "ServicesProcess",
    "Stack",
    "StackConfig",
    "StackError",
    "StackWarning",
    "StartTimeoutError",
    "attach",
    "find_restate_server",
    "model_problem",
    "reset",
    "reset_plan",
    "resolve_home",
    "start",
    "status",
    "status_rows",
    "stop",
]
