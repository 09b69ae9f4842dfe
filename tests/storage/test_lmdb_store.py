"""LMDB-specific behaviour: durability across reopen, atomicity, schema and foreign
directories, map growth."""

from __future__ import annotations

import itertools
import threading
from pathlib import Path

import lmdb
import pytest

from chain import merkle
from chain.block import Block
from chain.hashing import leaf_hash
from chain.kernels import backend
from chain.merkle import MemoryTree
from storage import lmdb_store, runfiles
from storage.blockstore import AppendError, NotAGrantchainStore, StoreError
from storage.lmdb_store import LmdbBlockStore
from storage.verify import verify_store
from tests.factories import ChainBuilder, assert_found, block_after, block_on, txs


def test_reopen_sees_every_appended_block(tmp_path: Path) -> None:
    b = ChainBuilder()
    blocks = [b.block(n) for n in (4, 7, 1)]
    with LmdbBlockStore.open(tmp_path) as s:
        for blk in blocks:
            s.append(blk, [(b"k%d" % blk.header.height, b"v")])
        root = s.log_root()
    with LmdbBlockStore.open(tmp_path) as s:
        assert s.height == 3 and s.log_size == 12 and s.log_root() == root
        assert [s.block(i) for i in (1, 2, 3)] == blocks
        assert list(s.iter_blocks()) == blocks
        assert list(s.iter_blocks(2)) == blocks[1:]
        assert s.state().get(b"k3") == b"v"
        s.append(b.block(2))  # and it continues from where it was
        assert s.height == 4


def test_a_block_s_body_arrays_store_what_its_txs_store(tmp_path: Path) -> None:
    """A block assembled by the kernel carries its txs joined and its result codes
    (``Block.body_arrays``), from which the store packs its txs and locations; the same
    blocks decoded from bytes carry none, and the two stores hold the same records."""
    b = ChainBuilder()
    blocks = [b.block(n, results=[(7 * i) % 300 for i in range(n)]) for n in (300, 1, 57)]
    # the numba backend's assembly keeps the arrays; the reference backend's has none
    assert (blocks[0].body_arrays() is None) == (backend.active().body_roots is None)
    decoded = [Block.from_bytes(blk.to_bytes()) for blk in blocks]
    assert all(d.body_arrays() is None for d in decoded)
    dumps = []
    for name, chain in (("arrays", blocks), ("decoded", decoded)):
        with LmdbBlockStore.open(tmp_path / name) as s:
            for blk in chain:
                s.append(blk)
            assert [s.block(i) for i in (1, 2, 3)] == blocks
            assert_found(s, blocks, name)
            locations = [s.tx_location(leaf_hash(t)) for blk in blocks for t in blk.txs]
            assert [loc.result for loc in locations if loc] == [
                r for blk in blocks for r in blk.results
            ]
            with s._env.begin() as txn:
                dumps.append(
                    [list(txn.cursor(db=s._dbs[db])) for db in ("txs", "headers", "bodies")]
                )
    assert dumps[0] == dumps[1]


def test_iter_packed_reads_what_iter_blocks_reads(tmp_path: Path) -> None:
    """``iter_packed`` (``verify``'s read: the txs end to end and their lengths) gives
    every block's txs and results as ``iter_blocks`` does, empty blocks and a start
    height included; a damaged txs value gets the same error from both."""
    b = ChainBuilder()
    blocks = [b.block(n, results=[i % 5 for i in range(n)]) for n in (3, 0, 1000, 1, 40)]
    with LmdbBlockStore.open(tmp_path) as s:
        for blk in blocks:
            s.append(blk)
        for start in (1, 3, 5, 6):
            packed = [
                (h, txs, lengths.tolist(), list(results))
                for h, txs, lengths, results in s.iter_packed(start)
            ]
            plain = [
                (blk.header, b"".join(blk.txs), [len(t) for t in blk.txs], list(blk.results))
                for blk in s.iter_blocks(start)
            ]
            assert packed == plain and len(plain) == len(blocks[start - 1 :])
        log_start = blocks[0].header.tx_count  # the 1,000-tx block's first value
        with s._env.begin(write=True) as txn:
            value = bytearray(txn.get(log_start.to_bytes(8, "big"), db=s._dbs["txs"]))
            value[8:12] = (1).to_bytes(4, "big")  # the second tx's end before the first's
            txn.put(log_start.to_bytes(8, "big"), bytes(value), db=s._dbs["txs"])
        errors = []
        for read in (s.iter_blocks, s.iter_packed):
            with pytest.raises(StoreError) as exc:
                list(read())
            errors.append(str(exc.value))
        assert errors[0] == errors[1] and "block 3" in errors[0], errors


