"""``grantchain demo`` on a directory it cannot use: a consortium whose stores another
store schema wrote is refused before anything starts, naming the directory to remove;
and when the nodes do not come up, the broker and every node started are stopped (the
broker once stayed running and held the MQTT port for the next run)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
from click.testing import CliRunner

from node.cli import demo
from node.cluster.consortium import ConsortiumError
from node.cluster.local import ClusterError
from storage import lmdb_store
from storage.lmdb_store import LmdbBlockStore
from tests.factories import ChainBuilder


def test_stores_of_another_schema_are_refused_with_what_to_do(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    data = tmp_path / "c" / "nodes" / "n1" / "data"
    with LmdbBlockStore.open(data) as s:
        s.append(ChainBuilder().block(3))
    demo.check_stores([data, tmp_path / "c" / "nodes" / "n2" / "data"], tmp_path / "c")
    monkeypatch.setattr(lmdb_store, "SCHEMA_TAG", b"grantchain-store/999")
    with pytest.raises(ConsortiumError, match=r"schema .*remove it \(rm -rf .*/c\)"):
        demo.check_stores([data], tmp_path / "c")


def test_nodes_that_do_not_come_up_leave_nothing_running(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    stopped: list[str] = []

    class FakeBroker:
        host, port = "127.0.0.1", 1

        def stop(self) -> None:
            stopped.append("broker")

    def no_leader(manifest: Any) -> str:
        raise ClusterError("no node is running; see the node logs")

    monkeypatch.setattr(demo, "start_broker", lambda *a, **k: FakeBroker())
    monkeypatch.setattr(demo, "warm_kernels", lambda say: None)
    monkeypatch.setattr(demo, "start_node", lambda n: None)
    monkeypatch.setattr(demo, "wait_for_leader", no_leader)
    monkeypatch.setattr(demo, "stop_node", lambda n: stopped.append(n.node_id) or True)
    result = CliRunner().invoke(demo.command, ["--dir", str(tmp_path / "c"), "--exit"])
    assert result.exit_code == 1
    assert "no node is running" in result.output
    assert stopped == ["n1", "n2", "n3", "broker"]
