"""faults.md #9: a leader paused with SIGSTOP is replaced; when it resumes it steps down
and follows, commits nothing of its own, and every node ends on the same head."""

from __future__ import annotations

import os
import signal
import time
from pathlib import Path

import httpx

from node.client import Client
from node.cluster.local import read_pid, wait_for_leader
from tests.node.clusters import register_dataset, running_cluster, wait_converged


def test_a_paused_leader_is_replaced_and_rejoins_as_follower(tmp_path: Path) -> None:
    with running_cluster(tmp_path / "cluster") as manifest:
        old = wait_for_leader(manifest)
        old_node = manifest.node(old)
        pid = read_pid(old_node)
        assert pid is not None
        org = old_node.org_id
        others = [n for n in manifest.nodes if n.node_id != old]
        os.kill(pid, signal.SIGSTOP)
        try:
            new = wait_for_leader(manifest, others)
            assert new != old
            with Client([n.rpc_url for n in others]) as client:
                doc = register_dataset(client, manifest, org, "while-paused")
            assert doc["status"] == "committed"
        finally:
            os.kill(pid, signal.SIGCONT)
        # The old leader learns the new term from its peers and follows.
        deadline = time.monotonic() + 30
        while True:
            status = httpx.get(old_node.rpc_url + "/v1/status", timeout=5).json()
            if status["role"] == "follower" and status["leader"] == new:
                break
            assert time.monotonic() < deadline, status
            time.sleep(0.05)
        with Client(old_node.rpc_url) as client:  # writes through the old leader reach the new one
            doc = register_dataset(client, manifest, org, "after-resume")
        assert doc["status"] == "committed"
        wait_converged(manifest)
