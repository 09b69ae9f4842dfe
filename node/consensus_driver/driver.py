"""The one place that turns a core's ``Ready`` into effects, in the order that makes
crashes safe: persist -> send -> apply -> advance (docs/architecture.md §4).

Synchronous and IO-agnostic on purpose: the simulator calls it directly, and the
asyncio node calls it from its own loop with a storage that writes on the LMDB writer
thread and a transport that only enqueues. ``failpoint`` lets the simulator crash the
node between any two effects; production passes nothing.

Generic over the core: Raft's ``Ready`` and PBFT's ``PbftReady`` have the same five
effect fields (``hard_state``, ``entries``, ``snapshot``, ``messages``, ``committed``)
with each protocol's own types, which is all ``Driver`` reads. ``PbftDriver`` adds the
two effects only PBFT has: each decision with its certificate, and answering a peer's
state-transfer request from the store (after the rest of the Ready, as a reply is never
a promise about this replica's own state).
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Any, Generic, Protocol, TypeVar

from consensus.pbft_messages import CommitCert, CommitProof, Envelope, StateReply, StateRequest
from consensus.pbft_storage import Decision, PbftHardState, PbftReady, PbftRecord
from consensus.types import Entry, Snapshot

H_contra = TypeVar("H_contra", contravariant=True)
E_contra = TypeVar("E_contra", contravariant=True)
M_contra = TypeVar("M_contra", contravariant=True)
H_co = TypeVar("H_co", covariant=True)
E_co = TypeVar("E_co", covariant=True)
M_co = TypeVar("M_co", covariant=True)
H = TypeVar("H")
E = TypeVar("E")
M = TypeVar("M")
R = TypeVar("R")

STATE_REPLY_ENTRIES_MAX = 4096
"""A state-transfer request for more entries than this is not answered (the requester
asks for what one checkpoint interval needs; more would be a peer making us read)."""


class Effects(Protocol[H_co, E_co, M_co]):
    """What a core's Ready holds, for the driver: Raft's and PBFT's alike."""

    @property
    def hard_state(self) -> H_co | None: ...

    @property
    def entries(self) -> Sequence[E_co]: ...

    @property
    def snapshot(self) -> Snapshot | None: ...

    @property
    def messages(self) -> Sequence[M_co]: ...

    @property
    def committed(self) -> Sequence[Entry]: ...


class Core(Protocol[R]):
    def has_ready(self) -> bool: ...

    def ready(self) -> R: ...

    def advance(self, rd: R) -> None: ...

    def compact(self, index: int, data: bytes) -> Snapshot: ...


class Storage(Protocol[H_contra, E_contra]):
    def save(
        self,
        hard_state: H_contra | None,
        entries: Sequence[E_contra],
        snapshot: Snapshot | None,
    ) -> None: ...

    def compact(self, snapshot: Snapshot) -> None: ...


class Transport(Protocol[M_contra]):
    def send(self, msg: M_contra) -> None:
        """Queue ``msg`` for ``msg.to``; best effort, never blocks on the peer."""
        ...


class Applier(Protocol):
    def apply(self, entry: Entry) -> None:
        """Apply one committed entry (every kind; appliers skip ``NOOP``)."""
        ...

    def restore(self, snapshot: Snapshot) -> None:
        """Replace the state machine with ``snapshot.data``."""
        ...


RD = TypeVar("RD", bound=Effects[Any, Any, Any])


