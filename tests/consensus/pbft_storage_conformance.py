"""What every ``PbftStorage`` must do (docs/architecture.md §10 step 2): the in-memory
twin runs it here; the LMDB adapter the node will use must run it too."""

from __future__ import annotations

from collections.abc import Callable

from consensus.pbft_messages import (
    CheckpointCert,
    Commit,
    CommitCert,
    Prepare,
    PreparedCert,
    PrePrepare,
    StableState,
)
from consensus.pbft_storage import PbftHardState, PbftStorage, record_key
from consensus.types import Entry, EntryKind, Snapshot, SnapshotMeta


def _pp(view: int, seq: int, payload: bytes = b"x") -> PrePrepare:
    return PrePrepare(view, seq, b"d" * 32, "r0", b"s", payload)


def _cc(seq: int) -> CommitCert:
    return CommitCert(Entry(seq, 0, f"e{seq}".encode(), EntryKind.NORMAL), ())


def check(make: Callable[[], PbftStorage]) -> None:
    st = make()
    assert st.hard_state() == PbftHardState()
    assert st.records() == []
    # A record replaces the one with the same key; different keys coexist.
    p1 = Prepare(0, 1, b"a" * 32, "r1", b"s")
    st.save(None, [_pp(0, 1), p1, Commit(0, 1, b"a" * 32, "r1", b"s")], None)
    st.save(None, [_pp(0, 1, b"y")], None)
    recs = st.records()
    assert len(recs) == 3
    assert [record_key(r) for r in recs] == sorted(record_key(r) for r in recs)
    pp = next(r for r in recs if isinstance(r, PrePrepare))
    assert pp.payload == b"y"
    st.save(None, [PreparedCert(_pp(0, 1), (p1,)), _cc(1), _cc(2), _pp(0, 9)], None)
    assert [c.entry.index for c in st.committed(1, 5)] == [1, 2]
    st.save(None, [StableState(CheckpointCert(4, b"c" * 32, ()), b"h" * 32, b"app4")], None)
    # A stable checkpoint collects votes at or below it, never committed entries nor the
    # stable checkpoint's state in the clear (one is kept; a later one replaces it).
    hs = PbftHardState(view=2, stable=CheckpointCert(8, b"c" * 32, ()), executed=8)
    st.save(hs, [], None)
    assert st.hard_state() == hs
    left = st.records()
    assert {record_key(r)[0] for r in left} == {"committed", "pre_prepare", "stable_state"}
    kept = [r for r in left if record_key(r)[0] not in ("committed", "stable_state")]
    assert all(record_key(r)[2] > 8 for r in kept)
    s8 = StableState(hs.stable, b"i" * 32, b"app8")
    st.save(None, [s8], None)
    assert [r for r in st.records() if isinstance(r, StableState)] == [s8]
    # compact drops committed entries under an application snapshot.
    st.compact(Snapshot(SnapshotMeta(1, 0, ("r0",)), b"app"))
    assert [c.entry.index for c in st.committed(1, 5)] == [2]
    assert st.snapshot().meta.index == 1
