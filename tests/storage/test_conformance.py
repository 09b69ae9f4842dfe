"""One conformance suite for every ``BlockStore``: the in-memory twin and LMDB."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from chain import merkle
from chain.hashing import EMPTY_ROOT, leaf_hash
from storage.blockstore import AppendError, BlockStore, DuplicateTxError
from storage.lmdb_store import LmdbBlockStore
from storage.memory_store import MemoryBlockStore
from tests.factories import ANCHOR, ChainBuilder, block_on, txs


@pytest.fixture(params=["memory", "lmdb"])
def store(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[BlockStore]:
    s: BlockStore = (
        MemoryBlockStore() if request.param == "memory" else LmdbBlockStore.open(tmp_path / "db")
    )
    yield s
    s.close()


def test_empty_store(store: BlockStore) -> None:
    assert store.height == 0 and store.log_size == 0
    assert store.head() is None and store.block(1) is None and store.anchor() is None
    assert store.log_root() == EMPTY_ROOT


def test_append_and_read_back(store: BlockStore) -> None:
    b = ChainBuilder()
    blocks = [b.block(n) for n in (3, 0, 5, 1)]
    for blk in blocks:
        store.append(blk)
    assert store.height == 4 and store.log_size == 9
    assert store.anchor() == ANCHOR
    assert store.head() == blocks[-1].header
    for blk in blocks:
        assert store.block(blk.header.height) == blk
        assert store.header(blk.header.height) == blk.header
        assert store.height_of(blk.header.hash) == blk.header.height
    log_index = 0
    for blk in blocks:
        for pos, raw in enumerate(blk.txs):
            got = store.tx(leaf_hash(raw))
            assert got is not None
            data, loc = got
            assert data == raw
            assert (loc.height, loc.position, loc.log_index) == (blk.header.height, pos, log_index)
            log_index += 1
    assert store.tx(b"\x00" * 32) is None


def test_proofs_at_every_size(store: BlockStore) -> None:
    b = ChainBuilder()
    leaves: list[bytes] = []
    for n in (1, 2, 3, 5, 8, 13):
        blk = b.block(n)
        store.append(blk)
        leaves += [leaf_hash(t) for t in blk.txs]
    size = store.log_size
    assert size == len(leaves) == 32
    for tree_size in range(1, size + 1):
        root = store.log_root(tree_size)
        assert root == merkle.root(leaves[:tree_size])
        for i in range(0, tree_size, 3):
            merkle.verify_inclusion(
                leaves[i], i, tree_size, store.inclusion_proof(i, tree_size), root
            )
        for size1 in range(1, tree_size + 1, 4):
            proof = store.consistency_proof(size1, tree_size)
            merkle.verify_consistency(size1, tree_size, proof, store.log_root(size1), root)
        batch = list(range(0, tree_size, 2))
        assert store.inclusion_proofs(batch, tree_size) == [
            store.inclusion_proof(i, tree_size) for i in batch
        ]
    with pytest.raises(merkle.ProofError):
        store.inclusion_proof(0, size + 1)
    with pytest.raises(merkle.ProofError):
        store.inclusion_proofs([0], size + 1)


def test_rejects_blocks_that_do_not_continue_the_chain(store: BlockStore) -> None:
    b = ChainBuilder()
    first = b.block(2)
    second = b.block(2)
    with pytest.raises(AppendError, match="height"):
        store.append(second)
    store.append(first)
    with pytest.raises(AppendError, match="height"):
        store.append(first)
    other = ChainBuilder()
    other.next_tx = 100
    other.block(1)
    forged = other.block(2)  # height 2, but linked to another block 1
    with pytest.raises(AppendError, match="prev_hash"):
        store.append(forged)
    store.append(second)
    assert store.height == 2


def test_rejects_a_tx_already_in_the_chain(store: BlockStore) -> None:
    b = ChainBuilder()
    store.append(b.block(3))
    b.next_tx = 1  # the next block reuses tx #1 and #2
    with pytest.raises(DuplicateTxError, match="already stored"):
        store.append(b.block(2))
    assert store.height == 1 and store.log_size == 3


@pytest.mark.parametrize("at", [(0, 1), (0, 999), (500, 501)])
def test_rejects_a_block_holding_one_tx_twice(store: BlockStore, at: tuple[int, int]) -> None:
    """A block's own txs are checked against each other too (a GIL-free kernel in the
    numba backend), wherever the repeat sits; nothing of the block is stored."""
    b = ChainBuilder()
    store.append(b.block(3))
    raws = list(txs(1000, start=100))
    raws[at[1]] = raws[at[0]]
    with pytest.raises(AppendError, match="appears twice"):
        store.append(block_on(store, raws))
    assert store.height == 1 and store.log_size == 3


def test_state_writes_are_applied_with_the_block(store: BlockStore) -> None:
    b = ChainBuilder()
    store.append(b.block(1), [(b"a/1", b"x"), (b"a/2", b"y"), (b"b/1", b"z")])
    store.append(b.block(1), [(b"a/1", None), (b"a/3", b"w")])
    state = store.state()
    assert state.get(b"a/1") is None and state.get(b"a/2") == b"y"
    assert list(state.range(b"a/", b"a0")) == [(b"a/2", b"y"), (b"a/3", b"w")]
    assert list(state.range(b"b", None)) == [(b"b/1", b"z")]
