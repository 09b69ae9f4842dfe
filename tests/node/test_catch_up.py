"""Raft §7 on a real cluster: a follower that was down while the leader compacted its log
past it catches up by snapshot — fetching the committed blocks from a peer — even when it
is killed half-way through, and ends with the same head and a store that verifies."""

from __future__ import annotations

import asyncio
import time
from pathlib import Path

from chain.genesis import Genesis
from chain.receipt import Receipt, verify_receipt
from node.client import Client
from node.cluster.load import leader_first, prepare_dataset, presign, run_load
from node.cluster.local import stop_node, wait_for_leader
from node.consensus_driver.loop import COMPACT_EVERY_ENTRIES
from storage.lmdb_store import LmdbBlockStore
from storage.verify import verify_store
from tests.node.clusters import running_cluster, start_test_node, wait_certified, wait_converged


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
        start_test_node(lagging)
        # Kill it in the middle of the catch-up: the snapshot is durable, the blocks only
        # partly fetched; after a restart it must finish the install before applying on.
        log_file = lagging.config.parent / "node.log"
        deadline = time.monotonic() + 60
        while "installing snapshot" not in log_file.read_text():
            assert time.monotonic() < deadline, "no snapshot install started"
            time.sleep(0.02)
        assert stop_node(lagging, kill=True)
        start_test_node(lagging)
        head = wait_converged(manifest, timeout_s=120)
        # Receipts served by the node that caught up carry a quorum certificate too.
        genesis = Genesis.from_json(manifest.genesis.read_text())
        with Client(lagging.rpc_url) as client:
            for height in (1, heights[0], heights[-1] // 2, heights[-1]):
                tx_id = client.block(height)["txs"][0]["tx_id"]
                doc = wait_certified(client, tx_id)
                verify_receipt(Receipt.from_json(doc["receipt"]), genesis)
        for n in manifest.nodes:
            stop_node(n)
    with LmdbBlockStore.open(lagging.data_dir, create=False, readonly=True) as store:
        report = verify_store(store, anchor=manifest.genesis_hash)
        assert report.ok and report.head_hash == head
    log = (lagging.config.parent / "node.log").read_text()
    assert "installing snapshot" in log and "installed" in log, (
        "the follower did not go through a snapshot"
    )
