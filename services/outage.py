"""One log line per outage of a dependency (the model endpoint, Langfuse), not one per request.

While a dependency is down every claim touches it several times a second; logging each failure
(let alone its traceback) buries the log. `Outage` logs the first failure, a reminder at most
every `remind_s` while it lasts (with how many failures it swallowed), and one line when the
dependency answers again."""

from __future__ import annotations

import logging
import threading
import time


class Outage:
    def __init__(self, what: str, log: logging.Logger, *, remind_s: float = 300.0) -> None:
        self.what = what
        self.log = log
        self.remind_s = remind_s
        self._lock = threading.Lock()
        self._since: float | None = None
        self._logged_at = 0.0
        self._swallowed = 0

    @property
    def down(self) -> bool:
        return self._since is not None

    def failed(self, where: str, error: BaseException | str, consequence: str) -> None:
        """Note one failure; logs only the first of an outage and the periodic reminders."""
        reason = error if isinstance(error, str) else describe(error)
        now = time.monotonic()
        with self._lock:
            if self._since is None:
                self._since, self._logged_at, self._swallowed = now, now, 0
                message = f"{self.what} at {where} is unreachable ({reason}): {consequence}"
            elif now - self._logged_at >= self.remind_s:
                message = (
                    f"{self.what} at {where} is still unreachable after "
                    f"{now - self._since:.0f} s ({self._swallowed} more failures; last: {reason})"
                )
                self._logged_at, self._swallowed = now, 0
            else:
                self._swallowed += 1
                return
        self.log.warning(message)

    def answered(self, where: str) -> None:
        """Note a success; logs the end of an outage once."""
        if self._since is None:  # the common case, without the lock
            return
        with self._lock:
            if self._since is None:
                return
            lasted = time.monotonic() - self._since
            self._since = None
        self.log.warning(
            "%s at %s answers again (it was unreachable for %.1f s)", self.what, where, lasted
        )


def describe(error: BaseException) -> str:
    """`ConnectError: [Errno 111] Connection refused`, on one line and short."""
    text = getattr(error, "message", None) or str(error) or ""
    text = " ".join(str(text).split())
    name = type(error).__name__
    return f"{name}: {text[:200]}" if text and text != name else name


LANGFUSE = Outage("Langfuse", logging.getLogger("services.langfuse"))
"""Shared by the prompt fetches and the score writes: one line per Langfuse outage."""
