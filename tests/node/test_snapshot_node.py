"""State sync on a real cluster: a node whose store is replaced by a snapshot of another
node's (``grantchain snapshot export``, taken while that node runs, then ``grantchain
snapshot import``) starts with ``grantchain node``, follows the chain from the snapshot's
head, and serves receipts for the txs after it; for the txs before it (bytes pruned) it
answers 410 with the reason, while their receipts issued before still verify."""

from __future__ import annotations

import asyncio
import shutil
from pathlib import Path

import pytest
from click.testing import CliRunner

from chain.genesis import Genesis
from chain.receipt import Receipt, verify_receipt
from node.cli import main as cli
from node.client import Client
from node.cluster.load import leader_first, prepare_dataset, presign, run_load
from node.cluster.local import stop_node, wait_for_leader
from storage.lmdb_store import LmdbBlockStore
from storage.verify import verify_store
from tests.node.clusters import (
    get,
    running_cluster,
    start_test_node,
    wait_certified,
    wait_converged,
)


@pytest.mark.parametrize(("consensus", "nodes"), [("raft", 3), ("pbft", 4)])
def test_a_node_started_from_an_imported_snapshot_follows_the_chain(
    tmp_path: Path, consensus: str, nodes: int
) -> None:
    with running_cluster(tmp_path / "cluster", nodes=nodes, consensus=consensus) as manifest:
        leader = wait_for_leader(manifest)
        node = next(n for n in manifest.nodes if n.node_id != leader)
        source = manifest.node(leader)
        urls = [n.rpc_url for n in manifest.nodes]
        with Client(urls) as client:
            dataset_id = prepare_dataset(manifest, client)
        txs = presign(manifest, dataset_id, 600)
        asyncio.run(run_load(leader_first(urls), txs[:300], rate_per_s=300))
        wait_converged(manifest)
        genesis = Genesis.from_json(manifest.genesis.read_text())
        with Client(node.rpc_url) as client:
            first = next(h for h in range(1, 50) if client.block(h)["txs"])
            old_tx = client.block(first)["txs"][0]["tx_id"]
            old_receipt = wait_certified(client, old_tx)["receipt"]
        assert stop_node(node, kill=True)

        runner = CliRunner()
        snap = tmp_path / "snap"
        result = runner.invoke(
            cli, ["snapshot", "export", "--data-dir", str(source.data_dir), "--out", str(snap)]
        )
        assert result.exit_code == 0, result.output
        shutil.rmtree(node.data_dir)
        result = runner.invoke(
            cli,
            [
                "snapshot",
                "import",
                "--snapshot",
                str(snap),
                "--data-dir",
                str(node.data_dir),
                "--genesis",
                str(manifest.genesis),
                "--json",
            ],
        )
        assert result.exit_code == 0, result.output
        start_test_node(node)
        live = [n.rpc_url for n in manifest.nodes if n is not node]
        asyncio.run(run_load(leader_first(live), txs[300:], rate_per_s=300))
        head = wait_converged(manifest, timeout_s=120)

        with Client(node.rpc_url) as client:
            height = client.status()["height"]
            new_tx = client.block(height)["txs"][0]["tx_id"]
            verify_receipt(Receipt.from_json(wait_certified(client, new_tx)["receipt"]), genesis)
        for path in (f"/v1/txs/{old_tx}", f"/v1/blocks/{first}"):
            answer = get(node.rpc_url + path)
            assert answer.status_code == 410 and answer.json()["reason"] == "pruned", path
        verify_receipt(Receipt.from_json(old_receipt), genesis)
        for n in manifest.nodes:
            stop_node(n)
    with LmdbBlockStore.open(node.data_dir, create=False, readonly=True) as store:
        report = verify_store(store, anchor=manifest.genesis_hash)
        assert report.ok and report.head_hash == head and report.pruned_height > 0
