"""One real node process of a 4-node PBFT cluster replaced by an equivocating primary
(issue 14, item 5; Castro-Liskov TOCS 2002 §4.2, §4.4): it proposes two different blocks
for each sequence number, one to one backup and one to the others. Neither gets a
prepared quorum with a commit quorum behind it, the backups' timers replace the primary
by a view change, the blocks a quorum prepared are carried into the new view, and the
cluster goes on committing with one head on every node and nothing acknowledged lost."""

from __future__ import annotations

import asyncio
import re
import threading
import time
from pathlib import Path

import httpx

from node.client import Client
from node.cluster.load import LoadReport, prepare_dataset, presign, run_load
from node.cluster.local import start_node, stop_node, wait_for_leader
from storage.lmdb_store import LmdbBlockStore
from storage.verify import verify_store
from tests.conftest import ROOT
from tests.node.clusters import running_cluster, wait_converged

BYZANTINE_PATH = ROOT / "tests" / "node" / "byzantine"


def _metric(url: str, name: str) -> float:
    text = httpx.get(url + "/metrics", timeout=10).text
    found = re.findall(rf"^{name} (\S+)$", text, re.M)
    assert found, f"{name} not in /metrics"
    return float(found[0])


def _wait_up(url: str, timeout_s: float = 60.0) -> None:
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        try:
            if httpx.get(url + "/v1/status", timeout=2).status_code == 200:
                return
        except httpx.HTTPError:
            pass
        time.sleep(0.1)
    raise AssertionError(f"{url} did not come up")


def test_an_equivocating_primary_is_replaced_and_nothing_is_lost(tmp_path: Path) -> None:
    acked = tmp_path / "acked.txt"
    with running_cluster(tmp_path / "c", nodes=4, consensus="pbft", block_txs_max=20) as manifest:
        primary = wait_for_leader(manifest)
        assert primary == "n1"  # view 0
        n1 = manifest.node("n1")
        urls = [n.rpc_url for n in manifest.nodes if n.node_id != "n1"]
        with Client(urls) as client:
            dataset_id = prepare_dataset(manifest, client)
        # n1 restarts as the Byzantine process, its store and votes as they were.
        assert stop_node(n1)
        start_node(
            n1,
            extra_env={
                "GRANTCHAIN_KERNELS": "reference",
                "GRANTCHAIN_TEST_EQUIVOCATE": "1",
                "PYTHONPATH": f"{BYZANTINE_PATH}:{ROOT}",
            },
            die_with_parent=True,
        )
        _wait_up(n1.rpc_url)
        txs = presign(manifest, dataset_id, 1_500, rate_per_s=150.0)
        # The load goes to the Byzantine primary first: it holds the txs itself (had they
        # only been forwarded to it by the others while it was still connecting, it might
        # hold none, propose nothing and be replaced as a silent primary instead).
        load_urls = [n1.rpc_url, *urls]
        report: list[LoadReport] = []
        load = threading.Thread(
            target=lambda: report.append(
                asyncio.run(run_load(load_urls, txs, rate_per_s=150.0, out=acked))
            )
        )
        load.start()
        load.join()
        head = wait_converged(manifest, timeout_s=120)
        log = (n1.config.parent / "node.log").read_text()
        assert "EQUIVOCATION" in log, "the Byzantine node never equivocated"
        for n in manifest.nodes:
            if n.node_id != "n1":
                assert _metric(n.rpc_url, "grantchain_pbft_view") >= 1
        for n in manifest.nodes:
            stop_node(n)
    assert report and report[0].committed == len(txs)
    ids = [bytes.fromhex(x) for x in acked.read_text().split()]
    assert len(set(ids)) == len(ids) == len(txs)
    for n in manifest.nodes:
        with LmdbBlockStore.open(n.data_dir, create=False, readonly=True) as store:
            result = verify_store(store, check_signatures=True, anchor=manifest.genesis_hash)
            assert result.ok and result.head_hash == head, n.node_id
            missing = [i for i in ids if store.tx_location(i) is None]
            assert not missing, f"{n.node_id} lost {len(missing)} acknowledged txs"
