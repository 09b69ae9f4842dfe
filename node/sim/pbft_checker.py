"""The properties a PBFT cluster must keep with at most f Byzantine replicas (CL §4.1
safety and liveness), checked against what the *correct* replicas send, persist and
deliver. Byzantine replicas are not checked: they may do anything.

- agreement: no two different entries delivered at one sequence number, and the same
  state after it everywhere (CL §4.1, Theorem "safety");
- certificates: every decision the protocol delivers carries 2f+1 commits from
  distinct replicas for its (view, seq, digest), and a commit attributed to a correct
  replica is one that replica really sent (CL §4.2 committed-local);
- no equivocation: a correct replica never sends two different signed statements for
  one (kind, view, seq) (what persisting votes guarantees across restarts, CL §4.6);
- durability: what a correct replica applied is on its disk when it restarts;
- progress: once the network heals, every correct replica executes the same new
  entries (CL §4.5 liveness).
"""

from __future__ import annotations

import hashlib
from collections.abc import Sequence

from consensus.pbft_messages import (
    NULL_DIGEST,
    Checkpoint,
    Commit,
    Envelope,
    NewView,
    Prepare,
    PrePrepare,
    ViewChange,
)
from consensus.pbft_storage import Decision, PbftRecord, PbftStorage
from consensus.types import Entry, EntryKind
from node.sim.checker import Violation

AGREEMENT = "agreement"
BAD_CERTIFICATE = "invalid commit certificate"
EQUIVOCATION = "correct replica equivocated"
DURABILITY = "committed entry lost in crash"
PROGRESS = "no progress after heal"


class PbftChecker:
    def __init__(self, replicas: list[str], correct: list[str]) -> None:
        self.replicas = sorted(replicas)
        self.correct = set(correct)
        n = len(replicas)
        self.quorum = n - (n - 1) // 3
        self.committed: dict[int, Entry] = {}
        self.roots: dict[int, bytes] = {}
        self.max_committed = 0
        self._said: dict[tuple[str, int, int, int], bytes] = {}
        self._commits_sent: set[tuple[str, int, int, bytes]] = set()
        #: node -> highest index it applied before its latest crash.
        self.applied_before: dict[str, int] = {}

    def on_send(self, node: str, env: Envelope) -> None:
        body = env.body
        if node not in self.correct or not isinstance(body, _SIGNED):
            return
        if body.replica != node:
            return  # Relaying someone else's statement.
        key = (node, int(body.kind), body.view, body.seq)
        first = self._said.setdefault(key, body.digest)
        if first != body.digest:
            raise Violation(
                EQUIVOCATION,
                f"{node} sent two different {body.kind.name} for view {body.view} seq {body.seq}",
            )
        if isinstance(body, Commit):
            self._commits_sent.add((node, body.view, body.seq, body.digest))

    def on_persist(self, node: str, records: Sequence[PbftRecord]) -> None:
        """A replica's own persisted commit binds it as much as a sent one: it may
        count it towards its own certificate before it leaves (or after a restart)."""
        for r in records:
            if isinstance(r, Commit) and r.replica == node:
                self._commits_sent.add((node, r.view, r.seq, r.digest))

    def on_apply(self, node: str, entry: Entry, root: bytes) -> None:
        if node not in self.correct:
            return
        first = self.committed.setdefault(entry.index, entry)
        self.max_committed = max(self.max_committed, entry.index)
        if first is not entry and (first.data != entry.data or first.kind != entry.kind):
            raise Violation(
                AGREEMENT,
                f"{node} delivered {_short(entry)} at seq {entry.index}, "
                f"{_short(first)} was delivered there before",
            )
        known = self.roots.setdefault(entry.index, root)
        if known != root:
            raise Violation(AGREEMENT, f"{node} state differs after seq {entry.index}")

    def on_decision(self, node: str, d: Decision) -> None:
        if node not in self.correct or not d.commits:
            return
        e = d.entry
        digest = NULL_DIGEST if e.kind is EntryKind.NOOP else hashlib.sha256(e.data).digest()
        signers = {c.replica for c in d.commits}
        if len(signers) < self.quorum or len(signers) != len(d.commits):
            raise Violation(
                BAD_CERTIFICATE,
                f"{node} delivered seq {e.index} on {len(signers)} distinct commits "
                f"(quorum {self.quorum})",
            )
        for c in d.commits:
            if (c.view, c.seq, c.digest) != (e.term, e.index, digest):
                raise Violation(BAD_CERTIFICATE, f"{node}: commit of {c.replica} does not match")
            if c.replica in self.correct and (
                (c.replica, c.view, c.seq, c.digest) not in self._commits_sent
            ):
                raise Violation(
                    BAD_CERTIFICATE,
                    f"{node} counted a commit of {c.replica} for view {c.view} seq {c.seq} "
                    f"that {c.replica} never sent",
                )

    def on_restart(self, node: str, storage: PbftStorage) -> None:
        if node not in self.correct:
            return
        hs = storage.hard_state()
        before = self.applied_before.get(node, 0)
        if hs.executed < before:
            raise Violation(
                DURABILITY, f"{node} applied {before} but restarted having executed {hs.executed}"
            )
        for cert in storage.committed(1, hs.executed):
            first = self.committed.get(cert.entry.index)
            if first is not None and first.data != cert.entry.data:
                raise Violation(
                    DURABILITY, f"{node} restarted with a different entry {cert.entry.index}"
                )


_SIGNED = (PrePrepare, Prepare, Commit, Checkpoint, ViewChange, NewView)


def _short(e: Entry) -> str:
    return "null" if e.kind is EntryKind.NOOP else repr(e.data[:24])
