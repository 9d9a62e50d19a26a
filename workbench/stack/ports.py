"""Choosing ports: an explicit port must be free, a default one is replaced by a free one."""

from __future__ import annotations

import socket
from collections.abc import Mapping, Sequence
from contextlib import ExitStack
from dataclasses import dataclass

from .config import HOST, PortRequest
from .errors import PortTakenError


def _listen(port: int, host: str = HOST) -> socket.socket:
    """Bind and listen like a server would (SO_REUSEADDR: TIME_WAIT leftovers do not count)."""
    sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    try:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        sock.bind((host, port))
        sock.listen(1)
    except OSError:
        sock.close()
        raise
    return sock


def port_is_free(port: int, host: str = HOST) -> bool:
    try:
        _listen(port, host).close()
    except OSError:
        return False
    return True


def free_port(host: str = HOST) -> int:
    return free_ports(1, host)[0]


def free_ports(count: int, host: str = HOST) -> list[int]:
    """Distinct free ports (each held open until all are chosen)."""
    with ExitStack() as held:
        return [held.enter_context(_listen(0, host)).getsockname()[1] for _ in range(count)]


def port_owner(port: int) -> str | None:
    """Best effort: 'pid 123 (restate-server)' for the process listening on the port."""
    try:
        import psutil

        for conn in psutil.net_connections(kind="tcp"):
            if conn.laddr and conn.laddr.port == port and conn.status == psutil.CONN_LISTEN:
                if conn.pid is None:
                    return None
                return f"pid {conn.pid} ({psutil.Process(conn.pid).name()})"
    except Exception:  # noqa: BLE001 - permissions differ per platform; this is only a hint
        return None
    return None


def foreign_listener(ports: Sequence[int], pid: int | None) -> str | None:
    """Which of `ports` is listened on, but not by `pid` or its children, named like
    'port 9080: pid 123 (python)'; None when each port is ours or not listened on. A readiness
    probe answered there would be another program's answer (two stacks that chose the same free
    port at once: the later one fails to bind, and the earlier answers for it). A listener
    counts as ours only when one of our pids is seen holding it: one whose pid cannot be told
    (a process that went away during the scan) is foreign."""
    if not pid:
        return None
    import psutil

    try:
        ours = {pid, *(c.pid for c in psutil.Process(pid).children(recursive=True))}
    except psutil.Error:  # gone: its readiness fails on its own
        return None
    held: set[int] = set()  # the common case first: our own processes hold every port
    for own in ours:  # (a scan of one process's sockets: a few ms, not the system's ~150 ms)
        try:
            for conn in psutil.Process(own).net_connections(kind="tcp"):
                if conn.status == psutil.CONN_LISTEN and conn.laddr and conn.laddr.port in ports:
                    held.add(conn.laddr.port)
        except psutil.Error:
            continue
    if held >= set(ports):
        return None
    listeners: dict[int, set[int | None]] = {}
    try:
        for conn in psutil.net_connections(kind="tcp"):
            if conn.status == psutil.CONN_LISTEN and conn.laddr and conn.laddr.port in ports:
                listeners.setdefault(conn.laddr.port, set()).add(conn.pid)
    except psutil.Error:  # no permission to read the sockets: no verdict
        return None
    for port in ports:
        holders = listeners.get(port)
        if not holders or holders & ours:
            continue
        other = next((p for p in holders if p is not None), None)
        return f"port {port}: " + (f"pid {other} ({_name(other)})" if other else "another process")
    return None


def _name(pid: int) -> str:
    import psutil

    try:
        return psutil.Process(pid).name()
    except psutil.Error:
        return "gone"


def allocate_ports(
    requests: Mapping[str, PortRequest],
    host: str = HOST,
    *,
    previous: Mapping[str, int] | None = None,
) -> dict[str, int]:
    """Pick one port per request: an explicit port (which must be free: else PortTakenError),
    else the port this name had in the previous run (`previous`) when it is free, else the
    default when free, else any free port. All are held (listening) until every one is chosen,
    so no two requests get the same port."""
    previous = previous or {}
    chosen: dict[str, int] = {}
    with ExitStack() as held:
        explicit_first = sorted(requests.items(), key=lambda item: item[1].explicit is None)
        for name, request in explicit_first:
            if request.explicit is not None:
                try:
                    held.enter_context(_listen(request.explicit, host))
                except OSError:
                    raise _taken(request, chosen) from None
                chosen[name] = request.explicit
                continue
            wanted = [p for p in (previous.get(name), request.default) if p]
            for port in [*dict.fromkeys(wanted), 0]:
                if port and port in chosen.values():
                    continue
                try:
                    sock = held.enter_context(_listen(port, host))
                except OSError:
                    continue
                chosen[name] = sock.getsockname()[1]
                break
            else:
                raise OSError(f"no free port on {host} for {name}")
    return {name: chosen[name] for name in requests}


def _taken(request: PortRequest, chosen: Mapping[str, int]) -> PortTakenError:
    port = request.explicit
    assert port is not None
    clash = [name for name, p in chosen.items() if p == port]
    if clash:
        who = f"the workbench's own {clash[0]} port"
    else:
        owner = port_owner(port)
        who = f"another process ({owner})" if owner else "another process"
    message = (
        f"Port {port} for {request.name} (set by {request.source}) is already in use by {who}. "
        f"Stop what uses it, set {request.source} to another port, or unset it to let the "
        "workbench pick a free port."
    )
    return PortTakenError(message, port=port, source=request.source or request.name)


@dataclass(frozen=True)
class PortMove:
    """A port that is not its default: the default was taken when the stack started (`owner`
    says by what, when known), or the port of the last run was kept."""

    name: str
    default: int
    port: int
    kept_from_last_run: bool = False
    owner: str | None = None

    def describe(self) -> str:
        """One line, e.g. 'ingress on port 41234: the default 8080 is taken by pid 7 (nginx)'."""
        if self.kept_from_last_run:
            why = f"kept from the last run (the default {self.default} was taken then)"
        else:
            why = f"the default {self.default} was taken" + (
                f" by {self.owner}" if self.owner else ""
            )
        return f"{self.name} on port {self.port}: {why}"


def port_moves(
    requests: Mapping[str, PortRequest],
    chosen: Mapping[str, int],
    *,
    previous: Mapping[str, int] | None = None,
) -> list[PortMove]:
    """The ports `allocate_ports` did not give their default, and why (in the order of
    `requests`). Explicit ports are never moved, so never listed."""
    previous = previous or {}
    moves = []
    for name, request in requests.items():
        port = chosen.get(name)
        if request.explicit is not None or port is None or port == request.default:
            continue
        if port == previous.get(name):
            moves.append(PortMove(name, request.default, port, kept_from_last_run=True))
            continue
        ours = [other for other, p in chosen.items() if p == request.default]
        owner = f"the workbench's own {ours[0]} port" if ours else port_owner(request.default)
        moves.append(PortMove(name, request.default, port, owner=owner))
    return moves
