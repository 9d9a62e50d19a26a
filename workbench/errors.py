"""Every error the workbench raises, under one base: `except wb.WorkbenchError` catches them all.

Each message names what was wrong and what to do about it. The specific errors also derive from
the built-in they refine (a `TraceTimeoutError` is a `TimeoutError`, a `PromptNotFoundError` a
`LookupError`), so code written against the built-ins keeps working. The stack's own errors
(`workbench.stack.StackError` and its subclasses: a port taken, a process that exited, a start
that timed out) derive from `WorkbenchError` too.
"""

from __future__ import annotations

__all__ = [
    "AdminError",
    "ClaimError",
    "ClaimNotFoundError",
    "ClaimStateError",
    "ClaimTimeoutError",
    "DeploymentInUseError",
    "DeploymentNotFoundError",
    "ExperimentError",
    "ExperimentExistsError",
    "ExperimentNotFoundError",
    "ExperimentTimeoutError",
    "LangfuseError",
    "NoSessionError",
    "NotAServiceError",
    "PromptError",
    "PromptNotFoundError",
    "RegistrationError",
    "RestateError",
    "ScoresTimeoutError",
    "ServeError",
    "StackError",
    "SweepError",
    "TraceNotFoundError",
    "TraceTimeoutError",
    "UnknownPromptLabelError",
    "WorkbenchError",
]


class WorkbenchError(Exception):
    """Base class of every error the workbench raises."""


class NoSessionError(WorkbenchError, RuntimeError):
    """A helper needs a stack and none is known: call `workbench.start()` first."""


class RestateError(WorkbenchError, RuntimeError):
    """Restate's admin API or ingress answered with an error, or did not answer."""


class StackError(WorkbenchError, RuntimeError):
    """Base class of every error the stack raises (`workbench.stack`)."""


class RegistrationError(StackError):
    """The Restate admin API refused (or never accepted) the services deployment."""

    def __init__(self, message: str, *, status_code: int | None, response_text: str) -> None:
        super().__init__(message)
        self.status_code = status_code
        self.response_text = response_text


class AdminError(RestateError):
    """Restate's admin API refused a call; the message quotes its answer."""

    def __init__(self, message: str, *, status_code: int | None = None) -> None:
        super().__init__(message)
        self.status_code = status_code


class ClaimError(RestateError):
    """Restate refused or failed a claim request; the message says why and what to do."""


class ClaimNotFoundError(ClaimError, LookupError):
    """No claim with that id was submitted to this Restate server."""


class ClaimStateError(ClaimError):
    """The claim is not in a state that allows the operation (e.g. approving a claim that was
    cancelled, killed or already decided)."""


class ClaimTimeoutError(ClaimError, TimeoutError):
    """A claim did not reach the awaited state in time."""


class LangfuseError(WorkbenchError, RuntimeError):
    """Langfuse could not be reached, refused the keys, or refused the request."""


class PromptError(LangfuseError):
    """Langfuse refused a prompt operation; the message says what was wrong and how to fix it."""


class PromptNotFoundError(PromptError, LookupError):
    """No such prompt, version or label."""


class UnknownPromptLabelError(WorkbenchError, ValueError):
    """A claim names a prompt label that no prompt carries."""


class TraceNotFoundError(WorkbenchError, LookupError):
    """No trace for that claim (or trace id) yet; the message says what was tried."""


class TraceTimeoutError(WorkbenchError, TimeoutError):
    """A trace did not reach the expected state in time; the message says what it held."""


class ScoresTimeoutError(WorkbenchError, TimeoutError):
    """Scores did not land in time; the message names the traces still without one."""


class DeploymentInUseError(WorkbenchError, RuntimeError):
    """A deployment cannot be retired yet: invocations are pinned to it, or it serves new
    claims. The message names them and says what to do."""


class DeploymentNotFoundError(WorkbenchError, LookupError):
    """No deployment runs that version; the message lists the versions there are."""


class ExperimentError(WorkbenchError, RuntimeError):
    """An experiment cannot start, failed, or is not in a state that allows the operation; the
    message says why and what to do."""


class ExperimentExistsError(ExperimentError, ValueError):
    """An experiment of that name exists with other documents, variants or settings: its name
    stays taken (Restate keeps a finished experiment); run under a new name."""


class ExperimentNotFoundError(ExperimentError, LookupError):
    """No experiment of that name was started on this Restate server."""


class ExperimentTimeoutError(ExperimentError, TimeoutError):
    """An experiment (or its scores) did not finish in time; the message says where it stands."""


class SweepError(WorkbenchError, RuntimeError):
    """A crash-point sweep could not run: no stack of the workbench's to crash, a baseline claim
    that did not complete, steps that are not boundaries of the claim."""


class ServeError(WorkbenchError, RuntimeError):
    """`wb.serve` could not serve or register a service defined in the kernel (not a Restate
    service, the stack not running, a name taken by another deployment, Restate refused it);
    the message says what to do."""


class NotAServiceError(ServeError, TypeError):
    """`wb.serve` was given something that is not a Restate service (nor a 'module:attribute'
    naming one)."""
