"""The ``RaftStorage`` contract, as a reusable check: the LMDB store calls
``check_raft_storage(factory)`` with its own factory and must pass unchanged.

``factory(voters)`` returns a fresh, empty store bootstrapped with ``voters``;
``reopen(store)`` (optional) returns the same store as seen after a process restart.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence

import pytest

from consensus.storage import RaftStorage
from consensus.types import Entry, HardState, Snapshot, SnapshotMeta

Factory = Callable[[Sequence[str]], RaftStorage]
Reopen = Callable[[RaftStorage], RaftStorage]


def _e(index: int, term: int) -> Entry:
    return Entry(index, term, f"{index}/{term}".encode())


def _same(store: RaftStorage) -> RaftStorage:
    return store


def check_raft_storage(factory: Factory, reopen: Reopen = _same) -> None:
    for check in (
        _bootstrap,
        _append_and_hard_state,
        _truncate_conflicting_suffix,
        _rejects_gaps_atomically,
        _compact_keeps_suffix,
        _install_snapshot_discards_disagreeing_log,
        _install_snapshot_keeps_agreeing_suffix,
    ):
        check(factory, reopen)


def _bootstrap(factory: Factory, reopen: Reopen) -> None:
    s = reopen(factory(["b", "a"]))
    assert s.hard_state() == HardState()
    assert s.snapshot().meta == SnapshotMeta(0, 0, ("a", "b"))
    assert s.entries() == []
    assert reopen(factory([])).snapshot().meta.voters == ()


def _append_and_hard_state(factory: Factory, reopen: Reopen) -> None:
    s = factory(["a"])
    s.save(HardState(1, "a", 0), [_e(1, 1), _e(2, 1)], None)
    s.save(HardState(1, "a", 2), [], None)
    s = reopen(s)
    assert s.hard_state() == HardState(1, "a", 2)
    assert s.entries() == [_e(1, 1), _e(2, 1)]


def _truncate_conflicting_suffix(factory: Factory, reopen: Reopen) -> None:
    # Raft §5.3: a conflicting suffix is replaced from the first new entry's index.
    s = factory(["a"])
    s.save(None, [_e(1, 1), _e(2, 1), _e(3, 1)], None)
    s.save(HardState(2, None, 1), [_e(2, 2)], None)
    assert reopen(s).entries() == [_e(1, 1), _e(2, 2)]


def _rejects_gaps_atomically(factory: Factory, reopen: Reopen) -> None:
    s = factory(["a"])
    s.save(HardState(1, None, 0), [_e(1, 1)], None)
    with pytest.raises(Exception):  # noqa: B017 - any error type, as long as it refuses
        s.save(HardState(5, "x", 0), [_e(3, 1)], None)
    s = reopen(s)
    assert s.entries() == [_e(1, 1)]
    assert s.hard_state() == HardState(1, None, 0)


def _compact_keeps_suffix(factory: Factory, reopen: Reopen) -> None:
    s = factory(["a"])
    s.save(None, [_e(i, 1) for i in range(1, 6)], None)
    s.compact(Snapshot(SnapshotMeta(3, 1, ("a",)), b"state@3"))
    s = reopen(s)
    assert s.snapshot() == Snapshot(SnapshotMeta(3, 1, ("a",)), b"state@3")
    assert s.entries() == [_e(4, 1), _e(5, 1)]
    s.save(None, [_e(6, 1)], None)
    assert [e.index for e in reopen(s).entries()] == [4, 5, 6]


def _install_snapshot_discards_disagreeing_log(factory: Factory, reopen: Reopen) -> None:
    # Raft §7: a snapshot that disagrees with the log replaces all of it.
    s = factory(["a"])
    s.save(None, [_e(1, 1), _e(2, 1)], None)
    snap = Snapshot(SnapshotMeta(5, 3, ("a", "b")), b"s")
    s.save(HardState(3, None, 5), [_e(6, 3)], snap)
    s = reopen(s)
    assert s.snapshot() == snap
    assert s.entries() == [_e(6, 3)]
    assert s.hard_state().commit == 5


def _install_snapshot_keeps_agreeing_suffix(factory: Factory, reopen: Reopen) -> None:
    # Raft §7: "If existing log entry has same index and term as the snapshot's last
    # included entry, retain log entries following it."
    s = factory(["a"])
    s.save(None, [_e(i, 1) for i in range(1, 5)], None)
    s.save(None, [], Snapshot(SnapshotMeta(2, 1, ("a",)), b"s"))
    assert [e.index for e in reopen(s).entries()] == [3, 4]
