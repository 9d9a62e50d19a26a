"""The home folder without processes: what it remembers, its permissions, the ports reused,
a `reset` that refuses what is not a workbench home, and the CLI's one-line errors."""

from __future__ import annotations

import os
import socket
import sqlite3
import stat
import subprocess
import sys
from contextlib import closing
from pathlib import Path

import pytest

from services.ledger import Ledger
from workbench.stack import home as homes
from workbench.stack.config import PortRequest
from workbench.stack.errors import ResetRefusedError
from workbench.stack.ports import allocate_ports
from workbench.stack.reset import reset, reset_plan

PROJECT = Path(__file__).resolve().parents[2]


def _mode(path: Path) -> int:
    return stat.S_IMODE(path.stat().st_mode)


def test_keys_are_generated_once_per_home_and_kept_private(tmp_path: Path) -> None:
    home = tmp_path / "home"
    homes.prepare(home)
    record = homes.HomeRecord.load(home)
    public, secret = record.keys()
    assert public.startswith("pk-lf-") and secret.startswith("sk-lf-")
    assert (public, secret) != ("pk-lf-local", "sk-lf-local") and len(secret) > 40
    record.save(home)
    assert homes.HomeRecord.load(home).keys() == (public, secret), "the same keys next time"
    assert _mode(home / homes.HOME_FILE) == 0o600
    other = tmp_path / "other"
    homes.prepare(other)
    assert homes.HomeRecord.load(other).keys() != (public, secret), "no two homes share keys"


def test_updates_merge_and_a_damaged_file_starts_over(tmp_path: Path) -> None:
    homes.prepare(tmp_path)
    homes.update(tmp_path, ports={"services": 9080}, deployments={"services": "dp_1"})
    homes.update(tmp_path, deployments={"services-v2": "dp_2"})
    record = homes.HomeRecord.load(tmp_path)
    assert record.deployments == {"services": "dp_1", "services-v2": "dp_2"}
    assert record.ports == {"services": 9080}
    (tmp_path / homes.HOME_FILE).write_text("{not json")
    assert homes.HomeRecord.load(tmp_path) == homes.HomeRecord()


def test_the_home_is_0700_and_its_data_and_logs_0600(tmp_path: Path) -> None:
    home = tmp_path / "home"
    homes.prepare(home)
    os.chmod(home, 0o755)
    os.chmod(home / "logs", 0o755)
    for name in ("ledger.sqlite3", "ledger.sqlite3-wal", "langfuse.sqlite3", "stack.json"):
        (home / name).write_text("x")
        os.chmod(home / name, 0o644)
    (home / "logs" / "services.log").write_text("x")
    os.chmod(home / "logs" / "services.log", 0o644)
    homes.secure(home)
    assert _mode(home) == 0o700 and _mode(home / "logs") == 0o700
    for path in [*home.glob("*.sqlite3*"), home / "stack.json", home / "logs" / "services.log"]:
        assert _mode(path) == 0o600, path


def test_ports_of_the_last_run_are_reused_when_free() -> None:
    with socket.socket() as held:
        held.bind(("127.0.0.1", 0))
        held.listen(1)
        taken = held.getsockname()[1]
        free = allocate_ports({"x": PortRequest("x", 1)})["x"]  # a port free right now
        requests = {"a": PortRequest("a", 1), "b": PortRequest("b", 1)}
        chosen = allocate_ports(requests, previous={"a": free, "b": taken})
    assert chosen["a"] == free, "the previous port, free: reused"
    assert chosen["b"] not in (taken, free), "the previous port, taken: another one"


def test_reset_refuses_a_folder_the_workbench_did_not_create(tmp_path: Path) -> None:
    foreign = tmp_path / "my-data"
    foreign.mkdir()
    (foreign / "important.db").write_text("keep me")
    (foreign / "stack.json").write_text("{}")
    plan = reset_plan(foreign)
    assert not plan.ours and "is not a workbench home" in plan.describe()
    with pytest.raises(ResetRefusedError, match=r"it has no \.workbench-home file"):
        reset(foreign, yes=True)
    assert sorted(p.name for p in foreign.iterdir()) == ["important.db", "stack.json"]


