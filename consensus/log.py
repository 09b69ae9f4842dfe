"""The core's in-memory view of its log: the snapshot it starts from, the entries after
it, and three watermarks — ``stable`` (durable), ``commit`` and ``applied``.

Also tracks the configuration: Raft thesis §4.1 has a server use the latest
configuration in its log, committed or not, so truncating a configuration entry must
revert to the previous one. ``_confs`` keeps (index, voters) of every configuration
entry still in the log.
"""

from __future__ import annotations

from collections.abc import Sequence

from consensus.types import (
    ConfChange,
    Entry,
    EntryKind,
    InvariantViolation,
    Snapshot,
    SnapshotMeta,
)


class RaftLog:
    def __init__(self, snapshot: Snapshot, entries: Sequence[Entry], commit: int) -> None:
        self.snapshot = snapshot
        self._entries: list[Entry] = []
        self._confs: list[tuple[int, tuple[str, ...]]] = []
        self.stable = snapshot.meta.index
        self.commit = snapshot.meta.index
        self.applied = snapshot.meta.index
        if entries:
            if entries[0].index != snapshot.meta.index + 1:
                raise InvariantViolation("stored entries do not follow the snapshot")
            self._extend(entries)
        self.stable = self.last_index
        if commit > self.last_index:
            raise InvariantViolation(f"commit {commit} beyond last index {self.last_index}")
        self.commit = max(self.commit, commit)

    # --- reads ---------------------------------------------------------------------

    @property
    def first_index(self) -> int:
        return self.snapshot.meta.index + 1

    @property
    def last_index(self) -> int:
        return self.snapshot.meta.index + len(self._entries)

    @property
    def last_term(self) -> int:
        return self._entries[-1].term if self._entries else self.snapshot.meta.term

    def term(self, index: int) -> int | None:
        """Term at ``index``, or None if compacted away or beyond the end."""
        base = self.snapshot.meta.index
        if index == base:
            return self.snapshot.meta.term
        if base < index <= base + len(self._entries):
            return self._entries[index - base - 1].term
        return None

    def matches(self, index: int, term: int) -> bool:
        return self.term(index) == term

    def entry(self, index: int) -> Entry:
        return self._entries[index - self.snapshot.meta.index - 1]

    def slice(self, lo: int, hi: int) -> list[Entry]:
        """Entries with ``lo <= index < hi``; ``lo`` must not be compacted."""
        base = self.snapshot.meta.index + 1
        return self._entries[lo - base : hi - base]

    def batch(self, lo: int, max_entries: int, max_bytes: int) -> tuple[Entry, ...]:
        """Up to ``max_entries`` from ``lo``, cut at ``max_bytes`` (but at least one)."""
        base = self.snapshot.meta.index + 1
        out = self._entries[lo - base : lo - base + max_entries]
        size = 0
        for i, e in enumerate(out):
            size += len(e.data)
            if size > max_bytes and i > 0:
                return tuple(out[:i])
        return tuple(out)

    def is_up_to_date(self, last_index: int, last_term: int) -> bool:
        """Raft §5.4.1: the candidate's log is at least as up-to-date as ours."""
        return last_term > self.last_term or (
            last_term == self.last_term and last_index >= self.last_index
        )

    def conflict_hint(self, index: int, term: int) -> tuple[int, int]:
        """The last index <= ``index`` whose term is <= ``term``, and its term: no entry
        after it can match a log whose entry at ``index`` has ``term`` (thesis §5.3)."""
        index = min(index, self.last_index)
        while True:
            t = self.term(index)
            if t is None or t <= term:
                return index, t or 0
            index -= 1

    @property
    def voters(self) -> tuple[str, ...]:
        return self._confs[-1][1] if self._confs else self.snapshot.meta.voters

    @property
    def last_conf_index(self) -> int:
        return self._confs[-1][0] if self._confs else self.snapshot.meta.index

    def voters_at(self, index: int) -> tuple[str, ...]:
        voters = self.snapshot.meta.voters
        for i, v in self._confs:
            if i > index:
                break
            voters = v
        return voters

    def unstable(self) -> tuple[Entry, ...]:
        return tuple(self.slice(self.stable + 1, self.last_index + 1))

    def to_apply(self) -> tuple[Entry, ...]:
        return tuple(self.slice(self.applied + 1, self.commit + 1))

    # --- writes --------------------------------------------------------------------

    def append(self, entries: Sequence[Entry]) -> None:
        """Leader path: entries extend the log, never replace it."""
        if entries[0].index != self.last_index + 1:
            raise InvariantViolation("leader append does not extend the log")
        self._extend(entries)

    def merge(self, entries: Sequence[Entry]) -> int | None:
        """Follower path (Raft §5.3 step 3-4): skip entries already present, truncate at
        the first conflict, append the rest. Never truncates a committed entry. Returns
        the index truncated from, if any."""
        skip = 0
        for e in entries:
            t = self.term(e.index)
            if t is None and e.index <= self.snapshot.meta.index:
                skip += 1  # Covered by our snapshot, hence committed and identical.
                continue
            if t != e.term:
                break
            skip += 1
        rest = entries[skip:]
        if not rest:
            return None
        first = rest[0].index
        if first <= self.commit:
            raise InvariantViolation(f"truncating committed {first} (commit {self.commit})")
        cut = None
        if first <= self.last_index:
            self._truncate_from(first)
            cut = first
        self._extend(rest)
        return cut

    def _truncate_from(self, index: int) -> None:
        del self._entries[index - self.snapshot.meta.index - 1 :]
        while self._confs and self._confs[-1][0] >= index:
            self._confs.pop()
        self.stable = min(self.stable, index - 1)

    def _extend(self, entries: Sequence[Entry]) -> None:
        self._entries.extend(entries)
        for e in entries:
            if e.kind == EntryKind.CONF_CHANGE:
                self._confs.append((e.index, ConfChange.decode(e.data).voters))

    def commit_to(self, index: int) -> bool:
        if index <= self.commit:
            return False
        if index > self.last_index:
            raise InvariantViolation(f"commit {index} beyond last index {self.last_index}")
        self.commit = index
        return True

    def stable_to(self, index: int, term: int) -> None:
        """Entries up to ``index`` are durable, unless the log changed underneath since
        the ``Ready`` was taken (then the term at ``index`` differs, by log matching)."""
        if self.term(index) == term and index > self.stable:
            self.stable = index

    def restore(self, snapshot: Snapshot) -> bool:
        """Raft §7: adopt a leader's snapshot; keep our suffix only if it agrees.
        Returns whether entries after the snapshot were discarded."""
        meta = snapshot.meta
        keep: list[Entry] = []
        if self.matches(meta.index, meta.term) and meta.index <= self.last_index:
            keep = self.slice(meta.index + 1, self.last_index + 1)
        discarded = self.last_index > meta.index and not keep
        self.snapshot = snapshot
        self._entries = []
        self._confs = []
        self._extend(keep)
        self.commit = max(self.commit, meta.index)
        self.applied = meta.index
        self.stable = max(meta.index, min(self.stable, self.last_index))
        return discarded

    def compact(self, index: int, data: bytes) -> Snapshot:
        """Fold entries up to ``index`` (already applied) into a snapshot."""
        if index > self.applied:
            raise InvariantViolation(f"compact to {index} beyond applied {self.applied}")
        if index <= self.snapshot.meta.index:
            return self.snapshot
        term = self.term(index)
        assert term is not None
        snap = Snapshot(SnapshotMeta(index, term, self.voters_at(index)), data)
        self._entries = self.slice(index + 1, self.last_index + 1)
        self._confs = [c for c in self._confs if c[0] > index]
        self.snapshot = snap
        self.stable = max(self.stable, index)
        return snap
