"""A local cluster's configuration: how many nodes, their ports and config files, the external
cluster's URL lists, and the partition that holds a key."""

from __future__ import annotations

import tomllib
from pathlib import Path

import pytest

from workbench.clients.cluster import partition_for
from workbench.clients.restate import url_list
from workbench.errors import RestateError
from workbench.stack.config import StackConfig
from workbench.stack.processes import ClusterNode, cluster_config


@pytest.mark.parametrize("bad", [0, 2, 10, "x", "3.5"], ids=str)
def test_a_number_of_nodes_that_cannot_be_a_cluster_is_refused(bad) -> None:
    with pytest.raises(ValueError, match=rf"nodes={bad!r} is not a valid number of Restate nodes"):
        StackConfig.resolve("/tmp/wb-unit", environ={}, nodes=bad)


def test_the_environment_names_the_nodes_and_each_node_gets_its_ports() -> None:
    config = StackConfig.resolve("/tmp/wb-unit", environ={"WORKBENCH_RESTATE_NODES": "3"})
    assert config.nodes == 3
    assert config.ports["ingress_2"].default == 8081 and config.ports["node_3"].default == 5124
    assert "ingress_2" not in StackConfig.resolve("/tmp/wb-unit", environ={}).ports
    with pytest.raises(ValueError, match=r"WORKBENCH_RESTATE_NODES='2' is not a valid"):
        StackConfig.resolve("/tmp/wb-unit", environ={"WORKBENCH_RESTATE_NODES": "2"})


def test_each_node_config_replicates_and_only_the_first_provisions(tmp_path: Path) -> None:
    nodes = [ClusterNode(i, 8079 + i, 9069 + i, 5121 + i) for i in (1, 2, 3)]
    parsed = [
        tomllib.loads(cluster_config(n, nodes, cluster_name="wb-x", base_dir=tmp_path / n.name))
        for n in nodes
    ]
    assert [p["auto-provision"] for p in parsed] == [True, False, False]
    for node, config in zip(nodes, parsed, strict=True):
        assert config["node-name"] == node.name
        assert config["default-replication"] == 2
        assert config["metadata-client"] == {
            "type": "replicated",
            "addresses": [n.address for n in nodes],
        }
        assert config["bifrost"]["default-provider"] == "replicated"
        assert config["admin"]["bind-address"] == f"127.0.0.1:{node.admin_port}"
        assert config["ingress"]["bind-address"] == f"127.0.0.1:{node.ingress_port}"
        assert config["base-dir"] == str(tmp_path / node.name)
        assert set(config["roles"]) == {
            "metadata-server",
            "admin",
            "worker",
            "log-server",
            "http-ingress",
        }


def test_an_external_cluster_is_a_list_of_urls_and_a_token() -> None:
    config = StackConfig.resolve(
        "/tmp/wb-unit",
        environ={
            "RESTATE_INGRESS_URL": "http://a:8080/, http://b:8080",
            "RESTATE_ADMIN_URL": "http://a:9070,http://b:9070/",
            "RESTATE_AUTH_TOKEN": "key-1",
        },
    )
    assert not config.embedded_restate
    assert config.restate_ingress_urls == ["http://a:8080", "http://b:8080"]
    assert config.restate_admin_urls == ["http://a:9070", "http://b:9070"]
    assert config.restate_token == "key-1"
    assert url_list(["http://a/", "http://a", " http://b "]) == ["http://a", "http://b"]
    with pytest.raises(ValueError, match=r"No Restate URL in ' , '"):
        url_list(" , ")


def test_the_partition_holding_a_key_is_found_by_its_range() -> None:
    rows = [
        {"partition_id": 0, "start_key": 0, "end_key": 99, "leader": "restate-1"},
        {"partition_id": 1, "start_key": 100, "end_key": 199, "leader": "restate-2"},
    ]
    assert partition_for(rows, 100)["leader"] == "restate-2"
    assert partition_for(rows, 99)["leader"] == "restate-1"
    with pytest.raises(RestateError, match=r"No partition of the cluster holds partition key 200"):
        partition_for(rows, 200)


def test_only_a_number_of_nodes_given_is_held_against_a_running_stack() -> None:
    """`wb.start()` in a notebook attaches to the cluster `up --nodes 3` started, silently; a
    warning is for a number of nodes that was asked for and differs."""
    assert not StackConfig.resolve("/tmp/wb-unit", environ={}).nodes_asked
    assert StackConfig.resolve("/tmp/wb-unit", environ={}, nodes=1).nodes_asked
    env = {"WORKBENCH_RESTATE_NODES": "3"}
    assert StackConfig.resolve("/tmp/wb-unit", environ=env).nodes_asked
