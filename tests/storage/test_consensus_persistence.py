"""The LMDB store's consensus log: truncate-and-append, snapshots, hard state, reopen."""

from __future__ import annotations

import threading
from pathlib import Path

import pytest

from storage import consensus_log
from storage.blockstore import NotAGrantchainStore
from storage.lmdb_store import LmdbBlockStore


def test_log_truncates_conflicting_suffix_and_survives_reopen(tmp_path: Path) -> None:
    with LmdbBlockStore.open(tmp_path) as s:
        assert s.consensus_load() == (None, None, [])
        s.consensus_save(hard_state=b"h1", entries=[(1, b"a"), (2, b"b"), (3, b"c")], snapshot=None)
        s.consensus_save(hard_state=None, entries=[(2, b"B"), (3, b"C"), (4, b"D")], snapshot=None)
        assert s.consensus_load() == (b"h1", None, [b"a", b"B", b"C", b"D"])
        s.consensus_save(hard_state=b"h2", entries=[(3, b"x")], snapshot=None)
        assert s.consensus_load() == (b"h2", None, [b"a", b"B", b"x"])
    with LmdbBlockStore.open(tmp_path) as s:
        assert s.consensus_load() == (b"h2", None, [b"a", b"B", b"x"])
        s.consensus_compact(2, b"snap@2")
        assert s.consensus_load() == (b"h2", b"snap@2", [b"x"])
        s.consensus_save(hard_state=None, entries=[], snapshot=(10, b"snap@10"))
        assert s.consensus_load() == (b"h2", b"snap@10", [])
        s.consensus_save(hard_state=None, entries=[(11, b"y")], snapshot=None)
        assert s.consensus_load() == (b"h2", b"snap@10", [b"y"])


def test_genesis_binding(tmp_path: Path) -> None:
    with LmdbBlockStore.open(tmp_path) as s:
        assert s.genesis_hash() is None
        s.initialize(b"\x01" * 32, [(b"org/a", b"1"), (b"org/b", b"2")])
        s.initialize(b"\x01" * 32, [])  # same genesis: nothing to do
        assert s.state().get(b"org/b") == b"2"
        with pytest.raises(NotAGrantchainStore, match="belongs to genesis"):
            s.initialize(b"\x02" * 32, [])
    with LmdbBlockStore.open(tmp_path) as s:
        assert s.genesis_hash() == b"\x01" * 32


def test_the_log_is_written_while_a_block_append_is_in_progress(tmp_path: Path) -> None:
    """Its own environment and writer: an fsync of the log never waits for a block's."""
    with LmdbBlockStore.open(tmp_path) as s:
        busy = threading.Event()
        release = threading.Event()

        def long_append() -> None:
            busy.set()
            release.wait(30)

        held = s._writer.submit(long_append)  # the block writer, as in a long append
        assert busy.wait(10)
        s.consensus_save(hard_state=b"h", entries=[(1, b"a")], snapshot=None)
        assert s.consensus_load() == (b"h", None, [b"a"])
        assert not held.done()
        release.set()
        held.result()


def test_a_store_with_the_log_inside_moves_it_to_its_own_environment(tmp_path: Path) -> None:
    with LmdbBlockStore.open(tmp_path) as s, s._env.begin(write=True) as txn:
        txn.put(b"consensus/hard", b"h", db=s._dbs["meta"])  # as an older version wrote it
        txn.put(b"consensus/snapshot", b"snap@4", db=s._dbs["meta"])
        for i, data in ((5, b"e"), (6, b"f")):
            txn.put(i.to_bytes(8, "big"), data, db=s._dbs["clog"])
    with LmdbBlockStore.open(tmp_path) as s:
        assert s.consensus_load() == (b"h", b"snap@4", [b"e", b"f"])
        with s._env.begin() as txn:
            assert txn.get(b"consensus/hard", db=s._dbs["meta"]) is None
            assert txn.stat(s._dbs["clog"])["entries"] == 0
    with LmdbBlockStore.open(tmp_path) as s:
        assert s.consensus_load() == (b"h", b"snap@4", [b"e", b"f"])
    assert (tmp_path / "consensus" / "data.mdb").exists()


def test_the_log_map_grows_for_big_entries(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(consensus_log, "MAP_SIZE_INITIAL_BYTES", 1 << 20)
    with LmdbBlockStore.open(tmp_path) as s:
        entries = [(i, bytes([i]) * (700 * 1024)) for i in range(1, 9)]
        for e in entries:
            s.consensus_save(hard_state=None, entries=[e], snapshot=None)
        assert s.consensus_load()[2] == [d for _, d in entries]