def test_reset_shows_what_it_deletes_and_needs_confirmation(tmp_path: Path) -> None:
    home = tmp_path / "home"
    homes.prepare(home)
    ledger = Ledger(home / "ledger.sqlite3")
    for i in range(3):
        ledger.pay(f"claim/c{i}/reimburse", f"c{i}", "C-1", 10.0)
    with closing(sqlite3.connect(home / "langfuse.sqlite3")) as db:
        db.executescript(
            "CREATE TABLE traces (id TEXT); CREATE TABLE scores (id TEXT);"
            "CREATE TABLE prompts (name TEXT, version INT, prompt TEXT);"
            "INSERT INTO traces VALUES ('t1'), ('t2');"
        )
        seed = (PROJECT / "data" / "prompts" / "claim-parser.v1.md").read_text()
        db.execute("INSERT INTO prompts VALUES ('claim-parser', 1, ?)", (seed,))
        db.execute("INSERT INTO prompts VALUES ('claim-parser', 2, 'mine')")
        db.commit()
    plan = reset_plan(home)
    text = plan.describe()
    assert (plan.payments, plan.traces, plan.scores, plan.user_prompts) == (3, 2, 0, 1)
    assert "3 payments in the ledger" in text and "2 traces and no scores" in text
    assert "1 prompt versions created by you" in text
    assert "not counted" in text, "Restate's journals: the stack is stopped"
    with pytest.raises(ResetRefusedError, match=r"not confirmed: .* Pass --yes"):
        reset(home)
    assert home.exists()
    assert reset(home, yes=True) == home and not home.exists()


def _cli(*args: str, env: dict[str, str] | None = None) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "workbench", *args],
        capture_output=True,
        text=True,
        timeout=120,
        stdin=subprocess.DEVNULL,
        env={**os.environ, **(env or {})},
        cwd=PROJECT,
    )


def test_cli_reset_refuses_a_foreign_folder_in_one_line(tmp_path: Path) -> None:
    (tmp_path / "notes.sqlite3").write_text("mine")
    done = _cli("--home", str(tmp_path), "reset", "--yes")
    assert done.returncode == 1
    assert done.stderr.startswith("error: refusing to reset") and done.stderr.count("\n") == 1
    assert "Traceback" not in done.stderr and (tmp_path / "notes.sqlite3").exists()


def test_cli_reset_without_a_terminal_needs_yes(tmp_path: Path) -> None:
    home = tmp_path / "home"
    homes.prepare(home)
    done = _cli("--home", str(home), "reset")
    assert done.returncode == 1 and "reset deletes the workbench home" in done.stdout
    assert done.stderr.strip().endswith("run `python -m workbench reset --yes` to delete it")
    assert home.exists()
    done = _cli("--home", str(home), "reset", "--yes")
    assert done.returncode == 0 and not home.exists()


@pytest.mark.parametrize(
    ("env", "message"),
    [
        ({"WORKBENCH_INGRESS_PORT": "eighty"}, "WORKBENCH_INGRESS_PORT='eighty' is not a port"),
        ({"WORKBENCH_LLM_PORT": "70000"}, "WORKBENCH_LLM_PORT=70000 is out of range"),
        (
            {"LANGFUSE_BASE_URL": "https://cloud.langfuse.com", "LANGFUSE_PUBLIC_KEY": ""},
            "LANGFUSE_PUBLIC_KEY/LANGFUSE_SECRET_KEY are not",
        ),
        ({"RESTATE_SERVER_BIN": "/nonexistent/restate"}, "is not an executable file"),
    ],
    ids=["port-word", "port-range", "langfuse-keys", "binary"],
)
def test_cli_configuration_mistakes_are_one_error_line(tmp_path: Path, env, message) -> None:
    done = _cli("--home", str(tmp_path / "home"), "up", env=env)
    assert done.returncode == 1
    assert done.stderr.startswith("error: ") and message in done.stderr
    assert "Traceback" not in done.stderr and done.stderr.count("\n") == 1


def test_a_folder_the_user_chose_keeps_its_mode_and_files(tmp_path: Path) -> None:
    folder = tmp_path / "mine"
    folder.mkdir(mode=0o755)
    (folder / "notes.db").write_text("x")
    os.chmod(folder / "notes.db", 0o644)
    homes.prepare(folder)  # not empty: no marker, not the stack's folder
    (folder / "ledger.sqlite3").write_text("x")
    os.chmod(folder / "ledger.sqlite3", 0o644)
    homes.secure(folder)
    assert not homes.is_home(folder)
    assert _mode(folder) == 0o755 and _mode(folder / "notes.db") == 0o644
    assert _mode(folder / "ledger.sqlite3") == 0o600, "the stack's own file is private"
