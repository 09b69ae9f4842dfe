"""What a PBFT replica must find again after a crash, and the ``PbftReady`` it asks the
driver to execute.

CL §4.6 assumes a replica's log survives a crash; BFT-PR §4 shows what goes wrong if it
does not: a replica that forgot its votes signs a second, conflicting one. So every
vote a replica sends is a *record* persisted in the same ``PbftReady`` as the message,
before it is sent (persist -> send -> apply -> advance, docs/architecture.md §4).

Records: the pre-prepare a replica accepted for (view, seq) (or assigned, as primary),
its own prepare and commit there, its own checkpoint messages (without them a cluster
whose replicas all restarted could never prove the next checkpoint stable), its best prepared certificate per seq, and every
committed entry with its certificate (``CommitCert``; empty ``commits`` when it came by
state transfer, proved by a stable checkpoint instead). ``PbftHardState`` holds the
view, the view-change message if one is under way (so a retransmission is the same
message), the stable checkpoint with its proof, and how far the replica has executed.

A stable checkpoint lets the store drop every vote at or below it (CL §4.3 garbage
collection); committed entries stay (they are the ledger, and what state transfer
serves) until ``compact`` drops them under an application snapshot.

``PbftReady`` has the same five effect fields as ``consensus.types.Ready``
(``hard_state``, ``entries``, ``snapshot``, ``messages``, ``committed``), with PBFT's
types, so ``node.consensus_driver.Driver`` executes it unchanged; two fields are new:
``decisions`` (each committed entry with its certificate, for receipts) and ``serve``
(peers' state-transfer requests, answered from the store by the driver).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Protocol

from consensus.pbft_messages import (
    GENESIS_CHECKPOINT,
    GENESIS_DIGEST,
    Checkpoint,
    CheckpointCert,
    Commit,
    CommitCert,
    Envelope,
    EpochProof,
    Prepare,
    PreparedCert,
    PrePrepare,
    StableState,
    ViewChange,
)
from consensus.types import Entry, Snapshot, SnapshotMeta, SoftState


@dataclass(frozen=True, slots=True)
class PbftHardState:
    view: int = 0
    #: Set while the replica is changing to ``view`` (it sent this VIEW-CHANGE and has
    #: not accepted a NEW-VIEW): no pre-prepare of an older view is accepted again.
    view_change: ViewChange | None = None
    stable: CheckpointCert = GENESIS_CHECKPOINT
    executed: int = 0
    #: ``chain_digest`` after ``executed``: what the next checkpoint chains from.
    history: bytes = GENESIS_DIGEST


PbftRecord = (
    PrePrepare
    | Prepare
    | Commit
    | Checkpoint
    | PreparedCert
    | CommitCert
    | StableState
    | EpochProof
)
"""``StableState``: the state of the replica's stable checkpoint in the clear (its own,
or installed by state transfer), what it serves a replica whose entries are gone; one
is kept, never collected by a stable checkpoint (``record_key`` "stable_state").
``EpochProof``: the proof of an epoch (following the application's replica set), one
per epoch start, never collected: what a replica behind it needs (``record_key``
"epoch")."""


def record_key(r: PbftRecord) -> tuple[str, int, int]:
    """One stored record per key: a later record with the same key replaces it."""
    if isinstance(r, PrePrepare):
        return ("pre_prepare", r.view, r.seq)
    if isinstance(r, Prepare):
        return ("prepare", r.view, r.seq)
    if isinstance(r, Commit):
        return ("commit", r.view, r.seq)
    if isinstance(r, Checkpoint):
        return ("checkpoint", 0, r.seq)
    if isinstance(r, PreparedCert):
        return ("prepared", 0, r.pre_prepare.seq)
    if isinstance(r, StableState):
        return ("stable_state", 0, 0)
    if isinstance(r, EpochProof):
        return ("epoch", 0, r.start)
    return ("committed", 0, r.entry.index)


def record_seq(r: PbftRecord) -> int:
    return record_key(r)[2]


@dataclass(frozen=True, slots=True)
class Decision:
    """A committed entry as delivered, with how it was proved: ``commits`` (2f+1 signed
    commits) when the protocol committed it, empty when a state transfer brought it
    (then the stable checkpoint ``via_checkpoint`` covers it)."""

    entry: Entry
    commits: tuple[Commit, ...]
    source: str
    via_checkpoint: CheckpointCert | None = None


@dataclass(frozen=True, slots=True)
class PbftReady:
    """Executed like ``consensus.types.Ready``: persist ``snapshot``, ``entries``
    (records) and ``hard_state`` in one durable write; send ``messages``; install
    ``snapshot``; apply ``committed`` in order; answer ``serve``; then ``advance``.
    ``snapshot`` is an application state certified by a stable checkpoint
    (``StableState``, with ``PbftConfig.app_checkpoints``): its ``data`` is the
    application's state digest, its index the checkpoint's sequence number."""

    hard_state: PbftHardState | None
    entries: tuple[PbftRecord, ...]
    snapshot: Snapshot | None
    messages: tuple[Envelope, ...]
    committed: tuple[Entry, ...]
    soft_state: SoftState | None
    decisions: tuple[Decision, ...] = ()
    #: ``Envelope``s whose body is a ``StateRequest`` from ``frm``: reply with a
    #: ``StateReply`` of the committed entries (from_seq, to_seq] if the store holds all
    #: of them, else stay silent (the requester asks someone else).
    serve: tuple[Envelope, ...] = ()


class PbftStorage(Protocol):
    """Every ``save`` is atomic and durable when it returns."""

    def hard_state(self) -> PbftHardState: ...

    def records(self) -> list[PbftRecord]:
        """Every vote record above the stable checkpoint, and every committed entry
        still held, in key order."""
        ...

    def committed(self, from_seq: int, to_seq: int) -> list[CommitCert]:
        """The committed entries from_seq..to_seq (inclusive) that the store holds."""
        ...

    def snapshot(self) -> Snapshot: ...

    def save(
        self,
        hard_state: PbftHardState | None,
        entries: Sequence[PbftRecord],
        snapshot: Snapshot | None,
    ) -> None: ...

    def compact(self, snapshot: Snapshot) -> None:
        """Keep ``snapshot`` (the application at ``snapshot.meta.index``) and drop the
        committed entries it covers."""
        ...


class MemoryPbftStorage:
    """In-memory ``PbftStorage`` for the simulator and tests; "durable" on return."""

    def __init__(self, replicas: Sequence[str] = ()) -> None:
        self._hard_state = PbftHardState()
        self._records: dict[tuple[str, int, int], PbftRecord] = {}
        self._snapshot = Snapshot(SnapshotMeta(0, 0, tuple(sorted(replicas))), b"")

    def hard_state(self) -> PbftHardState:
        return self._hard_state

    def records(self) -> list[PbftRecord]:
        return [self._records[k] for k in sorted(self._records)]

    def committed(self, from_seq: int, to_seq: int) -> list[CommitCert]:
        out: list[CommitCert] = []
        for seq in range(from_seq, to_seq + 1):
            r = self._records.get(("committed", 0, seq))
            if isinstance(r, CommitCert):
                out.append(r)
        return out

    def last_committed(self) -> int:
        seqs = [k[2] for k in self._records if k[0] == "committed"]
        return max(seqs, default=self._snapshot.meta.index)

    def snapshot(self) -> Snapshot:
        return self._snapshot

    def save(
        self,
        hard_state: PbftHardState | None,
        entries: Sequence[PbftRecord],
        snapshot: Snapshot | None,
    ) -> None:
        if snapshot is not None:
            self.compact(snapshot)
        for r in entries:
            self._records[record_key(r)] = r
        if hard_state is not None:
            old = self._hard_state.stable.seq
            self._hard_state = hard_state
            if hard_state.stable.seq > old:
                self._collect(hard_state.stable.seq)

    def _collect(self, stable: int) -> None:
        """CL §4.3: votes at or below a stable checkpoint are never needed again."""
        for k in [
            k
            for k in self._records
            if k[0] not in ("committed", "stable_state", "epoch") and k[2] <= stable
        ]:
            del self._records[k]

    def compact(self, snapshot: Snapshot) -> None:
        if snapshot.meta.index <= self._snapshot.meta.index:
            return
        self._snapshot = snapshot
        for k in [k for k in self._records if k[0] == "committed" and k[2] <= snapshot.meta.index]:
            del self._records[k]

    def wipe(self) -> None:
        """Lose everything (a replica whose disk is gone; Byzantine in the simulator)."""
        self._hard_state = PbftHardState()
        self._records = {}
        self._snapshot = Snapshot(SnapshotMeta(0, 0, self._snapshot.meta.voters), b"")
