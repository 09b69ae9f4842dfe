"""A block's txs packed whole into LMDB values of at most a page (schema 5): every tx read
back at its position (first, last, a block of one, around empty blocks, across a
block's values), proofs over leaves that span blocks, a damaged or missing value named
with its block's height (never wrong bytes), and receipts built after pruning the
blocks before."""

from __future__ import annotations

import itertools
from collections.abc import Callable
from pathlib import Path

import lmdb
import pytest

from chain.hashing import leaf_hash
from chain.receipt import verify_receipt
from storage import lmdb_store
from storage.blockstore import StoreError
from storage.lmdb_store import LmdbBlockStore
from storage.receipts import build_receipt
from storage.verify import verify_store
from tests.storage.test_prune import SIZES, _certify, _chain
from tests.storage.test_receipts import genesis


def _log_start(blocks: list, height: int) -> int:
    h = blocks[height - 1].header
    return int(h.log_size - h.tx_count)


def test_every_tx_reads_back_at_its_position(tmp_path: Path) -> None:
    blocks, tree = _chain(tmp_path)
    assert 0 in SIZES and 1 in SIZES  # an empty block and a block of one tx
    with LmdbBlockStore.open(tmp_path) as s:
        with s._read() as txn:  # values of whole txs, keyed by their first tx's index
            items = [(int.from_bytes(k, "big"), bytes(v)) for k, v in txn.cursor(db=s._dbs["txs"])]
        starts = {_log_start(blocks, h) for h, n in enumerate(SIZES, 1) if n}
        assert starts <= {k for k, _ in items}  # a block's first value at its log start
        assert all(len(v) <= lmdb_store.TXS_CHUNK_BYTES for _, v in items)
        assert len(items) > len(starts)  # blocks of several values among them
        for height, blk in enumerate(blocks, 1):
            assert s.block(height) == blk
            for pos, raw in enumerate(blk.txs):  # first, middle, last of each block
                found = s.tx(leaf_hash(raw))
                assert found is not None
                got, loc = found
                assert got == raw and type(got) is bytes
                assert (loc.height, loc.position) == (height, pos)
        size = tree.size
        for index in range(size):  # low nodes hashed from leaves spanning blocks
            assert s.inclusion_proof(index, size) == tree.inclusion_proof(index, size)
        assert s.inclusion_proofs(list(range(size)), size) == [
            tree.inclusion_proof(i, size) for i in range(size)
        ]
        assert [b.header for b in s.iter_blocks(2)] == [b.header for b in blocks[1:]]


def _patch_value(path: Path, key: int, change: Callable[[bytes], bytes | None]) -> None:
    env = lmdb.open(str(path), max_dbs=len(lmdb_store.DB_NAMES) + 1)
    db = env.open_db(b"txs")
    with env.begin(write=True) as txn:
        value = txn.get(key.to_bytes(8, "big"), db=db)
        assert value is not None
        new = change(value)
        if new is None:
            txn.delete(key.to_bytes(8, "big"), db=db)
        else:
            txn.put(key.to_bytes(8, "big"), new, db=db)
    env.close()


def _swap_two_ends(v: bytes) -> bytes:
    return v[:4] + v[8:12] + v[4:8] + v[12:]


