"""The processes' log files: which there are, and following them as `tail -f` does.

    paths = log_paths(home)              # {"langfuse": <home>/logs/langfuse.log, ...}
    log_path(home, "restat")             # UnknownProcessError naming the valid names
    with LogFollower(paths) as follower: # opened now: nothing written from here is missed
        follower.tail(50)                # [(path, the last 50 lines up to here), ...]
        follower.follow(sys.stdout.write)  # until stop() or Ctrl-C (KeyboardInterrupt)

A log is followed across what happens to it while the stack runs: supervisord rotating it
(`<name>.log` renamed to `<name>.log.1`, a new file opened: the rest of the old one is read first),
a fresh start moving it to `<name>.previous.log`, a file that appears only later.
"""

from __future__ import annotations

import codecs
import difflib
import os
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import BinaryIO

from .errors import StackError
from .processes import KINDS
from .state import StackState

SUPERVISORD = "supervisord"
READ_CHUNK_BYTES = 64 * 1024


class UnknownProcessError(StackError, KeyError):
    """A process name the stack does not know (a typo): the message names the valid ones."""

    def __str__(self) -> str:  # KeyError would quote the message
        return str(self.args[0]) if self.args else ""


def log_paths(home: Path) -> dict[str, Path]:
    """Every process's log file by name, whether it exists yet or not: the kinds a stack runs
    (langfuse, llm, restate, services, in start order), the programs the running stack recorded
    (e.g. `services-v2`), the logs left in the folder, then supervisord's own."""
    logs = home / "logs"
    names: dict[str, None] = dict.fromkeys(KINDS)
    state = StackState.load(home)
    if state is not None:
        names.update(dict.fromkeys(state.processes))
    if logs.is_dir():
        found = sorted(p.stem for p in logs.glob("*.log") if "." not in p.stem)
        names.update(dict.fromkeys(n for n in found if n != SUPERVISORD))
    paths = {name: logs / f"{name}.log" for name in names}
    paths[SUPERVISORD] = logs / f"{SUPERVISORD}.log"
    return paths


def log_path(home: Path, name: str) -> Path:
    """The log file of process `name`; UnknownProcessError (naming the valid ones and the
    nearest) for a name the stack does not know."""
    paths = log_paths(home)
    if name in paths:
        return paths[name]
    near = difflib.get_close_matches(name, list(paths), n=1)
    hint = f" Did you mean {near[0]!r}?" if near else ""
    raise UnknownProcessError(
        f"No process {name!r} in the stack in {home}; its logs are: {', '.join(paths)}.{hint}"
    )


@dataclass
class _Followed:
    name: str
    path: Path
    file: BinaryIO | None = None
    inode: tuple[int, int] | None = None
    decoder: codecs.IncrementalDecoder = field(
        default_factory=lambda: codecs.getincrementaldecoder("utf-8")(errors="replace")
    )

    def open(self, *, at_end: bool) -> None:
        try:
            file = self.path.open("rb")
        except FileNotFoundError:
            return
        stat = os.fstat(file.fileno())
        self.file, self.inode = file, (stat.st_dev, stat.st_ino)
        if at_end:
            file.seek(0, os.SEEK_END)
        self.decoder.reset()

    def close(self) -> None:
        if self.file is not None:
            self.file.close()
        self.file = self.inode = None

    def read(self) -> str:
        """What was written since the last read, following a rotation or a truncation."""
        if self.file is None:
            self.open(at_end=False)  # appeared since: read it from its start
            if self.file is None:
                return ""
        text = self._drain()
        try:
            stat = self.path.stat()
        except FileNotFoundError:
            return text  # rotated away; the next file is read once it appears
        assert self.file is not None
        if (stat.st_dev, stat.st_ino) != self.inode:  # a new file at the path (rotation)
            text += self._drain()
            self.close()
            self.open(at_end=False)
            return text + self._drain()
        if stat.st_size < self.file.tell():  # truncated in place
            self.file.seek(0)
            return text + self._drain()
        return text

    def _drain(self) -> str:
        if self.file is None:
            return ""
        chunks = []
        while data := self.file.read(READ_CHUNK_BYTES):
            chunks.append(self.decoder.decode(data))
        return "".join(chunks)


class LogFollower:
    """Follows logs from the moment it is made: each file is opened (at its end) at once, so
    nothing written after that is missed, and `tail()` prints what came before, up to there.

        with LogFollower(paths) as follower:
            for path, text in follower.tail(50): print(text)
            follower.follow(sys.stdout.write)          # until stop() or Ctrl-C
    """

    def __init__(self, paths: Mapping[str, Path], *, headers: bool | None = None) -> None:
        self._followed = [_Followed(name, path) for name, path in paths.items()]
        self._headers = len(self._followed) > 1 if headers is None else headers
        self._last: _Followed | None = None
        for each in self._followed:
            each.open(at_end=True)

    def __enter__(self) -> LogFollower:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def close(self) -> None:
        for each in self._followed:
            each.close()

    def tail(self, lines: int) -> list[tuple[Path, str]]:
        """The last `lines` lines of each log that exists, up to where following starts."""
        return [
            (each.path, _tail(each.file, lines)) for each in self._followed if each.file is not None
        ]

    def read(self) -> str:
        """What the logs got since the last read (with `==> path <==` headers between logs)."""
        out = []
        for each in self._followed:
            text = each.read()
            if not text:
                continue
            if self._headers and each is not self._last:
                out.append(f"\n==> {each.path} <==\n")
            out.append(text)
            self._last = each
        return "".join(out)

    def follow(
        self,
        write: Callable[[str], object],
        *,
        poll_interval_s: float = 0.2,
        stop: Callable[[], bool] = lambda: False,
    ) -> None:
        """Write what the logs get, as it comes, until `stop()` is true (or KeyboardInterrupt)."""
        while not stop():
            text = self.read()
            if text:
                write(text)
            else:
                time.sleep(poll_interval_s)


def _tail(file: BinaryIO, lines: int) -> str:
    """The last `lines` lines before the file's current position (which is left as it was)."""
    end = file.tell()
    if lines <= 0 or end == 0:
        return ""
    size, block, data = end, 8192, b""
    while size > 0 and data.count(b"\n") <= lines:
        step = min(block, size)
        size -= step
        file.seek(size)
        data = file.read(step) + data
        block *= 2
    file.seek(end)
    text = data.decode("utf-8", errors="replace")
    return "\n".join(text.splitlines()[-lines:])


def follow_logs(
    paths: Mapping[str, Path],
    write: Callable[[str], object],
    *,
    poll_interval_s: float = 0.2,
    stop: Callable[[], bool] = lambda: False,
    headers: bool | None = None,
) -> None:
    """Write what is appended to each log from now on, as it comes, until `stop()` is true (or
    a KeyboardInterrupt: Ctrl-C). With several logs (or headers=True), each run of text is
    preceded by a `==> <path> <==` line when it comes from another log than the last one."""
    with LogFollower(paths, headers=headers) as follower:
        follower.follow(write, poll_interval_s=poll_interval_s, stop=stop)
