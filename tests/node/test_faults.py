"""faults.md #2, #6: SIGKILL the leader and then a follower of a real cluster under load,
restart them; no acknowledged tx is lost or duplicated, all nodes end with the same
head, and every data directory verifies (signatures included).

One node re-executes every block (``reexecute_blocks``) while the others apply the
leader's change sets, so the same head on every node also shows the two agree."""

from __future__ import annotations

import asyncio
import json
import random
import re
import threading
import time
from pathlib import Path

import httpx

from chain.genesis import Genesis
from chain.receipt import Receipt, verify_receipt
from node.client import Client
from node.cluster.consortium import Manifest
from node.cluster.load import LoadReport, prepare_dataset, presign, run_load
from node.cluster.local import stop_node, wait_for_leader
from storage.lmdb_store import LmdbBlockStore
from storage.verify import verify_store
from tests.conftest import grantchain
from tests.node.clusters import running_cluster, start_test_node, wait_converged

TXS = 4_000
RATE_PER_S = 250.0


def _acked(path: Path) -> int:
    return len(path.read_text().splitlines()) if path.exists() else 0


def _wait_acked_more(path: Path, than: int, timeout_s: float = 60.0) -> int:
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        n = _acked(path)
        if n > than:
            return n
        time.sleep(0.05)
    raise AssertionError(f"no tx acknowledged beyond {than} within {timeout_s} s")


def _receipt(url: str, tx_id: str, timeout_s: float = 30.0) -> dict[str, object]:
    """The tx's receipt once its certificate has a quorum on that node."""
    deadline = time.monotonic() + timeout_s
    while True:
        doc = httpx.get(f"{url}/v1/txs/{tx_id}", timeout=10).json()
        if doc.get("certified") or time.monotonic() > deadline:
            receipt: dict[str, object] = doc["receipt"]
            return receipt
        time.sleep(0.05)


def _deep_proposals(url: str) -> float:
    """How many blocks this node proposed while another of its blocks was in flight."""
    metrics = httpx.get(f"{url}/metrics", timeout=10).text
    count = "grantchain_block_pipeline_depth_count "
    one = 'grantchain_block_pipeline_depth_bucket{le="1.0"} '
    values = {
        prefix: float(line[len(prefix) :])
        for line in metrics.splitlines()
        for prefix in (count, one)
        if line.startswith(prefix)
    }
    return values[count] - values[one]


def _kill_and_restart(manifest: Manifest, node_id: str, acked: Path) -> None:
    node = manifest.node(node_id)
    before = _acked(acked)
    assert stop_node(node, kill=True)
    survivors = [n for n in manifest.nodes if n.node_id != node_id]
    wait_for_leader(manifest, survivors)
    _wait_acked_more(acked, before)  # the cluster commits without it
    start_test_node(node)


def _applied_from(url: str) -> dict[str, float]:
    """``grantchain_blocks_applied_from_total`` by source, since the node (re)started."""
    text = httpx.get(url + "/metrics", timeout=10).text
    found = re.findall(
        r'^grantchain_blocks_applied_from_total\{source="(\w+)"\} (\S+)$', text, re.M
    )
    return {source: float(n) for source, n in found}


def test_sigkill_leader_then_follower_under_load(tmp_path: Path) -> None:
    acked = tmp_path / "acked.txt"
    # Blocks of at most 10 txs: each batch of the load makes several, so the leader has
    # a full pipeline of blocks in flight (node.consensus_driver.loop) when it is killed.
    with running_cluster(
        tmp_path / "cluster", block_txs_max=10, node_config={"n3": {"reexecute_blocks": True}}
    ) as manifest:
        urls = [n.rpc_url for n in manifest.nodes]
        with Client(urls) as client:
            dataset_id = prepare_dataset(manifest, client)
        txs = presign(manifest, dataset_id, TXS)
        report: list[LoadReport] = []
        load = threading.Thread(
            target=lambda: report.append(
                asyncio.run(run_load(urls, txs, rate_per_s=RATE_PER_S, out=acked))
            )
        )
        load.start()
        try:
            _wait_acked_more(acked, 200)
            _kill_and_restart(manifest, wait_for_leader(manifest), acked)
            _wait_acked_more(acked, _acked(acked) + 200)
            leader = wait_for_leader(manifest)
            follower = next(n.node_id for n in manifest.nodes if n.node_id != leader)
            _kill_and_restart(manifest, follower, acked)
            assert _deep_proposals(manifest.node(leader).rpc_url) > 0
        finally:
            load.join()
        head = wait_converged(manifest)
        sources = {n.node_id: _applied_from(n.rpc_url) for n in manifest.nodes}
        assert sources["n3"].get("executed", 0) > 0, sources  # the auditing node
        assert "change_set" not in sources["n3"], sources
        assert sum(sources[i].get("change_set", 0) for i in ("n1", "n2")) > 0, sources
        # Every node, the restarted ones too, serves receipts that verify offline.
        genesis = Genesis.from_json(manifest.genesis.read_text())
        sample = random.Random(7).sample(acked.read_text().split(), 40)
        for n in manifest.nodes:
            for tx_id in sample:
                doc = _receipt(n.rpc_url, tx_id)
                verify_receipt(Receipt.from_json(doc), genesis)
        for n in manifest.nodes:
            stop_node(n)
    ids = [bytes.fromhex(x) for x in acked.read_text().split()]
    assert report and report[0].committed == len(ids) > TXS // 2
    assert len(set(ids)) == len(ids), "a tx was acknowledged twice"
    for n in manifest.nodes:
        with LmdbBlockStore.open(n.data_dir, create=False, readonly=True) as store:
            result = verify_store(store, check_signatures=True, anchor=manifest.genesis_hash)
            assert result.ok, f"{n.node_id}: {result.problem} at {result.bad_height}"
            assert result.head_hash == head
            missing = [i.hex() for i in ids if store.tx_location(i) is None]
            assert not missing, f"{n.node_id} lost {len(missing)} acknowledged txs"
        r = grantchain(
            "verify", "--data-dir", str(n.data_dir), "--genesis", str(manifest.genesis), "--json"
        )
        assert r.returncode == 0, r.stdout + r.stderr
        assert json.loads(r.stdout.splitlines()[-1])["head_hash"] == head