def test_a_failed_append_changes_nothing(tmp_path: Path) -> None:
    b = ChainBuilder()
    with LmdbBlockStore.open(tmp_path) as s:
        s.append(b.block(3))
        b.next_tx = 2  # tx #2 again, after two new ones would be indexed first... it is first here
        bad = b.block(3)
        with pytest.raises(AppendError):
            s.append(bad, [(b"x", b"y")])
        assert s.height == 1 and s.log_size == 3 and s.state().get(b"x") is None
        for raw in bad.txs[1:]:
            assert s.tx(leaf_hash(raw)) is None
    with LmdbBlockStore.open(tmp_path) as s:
        assert s.height == 1 and s.log_size == 3


def test_missing_and_foreign_directories_get_clear_errors(tmp_path: Path) -> None:
    with pytest.raises(NotAGrantchainStore, match="no grantchain data directory"):
        LmdbBlockStore.open(tmp_path / "nothing", create=False)
    env = lmdb.open(str(tmp_path / "foreign"), max_dbs=2)
    with env.begin(write=True) as txn:
        txn.put(b"hello", b"world")
    env.close()
    with pytest.raises(NotAGrantchainStore, match="not a grantchain store"):
        LmdbBlockStore.open(tmp_path / "foreign")
    (tmp_path / "junk").mkdir()
    (tmp_path / "junk" / "data.mdb").write_bytes(b"this is not lmdb" * 100)
    with pytest.raises(NotAGrantchainStore):
        LmdbBlockStore.open(tmp_path / "junk")


