"""A Restate cluster the workbench runs (`wb.start(nodes=3)`): its nodes and their health, which
node leads each partition (and so a claim), and nodes taken down and brought back.

    wb.cluster.nodes()                     # name, node id, state, health, partitions it leads
    wb.cluster.partitions()                # partition, leader, epoch, replicas, key range
    wb.cluster.leader_of(claim)            # the node running a claim (its partition's leader)
    wb.cluster.kill("restate-2")           # SIGKILL one node; supervisord restarts it
    wb.cluster.stop("restate-2", "restate-3"); wb.cluster.start("restate-2")
    before = wb.cluster.snapshot("before"); ...; wb.cluster.plot_leaders(before, after)

The helpers read the cluster through `Stack.cluster_view()` (restatectl) and Restate's admin SQL
(the claim's partition key); nodes are stopped and started through the stack's supervisord.
"""

from __future__ import annotations

import time
from pathlib import Path
from typing import TYPE_CHECKING, Any

from services import names

from .claims import Claim, claim_ids
from .errors import ClaimNotFoundError, RestateError
from .session import Namespace, module_namespace

if TYPE_CHECKING:
    import pandas as pd

    from .stack import Stack

__all__ = ["Cluster"]

NODE_COLUMNS = ["name", "node_id", "state", "health", "leads", "pid", "ingress", "admin"]


