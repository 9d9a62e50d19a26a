"""`python -m workbench` without a stack: status, logs and down import nothing heavy; `logs` knows
every process, names the valid ones on a typo and follows logs until Ctrl-C; `--help` names the
four processes; the ports a start moved from their defaults are said, with why."""

from __future__ import annotations

import json
import os
import signal
import socket
import subprocess
import sys
import threading
import time
from collections.abc import Callable
from pathlib import Path

import pytest

from workbench.__main__ import format_table, main
from workbench.stack.config import PortRequest
from workbench.stack.logs import LogFollower, UnknownProcessError, log_path, log_paths
from workbench.stack.ports import PortMove, allocate_ports, port_moves
from workbench.stack.state import StackState

PROCESSES = ["langfuse", "llm", "restate", "services"]
HEAVY = ["pandas", "numpy", "openai", "agents", "langfuse", "restate", "ipywidgets", "matplotlib"]
WAIT_S = 20.0


def _home_with_logs(tmp_path: Path, names: list[str]) -> Path:
    home = tmp_path / "home"
    (home / "logs").mkdir(parents=True)
    for name in names:
        (home / "logs" / f"{name}.log").write_text(f"first line of {name}\nlast line of {name}\n")
    return home


def _recorded_stack(home: Path) -> None:
    """A stack.json as a start writes it, whose supervisord no longer answers (port 9 is
    discard: nothing of ours listens there), so status has rows and nothing to reach."""
    home.mkdir(parents=True, exist_ok=True)
    processes = {
        name: {"kind": name, "name": name, "command": ["true"], "port": 1, "env": {}}
        for name in ("llm", "services")
    }
    processes["llm"].update(host="127.0.0.1", url="http://127.0.0.1:1")
    processes["services"].update(
        host="127.0.0.1", url="http://127.0.0.1:1", admin_url="http://127.0.0.1:2"
    )
    StackState(
        home=str(home),
        project=str(home),
        stack_id="x",
        persistent=True,
        started_at=0.0,
        supervisor={"pid": 1, "port": 9, "username": "u", "password": "p", "identifier": "i"},
        processes=processes,
        urls={"ingress": None, "admin": None, "llm": None, "services": None},
    ).save()


def _imported_by(home: Path, *args: str) -> tuple[set[str], subprocess.CompletedProcess[str]]:
    """The top-level modules `python -X importtime -m workbench <args>` imported."""
    done = subprocess.run(
        [sys.executable, "-X", "importtime", "-m", "workbench", "--home", str(home), *args],
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
        env={**os.environ, "WORKBENCH_HOME": str(home)},
    )
    modules = {
        line.rsplit("|", 1)[1].strip().split(".")[0]
        for line in done.stderr.splitlines()
        if line.startswith("import time:") and "|" in line
    }
    return modules, done


@pytest.mark.parametrize(
    "args",
    [["status"], ["logs"], ["logs", "llm", "-n", "3"], ["down"], ["--help"]],
    ids=["status", "logs", "logs-one", "down", "help"],
)
def test_status_logs_and_down_import_no_heavy_module(tmp_path: Path, args: list[str]) -> None:
    home = _home_with_logs(tmp_path, ["llm"])
    _recorded_stack(home)
    modules, done = _imported_by(home, *args)
    assert "workbench" in modules, done.stderr[-2000:]  # the measurement itself worked
    assert "Traceback" not in done.stderr, done.stderr[-2000:]
    assert sorted(modules & set(HEAVY)) == []