@pytest.mark.parametrize("value", [0, 1])  # a block's first value, its second
@pytest.mark.parametrize(
    ("change", "what", "tx_read_fails"),
    [
        (lambda v: v[:-1], "damaged", True),  # truncated by one byte
        (lambda v: v[:3], "damaged", True),  # not even a count
        (lambda v: v + b"\x00", "damaged", True),  # one byte too many
        (lambda v: (1).to_bytes(4, "big") + v[4:], "damaged", True),  # the count changed
        (_swap_two_ends, "out of order", False),
        (lambda v: None, "missing", True),
    ],
)
def test_a_damaged_block_value_is_named_with_its_height(
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    change: Callable[[bytes], bytes | None],
    what: str,
    tx_read_fails: bool,
    value: int,
) -> None:
    # Every id in a run on disk: a read-only open finds the txs of the damaged block in
    # the index (from memory they are rebuilt from the blocks, which stops at the damage).
    monkeypatch.setattr(lmdb_store, "INDEX_FLUSH_TXS", 8)
    blocks, _ = _chain(tmp_path)
    height = 5  # 33 txs, in several values
    with LmdbBlockStore.open(tmp_path, create=False, readonly=True) as s, s._read() as txn:
        start, end = _log_start(blocks, height), blocks[height - 1].header.log_size
        keys = [int.from_bytes(k, "big") for k, _ in txn.cursor(db=s._dbs["txs"])]
        mine = [k for k in keys if start <= k < end]
    assert len(mine) > 1 and mine[0] == start
    _patch_value(tmp_path, mine[value], change)
    with LmdbBlockStore.open(tmp_path, create=False, readonly=True) as s:
        report = verify_store(s)
        assert not report.ok and report.bad_height == height, report
        assert f"block {height}" in str(report.problem) and what in str(report.problem)
        with pytest.raises(StoreError, match=f"block {height}"):
            s.block(height)
        inside = blocks[height - 1].txs[mine[value] - start]  # the damaged value's first
        assert s.tx_location(leaf_hash(inside)) is not None
        if tx_read_fails:  # never the wrong bytes
            with pytest.raises(StoreError, match=f"block {height}"):
                s.tx(leaf_hash(inside))
        assert s.block(height + 1) == blocks[height]  # the next block reads as before


def test_receipts_verify_after_pruning_the_blocks_before(tmp_path: Path) -> None:
    blocks, tree = _chain(tmp_path)
    with LmdbBlockStore.open(tmp_path) as s:
        for h in range(1, len(blocks) + 1):
            _certify(s, h)
        assert s.prune(7) == 6
        with s._read() as txn:  # the pruned blocks' values are gone, the others stay
            first = int.from_bytes(next(iter(txn.cursor(db=s._dbs["txs"])))[0], "big")
        assert first == _log_start(blocks, 7)
        for height in range(7, len(blocks) + 1):
            for raw in (blocks[height - 1].txs[0], blocks[height - 1].txs[-1]):
                r = build_receipt(s, leaf_hash(raw))
                assert r is not None and verify_receipt(r, genesis()).height == height
        size = tree.size
        for index in range(_log_start(blocks, 6) - 20, size):  # pruned ids, then values
            assert s.inclusion_proof(index, size) == tree.inclusion_proof(index, size)
        assert verify_store(s).ok


@pytest.mark.parametrize(
    "sizes",
    [[1], [5000], [10, 5000, 10], [4072], [4071, 1], [2036, 2036], [300] * 40, [0, 0, 7]],
)
def test_txs_are_packed_whole_into_values_of_at_most_a_page(sizes: list[int]) -> None:
    """Greedy packing: every value but one holding a tx larger than a page fits in a page,
    each holds whole consecutive txs, keyed by its first tx's log index, and reads back."""
    txs = [bytes([i % 251]) * n for i, n in enumerate(sizes)]
    items = lmdb_store._txs_items(txs, 1_000)
    got: list[bytes] = []
    for key, value in items:
        raw = bytes(value)
        assert int.from_bytes(key, "big") == 1_000 + len(got)
        assert len(raw) <= lmdb_store.TXS_CHUNK_BYTES or lmdb_store._txs_count(raw) == 1
        got += lmdb_store._txs_of(raw, len(txs) - len(got))
    assert got == txs
    for (_, a), (_, b) in itertools.pairwise(items):  # greedy: the next tx did not fit
        n_next = lmdb_store._txs_count(bytes(b))
        first_next = lmdb_store._txs_of(bytes(b), n_next)[0]
        assert len(bytes(a)) + 4 + len(first_next) > lmdb_store.TXS_CHUNK_BYTES
