"""The LMDB ``PbftStorage`` passes the same conformance check as the in-memory one
(Castro-Liskov TOCS 2002 §4.3 garbage collection, §4.6 what survives a restart), and
what it saved is what a reopened store finds."""

from __future__ import annotations

import itertools
import sys
from collections.abc import Iterator
from pathlib import Path

import lmdb
import pytest

from consensus.pbft_messages import (
    Checkpoint,
    CheckpointCert,
    Commit,
    CommitCert,
    Prepare,
    PreparedCert,
    PrePrepare,
    ViewChange,
)
from consensus.pbft_storage import PbftHardState
from consensus.types import Entry, EntryKind, Snapshot, SnapshotMeta
from node.consensus_driver.pbft_storage import LmdbPbftStorage, PbftStorageError
from tests.conftest import ROOT

sys.path.insert(0, str(ROOT / "tests" / "consensus"))
from pbft_storage_conformance import check

REPLICAS = ["r0", "r1", "r2", "r3"]


@pytest.fixture
def opened() -> Iterator[list[LmdbPbftStorage]]:
    stores: list[LmdbPbftStorage] = []
    yield stores
    for s in stores:
        s.close()


def test_lmdb_pbft_storage_conforms(tmp_path: Path, opened: list[LmdbPbftStorage]) -> None:
    counter = itertools.count()

    def make() -> LmdbPbftStorage:
        st = LmdbPbftStorage(tmp_path / f"s{next(counter)}", REPLICAS)
        opened.append(st)
        return st

    check(make)


def _pp(view: int, seq: int) -> PrePrepare:
    return PrePrepare(view, seq, b"d" * 32, "r0", b"s" * 64, b"batch")


def test_everything_saved_survives_a_reopen(tmp_path: Path) -> None:
    st = LmdbPbftStorage(tmp_path, REPLICAS)
    p = Prepare(3, 5, b"d" * 32, "r1", b"s" * 64)
    ck = Checkpoint(4, b"c" * 32, "r1", b"s" * 64)
    vc = ViewChange(
        4, CheckpointCert(4, b"c" * 32, (ck,)), (PreparedCert(_pp(3, 5), (p,)),), "r1", b"v"
    )
    hs = PbftHardState(
        view=4,
        view_change=vc,
        stable=CheckpointCert(4, b"c" * 32, (ck,)),
        executed=5,
        history=b"h" * 32,
    )
    cc = CommitCert(
        Entry(5, 3, b"batch", EntryKind.NORMAL), (Commit(3, 5, b"d" * 32, "r1", b"s" * 64),)
    )
    noop = CommitCert(Entry(6, 4, b"", EntryKind.NOOP), ())
    st.save(hs, [_pp(3, 5), p, cc, noop, Checkpoint(8, b"e" * 32, "r1", b"s" * 64)], None)
    st.compact(Snapshot(SnapshotMeta(5, 3, tuple(REPLICAS)), b"app"))
    before = (st.hard_state(), st.records(), st.snapshot())
    st.close()
    again = LmdbPbftStorage(tmp_path, REPLICAS)
    try:
        assert (again.hard_state(), again.records(), again.snapshot()) == before
        assert again.hard_state().view_change == vc
        assert again.committed(1, 10) == [noop]
        assert again.committed(7, 6) == []
    finally:
        again.close()


def test_a_damaged_record_is_named_not_a_crash(tmp_path: Path) -> None:
    st = LmdbPbftStorage(tmp_path, REPLICAS)
    st.save(None, [_pp(0, 1)], None)
    st.close()
    env = lmdb.open(str(tmp_path), max_dbs=3)
    with env.begin(write=True) as txn:
        db = env.open_db(b"records", txn=txn)
        for k, _ in txn.cursor(db=db):
            txn.put(k, b"\x93\x01\x02", db=db)
    env.close()
    again = LmdbPbftStorage(tmp_path, REPLICAS)
    try:
        with pytest.raises(PbftStorageError, match="damaged PBFT record"):
            again.records()
    finally:
        again.close()
