"""A PBFT replica further behind than its peers keep entries catches up (issue 14): on a
real 4-node cluster one backup is stopped while more than ``KEEP_COMMITTED_ENTRIES``
(1,024) blocks commit, so every peer has compacted the entries it missed; when it runs
again it installs the state of a stable checkpoint (2f+1 checkpoint signatures over the
history and the block store's head), fetching the blocks up to that head from peers,
each with its quorum certificate, and then orders with the others: same head hash (so
the same state root), and receipts served by its RPC that verify against the genesis."""

from __future__ import annotations

import os
import signal
import time
from pathlib import Path

import httpx

from chain.genesis import Genesis
from chain.receipt import Receipt, verify_receipt
from node.client import Client
from node.cluster.load import prepare_dataset, presign
from node.cluster.local import read_pid, stop_node, wait_for_leader
from node.consensus_driver.pbft_loop import KEEP_COMMITTED_ENTRIES
from tests.node.clusters import running_cluster, wait_converged
from tests.node.test_pbft_cluster import _check_nothing_lost, _metric, _receipt, _run_load_in_thread

NODES = 4


def test_a_backup_behind_compacted_entries_installs_a_certified_state(tmp_path: Path) -> None:
    acked = tmp_path / "acked.txt"
    with running_cluster(
        tmp_path / "c", nodes=NODES, consensus="pbft", block_txs_max=1
    ) as manifest:
        urls = [n.rpc_url for n in manifest.nodes]
        with Client(urls) as client:
            dataset_id = prepare_dataset(manifest, client)
        primary = wait_for_leader(manifest)
        backup = next(n for n in manifest.nodes if n.node_id != primary)
        pid = read_pid(backup)
        assert pid is not None
        before = _metric(backup.rpc_url, "grantchain_pbft_executed")
        # One tx per block: the peers compact once they executed 1,280 beyond (the
        # 1,024 they keep and a quarter more), so 1,400 blocks leave nothing to replay.
        txs = presign(manifest, dataset_id, 1_400, rate_per_s=1_000.0)
        others = [u for n, u in zip(manifest.nodes, urls, strict=True) if n is not backup]
        t0 = time.monotonic()
        os.kill(pid, signal.SIGSTOP)
        try:
            load, report = _run_load_in_thread(others, txs, 1_000.0, acked)
            load.join()
        finally:
            os.kill(pid, signal.SIGCONT)
        assert report and report[0].committed == len(txs)
        loaded_s = time.monotonic() - t0
        ahead = _metric(manifest.node(primary).rpc_url, "grantchain_pbft_executed")
        assert ahead - before > KEEP_COMMITTED_ENTRIES, (before, ahead)
        head = wait_converged(manifest, timeout_s=60)
        assert _metric(backup.rpc_url, "grantchain_pbft_state_installs_total") == 1
        assert _metric(backup.rpc_url, "grantchain_pbft_catch_up_refused_total") == 0
        status = httpx.get(backup.rpc_url + "/v1/status", timeout=10).json()
        assert status["head_hash"] == head
        genesis = Genesis.from_json(manifest.genesis.read_text())
        ids = acked.read_text().split()
        for tx_id in [ids[0], ids[len(ids) // 2], ids[-1]]:  # committed while it was stopped
            verify_receipt(Receipt.from_json(_receipt(backup.rpc_url, tx_id)), genesis)
        # It orders with the others again.
        more = presign(manifest, dataset_id, 20, rate_per_s=200.0)
        load, report = _run_load_in_thread([backup.rpc_url], more, 200.0, tmp_path / "more.txt")
        load.join()
        assert report and report[0].committed == len(more)
        head = wait_converged(manifest)
        assert _metric(backup.rpc_url, "grantchain_pbft_executed") == _metric(
            manifest.node(primary).rpc_url, "grantchain_pbft_executed"
        )
        for n in manifest.nodes:
            stop_node(n)
    print(f"loaded {len(txs)} blocks in {loaded_s:.1f} s")
    acked.write_text(acked.read_text() + (tmp_path / "more.txt").read_text())
    _check_nothing_lost(manifest, acked, head)
