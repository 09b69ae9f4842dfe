"""``ChainVerifier.feed_packed`` (the txs end to end, as ``verify`` reads them) checks a
block exactly as ``feed`` does: the same ids on a good chain, the same error, at the same
height, on every kind of bad block, with and without the kernel backend."""

from __future__ import annotations

import dataclasses

import numpy as np
import pytest

from chain.block import Block
from chain.kernels import backend
from chain.verifier import ChainVerifier, VerifyError
from tests.factories import ANCHOR, ChainBuilder


def _packed(block: Block) -> tuple[bytes, np.ndarray]:
    lengths = np.fromiter(map(len, block.txs), dtype=np.int64, count=len(block.txs))
    return b"".join(block.txs), lengths


def _feed_both(blocks: list[Block]) -> tuple[object, object]:
    """What ``feed`` and ``feed_packed`` make of ``blocks``: the ids of each, or the
    error (height, reason) they stop at."""
    out = []
    for packed in (False, True):
        v = ChainVerifier(anchor=ANCHOR)
        got: list[object] = []
        try:
            for blk in blocks:
                txs, lengths = _packed(blk)
                got.append(
                    v.feed_packed(blk.header, txs, lengths, blk.results) if packed else v.feed(blk)
                )
        except VerifyError as exc:
            got.append((exc.height, exc.reason))
        out.append(got)
    return out[0], out[1]


def _chain() -> list[Block]:
    b = ChainBuilder()
    return [b.block(n, results=[i % 300 for i in range(n)]) for n in (5, 0, 1000, 1)]


def _bad(blocks: list[Block], i: int, **changes: object) -> list[Block]:
    blk = blocks[i]
    header = dataclasses.replace(blk.header, **changes) if changes else blk.header
    return [*blocks[:i], Block(header, blk.txs, blk.results)]


def _cases() -> list[tuple[str, list[Block]]]:
    good = _chain()
    third = good[2]
    return [
        ("good", good),
        ("tx root", _bad(good, 2, tx_root=b"\1" * 32)),
        ("results root", _bad(good, 2, results_root=b"\1" * 32)),
        ("log root", _bad(good, 2, log_root=b"\1" * 32)),
        ("log size", _bad(good, 2, log_size=good[2].header.log_size + 1)),
        ("tx count", _bad(good, 2, tx_count=999)),
        ("link", _bad(good, 2, prev_hash=b"\2" * 32)),
        ("a tx changed", [*good[:2], Block(third.header, (b"x", *third.txs[1:]), third.results)]),
        (
            "a result code",
            [*good[:2], Block(third.header, third.txs, (70_000, *third.results[1:]))],
        ),
        ("a result flipped", [*good[:2], Block(third.header, third.txs, (1, *third.results[1:]))]),
    ]


@pytest.mark.parametrize(("what", "blocks"), _cases(), ids=[c[0] for c in _cases()])
@pytest.mark.parametrize("kernels", ["numba", "reference"])
def test_feed_packed_is_feed(
    what: str, blocks: list[Block], kernels: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    if kernels == "reference":
        monkeypatch.setattr(backend, "active", lambda: backend.REFERENCE)
    plain, packed = _feed_both(blocks)
    assert packed == plain
    if what == "good":
        assert len(plain) == len(blocks)
    else:
        assert isinstance(plain[-1], tuple) and plain[-1][0] == 3, plain[-1]
