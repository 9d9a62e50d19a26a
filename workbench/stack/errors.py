"""Errors raised by the stack. Each message names what went wrong and what to do about it."""

from __future__ import annotations

from pathlib import Path

from ..errors import RegistrationError, StackError

__all__ = [
    "BinaryNotFoundError",
    "NotRunningError",
    "PortTakenError",
    "ProcessExitedError",
    "RegistrationError",
    "ResetRefusedError",
    "StackError",
    "StackWarning",
    "StartTimeoutError",
]


class BinaryNotFoundError(StackError):
    """The restate-server binary could not be found."""


class PortTakenError(StackError):
    """A port that was set explicitly is already in use."""

    def __init__(self, message: str, *, port: int, source: str) -> None:
        super().__init__(message)
        self.port = port
        self.source = source


class ProcessExitedError(StackError):
    """A process exited while the stack was starting (or supervisord gave up restarting it)."""

    def __init__(self, message: str, *, name: str, log_path: Path, log_tail: str) -> None:
        super().__init__(message)
        self.name = name
        self.log_path = log_path
        self.log_tail = log_tail


class StartTimeoutError(StackError):
    """A process did not become ready in time."""

    def __init__(self, message: str, *, name: str, log_path: Path | None, log_tail: str) -> None:
        super().__init__(message)
        self.name = name
        self.log_path = log_path
        self.log_tail = log_tail


class NotRunningError(StackError):
    """An operation needs a running stack (or a running process) and there is none."""


class StackWarning(UserWarning):
    """Something the stack can run without, but the user should know (one line, naming the URL):
    Langfuse unreachable, the model endpoint not answering, claims resumed."""


class ResetRefusedError(StackError):
    """`reset` was asked to delete a folder the stack did not create, or was not confirmed."""
