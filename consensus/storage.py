"""The durable state a Raft node restarts from, as a Protocol owned by its users: the
core reads it once at construction, the driver writes it while executing a ``Ready``.

``MemoryRaftStorage`` is the in-memory twin used by tests and the simulator; the LMDB
store implements the same Protocol and runs the same conformance test
(``tests/consensus/storage_conformance.py``).
"""

from __future__ import annotations

import itertools
from collections.abc import Sequence
from typing import Protocol

from consensus.types import Entry, HardState, Snapshot, SnapshotMeta


class RaftStorage(Protocol):
    """Every write is atomic and durable when it returns: the driver sends messages
    that promise the write happened (votes, append acknowledgements) right after it."""

    def hard_state(self) -> HardState: ...

    def snapshot(self) -> Snapshot:
        """The latest snapshot; a node that never had one reports index 0 (its
        ``voters`` are the bootstrap configuration, or empty for a joining node)."""
        ...

    def entries(self) -> list[Entry]:
        """Every entry after the snapshot, contiguous. Compaction keeps this bounded."""
        ...

    def save(
        self,
        hard_state: HardState | None,
        entries: Sequence[Entry],
        snapshot: Snapshot | None,
    ) -> None:
        """Persist one ``Ready``: the snapshot, then the entries (truncating from
        ``entries[0].index`` first), then the hard state, in one transaction."""
        ...

    def compact(self, snapshot: Snapshot) -> None:
        """Store a locally taken snapshot and drop the entries it covers."""
        ...


class StorageError(Exception):
    """A write that would leave the log with a gap or a hole: a driver or core bug."""


class MemoryRaftStorage:
    """In-memory ``RaftStorage``. Each call is "durable" the moment it returns, which is
    exactly the guarantee the simulator needs to model a crash between two calls."""

    def __init__(self, voters: Sequence[str] = ()) -> None:
        self._hard_state = HardState()
        self._snapshot = Snapshot(SnapshotMeta(0, 0, tuple(sorted(voters))), b"")
        self._entries: list[Entry] = []

    def hard_state(self) -> HardState:
        return self._hard_state

    def snapshot(self) -> Snapshot:
        return self._snapshot

    def entries(self) -> list[Entry]:
        return list(self._entries)

    def last_index(self) -> int:
        return self._entries[-1].index if self._entries else self._snapshot.meta.index

    def save(
        self,
        hard_state: HardState | None,
        entries: Sequence[Entry],
        snapshot: Snapshot | None,
    ) -> None:
        # Validate everything first so a rejected save changes nothing (atomicity).
        new_entries = self._entries
        new_snapshot = self._snapshot
        if snapshot is not None:
            new_snapshot, new_entries = _install(snapshot, self._snapshot, new_entries)
        if entries:
            keep = _check_append(entries, new_snapshot, new_entries)
            del new_entries[keep:]
            new_entries.extend(entries)
        self._snapshot = new_snapshot
        self._entries = new_entries
        if hard_state is not None:
            self._hard_state = hard_state

    def compact(self, snapshot: Snapshot) -> None:
        meta = snapshot.meta
        if meta.index < self._snapshot.meta.index:
            return  # An older snapshot than we hold: nothing to gain.
        if meta.index > self.last_index():
            raise StorageError(f"compact to {meta.index} beyond last index")
        self._snapshot, self._entries = _install(snapshot, self._snapshot, self._entries)


def _install(
    snapshot: Snapshot, current: Snapshot, entries: list[Entry]
) -> tuple[Snapshot, list[Entry]]:
    """Raft §7: keep the entries after the snapshot only if the log agrees with it at
    its last index; otherwise the whole log is superseded."""
    meta = snapshot.meta
    if meta.index < current.meta.index:
        raise StorageError(f"snapshot {meta.index} older than stored {current.meta.index}")
    first = current.meta.index + 1
    pos = meta.index - first
    if 0 <= pos < len(entries) and entries[pos].term == meta.term:
        return snapshot, entries[pos + 1 :]
    return snapshot, []


def _check_append(entries: Sequence[Entry], snapshot: Snapshot, log: list[Entry]) -> int:
    """How many stored entries survive the append; raises before anything changes."""
    first_new = entries[0].index
    first = snapshot.meta.index + 1
    last = log[-1].index if log else snapshot.meta.index
    if first_new < first or first_new > last + 1:
        raise StorageError(f"append at {first_new} outside [{first}, {last + 1}]")
    for prev, cur in itertools.pairwise(entries):
        if cur.index != prev.index + 1:
            raise StorageError(f"entries not contiguous at {cur.index}")
    return first_new - first
