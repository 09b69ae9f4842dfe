"""The LMDB store's consensus log: truncate-and-append, snapshots, hard state, reopen."""

from __future__ import annotations

from pathlib import Path

import pytest

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
