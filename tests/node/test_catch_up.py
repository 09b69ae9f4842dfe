"""Raft §7 on a real cluster: a follower that was down while the leader compacted its log
past it catches up by snapshot — fetching the committed blocks from a peer — and ends with
the same head and a store that verifies."""

from __future__ import annotations

import asyncio
from pathlib import Path

from node.client import Client
from node.cluster import start_node, stop_node, wait_for_leader
from node.consensus_loop import COMPACT_EVERY_ENTRIES
from node.load import leader_first, prepare_dataset, presign, run_load
from storage.lmdb_store import LmdbBlockStore
from storage.verify import verify_store
from tests.node.clusters import running_cluster, wait_converged


def test_lagging_follower_catches_up_by_snapshot(tmp_path: Path) -> None:
    with running_cluster(tmp_path / "cluster") as manifest:
        leader = wait_for_leader(manifest)
        lagging = next(n for n in manifest.nodes if n.node_id != leader)
        urls = [n.rpc_url for n in manifest.nodes]
        with Client(urls) as client:
            dataset_id = prepare_dataset(manifest, client)
        assert stop_node(lagging, kill=True)
        live = [n.rpc_url for n in manifest.nodes if n is not lagging]
        heights = []
        txs = presign(manifest, dataset_id, 12_000)
        # Small batches, one at a time: many small blocks, so the log is compacted.
        for start in range(0, len(txs), 600):
            asyncio.run(run_load(leader_first(live), txs[start : start + 600], rate_per_s=300))
            with Client(live) as client:
                heights.append(client.status()["height"])
            if heights[-1] > 2 * COMPACT_EVERY_ENTRIES + 50:
                break
        assert heights[-1] > 2 * COMPACT_EVERY_ENTRIES, heights
        start_node(lagging, extra_env={"GRANTCHAIN_KERNELS": "reference"})
        head = wait_converged(manifest, timeout_s=120)
        for n in manifest.nodes:
            stop_node(n)
    with LmdbBlockStore.open(lagging.data_dir, create=False, readonly=True) as store:
        report = verify_store(store, anchor=manifest.genesis_hash)
        assert report.ok and report.head_hash == head
    log = (lagging.config.parent / "node.log").read_text()
    assert "installing snapshot" in log and "installed" in log, (
        "the follower did not go through a snapshot"
    )
