"""The load generator's pre-signed txs: valid, distinct, and stamped as events that
happen at the offered rate (their replay markers then append to the state B-tree)."""

from __future__ import annotations

import datetime
import time
from pathlib import Path

import pytest

from acl import keys as acl_keys
from acl import kinds as k
from chain.hashing import leaf_hash
from chain.signing import verify_batch
from chain.tx import decode_tx, signing_bytes_of
from node.cluster.consortium import ConsortiumSpec, Manifest, create_consortium
from node.cluster.load import presign


@pytest.fixture(scope="module")
def manifest(tmp_path_factory: pytest.TempPathFactory) -> Manifest:
    spec = ConsortiumSpec(nodes=1, orgs=3, chain_id="load-test", genesis_time_ms=0, base_port=9000)
    return create_consortium(
        Path(tmp_path_factory.mktemp("load")) / "c", spec, now=datetime.datetime.now(datetime.UTC)
    )


def test_presign_stamps_each_event_at_its_place_in_the_offered_rate(manifest: Manifest) -> None:
    before_ms = time.time_ns() // 1_000_000
    txs = [decode_tx(raw) for raw in presign(manifest, "org1/ds", 61, rate_per_s=1000)]
    after_ms = time.time_ns() // 1_000_000
    start = txs[0].timestamp_ms
    assert before_ms <= start <= after_ms
    # 1,000 txs/s: the j-th tx of the load happens j ms after the first.
    assert [t.timestamp_ms - start for t in txs] == list(range(61))
    apps = sorted({t.sender for t in txs})
    assert len(apps) == 3
    assert [t.sender for t in txs[:6]] == [txs[0].sender, txs[1].sender, txs[2].sender] * 2
    assert all(t.kind == k.AUDIT_DATA_ACCESS for t in txs)


def test_presign_at_a_high_rate_shares_a_millisecond_between_txs(manifest: Manifest) -> None:
    raws = presign(manifest, "org1/ds", 100, rate_per_s=20_000)
    txs = [decode_tx(raw) for raw in raws]
    stamps = [t.timestamp_ms - txs[0].timestamp_ms for t in txs]
    assert stamps == [j // 20 for j in range(100)]
    # Distinct txs, validly signed, whose replay markers come in key order.
    assert len(set(raws)) == 100
    assert all(
        verify_batch(
            [t.sender for t in txs], [signing_bytes_of(r) for r in raws], [t.signature for t in txs]
        )
    )
    markers = [
        acl_keys.tx_key(t.timestamp_ms, leaf_hash(r)) for t, r in zip(txs, raws, strict=True)
    ]
    assert [m[:9] for m in markers] == sorted(m[:9] for m in markers)


def test_presign_rejects_a_rate_that_is_not_positive(manifest: Manifest) -> None:
    with pytest.raises(ValueError, match="rate_per_s"):
        presign(manifest, "org1/ds", 3, rate_per_s=0)