class Driver(Generic[RD, H, E, M]):
    """Executes one core's ``Ready``s. The storage is the same object the core was
    built from, so a restart sees exactly what was persisted."""

    def __init__(
        self,
        core: Core[RD],
        storage: Storage[H, E],
        transport: Transport[M],
        applier: Applier,
        failpoint: Callable[[str], None] | None = None,
    ) -> None:
        self.core = core
        self.storage = storage
        self.transport = transport
        self.applier = applier
        self._failpoint = failpoint or _no_failpoint

    def process(self) -> int:
        """Execute every pending ``Ready``; returns how many there were."""
        n = 0
        while self.core.has_ready():
            self.execute(self.core.ready())
            n += 1
        return n

    def execute(self, rd: RD) -> None:
        fp = self._failpoint
        fp("before_persist")
        if rd.hard_state is not None or rd.entries or rd.snapshot is not None:
            self.storage.save(rd.hard_state, rd.entries, rd.snapshot)
        fp("after_persist")
        for msg in rd.messages:
            self.transport.send(msg)
            fp("after_send")
        if rd.snapshot is not None:
            self.applier.restore(rd.snapshot)
        for entry in rd.committed:
            self.applier.apply(entry)
            fp("after_apply")
        self.after_apply(rd)
        self.core.advance(rd)

    def after_apply(self, rd: RD) -> None:
        """What a protocol adds after the common effects (nothing for Raft)."""

    def compact(self, index: int, data: bytes) -> Snapshot:
        """Take a snapshot at ``index`` (already applied; ``data`` is the state machine
        as of then): the core drops its log prefix, then the storage persists it. A
        crash in between leaves the old, longer log on disk, which is still valid."""
        snap = self.core.compact(index, data)
        self._failpoint("before_compact")
        self.storage.compact(snap)
        return snap


class CommittedStore(Protocol):
    def committed(self, from_seq: int, to_seq: int) -> Sequence[Any]: ...


class PbftStorageLike(Storage[PbftHardState, PbftRecord], CommittedStore, Protocol):
    """A ``consensus.pbft_storage.PbftStorage`` as the driver uses it."""


class PbftDriver(Driver[PbftReady, PbftHardState, PbftRecord, Envelope]):
    """``Driver`` for the PBFT core: after the common effects, report each decision
    (``on_decision``: its certificate, for receipts and the simulator's checker) and
    answer state-transfer requests (CL §5.3) with the committed entries the store holds
    (all of the range, or nothing: the requester then asks another replica).

    With ``reply_bytes_max`` (a node: what fits a peer frame), a range whose entries
    are larger is answered in pieces: a ``CommitProof`` of the first entries that fit,
    each with its 2f+1 signed commits (entries this replica got by state transfer have
    none, and end the piece); the requester executes them and asks for the rest."""

    def __init__(
        self,
        core: Core[PbftReady],
        storage: PbftStorageLike,
        transport: Transport[Envelope],
        applier: Applier,
        failpoint: Callable[[str], None] | None = None,
        on_decision: Callable[[Decision], None] | None = None,
        reply_bytes_max: int | None = None,
    ) -> None:
        super().__init__(core, storage, transport, applier, failpoint)
        self._committed_store = storage
        self._on_decision = on_decision
        self._reply_bytes_max = reply_bytes_max

    def after_apply(self, rd: PbftReady) -> None:
        if self._on_decision is not None:
            for d in rd.decisions:
                self._on_decision(d)
        for req in rd.serve:
            body = req.body
            if not isinstance(body, StateRequest):
                continue
            want = body.to_seq - body.from_seq
            if not 0 < want <= STATE_REPLY_ENTRIES_MAX:
                continue
            certs = self._committed_store.committed(body.from_seq + 1, body.to_seq)
            if len(certs) != want:
                continue
            budget = self._reply_bytes_max
            if budget is None or sum(len(c.entry.data) for c in certs) <= budget:
                reply: StateReply | CommitProof = StateReply(tuple(c.entry for c in certs))
            else:
                piece: list[CommitCert] = []
                size = 0
                for c in certs:
                    size += len(c.entry.data) + 256 * len(c.commits)
                    if not c.commits or (piece and size > budget):
                        break
                    piece.append(c)
                if not piece:
                    continue
                reply = CommitProof(tuple(piece))
            self.transport.send(Envelope(req.to, req.frm, reply))


def _no_failpoint(_: str) -> None:
    return None
