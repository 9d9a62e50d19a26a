"""The services' log: one line per event, and failed attempts that Restate retries summarised
instead of a traceback each.

When a journaled step fails transiently (the model endpoint down, a tool error), the SDK logs
"Exception in do_progress" with a traceback that only points into its own VM, once per attempt:
during an outage that is several tracebacks a second per claim. `RetriedAttempts` turns each into
one line ("attempt failed, Restate retries: <reason> [<step>]") and lets the same reason at the
same step through at most once per `every_s`, counting the ones it held back. The outage itself
is reported by the code that met it (`outage.Outage`)."""

from __future__ import annotations

import logging
import threading
import time

SDK_LOGGER = "restate.server_context"


class RetriedAttempts(logging.Filter):
    def __init__(self, every_s: float = 60.0) -> None:
        super().__init__()
        self.every_s = every_s
        self._seen: dict[str, tuple[float | None, int]] = {}
        self._lock = threading.Lock()

    def filter(self, record: logging.LogRecord) -> bool:
        error = record.exc_info[1] if record.exc_info else None
        if error is None or type(error).__name__ != "VMException":
            return True
        lines = [line.strip() for line in str(error).splitlines() if line.strip()]
        reason = lines[0] if lines else type(error).__name__
        command = next((line for line in lines if line.startswith("Related command")), "")
        key = f"{reason[:80]}|{command}"
        now = time.monotonic()
        with self._lock:
            last, held = self._seen.get(key, (None, 0))
            if last is not None and now - last < self.every_s:
                self._seen[key] = (last, held + 1)
                return False
            self._seen[key] = (now, 0)
            if len(self._seen) > 1000:
                self._seen.clear()
        where = command.removeprefix("Related command: ") or "the handler"
        also = f" (and {held} more like it)" if held else ""
        record.msg = f"An attempt failed at {where}; Restate retries it: {reason[:300]}{also}"
        record.args = ()
        record.exc_info = None
        record.exc_text = None
        record.levelno, record.levelname = logging.INFO, "INFO"
        return True


def install(every_s: float = 60.0) -> None:
    """Summarise the SDK's per-attempt tracebacks (idempotent)."""
    logger = logging.getLogger(SDK_LOGGER)
    if not any(isinstance(f, RetriedAttempts) for f in logger.filters):
        logger.addFilter(RetriedAttempts(every_s))
