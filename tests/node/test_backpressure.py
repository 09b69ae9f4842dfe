"""Back-pressure on a real node: a full mempool answers 503 with Retry-After, sheds the
request before checking it, and loses nothing it already took."""

from __future__ import annotations

from pathlib import Path

import httpx
import msgpack

from acl import kinds as k
from acl import payloads as pl
from node.client import Client, TxSigner
from node.cluster.scenario import signer_for
from tests.node.clusters import get, leader_url, running_cluster

MEMPOOL_TXS = 4


def _post(url: str, raws: list[bytes], **params: str) -> httpx.Response:
    return httpx.post(
        url + "/v1/txs",
        params=params,
        content=msgpack.packb(raws, use_bin_type=True),
        headers={"content-type": "application/msgpack"},
        timeout=30,
    )


def test_a_full_mempool_answers_503_and_keeps_what_it_took(tmp_path: Path) -> None:
    # A block waits out a 60 s interval unless it is full: the first one is cut at once
    # (the interval starts then), the next txs wait in a mempool of 4, which one sender
    # may fill here (its share is the whole pool).
    with running_cluster(
        tmp_path / "c",
        nodes=1,
        mempool_txs_max=MEMPOOL_TXS,
        mempool_sender_percent=100,
        block_interval_ms=60_000,
    ) as manifest:
        url = leader_url(manifest)
        app = signer_for(manifest, sorted({n.org_id for n in manifest.nodes})[0], "app")
        txs = [
            app.sign(
                k.AUDIT_DATA_ACCESS, pl.data_access("org1/none", purpose="training")
            ).to_bytes()
            for _ in range(MEMPOOL_TXS + 3)
        ]
        with Client([url]) as client:
            first = client.submit(txs[:1], wait=True)["results"][0]
        assert first["status"] == "committed"

        r = _post(url, txs[1 : 1 + MEMPOOL_TXS])
        assert r.status_code == 202
        assert [d["status"] for d in r.json()["results"]] == ["accepted"] * MEMPOOL_TXS

        r = _post(url, [*txs[1 + MEMPOOL_TXS :], b"\x93not a tx"])
        assert r.status_code == 503 and r.headers["Retry-After"] == "1"
        doc = r.json()
        assert "retry" in doc["error"]
        assert [d["status"] for d in doc["results"]] == ["mempool_full"] * 3
        assert all("full" in d["error"] for d in doc["results"])

        status = get(url + "/v1/status").json()
        assert status["height"] == 1  # the queued txs wait for their block, none lost
        metrics = get(url + "/metrics").text
        assert 'grantchain_txs_submitted_total{status="mempool_full"} 3.0' in metrics
        assert "grantchain_mempool_txs 4.0" in metrics


def test_one_sender_fills_only_its_share_of_the_mempool(tmp_path: Path) -> None:
    """Issue 15 §4: with the default share (half), a flooding member gets 503 for its
    own txs while another member's txs are still queued."""
    with running_cluster(
        tmp_path / "c", nodes=2, mempool_txs_max=MEMPOOL_TXS, block_interval_ms=60_000
    ) as manifest:
        url = leader_url(manifest)
        flood, other = (signer_for(manifest, org, "app") for org in ("org1", "org2"))

        def event(signer: TxSigner) -> bytes:
            return signer.sign(
                k.AUDIT_DATA_ACCESS, pl.data_access("org1/none", purpose="training")
            ).to_bytes()

        with Client([url]) as client:  # a first block starts the 60 s interval
            assert client.submit([event(flood)], wait=True)["results"][0]["status"] == "committed"
        r = _post(url, [event(flood) for _ in range(3)])
        assert [d["status"] for d in r.json()["results"]] == [
            "accepted",
            "accepted",
            "mempool_full",
        ]
        assert r.json()["results"][2]["error"].startswith("sender_quota")
        r = _post(url, [event(other)])
        assert [d["status"] for d in r.json()["results"]] == ["accepted"]


def test_one_sender_is_held_to_its_rate(tmp_path: Path) -> None:
    """Issue 15 §4 (per-identity rate limits): past ``sender_txs_per_s_max`` a sender's
    txs get 503 ``sender_rate`` while another member's txs are still queued."""
    rate = 5
    with running_cluster(
        tmp_path / "c", nodes=2, sender_txs_per_s_max=rate, block_interval_ms=60_000
    ) as manifest:
        url = leader_url(manifest)
        flood, other = (signer_for(manifest, org, "app") for org in ("org1", "org2"))

        def event(signer: TxSigner) -> bytes:
            return signer.sign(
                k.AUDIT_DATA_ACCESS, pl.data_access("org1/none", purpose="training")
            ).to_bytes()

        # One request: the bucket (one second's worth) refills by at most a few tokens
        # while it is screened, so most of the 40 are refused.
        r = _post(url, [event(flood) for _ in range(40)])
        statuses = [d["status"] for d in r.json()["results"]]
        assert rate <= statuses.count("accepted") < 20
        refused = [d for d in r.json()["results"] if d["status"] == "mempool_full"]
        assert refused and all(d["error"].startswith("sender_rate") for d in refused)
        r = _post(url, [event(other)])
        assert [d["status"] for d in r.json()["results"]] == ["accepted"]
