"""The retry policy's window, the one-line-per-outage log, and the summary of retried attempts."""

from __future__ import annotations

import logging
import sys

import pytest

from services import logs, outage, retries


def test_the_window_is_spanned_by_capped_backoff() -> None:
    # 0.2 + 0.4 + 0.5 * 19 >= 10 s: 21 retries after the first attempt
    assert retries.attempts_for_window(10, 200, 500) == 22
    assert retries.attempts_for_window(600, 200, 500) == 1202
    assert retries.attempts_for_window(0, 200, 500) == 1


def test_the_policy_pauses_after_the_window_and_is_configurable(monkeypatch) -> None:
    policy = retries.retry_policy()
    assert policy.on_max_attempts == "pause"
    assert policy.max_interval.total_seconds() == 0.5
    assert policy.max_attempts == retries.attempts_for_window(600, 200, 500)
    monkeypatch.setenv("WORKBENCH_OUTAGE_WINDOW_S", "60")
    monkeypatch.setenv("WORKBENCH_RETRY_MAX_INTERVAL_MS", "1000")
    assert retries.retry_policy().max_attempts == retries.attempts_for_window(60, 200, 1000)
    monkeypatch.setenv("WORKBENCH_RETRY_MAX_ATTEMPTS", "7")
    assert retries.retry_policy().max_attempts == 7
    monkeypatch.setenv("WORKBENCH_OUTAGE_WINDOW_S", "ten minutes")
    with pytest.raises(ValueError, match="WORKBENCH_OUTAGE_WINDOW_S='ten minutes' is not a whole"):
        retries.retry_policy()


def test_an_outage_is_one_line_a_reminder_and_one_line_at_its_end(monkeypatch, caplog) -> None:
    clock = [100.0]
    monkeypatch.setattr(outage.time, "monotonic", lambda: clock[0])
    down = outage.Outage("Langfuse", logging.getLogger("test.outage"), remind_s=60)
    with caplog.at_level(logging.WARNING, logger="test.outage"):
        for _ in range(70):
            down.failed("http://lf", ConnectionRefusedError(111, "refused"), "using files")
            clock[0] += 1
        down.answered("http://lf")
        down.answered("http://lf")
    lines = [r.getMessage() for r in caplog.records]
    assert lines == [
        "Langfuse at http://lf is unreachable (ConnectionRefusedError: [Errno 111] refused): "
        "using files",
        "Langfuse at http://lf is still unreachable after 60 s (59 more failures; last: "
        "ConnectionRefusedError: [Errno 111] refused)",
        "Langfuse at http://lf answers again (it was unreachable for 70.0 s)",
    ]


def _vm_exception(message: str) -> BaseException:
    cls = type("VMException", (Exception,), {})
    return cls(message)


def _record(error: BaseException) -> logging.LogRecord:
    return logging.LogRecord(
        "restate.server_context",
        logging.ERROR,
        __file__,
        1,
        "Exception in do_progress",
        (),
        (type(error), error, None),
    )


def test_retried_attempts_are_one_line_each_reason_at_most_once_a_minute(monkeypatch) -> None:
    clock = [0.0]
    monkeypatch.setattr(logs.time, "monotonic", lambda: clock[0])
    summary = logs.RetriedAttempts(every_s=60)
    error = _vm_exception("(503) The model endpoint is down\nRelated command: run [call LLM]")
    first = _record(error)
    assert summary.filter(first)
    assert first.getMessage() == (
        "An attempt failed at run [call LLM]; Restate retries it: (503) The model endpoint is down"
    )
    assert first.exc_info is None and first.levelno == logging.INFO
    assert [summary.filter(_record(error)) for _ in range(3)] == [False] * 3
    clock[0] = 61
    again = _record(error)
    assert summary.filter(again) and again.getMessage().endswith("(and 3 more like it)")
    other = ValueError("a bug")
    assert summary.filter(_record(other)) and _record(other).exc_info is not None


def test_install_is_idempotent() -> None:
    logs.install()
    logs.install()
    sdk = logging.getLogger(logs.SDK_LOGGER)
    assert sum(isinstance(f, logs.RetriedAttempts) for f in sdk.filters) == 1
    assert sys.modules["services.logs"] is logs
