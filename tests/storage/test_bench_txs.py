"""``bench storage``'s fast tx signing: byte for byte the txs ``chain.tx.sign_tx`` makes
(nonces across every msgpack int width), with real signatures; and its on-disk cache
gives back the same txs."""

from __future__ import annotations

from pathlib import Path

from benchmarks.storage import _sign_range, _sign_range_slow, cached_signed_txs
from chain.tx import decode_tx


def test_fast_signing_is_sign_tx_byte_for_byte() -> None:
    for start in (0, 120, 250, 65_530, 4_294_967_290):
        fast = _sign_range((start, 12))
        assert fast == _sign_range_slow((start, 12)), start
        assert all(decode_tx(raw).verify_signature() for raw in fast)


def test_the_cache_gives_back_the_same_txs(tmp_path: Path) -> None:
    cache = tmp_path / "txs.bin"
    txs, source = cached_signed_txs(300, cache)
    assert source.startswith("signed") and cache.exists()
    again, source = cached_signed_txs(120, cache)
    assert source.startswith("read") and again == txs[:120]
    more, source = cached_signed_txs(301, cache)  # more than it holds: signed again
    assert source.startswith("signed") and more[:300] == txs
