"""The safety properties of Raft (paper Figure 3) checked against a whole simulated
cluster as it runs. Each check raises ``Violation`` at the first breach, so the trace
that precedes it is the one that explains it.

The checker only reads: it sees what nodes persist, apply and claim, never the
internals of the core, so a broken core cannot hide a breach from it.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence

from consensus.types import Entry, HardState


class Violation(Exception):
    def __init__(self, prop: str, detail: str) -> None:
        super().__init__(f"{prop}: {detail}")
        self.prop = prop
        self.detail = detail


ELECTION_SAFETY = "election safety"
LOG_MATCHING = "log matching"
LEADER_COMPLETENESS = "leader completeness"
STATE_MACHINE_SAFETY = "state machine safety"
DURABILITY = "committed entry lost in crash"
PERSIST_BEFORE_SEND = "sent before persisted"
PROGRESS = "no progress after heal"
CORE_INVARIANT = "core invariant"


class Checker:
    def __init__(self) -> None:
        self.leaders: dict[int, str] = {}
        #: index -> the entry applied there (applied anywhere means committed).
        self.committed: dict[int, Entry] = {}
        #: (index, term) -> data of every entry any node persisted.
        self.persisted: dict[tuple[int, int], bytes] = {}
        #: index -> state machine digest after applying it.
        self.state_roots: dict[int, bytes] = {}
        self.max_committed = 0
        #: index -> lowest term in which some node recorded it as committed. A leader
        #: of a later term must hold it; one of an earlier or equal term need not.
        self.commit_term: dict[int, int] = {}
        self._commit_term_top = 0

    def on_leader(self, node: str, term: int, log_term_at: LogView) -> None:
        """Raft §5.2 election safety and §5.4 leader completeness."""
        other = self.leaders.setdefault(term, node)
        if other != node:
            raise Violation(ELECTION_SAFETY, f"{other} and {node} both lead term {term}")
        for index in range(log_term_at.first_index(), self.max_committed + 1):
            e = self.committed.get(index)
            if e is None or self.commit_term.get(index, term) >= term:
                continue
            have = log_term_at.entry(index)
            if have is None or have.term != e.term or have.data != e.data:
                raise Violation(
                    LEADER_COMPLETENESS,
                    f"{node} leads term {term} without committed entry {index} (term {e.term})",
                )

    def on_persist(self, node: str, entries: Sequence[Entry]) -> None:
        """Log matching, first half (§5.3): one (index, term) names one entry."""
        persisted = self.persisted
        for e in entries:
            key = (e.index, e.term)
            data = persisted.setdefault(key, e.data)
            if data is not e.data and data != e.data:
                raise Violation(
                    LOG_MATCHING, f"{node} holds a different entry at index {e.index} term {e.term}"
                )

    def on_commit(self, term: int, commit: int) -> None:
        """A node persisted ``commit`` while at ``term``: its leader of that term (or an
        earlier one) had committed everything up to there (Raft §5.3)."""
        if commit > self._commit_term_top:
            for index in range(self._commit_term_top + 1, commit + 1):
                self.commit_term[index] = term
            self._commit_term_top = commit

    def on_vote_sent(self, node: str, candidate: str, term: int, durable: HardState) -> None:
        """Fault model #2 / Raft §5.1: term and vote are on disk before a vote leaves."""
        if durable.term < term or (durable.term == term and durable.vote != candidate):
            raise Violation(
                PERSIST_BEFORE_SEND,
                f"{node} voted for {candidate} in term {term} but has {durable} on disk",
            )

    def on_ack_sent(self, node: str, index: int, durable_last_index: int) -> None:
        """Fault model #2 / Raft §5.3: entries are on disk before they are acknowledged."""
        if index > durable_last_index:
            raise Violation(
                PERSIST_BEFORE_SEND,
                f"{node} acknowledged index {index} with {durable_last_index} on disk",
            )

    def on_apply(self, node: str, entry: Entry, root: bytes) -> None:
        """State machine safety (§5.4.3): never two different entries applied at one
        index; and the state they produce is the same everywhere."""
        first = self.committed.setdefault(entry.index, entry)
        if entry.index > self.max_committed:
            self.max_committed = entry.index
        if first is not entry and (first.term != entry.term or first.data != entry.data):
            raise Violation(
                STATE_MACHINE_SAFETY,
                f"{node} applied index {entry.index} term {entry.term}, "
                f"but term {first.term} was applied there before",
            )
        known = self.state_roots.setdefault(entry.index, root)
        if known != root:
            raise Violation(STATE_MACHINE_SAFETY, f"{node} state differs after {entry.index}")

    def on_restore(self, node: str, index: int, root: bytes) -> None:
        known = self.state_roots.setdefault(index, root)
        if known != root:
            raise Violation(STATE_MACHINE_SAFETY, f"{node} snapshot at {index} differs")

    def on_restart(self, node: str, commit: int, entries: Iterable[Entry]) -> None:
        """What a node recorded as committed survived its crash (fault model #2)."""
        for e in entries:
            if e.index > commit:
                break
            first = self.committed.get(e.index)
            if first is not None and (first.term != e.term or first.data != e.data):
                raise Violation(DURABILITY, f"{node} restarted with a different entry {e.index}")

    def check_log_matching(self, logs: dict[str, LogView]) -> None:
        """Log matching, second half (§5.3): two logs that agree at an index agree on
        every entry before it. Run at the end, over every pair of nodes."""
        names = sorted(logs)
        for i, a in enumerate(names):
            for b in names[i + 1 :]:
                la, lb = logs[a], logs[b]
                lo = max(la.first_index(), lb.first_index())
                hi = min(la.last_index(), lb.last_index())
                top = hi
                while top >= lo:
                    ea, eb = la.entry(top), lb.entry(top)
                    if ea is not None and eb is not None and ea.term == eb.term:
                        break
                    top -= 1
                for index in range(lo, top + 1):
                    ea, eb = la.entry(index), lb.entry(index)
                    if ea is None or eb is None or ea.term != eb.term or ea.data != eb.data:
                        raise Violation(
                            LOG_MATCHING,
                            f"{a} and {b} agree at {top} but differ at {index}",
                        )


class LogView:
    """Read access to one node's log for the checker."""

    def __init__(self, first: int, entries: Sequence[Entry]) -> None:
        self._first = first
        self._entries = entries

    def first_index(self) -> int:
        return self._first

    def last_index(self) -> int:
        return self._first + len(self._entries) - 1

    def entry(self, index: int) -> Entry | None:
        pos = index - self._first
        if 0 <= pos < len(self._entries):
            return self._entries[pos]
        return None
