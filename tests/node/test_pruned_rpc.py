"""A node whose old txs were pruned (``grantchain prune``), on a real cluster: its RPC
answers a pruned block, and a receipt for a pruned tx (a receipt carries the tx's bytes),
with 410 and the reason, not a 500 or a 404; nodes that keep the bytes still issue it,
and a receipt issued before the prune still verifies."""

from __future__ import annotations

from pathlib import Path

from click.testing import CliRunner

from chain.genesis import Genesis
from chain.receipt import Receipt, verify_receipt
from node.cli import main as cli
from node.client import Client
from node.cluster.load import prepare_dataset
from node.cluster.local import stop_node, wait_for_leader
from tests.node.clusters import (
    get,
    running_cluster,
    start_test_node,
    wait_certified,
    wait_converged,
)


def test_a_pruned_block_is_410_and_its_receipts_still_verify(tmp_path: Path) -> None:
    with running_cluster(tmp_path / "cluster") as manifest:
        leader = wait_for_leader(manifest)
        node = next(n for n in manifest.nodes if n.node_id != leader)
        with Client([n.rpc_url for n in manifest.nodes]) as client:
            prepare_dataset(manifest, client)
        wait_converged(manifest)
        genesis = Genesis.from_json(manifest.genesis.read_text())
        with Client(node.rpc_url) as client:
            height = client.status()["height"]
            first = next(h for h in range(1, height + 1) if client.block(h)["txs"])
            tx_id = client.block(first)["txs"][0]["tx_id"]
            before = wait_certified(client, tx_id)
        assert before["certified"] and before["height"] == first
        assert stop_node(node)
        result = CliRunner().invoke(
            cli,
            ["prune", "--data-dir", str(node.data_dir), "--before-height", str(height + 1)],
        )
        assert result.exit_code == 0, result.output
        start_test_node(node)
        wait_converged(manifest)

        answer = get(f"{node.rpc_url}/v1/blocks/{first}")
        assert answer.status_code == 410, answer.text
        doc = answer.json()
        assert doc["reason"] == "pruned" and "pruned" in doc["error"]
        # A block that was not pruned still answers.
        for n in manifest.nodes:
            if n is not node:
                assert get(f"{n.rpc_url}/v1/blocks/{first}").status_code == 200
        # A receipt holds the tx's bytes: the pruned node cannot issue one any more, and
        # says why; a node that keeps the bytes still does, and the receipt issued before
        # the prune verifies offline (it needs only the genesis).
        answer = get(f"{node.rpc_url}/v1/txs/{tx_id}")
        assert answer.status_code == 410 and answer.json()["reason"] == "pruned", answer.text
        other = next(n for n in manifest.nodes if n is not node)
        with Client(other.rpc_url) as client:
            after = wait_certified(client, tx_id)
        assert after["receipt"] == before["receipt"]
        verify_receipt(Receipt.from_json(before["receipt"]), genesis)
        spec = get(f"{node.rpc_url}/openapi.json").json()
        for path in ("/v1/blocks/{height}", "/v1/txs/{tx_id}"):
            assert "410" in spec["paths"][path]["get"]["responses"], path