class Cluster(Namespace):
    """The Restate cluster of the session's stack (`wb.cluster`): `home`, `nodes`,
    `partitions`, `leader_of`, `kill`, `stop`, `start`, `wait_healthy`, `snapshot`,
    `plot_leaders`."""

    def home(self) -> Path:
        """A home for a cluster beside the default one (`<home>-cluster`, e.g.
        `.workbench-cluster`): a cluster's stack runs apart from the single server's, which the
        other notebooks share. Needs no running stack.

        Example:
            >>> session = wb.start(wb.cluster.home(), nodes=3)
        """
        from .session import home_folder

        default = home_folder()
        return default.with_name(f"{default.name}-cluster")

    def _stack(self) -> Stack:
        stack = self.session.stack
        if stack is None or not stack.is_cluster:
            where = "endpoints only" if stack is None else "a single Restate server"
            raise RestateError(
                f"This session has {where}, not a Restate cluster the workbench runs: start one "
                "with wb.start(nodes=3) (or `python -m workbench up --nodes 3`)."
            )
        return stack

    def _check_node(self, stack: Stack, node: str) -> str:
        if node not in stack.restate_nodes:
            raise ValueError(
                f"{node!r} is not a node of this cluster; its nodes are "
                f"{', '.join(stack.restate_nodes)}."
            )
        return node

    def nodes(self) -> pd.DataFrame:
        """One row per Restate node: name, node_id (the cluster's, e.g. N1), state (the process,
        as supervisord sees it), health (as the cluster sees it: alive, suspect, dead), leads
        (the partitions it leads), pid, and its ingress and admin URLs.

        Example:
            >>> wb.cluster.nodes()[["name", "state", "health", "leads"]]
        """
        import pandas as pd

        from .frames import as_table

        stack = self._stack()
        rows = {row["name"]: row for row in stack.status_rows()}
        frame = pd.DataFrame(
            [
                {
                    **{column: rows.get(name, {}).get(column) for column in NODE_COLUMNS},
                    "ingress": process.url,
                    "admin": getattr(process, "admin_url", None),
                }
                for name, process in stack.processes.items()
                if name in stack.restate_nodes
            ],
            columns=NODE_COLUMNS,
        )
        frame["pid"] = frame["pid"].astype("Int64")
        return as_table(frame)

    def partitions(self) -> pd.DataFrame:
        """One row per partition: partition, leader (the node that runs its invocations), epoch
        (grows at each change of leader), replicas (the nodes keeping a copy), key range.

        Example:
            >>> wb.cluster.partitions().groupby("leader").size()
        """
        from .frames import as_table

        return as_table(self._stack().partitions())

    def leader_of(self, claim: Claim | str) -> str:
        """The node leading the partition of a claim's workflow: where it runs now.

        Example:
            >>> wb.cluster.leader_of(c)
            'restate-2'
        """
        from ._aio import run_sync
        from .clients.cluster import partition_for

        stack = self._stack()
        claim_id = claim_ids(claim)[0]
        restate = self.session.restate
        invocation = run_sync(restate.invocation(names.WORKFLOW, claim_id))
        if invocation is None:
            raise ClaimNotFoundError(f"No claim {claim_id!r} was submitted to this cluster.")
        key = run_sync(restate.partition_key(str(invocation["id"])))
        if key is None:
            raise ClaimNotFoundError(f"Restate does not know claim {claim_id!r} any more.")
        rows = stack.partitions().to_dict("records")
        if not rows:
            raise RestateError(
                f"The cluster's partition table cannot be read now: {stack.cluster_view()['error']}"
            )
        return str(partition_for([_as_range(r) for r in rows], key)["leader"])

    def kill(self, node: str) -> int:
        """Kill one node (SIGKILL, as a crashed machine); supervisord restarts it, and its
        partitions are led by the other nodes meanwhile. Returns the pid killed.

        Example:
            >>> wb.cluster.kill(wb.cluster.leader_of(c))
        """
        stack = self._stack()
        return stack.kill(self._check_node(stack, node))

    def stop(self, *nodes: str) -> None:
        """Stop nodes and keep them down (supervisord does not restart them) until `start`.
        With two of three down the cluster stalls: claims wait, nothing is lost.

        Example:
            >>> wb.cluster.stop("restate-2", "restate-3")
        """
        stack = self._stack()
        for node in nodes:
            stack.stop_process(self._check_node(stack, node))

    def start(self, *nodes: str, timeout_s: float = 60.0) -> None:
        """Start stopped nodes again and wait until each answers (every stopped node when none
        is named).

        Example:
            >>> wb.cluster.start("restate-2")
        """
        stack = self._stack()
        names = nodes or tuple(
            row["name"] for row in stack.status_rows() if row["name"] in stack.restate_nodes
        )
        for node in names:
            stack.start_process(self._check_node(stack, node), timeout_s)

    def wait_healthy(self, *, timeout_s: float = 60.0, poll_interval_s: float = 0.2) -> None:
        """Wait until every node runs, the cluster sees each alive, and every partition has a
        leader (RestateError after timeout_s, saying what is missing).

        Example:
            >>> wb.cluster.wait_healthy()
        """
        stack = self._stack()
        deadline = time.monotonic() + timeout_s
        while True:
            view = stack.cluster_view()
            health = {n: view["nodes"].get(n, {}).get("health") for n in stack.restate_nodes}
            leaderless = [p["partition"] for p in view["partitions"] if not p["leader"]]
            unhealthy = {n: h for n, h in health.items() if h != "alive"}
            if view["partitions"] and not unhealthy and not leaderless:
                return
            if time.monotonic() >= deadline:
                raise RestateError(
                    f"The cluster is not healthy after {timeout_s:g} s: nodes not alive "
                    f"{unhealthy or 'none'}, partitions without a leader {leaderless or 'none'}"
                    + (f" ({view['error']})" if view["error"] else "")
                )
            time.sleep(poll_interval_s)

    def snapshot(self, label: str | None = None) -> pd.DataFrame:
        """The partition leaders now, labelled (default: the time), for `plot_leaders`.

        Example:
            >>> before = wb.cluster.snapshot("before the kill")
        """
        frame = self.partitions()[["partition", "leader", "epoch"]].copy()
        frame.insert(0, "moment", label or time.strftime("%H:%M:%S"))
        return frame

    def plot_leaders(self, *snapshots: pd.DataFrame, ax: Any = None) -> Any:
        """Which node led each partition at each snapshot: one row per snapshot, one cell per
        partition, coloured by node. A leader killed between two snapshots shows as its
        partitions changing colour.

        Example:
            >>> wb.cluster.plot_leaders(before, after)
        """
        from .charts.cluster import leadership_grid

        if not snapshots:
            raise ValueError("plot_leaders needs snapshots: wb.cluster.snapshot('before'), ...")
        return leadership_grid(list(snapshots), self._stack().restate_nodes, ax=ax)


def _as_range(row: dict[str, Any]) -> dict[str, Any]:
    return {**row, "start_key": int(row["start_key"]), "end_key": int(row["end_key"])}


__getattr__, __dir__ = module_namespace(__name__, Cluster)