def test_status_of_a_recorded_stack_is_a_table_without_pandas(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    home = tmp_path / "home"
    _recorded_stack(home)
    assert main(["--home", str(home), "status"]) == 0
    out = capsys.readouterr().out.splitlines()
    assert out[0].split() == ["name", "state", "pid", "port", "url", "uptime_s", "restarts", "log"]
    assert [line.split()[:2] for line in out[1:3]] == [["llm", "STOPPED"], ["services", "STOPPED"]]


def test_the_status_table_aligns_numbers_right_and_shows_nothing_as_a_dash() -> None:
    rows = [
        {"name": "llm", "state": "RUNNING", "pid": 7, "port": 8788, "uptime_s": 12.345},
        {"name": "services", "state": "STOPPED", "pid": None, "port": 19080, "uptime_s": None},
    ]
    lines = format_table(rows).splitlines()
    assert lines[0].startswith("name      state    pid   port")
    assert lines[1].startswith("llm       RUNNING    7   8788") and " 12.3 " in lines[1]
    assert lines[2].startswith("services  STOPPED    -  19080")


def test_help_names_the_four_processes(capsys: pytest.CaptureFixture[str]) -> None:
    for args in (["--help"], ["logs", "--help"]):
        with pytest.raises(SystemExit) as exited:
            main(args)
        assert exited.value.code == 0
        out = capsys.readouterr().out
        for name in PROCESSES:
            assert f"\n  {name} " in out, f"{args}: {name} not listed in\n{out}"
    assert "supervisord" in out and "--follow" in out


def test_logs_shows_every_process_langfuse_included_not_previous_runs(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    home = _home_with_logs(tmp_path, [*PROCESSES, "supervisord", "services-v2"])
    (home / "logs" / "llm.previous.log").write_text("an earlier run\n")
    assert main(["--home", str(home), "logs", "-n", "1"]) == 0
    out = capsys.readouterr().out
    headers = [line for line in out.splitlines() if line.startswith("==> ")]
    order = [*PROCESSES, "services-v2", "supervisord"]
    assert headers == [f"==> {home / 'logs' / f'{n}.log'} <==" for n in order]
    assert "last line of langfuse" in out and "first line" not in out
    assert "an earlier run" not in out


def test_a_typo_names_the_valid_processes_and_fails(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    home = _home_with_logs(tmp_path, ["llm"])
    assert main(["--home", str(home), "logs", "restat"]) == 1
    err = capsys.readouterr().err
    assert err.startswith("error: No process 'restat'")
    assert "langfuse, llm, restate, services, supervisord" in err
    assert "Did you mean 'restate'?" in err
    with pytest.raises(UnknownProcessError, match=r"No process 'lfuse'.*'langfuse'"):
        log_path(home, "lfuse")


def test_a_known_process_without_a_log_yet_says_so(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    home = _home_with_logs(tmp_path, ["llm"])
    assert main(["--home", str(home), "logs", "langfuse"]) == 1
    assert "no log for langfuse yet" in capsys.readouterr().err


def test_log_paths_include_programs_of_the_recorded_stack(tmp_path: Path) -> None:
    home = tmp_path / "home"
    _recorded_stack(home)
    state = json.loads((home / "stack.json").read_text())
    state["processes"]["services-v2"] = {**state["processes"]["services"], "name": "services-v2"}
    (home / "stack.json").write_text(json.dumps(state))
    assert list(log_paths(home)) == [*PROCESSES, "services-v2", "supervisord"]


class _Collected:
    """What follow_logs wrote, and a stop condition that waits for some text (or a deadline)."""

    def __init__(self) -> None:
        self.text = ""
        self.lock = threading.Lock()

    def write(self, text: str) -> None:
        with self.lock:
            self.text += text

    def wait_for(self, wanted: str, timeout_s: float = WAIT_S) -> None:
        deadline = time.monotonic() + timeout_s
        while wanted not in self.text:
            assert time.monotonic() < deadline, f"{wanted!r} never came; got {self.text!r}"
            time.sleep(0.01)


def _following(
    paths: dict[str, Path], collected: _Collected
) -> tuple[threading.Thread, Callable[[], None]]:
    follower = LogFollower(paths)  # opened here: what the test writes next is followed
    done = threading.Event()

    def run() -> None:
        with follower:
            follower.follow(collected.write, poll_interval_s=0.01, stop=done.is_set)

    thread = threading.Thread(target=run, daemon=True)
    thread.start()
    return thread, done.set


def test_follow_reads_appends_rotations_truncations_and_late_files(tmp_path: Path) -> None:
    home = _home_with_logs(tmp_path, ["llm"])
    llm, restate = home / "logs" / "llm.log", home / "logs" / "restate.log"
    collected = _Collected()
    thread, stop = _following({"llm": llm, "restate": restate}, collected)
    try:
        with llm.open("a") as log:  # appended: only the new text (the tail was printed before)
            log.write("appended\n")
        collected.wait_for("appended\n")
        assert "first line" not in collected.text
        assert collected.text.startswith(f"\n==> {llm} <==\n")
        restate.write_text("restate came up\n")  # a file that appears later: from its start
        collected.wait_for(f"==> {restate} <==\nrestate came up\n")
        with llm.open("a") as log:  # rotated as supervisord does: the rest, then the new file
            log.write("before rotation\n")
        llm.rename(llm.with_name("llm.log.1"))
        llm.write_text("after rotation\n")
        collected.wait_for("after rotation\n")
        assert "before rotation\n" in collected.text
        llm.write_text("cut!\n")  # truncated in place to less than was read: read from 0
        collected.wait_for("after rotation\ncut!\n")
        with llm.open("ab") as log:  # a character split across two writes is not mangled
            log.write("é".encode()[:1])
            log.flush()
            time.sleep(0.05)  # let the follower read the first half alone
            log.write("é".encode()[1:] + b"\n")
        collected.wait_for("é\n")
    finally:
        stop()
        thread.join(timeout=WAIT_S)
    assert not thread.is_alive()
    assert "\ufffd" not in collected.text


def test_logs_follow_prints_new_lines_and_ends_cleanly_on_sigint(tmp_path: Path) -> None:
    home = _home_with_logs(tmp_path, ["llm"])
    process = subprocess.Popen(
        [sys.executable, "-m", "workbench", "--home", str(home), "logs", "llm", "-n", "1", "-f"],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    try:
        assert process.stdout is not None
        assert process.stdout.readline() == "last line of llm\n"  # the tail, printed first
        with (home / "logs" / "llm.log").open("a") as log:
            log.write("a new line\n")
        assert process.stdout.readline() == "a new line\n"
        process.send_signal(signal.SIGINT)
        assert process.wait(timeout=WAIT_S) == 0
        assert process.stderr is not None and process.stderr.read() == ""
    finally:
        if process.poll() is None:
            process.kill()
            process.wait()


def test_a_taken_default_port_is_reported_with_why(tmp_path: Path) -> None:
    with socket.socket() as held:
        held.bind(("127.0.0.1", 0))
        held.listen(1)
        taken = held.getsockname()[1]
        last_run = allocate_ports({"x": PortRequest("x", 1)})["x"]  # a port free right now
        requests = {
            "ingress": PortRequest("ingress", taken),
            "admin": PortRequest("admin", taken + 1 if taken < 65535 else taken - 1),
            "services": PortRequest("services", taken),
            "llm": PortRequest("llm", taken, explicit=last_run, source="WORKBENCH_LLM_PORT"),
        }
        previous = {"services": allocate_ports({"y": PortRequest("y", 1)})["y"]}
        defaults = {k: v for k, v in requests.items() if k != "llm"}
        chosen = allocate_ports(defaults, previous=previous)
        chosen["llm"] = last_run
        moves = port_moves(requests, chosen, previous=previous)
    by_name = {move.name: move for move in moves}
    assert by_name["ingress"].default == taken and by_name["ingress"].port != taken
    assert f"the default {taken} was taken" in by_name["ingress"].describe()
    assert by_name["services"].kept_from_last_run
    assert "kept from the last run" in by_name["services"].describe()
    assert "llm" not in by_name, "an explicit port is never moved, so never listed"
    if chosen["admin"] == requests["admin"].default:
        assert "admin" not in by_name, "a default that was free is not listed"


def test_moved_ports_are_kept_in_the_stack_state_and_printed_by_up(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    from workbench.__main__ import _print_moved_ports
    from workbench.stack.stack import Stack

    home = tmp_path / "home"
    _recorded_stack(home)
    state = StackState.load(home)
    assert state is not None and state.moved_ports == []
    move = PortMove("ingress", 8080, 41234, owner="pid 7 (nginx)")
    state.moved_ports = [move.__dict__]
    state.save()
    loaded = StackState.load(home)
    assert loaded is not None
    assert Stack(loaded).moved_ports == [move]
    _print_moved_ports(Stack(loaded).moved_ports)
    out = capsys.readouterr().out
    assert "ingress on port 41234: the default 8080 was taken by pid 7 (nginx)" in out
    assert "WORKBENCH_<NAME>_PORT" in out
