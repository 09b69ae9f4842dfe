"""``chain.kernels.blockroots`` (a block's ids, tx root and results root in one kernel
call) against the reference backend (hashlib), and ``chain.assemble`` built with it
against the general path: the same block bytes, hash and remembered ids."""

from __future__ import annotations

import random

import numpy as np
import pytest

from chain import assemble, merkle
from chain.block import Block, BlockError
from chain.kernels import blockroots, reference
from chain.merkle import Frontier


def _reference(txs: list[bytes], results: list[int]) -> tuple[bytes, bytes, bytes]:
    ids = reference.leaf_hashes(txs)
    leaves = [i + r.to_bytes(2, "big") for i, r in zip(ids, results, strict=True)]
    return (
        b"".join(ids),
        reference.merkle_root(ids),
        reference.merkle_root(reference.leaf_hashes(leaves)),
    )


SIZES = [1, 2, 3, 15, 16, 17, 31, 32, 33, 63, 64, 65, 100, 1000, 1024, 1025]
TX_LENGTHS = [0, 1, 54, 55, 56, 63, 64, 119, 120, 250, 1000]
"""Around the lengths where ``0x00 || tx`` with its padding takes one more block."""


@pytest.mark.parametrize("n", SIZES)
def test_ids_and_roots_are_the_reference(n: int) -> None:
    rng = random.Random(n)
    txs = [rng.randbytes(rng.choice(TX_LENGTHS)) for _ in range(n)]
    results = [rng.choice([0, 1, 7, 255, 256, 4660, 65535]) for _ in range(n)]
    assert blockroots.block_roots(txs, results) == _reference(txs, results)


@pytest.mark.parametrize(
    "results", [[True], [-1], [1 << 16], [1 << 70], [0.0], [0, 0], []], ids=repr
)
def test_what_the_kernel_does_not_take_is_left_to_the_general_path(results: list) -> None:
    assert blockroots.block_roots([b"tx"], results) is None
    assert blockroots.block_roots([], []) is None


def test_packed_roots_are_block_roots_and_refuse_what_does_not_fit() -> None:
    rng = random.Random(7)
    txs = [rng.randbytes(rng.choice(TX_LENGTHS)) for _ in range(33)]
    results = [rng.choice([0, 1, 65535]) for _ in txs]
    joined = b"".join(txs)
    lengths = np.array([len(t) for t in txs], dtype=np.int64)
    assert blockroots.packed_roots(joined, lengths, results) == _reference(txs, results)
    short = lengths.copy()
    short[0] += 1
    negative = lengths.copy()
    negative[:2] = [-1, lengths[0] + lengths[1] + 1]
    for bad_joined, bad_lengths, bad_results in [
        (joined, lengths.reshape(1, -1), results),  # not one length a tx
        (joined, np.array(len(joined)), results[:1]),  # a 0-d array
        (joined, short, results),  # lengths past the bytes
        (joined, negative, results),  # the right sum, a negative length
        (joined, lengths, results[1:]),  # a result code short
        (b"", np.zeros(0, dtype=np.int64), []),  # no tx
    ]:
        assert blockroots.packed_roots(bad_joined, bad_lengths, bad_results) is None


def _assemble(txs: list[bytes], results: list[int], frontier: Frontier, fast: bool) -> tuple:
    prev = None
    with pytest.MonkeyPatch.context() as mp:
        if not fast:
            mp.setattr(assemble, "_ids_and_roots", lambda txs, results: None)
        block, after = assemble.assemble_block(
            chain_id="c",
            prev=prev,
            anchor=b"\x11" * 32,
            frontier=frontier,
            txs=txs,
            results=results,
            state_root=b"\0" * 32,
            timestamp_ms=5,
            proposer="p",
            round=1,
        )
    return block, after


@pytest.mark.parametrize("n", [0, 1, 17, 1000])
def test_assemble_gives_the_same_block_either_way(n: int) -> None:
    rng = random.Random(100 + n)
    txs = [rng.randbytes(rng.randrange(1, 400)) for _ in range(n)]
    results = [rng.randrange(0, 70) for _ in range(n)]
    frontier = Frontier()
    frontier.extend([rng.randbytes(32) for _ in range(37)])
    fast, fast_after = _assemble(txs, results, frontier, fast=True)
    slow, slow_after = _assemble(txs, results, frontier, fast=False)
    assert fast.to_bytes() == slow.to_bytes() and fast.header.hash == slow.header.hash
    assert fast_after == slow_after
    assert fast.check_body() == slow.check_body() == reference.leaf_hashes(txs)
    assert fast.header.tx_root == merkle.root(reference.leaf_hashes(txs))


def test_assemble_refuses_a_bad_result_code_as_before() -> None:
    with pytest.raises(BlockError, match="result code"):
        _assemble([b"a", b"b"], [0, 1 << 16], Frontier(), fast=True)


@pytest.mark.parametrize("n", [1, 17, 1000])
def test_an_assembled_block_keeps_the_body_arrays_its_kernel_read(n: int) -> None:
    """``Block.body_arrays``: the txs end to end, their lengths and the result codes of
    exactly the block's body where the kernel assembled it; None where it did not (the
    general path, or a block decoded from bytes), so a store derives them itself."""
    rng = random.Random(200 + n)
    txs = [rng.randbytes(rng.randrange(0, 400)) for _ in range(n)]
    results = [rng.randrange(0, 1 << 16) for _ in range(n)]
    fast, _ = _assemble(txs, results, Frontier(), fast=True)
    arrays = fast.body_arrays()
    assert arrays.txs == b"".join(fast.txs)
    assert arrays.lengths.tolist() == [len(t) for t in fast.txs]
    assert arrays.codes.tolist() == list(fast.results)
    assert not arrays.lengths.flags.writeable and not arrays.codes.flags.writeable
    assert blockroots.body_roots(txs, results)[:3] == blockroots.block_roots(txs, results)
    slow, _ = _assemble(txs, results, Frontier(), fast=False)
    assert slow.body_arrays() is None
    assert Block.from_bytes(fast.to_bytes()).body_arrays() is None
