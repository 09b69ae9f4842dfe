"""The LMDB ``RaftStorage`` passes the same conformance check as the in-memory one."""

from __future__ import annotations

import itertools
import sys
from collections.abc import Iterator, Sequence
from pathlib import Path

import pytest

from consensus.storage import RaftStorage
from consensus.types import Entry, HardState
from node.consensus_driver.raft_storage import LmdbRaftStorage
from storage.lmdb_store import LmdbBlockStore
from tests.conftest import ROOT

sys.path.insert(0, str(ROOT / "tests" / "consensus"))
from storage_conformance import check_raft_storage


@pytest.fixture
def stores(tmp_path: Path) -> Iterator[list[LmdbBlockStore]]:
    opened: list[LmdbBlockStore] = []
    yield opened
    for s in opened:
        s.close()


def test_lmdb_raft_storage_conforms(tmp_path: Path, stores: list[LmdbBlockStore]) -> None:
    counter = itertools.count()
    voters_of: dict[int, tuple[str, ...]] = {}

    def factory(voters: Sequence[str]) -> RaftStorage:
        path = tmp_path / f"s{next(counter)}"
        store = LmdbBlockStore.open(path)
        stores.append(store)
        rs = LmdbRaftStorage(store, voters)
        voters_of[id(rs)] = tuple(voters)
        rs.path = path  # type: ignore[attr-defined]
        return rs

    def reopen(rs: RaftStorage) -> RaftStorage:
        assert isinstance(rs, LmdbRaftStorage)
        rs.flush()  # a clean restart; the crash case is tested below
        old = rs._store
        old.close()
        stores.remove(old)
        store = LmdbBlockStore.open(rs.path)  # type: ignore[attr-defined]
        stores.append(store)
        again = LmdbRaftStorage(store, voters_of[id(rs)])
        again.path = rs.path  # type: ignore[attr-defined]
        voters_of[id(again)] = voters_of[id(rs)]
        return again

    check_raft_storage(factory, reopen)


def test_commit_only_changes_skip_the_disk_but_ride_along(tmp_path: Path) -> None:
    with LmdbBlockStore.open(tmp_path) as store:
        rs = LmdbRaftStorage(store, ["a"])
        rs.save(HardState(1, "a", 0), [Entry(1, 1, b"x")], None)
        rs.save(HardState(1, "a", 1), [], None)  # commit only: no write
        assert LmdbRaftStorage(store, ["a"]).hard_state() == HardState(1, "a", 0)
        rs.save(None, [Entry(2, 1, b"y")], None)  # the next write carries it
        assert LmdbRaftStorage(store, ["a"]).hard_state() == HardState(1, "a", 1)
        rs.save(HardState(2, None, 1), [], None)  # a term change is written at once
        assert LmdbRaftStorage(store, ["a"]).hard_state() == HardState(2, None, 1)
