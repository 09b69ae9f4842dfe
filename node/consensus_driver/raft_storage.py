"""``RaftStorage`` on the node's LMDB store: term, vote and log are durable before the
driver sends anything that depends on them (faults.md #2).

The store keeps consensus data as opaque bytes (storage may not import consensus); this
adapter owns their encoding. A hard state that differs from the stored one only in
``commit`` is not worth an fsync of its own — Raft treats the commit index as volatile
(§5, Figure 2) and a restarted node re-applies committed entries idempotently — so it
rides along with the next write that is needed anyway.
"""

from __future__ import annotations

import itertools
from collections.abc import Sequence

from chain import codec
from consensus.storage import StorageError
from consensus.types import Entry, EntryKind, HardState, Snapshot, SnapshotMeta
from storage.lmdb_store import LmdbBlockStore


def encode_entry(e: Entry) -> bytes:
    return codec.encode([e.index, e.term, int(e.kind), e.data])


def decode_entry(raw: bytes) -> Entry:
    index, term, kind, data = codec.decode(raw)
    return Entry(index, term, data, EntryKind(kind))


def _encode_hard(h: HardState) -> bytes:
    return codec.encode([h.term, h.vote, h.commit])


def _encode_snapshot(s: Snapshot) -> bytes:
    return codec.encode([s.meta.index, s.meta.term, list(s.meta.voters), s.data])


def _decode_snapshot(raw: bytes) -> Snapshot:
    index, term, voters, data = codec.decode(raw)
    return Snapshot(SnapshotMeta(index, term, tuple(voters)), data)


class LmdbRaftStorage:
    def __init__(self, store: LmdbBlockStore, voters: Sequence[str]) -> None:
        self._store = store
        hard, snap, raw_entries = store.consensus_load()
        if hard is None:
            self._hard = HardState()
        else:
            term, vote, commit = codec.decode(hard)
            self._hard = HardState(term, vote, commit)
        self._durable_hard = self._hard
        self._snapshot = (
            _decode_snapshot(snap)
            if snap is not None
            else Snapshot(SnapshotMeta(0, 0, tuple(sorted(voters))), b"")
        )
        entries = [decode_entry(r) for r in raw_entries]
        self._meta: list[tuple[int, int]] = [(e.index, e.term) for e in entries]
        self._loaded: list[Entry] | None = entries

    def hard_state(self) -> HardState:
        return self._hard

    def snapshot(self) -> Snapshot:
        return self._snapshot

    def entries(self) -> list[Entry]:
        """Read once, by the core at construction; later calls read the store again."""
        if self._loaded is not None:
            out, self._loaded = self._loaded, None
            return out
        return [decode_entry(r) for r in self._store.consensus_load()[2]]

    def _last_index(self, meta: list[tuple[int, int]], snapshot: Snapshot) -> int:
        return meta[-1][0] if meta else snapshot.meta.index

    def save(
        self, hard_state: HardState | None, entries: Sequence[Entry], snapshot: Snapshot | None
    ) -> None:
        meta = list(self._meta)
        snap = self._snapshot
        if snapshot is not None:
            snap, meta = self._install(snapshot, snap, meta)
        if entries:
            first_new = entries[0].index
            first, last = snap.meta.index + 1, self._last_index(meta, snap)
            if first_new < first or first_new > last + 1:
                raise StorageError(f"append at {first_new} outside [{first}, {last + 1}]")
            for prev, cur in itertools.pairwise(entries):
                if cur.index != prev.index + 1:
                    raise StorageError(f"entries not contiguous at {cur.index}")
            del meta[first_new - first :]
            meta.extend((e.index, e.term) for e in entries)
        new_hard = self._hard if hard_state is None else hard_state
        only_commit = (
            snapshot is None
            and not entries
            and (new_hard.term, new_hard.vote) == (self._durable_hard.term, self._durable_hard.vote)
        )
        if not only_commit:
            self._store.consensus_save(
                hard_state=_encode_hard(new_hard) if new_hard != self._durable_hard else None,
                entries=[(e.index, encode_entry(e)) for e in entries],
                snapshot=(snapshot.meta.index, _encode_snapshot(snapshot)) if snapshot else None,
            )
            self._durable_hard = new_hard
        self._hard = new_hard
        self._meta = meta
        self._snapshot = snap

    def flush(self) -> None:
        """Write a commit-only hard state still held back (on a clean shutdown)."""
        if self._hard != self._durable_hard:
            self._store.consensus_save(
                hard_state=_encode_hard(self._hard), entries=[], snapshot=None
            )
            self._durable_hard = self._hard

    @staticmethod
    def _install(
        snapshot: Snapshot, current: Snapshot, meta: list[tuple[int, int]]
    ) -> tuple[Snapshot, list[tuple[int, int]]]:
        m = snapshot.meta
        if m.index < current.meta.index:
            raise StorageError(f"snapshot {m.index} older than stored {current.meta.index}")
        pos = m.index - (current.meta.index + 1)
        if 0 <= pos < len(meta) and meta[pos][1] == m.term:
            return snapshot, meta[pos + 1 :]
        return snapshot, []

    def compact(self, snapshot: Snapshot) -> None:
        m = snapshot.meta
        if m.index < self._snapshot.meta.index:
            return
        if m.index > self._last_index(self._meta, self._snapshot):
            raise StorageError(f"compact to {m.index} beyond last index")
        snap, meta = self._install(snapshot, self._snapshot, self._meta)
        if not meta:
            self._store.consensus_save(
                hard_state=None, entries=[], snapshot=(m.index, _encode_snapshot(snapshot))
            )
        else:
            self._store.consensus_compact(m.index, _encode_snapshot(snapshot))
        self._snapshot, self._meta = snap, meta