def test_schema_version_is_checked(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    LmdbBlockStore.open(tmp_path).close()
    monkeypatch.setattr(lmdb_store, "SCHEMA_TAG", b"grantchain-store/999")
    with pytest.raises(NotAGrantchainStore, match="schema"):
        LmdbBlockStore.open(tmp_path)


def test_map_grows_before_it_is_full(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(lmdb_store, "MAP_SIZE_INITIAL_BYTES", 256 * 1024)
    b = ChainBuilder()
    with LmdbBlockStore.open(tmp_path) as s:
        first = s.map_usage()[1]
        for _ in range(30):
            s.append(b.block(50))
        used, size = s.map_usage()
        assert size > first and used < size
        assert s.log_size == 1500


def test_readonly_open_does_not_create(tmp_path: Path) -> None:
    with pytest.raises(NotAGrantchainStore):
        LmdbBlockStore.open(tmp_path / "x", readonly=True)
    assert not (tmp_path / "x").exists()
    b = ChainBuilder()
    with LmdbBlockStore.open(tmp_path / "y") as s:
        s.append(b.block(2))
    with LmdbBlockStore.open(tmp_path / "y", readonly=True) as s:
        assert s.height == 1


def test_map_grows_for_state_writes_larger_than_guessed(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The room check guesses the size of state writes; a block whose writes are far
    larger (here 2 MB of them into a 256 KB map) still lands, in one append."""
    monkeypatch.setattr(lmdb_store, "MAP_SIZE_INITIAL_BYTES", 256 * 1024)
    b = ChainBuilder()
    writes = [(b"big/%04d" % i, bytes([i % 251]) * 4000) for i in range(500)]
    with LmdbBlockStore.open(tmp_path) as s:
        s.append(b.block(3), writes)
        assert s.height == 1 and s.state().get(b"big/0499") == bytes([499 % 251]) * 4000
        used, size = s.map_usage()
        assert used < size


def _indexed_on_disk(s: LmdbBlockStore) -> tuple[int, int]:
    """(ids in the runs the store records, meta/indexed_height)."""
    meta = s._dbs["meta"]
    with s._env.begin() as txn:
        cur = txn.cursor(db=meta)
        n = 0
        if cur.set_range(b"txrun/"):
            for key, value in cur:
                if not key.startswith(b"txrun/"):
                    break
                n += lmdb_store.RunInfo.from_bytes(value[:25]).id_count
        raw = txn.get(b"indexed_height", db=meta)
    return n, int.from_bytes(raw or b"\0", "big")


def _run_files(s: LmdbBlockStore) -> set[str]:
    return {f.name for f in (s.path / lmdb_store.INDEX_DIR).iterdir()}


def _wait_round_written(s: LmdbBlockStore) -> None:
    """Let the index thread finish the run file it writes (so the next append records it:
    the test's steps are then deterministic)."""
    if s._round is not None:
        s._round.result(timeout=60)


def test_a_run_goes_to_its_file_and_a_later_block_records_it(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Once ``INDEX_FLUSH_TXS`` ids are in memory they become a run, sorted and written
    to its file on the index thread; the next append after the file is written records
    it. Every id is found (in memory or on disk) at every step, and duplicates are
    refused at every step; a run written but not recorded when the store closes is
    deleted at the next open and its ids rebuilt from the blocks."""
    monkeypatch.setattr(lmdb_store, "INDEX_FLUSH_TXS", 20)
    b = ChainBuilder()
    blocks = []
    on_disk = []
    with LmdbBlockStore.open(tmp_path) as s:
        for _ in range(12):
            blocks.append(b.block(7))
            s.append(blocks[-1])
            _wait_round_written(s)
            on_disk.append(_indexed_on_disk(s))
            assert_found(s, blocks)
            for old in (blocks[0], blocks[-1]):  # on disk by now / in memory only
                with pytest.raises(AppendError, match="already stored"):
                    s.append(block_on(s, old.txs[:1]))
        # Block 3 brings the ids in memory to 21: they become a run (blocks 1-3), which
        # block 4 records; blocks 4-6 make the next, recorded by block 7, and so on.
        assert on_disk == [(0, 0)] * 3 + [(21, 3)] * 3 + [(42, 6)] * 3 + [(63, 9)] * 3
        # The run of blocks 10-12 is written, not recorded: the close leaves its file.
        assert s._round is not None and len(_run_files(s)) == 4
    with LmdbBlockStore.open(tmp_path) as s:
        assert _indexed_on_disk(s) == (63, 9)
        assert _run_files(s) == {runfiles.file_name(r) for r in s._runs}  # the orphan went
        assert s._filters[0].runs == 3 and len(s._pending) == 3 * 7
        assert_found(s, blocks)
        for _ in range(6):
            blocks.append(b.block(7))
            s.append(blocks[-1])
            _wait_round_written(s)
        # Block 13 makes blocks 10-13 a run (28 ids), recorded by block 14; blocks 14-16
        # make the next (21), recorded by block 17.
        assert _indexed_on_disk(s) == (63 + 28 + 21, 16)
        for old in (blocks[0], blocks[11], blocks[-1]):
            with pytest.raises(AppendError, match="already stored"):
                s.append(block_on(s, old.txs[:1]))


def test_closed_views_kept_alive_hold_no_reader_slot(tmp_path: Path) -> None:
    """A coroutine that waits after ``with store.snapshot() as view`` still references
    ``view``; hundreds of such waits once filled every LMDB reader slot (READERS_FULL).
    Kept closed views, and the read contexts behind them, must hold none."""
    store = LmdbBlockStore.open(tmp_path / "s")
    try:
        kept = []
        for _ in range(600):  # more than max_readers
            with store.snapshot() as view:
                view.get(b"k")
            kept.append(view)
            with store._read() as txn:
                txn.get(b"k")
        assert len(store._env.readers().splitlines()) - 1 <= 2
        with store.snapshot() as view:  # and a new view can still begin
            assert view.get(b"k") is None
    finally:
        store.close()


def test_every_log_node_is_found_where_blocks_of_any_size_put_it(tmp_path: Path) -> None:
    """Log nodes are stored a block at a time (schema 3): blocks of 0, 1, odd and power-of
    -two sizes, across reopening, give every perfect subtree the in-memory tree has."""
    b = ChainBuilder()
    tree = MemoryTree()
    sizes = [1, 0, 1, 3, 8, 0, 5, 16, 1, 1, 31, 2, 64, 7]
    with LmdbBlockStore.open(tmp_path) as s:
        for n in sizes[:7]:
            block = b.block(n)
            s.append(block)
            tree.extend(block.tx_ids())
    with LmdbBlockStore.open(tmp_path) as s:
        for n in sizes[7:]:
            block = b.block(n)
            s.append(block)
            tree.extend(block.tx_ids())
        size = s.log_size
        assert size == sum(sizes)
        for level in range(size.bit_length()):
            for index in range(size >> level):
                assert s._get_node(level, index) == tree.get_node(level, index), (level, index)
        with pytest.raises(StoreError, match="missing"):
            s._get_node(1, size >> 1)
        for size1 in range(1, size + 1, 7):
            assert s.log_root(size1) == tree.root(size1)
            proof = s.consistency_proof(size1, size)
            merkle.verify_consistency(size1, size, proof, tree.root(size1), tree.root())


def _wait_merge_ready(s: LmdbBlockStore) -> None:
    """Let the merge and index threads finish their files (so the test's steps are
    deterministic)."""
    if s._merge_future is not None:
        s._merge_future.result(timeout=60)
    _wait_round_written(s)


def test_runs_are_merged_and_every_id_stays_findable(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Level-0 runs are merged a few at a time into a level-1 run, written to its file on
    the merge thread and recorded by a later block; the runs merged away are unlinked.
    At every step every id is found where it is and refused again; the store verifies,
    and reopens (mid-merge too) intact."""
    monkeypatch.setattr(lmdb_store, "INDEX_FLUSH_TXS", 20)
    monkeypatch.setattr(lmdb_store, "MERGE_RUNS", 3)
    b = ChainBuilder()
    blocks: list[Block] = []
    levels_seen = set()
    for session in range(3):
        with LmdbBlockStore.open(tmp_path) as s:
            for _ in range(14):
                _wait_merge_ready(s)
                blocks.append(b.block(7))
                s.append(blocks[-1])
                levels_seen |= {i.level for i in s._runs.values()}
                assert_found(s, blocks, session)
                for old in (blocks[0], blocks[len(blocks) // 2]):
                    with pytest.raises(AppendError, match="already stored"):
                        s.append(block_on(s, old.txs[:1]))
            assert verify_store(s).ok
        with LmdbBlockStore.open(tmp_path, readonly=True) as s:
            report = verify_store(s)
            assert report.ok, report.problem
    assert levels_seen == {0, 1, 2}  # three level-1 runs made a level-2 run
    with LmdbBlockStore.open(tmp_path) as s:  # files no record names are gone at open
        assert _run_files(s) == {runfiles.file_name(r) for r in s._runs}
        assert sum(i.id_count for i in s._runs.values()) + len(s._pending) == 7 * len(blocks)
        assert any(i.level == 1 for i in s._runs.values())


def test_merged_runs_are_merged_again_up_to_the_top_level(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """``MERGE_RUNS`` level-1 runs become one level-2 run, like level 0 into level 1, so
    the runs a new id may falsely hit stay few as the chain grows; level-2 runs (the
    top) are not merged again. Every id is found where it is and refused again at every
    step, each level's runs cover consecutive heights, and the store verifies and
    reopens (read-only too) with the same runs. Small filters stand in for the real
    sizes (the levels' sizes differ as theirs do)."""
    monkeypatch.setattr(lmdb_store, "INDEX_FLUSH_TXS", 10)
    monkeypatch.setattr(lmdb_store, "MERGE_RUNS", 2)
    monkeypatch.setattr(lmdb_store, "RUN_FILTER_BITS_LOG2", (10, 11, 12))
    b = ChainBuilder()
    blocks: list[Block] = []
    top = len(lmdb_store.RUN_FILTER_BITS_LOG2) - 1
    for session in range(2):
        with LmdbBlockStore.open(tmp_path) as s:
            for _ in range(24):
                _wait_merge_ready(s)
                blocks.append(b.block(5))
                s.append(blocks[-1])
                _wait_merge_ready(s)
                runs = s._runs
                assert all(i.level <= top for i in runs.values())
                # Below the top, a level never holds more runs than a merge takes (it
                # is merged as soon as the merge before it is recorded).
                for level in range(top):
                    assert sum(i.level == level for i in runs.values()) <= 2 + 1, runs
                # Levels cover bands of heights, oldest at the highest level, no gaps.
                bands = sorted((i.first_height, i.last_height, i.level) for i in runs.values())
                for (_, last, level), (first, _, next_level) in itertools.pairwise(bands):
                    assert first == last + 1 and next_level <= level, bands
                assert_found(s, blocks[-8:] + blocks[:3], session)
                with pytest.raises(AppendError, match="already stored"):
                    s.append(block_on(s, blocks[len(blocks) // 3].txs[:1]))
            assert_found(s, blocks, session)
            report = verify_store(s)
            assert report.ok, report.problem
            runs_before = s._runs
        with LmdbBlockStore.open(tmp_path, readonly=True) as s:
            assert s._runs == runs_before
            report = verify_store(s)
            assert report.ok, report.problem
    levels = sorted(i.level for i in runs_before.values())
    # 240 ids in runs of 10, merged 2 at a time: level-2 runs of 40 ids pile up unmerged.
    assert levels.count(top) >= 3, levels
    with LmdbBlockStore.open(tmp_path) as s:  # files no record names are gone at open
        assert _run_files(s) == {runfiles.file_name(r) for r in s._runs}
        assert sum(i.id_count for i in s._runs.values()) + len(s._pending) == 5 * len(blocks)


def test_a_view_older_than_a_recorded_run_still_finds_its_ids(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A run is recorded with a later block, and its ids leave memory then: a view begun
    before that block still finds every one of them (the runs' files are read as they are
    now, and a lookup that raced the move looks again: ``_index_gen``)."""
    monkeypatch.setattr(lmdb_store, "INDEX_FLUSH_TXS", 20)
    b = ChainBuilder()
    blocks = [b.block(7) for _ in range(5)]
    with LmdbBlockStore.open(tmp_path) as s:
        for blk in blocks[:3]:  # block 3 makes a run of 21 ids
            s.append(blk)
        assert s._round is not None and s._filters[0].runs == 0
        _wait_round_written(s)
        view = s.snapshot()
        s.append(blocks[3])  # records the run: its ids out of memory
        assert s._round is None and s._filters[0].runs == 1 and not s._round_ids
        for blk in blocks[:3]:
            for pos, raw in enumerate(blk.txs):
                tx_id = leaf_hash(raw)
                for loc in (view.tx_location(tx_id), s.tx_location(tx_id)):
                    assert loc is not None
                    assert (loc.height, loc.position) == (blk.header.height, pos)
        view.close()


@pytest.mark.parametrize("bits", [3, 19, None], ids=["id-keys-full", "id-keys", "no-id-keys"])
def test_duplicates_are_refused_whatever_state_the_id_keys_are_in(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, bits: int | None
) -> None:
    """A new block's ids are checked against memory by ``IdKeys`` first (a kernel), the
    dicts only on its "maybe": an id in memory (pending, in the run being written, or
    rebuilt at open) or on disk is refused at every step, with a table that answers
    "no" for fresh ids, with one that is full (always "maybe"), and with none (the
    reference backend's path: the dicts alone)."""
    from chain.kernels import txrun

    monkeypatch.setattr(
        lmdb_store, "_id_keys", lambda: None if bits is None else txrun.IdKeys(bits=bits)
    )
    monkeypatch.setattr(lmdb_store, "INDEX_FLUSH_TXS", 20)
    b = ChainBuilder()
    blocks: list[Block] = []
    with LmdbBlockStore.open(tmp_path) as s:
        for _ in range(10):
            blocks.append(b.block(7))
            s.append(blocks[-1])
            for old in blocks:
                with pytest.raises(AppendError, match="already stored"):
                    s.append(block_on(s, old.txs[-1:]))
    with LmdbBlockStore.open(tmp_path) as s:  # the ids past the last run, from the blocks
        for old in blocks:
            with pytest.raises(AppendError, match="already stored"):
                s.append(block_on(s, old.txs[:1]))
        s.append(b.block(7))
        assert s.height == 11


@pytest.mark.parametrize("where", ["added-meanwhile", "moved-to-disk-meanwhile", "on-disk"])
def test_a_block_looked_up_before_the_blocks_queued_ahead_commit(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, where: str
) -> None:
    """``submit_append`` looks a block's ids up in the runs on disk on the caller's
    thread, while the writer may not have committed the blocks queued before it yet.
    A duplicate those blocks make is refused all the same: an id one of them adds (the
    writer checks memory itself), or one that was in memory at the lookup and is in a
    run by the writer's turn (the run completed meanwhile: the disk generation moved,
    so the writer looks again); and one on disk all along (found by the early lookup)."""
    monkeypatch.setattr(lmdb_store, "INDEX_FLUSH_TXS", 20)
    b = ChainBuilder()
    with LmdbBlockStore.open(tmp_path) as s:
        first = [b.block(7) for _ in range(3)]
        for blk in first:  # block 3 makes a run of 21 ids, the next block records it
            s.append(blk)
        assert s._round is not None and s._filters[0].runs == 0
        _wait_round_written(s)
        if where == "on-disk":
            s.append(b.block(7))  # the run is whole: block 1's ids are on disk
            assert s._filters[0].runs == 1 and not s._round_ids
        gate = threading.Event()
        held = s._writer.submit(gate.wait)  # the writer commits nothing until set
        ahead = b.block(7)  # records the run (or, "on-disk", is pending)
        dup = ahead.txs[2] if where == "added-meanwhile" else first[0].txs[3]
        again = block_after(b.head, b.frontier, [txs(1, 10_000)[0], dup])
        gen = s._disk_gen
        queued = [s.submit_append(ahead), s.submit_append(again)]
        gate.set()
        held.result()
        queued[0].result()
        with pytest.raises(AppendError, match=f"tx {leaf_hash(dup).hex()} is already stored"):
            queued[1].result()
        if where == "moved-to-disk-meanwhile":
            assert s._disk_gen != gen and s._filters[0].runs == 1 and not s._round_ids
        s.append(block_after(b.head, b.frontier, txs(2, 10_000)))  # the store goes on
        assert s.height == ahead.header.height + 1


def test_a_run_file_that_cannot_be_written_stops_appends_and_loses_nothing(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The disk refuses a run's file (ENOSPC): the append that would record it fails, as
    does every one after (the store does not go on without its index), with the error
    named; no block is lost, every id is still found, and a reopen writes the run again
    from the blocks."""
    monkeypatch.setattr(lmdb_store, "INDEX_FLUSH_TXS", 20)
    real_write = runfiles.write

    def full_disk(*args: object, **kwargs: object) -> runfiles.RunFile:
        raise OSError(28, "No space left on device")

    monkeypatch.setattr(runfiles, "write", full_disk)
    b = ChainBuilder()
    blocks = [b.block(7) for _ in range(3)]
    with LmdbBlockStore.open(tmp_path) as s:
        for blk in blocks:
            s.append(blk)
        _wait_round_exception(s)
        fourth = b.block(7)
        for _ in range(2):
            with pytest.raises(StoreError, match="No space left on device"):
                s.append(fourth)
        assert s.height == 3
        assert_found(s, blocks)
    monkeypatch.setattr(runfiles, "write", real_write)
    with LmdbBlockStore.open(tmp_path) as s:
        assert s.height == 3 and len(s._pending) == 21
        s.append(fourth)
        _wait_round_written(s)
        s.append(b.block(7))
        assert _indexed_on_disk(s) == (28, 4)
        assert verify_store(s).ok


def _wait_round_exception(s: LmdbBlockStore) -> None:
    assert s._round is not None
    assert s._round.exception(timeout=60) is not None
