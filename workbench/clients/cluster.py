"""The Restate cluster client: a cluster's nodes, partitions and logs, as `restatectl` reports
them (npm `@restatedev/restatectl`, talking to the nodes' node-to-node port). The admin API has
no cluster view; this is the only code that runs restatectl.

    cluster = RestateCluster(["http://127.0.0.1:5122/", ...], restatectl="/path/to/restatectl")
    cluster.nodes()        # name, node id, state (alive, dead, ...), roles
    cluster.partitions()   # partition id, key range, leader node, replicas
"""

from __future__ import annotations

import json
import subprocess
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from ..errors import RestateError

__all__ = ["RestateCluster", "partition_for"]

NODES_SQL = (
    "SELECT plain_node_id, gen_node_id, name, state, address, worker_state, "
    "metadata_server_state, storage_state FROM nodes ORDER BY name"
)
PARTITIONS_SQL = (
    "SELECT partition_id, start_key, end_key, leader_plain_node_id, leader_epoch, "
    "current_replica_set FROM partitions ORDER BY partition_id"
)
LOGS_SQL = (
    "SELECT log_id, segment_index, kind, sequencer, replication, nodeset FROM logs "
    "ORDER BY log_id, segment_index"
)


def partition_for(partitions: Sequence[dict[str, Any]], partition_key: int) -> dict[str, Any]:
    """The partition (a `partitions()` row) whose key range holds `partition_key`."""
    for row in partitions:
        if int(row["start_key"]) <= partition_key <= int(row["end_key"]):
            return row
    raise RestateError(f"No partition of the cluster holds partition key {partition_key}.")


class RestateCluster:
    """A Restate cluster's own view of itself (restatectl's SQL over the nodes' cluster tables:
    `nodes`, `partitions`, `logs`). `node_urls` are the node-to-node addresses (port 5122 by
    default); restatectl asks whichever of them answers."""

    def __init__(
        self, node_urls: Sequence[str], *, restatectl: str | Path, timeout_s: float = 5.0
    ) -> None:
        if not node_urls:
            raise ValueError("RestateCluster needs the nodes' addresses (node_urls).")
        self.node_urls = [str(u) for u in node_urls]
        self.restatectl = str(restatectl)
        self.timeout_s = timeout_s

    def __repr__(self) -> str:
        return f"RestateCluster(nodes={','.join(self.node_urls)})"

    def sql(self, query: str) -> list[dict[str, Any]]:
        """Rows of a query over the cluster tables (`nodes`, `partitions`, `partition_state`,
        `partition_replica_set`, `logs`, ...)."""
        command = [self.restatectl, "--address", ",".join(self.node_urls), "sql", "--json", query]
        try:
            done = subprocess.run(
                command,
                capture_output=True,
                text=True,
                timeout=self.timeout_s,
                env={"NO_COLOR": "1", "PATH": "/usr/bin:/bin"},
            )
        except subprocess.TimeoutExpired:
            raise RestateError(
                f"restatectl did not answer within {self.timeout_s:g} s asking the cluster at "
                f"{', '.join(self.node_urls)}: are all its nodes down?"
            ) from None
        except OSError as e:
            raise RestateError(
                f"restatectl at {self.restatectl} cannot run ({e}): run `npm ci` in the project "
                "(it installs @restatedev/restatectl), or set RESTATECTL_BIN."
            ) from None
        if done.returncode != 0:
            raise RestateError(
                f"restatectl could not ask the cluster at {', '.join(self.node_urls)}: "
                f"{(done.stderr or done.stdout).strip()[-500:]}"
            )
        start = done.stdout.find("[")
        if start < 0:
            return []
        rows, _ = json.JSONDecoder().raw_decode(done.stdout[start:])
        return list(rows)

    def nodes(self) -> list[dict[str, Any]]:
        """One row per node: `plain_node_id` (N1), `name`, `state` (alive, dead, suspect),
        `address`, `worker_state`, `metadata_server_state`, `storage_state`."""
        return self.sql(NODES_SQL)

    def partitions(self) -> list[dict[str, Any]]:
        """One row per partition: `partition_id`, its key range (`start_key`, `end_key`), the
        leader (`leader_plain_node_id`, `leader_epoch`) and the replicas
        (`current_replica_set`, e.g. "N3,N1")."""
        return self.sql(PARTITIONS_SQL)

    def logs(self) -> list[dict[str, Any]]:
        """One row per log segment: `log_id`, `kind` (replicated), `sequencer`, `replication`
        (e.g. "{node: 2}") and `nodeset`."""
        return self.sql(LOGS_SQL)
