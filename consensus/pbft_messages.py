"""PBFT's messages (Castro & Liskov, TOCS 2002, cited "CL §N"), what each one signs, and
the certificates built from them.

A signed message is a *statement* by one replica: its kind, view, sequence number, a
digest and the replica's id, encoded by ``statement_bytes`` under a domain tag (so a
PBFT signature can never be replayed as a tx or header signature). The view and the
sequence number are always covered (CL §4.2: a prepare of view v must not count in view
v+1). ``ViewChange`` and ``NewView`` carry certificates; their digest is a hash of that
content, so the signature covers every nested message too.

Messages travel in an ``Envelope`` whose ``frm``/``to`` are *not* authenticated: only
the signed ``replica`` field says who stated something. Unsigned envelopes (``Status``,
``StateRequest``, ``StateReply``, ``CommitProof``, ``StableState``, ``EpochChanges``) are
either hints that can only trigger retransmission, or carry their own proof (a commit
certificate, a hash chain that must end at a stable checkpoint's digest, a stable
checkpoint's certificate with the state it signs, an old set's certificate of the next
set).
"""

from __future__ import annotations

import enum
import hashlib
from dataclasses import dataclass

from consensus.types import Entry

DOMAIN = b"grantchain/pbft/v1\x00"
#: The digest of a null request (CL §4.4: sequence numbers a new view fills with no-ops).
NULL_DIGEST = hashlib.sha256(b"").digest()


class Kind(enum.IntEnum):
    PRE_PREPARE = 1
    PREPARE = 2
    COMMIT = 3
    CHECKPOINT = 4
    VIEW_CHANGE = 5
    NEW_VIEW = 6


def statement_bytes(
    kind: Kind, view: int, seq: int, digest: bytes, replica: str, cover_view: bool = True
) -> bytes:
    """The bytes a replica signs. ``cover_view=False`` exists only for the planted bug
    of ``PbftBugs.unsigned_view``; production never passes it."""
    rid = replica.encode()
    return b"".join(
        (
            DOMAIN,
            bytes([int(kind)]),
            (view if cover_view else 0).to_bytes(8, "big"),
            seq.to_bytes(8, "big"),
            len(digest).to_bytes(2, "big"),
            digest,
            len(rid).to_bytes(2, "big"),
            rid,
        )
    )


def payload_digest(payload: bytes) -> bytes:
    return hashlib.sha256(payload).digest()


@dataclass(frozen=True, slots=True)
class PrePrepare:
    """CL §4.2: the primary of ``view`` assigns ``seq`` to the batch ``payload``; the
    signature covers (view, seq, digest), and ``digest`` must be the payload's hash."""

    view: int
    seq: int
    digest: bytes
    replica: str
    sig: bytes
    payload: bytes

    kind = Kind.PRE_PREPARE


@dataclass(frozen=True, slots=True)
class Prepare:
    view: int
    seq: int
    digest: bytes
    replica: str
    sig: bytes

    kind = Kind.PREPARE


@dataclass(frozen=True, slots=True)
class Commit:
    view: int
    seq: int
    digest: bytes
    replica: str
    sig: bytes

    kind = Kind.COMMIT


@dataclass(frozen=True, slots=True)
class Checkpoint:
    """CL §4.3: "my state after executing ``seq`` has digest ``digest``". The view is
    not part of it (signed as 0)."""

    seq: int
    digest: bytes
    replica: str
    sig: bytes

    kind = Kind.CHECKPOINT

    @property
    def view(self) -> int:
        return 0


@dataclass(frozen=True, slots=True)
class PreparedCert:
    """CL §4.4 "P set" element: a pre-prepare and 2f matching prepares from distinct
    backups of its view."""

    pre_prepare: PrePrepare
    prepares: tuple[Prepare, ...]


@dataclass(frozen=True, slots=True)
class CheckpointCert:
    """2f+1 matching checkpoint messages: the proof that a checkpoint is stable (CL §4.3).
    ``seq`` 0 with an empty proof is the genesis checkpoint everyone starts from."""

    seq: int
    digest: bytes
    proof: tuple[Checkpoint, ...]


GENESIS_DIGEST = bytes(32)
GENESIS_CHECKPOINT = CheckpointCert(0, GENESIS_DIGEST, ())


@dataclass(frozen=True, slots=True)
class ViewChange:
    """CL §4.4: replica ``replica`` moves to ``view``; ``checkpoint`` is its last stable
    checkpoint with proof (C), ``prepared`` its prepared certificates above it (P)."""

    view: int
    checkpoint: CheckpointCert
    prepared: tuple[PreparedCert, ...]
    replica: str
    sig: bytes

    kind = Kind.VIEW_CHANGE

    @property
    def seq(self) -> int:
        return self.checkpoint.seq

    @property
    def digest(self) -> bytes:
        return view_change_digest(self.checkpoint, self.prepared)


@dataclass(frozen=True, slots=True)
class NewView:
    """CL §4.4: the primary of ``view`` shows 2f+1 view-changes (V) and the pre-prepares
    (O) they imply; backups recompute O and reject the message if it differs."""

    view: int
    view_changes: tuple[ViewChange, ...]
    pre_prepares: tuple[PrePrepare, ...]
    replica: str
    sig: bytes

    kind = Kind.NEW_VIEW

    @property
    def seq(self) -> int:
        return 0

    @property
    def digest(self) -> bytes:
        return new_view_digest(self.view_changes, self.pre_prepares)


Signed = PrePrepare | Prepare | Commit | Checkpoint | ViewChange | NewView


@dataclass(frozen=True, slots=True)
class CommitCert:
    """2f+1 commits of one (view, seq, digest) from distinct replicas: proof that the
    entry is committed (CL §4.2 committed-local), served to laggards and kept as the
    decision's certificate."""

    entry: Entry
    commits: tuple[Commit, ...]


@dataclass(frozen=True, slots=True)
class Status:
    """An unsigned hint, sent now and then: where the sender is. A receiver that is
    ahead answers with what the sender is missing (CL §5.2 retransmission); nothing is
    ever believed because of a Status."""

    view: int
    active: bool
    executed: int
    stable: int


@dataclass(frozen=True, slots=True)
class StateRequest:
    """CL §5.3 state transfer: "send me the committed entries (from_seq, to_seq]"."""

    from_seq: int
    to_seq: int


@dataclass(frozen=True, slots=True)
class StateReply:
    """Entries served from the sender's store, unsigned: the receiver accepts them only
    if their hash chain ends at the digest of a stable checkpoint it holds a proof of."""

    entries: tuple[Entry, ...]


@dataclass(frozen=True, slots=True)
class CommitProof:
    """Committed entries with their commit certificates, for a replica that missed the
    commits (retransmission, CL §5.2)."""

    certs: tuple[CommitCert, ...]


@dataclass(frozen=True, slots=True)
class StableState:
    """CL §5.3 state transfer when the entries are gone: the state a stable checkpoint
    certifies, in the clear. ``checkpoint_digest(history, app_state) == cert.digest``
    and ``cert`` holds 2f+1 signed checkpoints, so a replica that checks both may take
    ``app_state`` (the application's digest of its own state, opaque here: a node's is
    its block store's head, which it then fetches block by block, each certified) and
    go on from ``cert.seq`` with ``history``, without the entries before it. Sent
    unsigned by any replica that holds it, to a replica that asked for state."""

    cert: CheckpointCert
    history: bytes
    app_state: bytes


@dataclass(frozen=True, slots=True)
class EpochProof:
    """An epoch as a certified fact (``follow_membership``; docs/architecture.md §9):
    the set ``replicas`` (with their public ``keys``, in that order, or none where the
    receiver's verifier knows them all) orders from ``start``, after the epoch whose
    ``epoch_digest`` is ``prev``. ``cert`` is the stable checkpoint at ``start - 1``,
    signed by a quorum of the set before (the one that ordered up to it), and its digest
    is ``epoch_checkpoint_digest(base, digest)``: following replicas sign every
    checkpoint over the epoch in force after it, so the old set's certificate vouches
    for the new set, as a change block's header certificate does (receipts'
    ``validator_sets``). ``base`` is the checkpoint's state digest
    (``checkpoint_digest``)."""

    start: int
    replicas: tuple[str, ...]
    keys: tuple[bytes, ...]
    prev: bytes
    base: bytes
    cert: CheckpointCert

    @property
    def digest(self) -> bytes:
        return epoch_digest(self.start, self.replicas, self.keys, self.prev)


@dataclass(frozen=True, slots=True)
class EpochChanges:
    """Unsigned, self-proving: the epoch changes after some sequence number, oldest
    first, for a replica behind them (each link checked with the set before it)."""

    proofs: tuple[EpochProof, ...]


Body = Signed | Status | StateRequest | StateReply | CommitProof | StableState | EpochChanges


@dataclass(frozen=True, slots=True)
class Envelope:
    """What travels between replicas. ``frm`` and ``to`` are routing, not identity."""

    frm: str
    to: str
    body: Body


# --- content digests --------------------------------------------------------------


def _h(*parts: bytes) -> bytes:
    h = hashlib.sha256()
    for p in parts:
        h.update(len(p).to_bytes(4, "big"))
        h.update(p)
    return h.digest()


def _stmt(m: Signed) -> bytes:
    """A signed message as bytes: its statement (cover_view=True) and signature."""
    return _h(statement_bytes(m.kind, m.view, m.seq, m.digest, m.replica), m.sig)


def checkpoint_cert_digest(c: CheckpointCert) -> bytes:
    return _h(c.seq.to_bytes(8, "big"), c.digest, *(_stmt(p) for p in c.proof))


def prepared_cert_digest(p: PreparedCert) -> bytes:
    return _h(_stmt(p.pre_prepare), *(_stmt(x) for x in p.prepares))


def view_change_digest(c: CheckpointCert, prepared: tuple[PreparedCert, ...]) -> bytes:
    return _h(checkpoint_cert_digest(c), *(prepared_cert_digest(p) for p in prepared))


def new_view_digest(vcs: tuple[ViewChange, ...], pps: tuple[PrePrepare, ...]) -> bytes:
    return _h(*(_stmt(v) for v in vcs), b"|", *(_stmt(p) for p in pps))


def checkpoint_digest(history: bytes, app_state: bytes) -> bytes:
    """What a checkpoint signs (CL §4.3: the digest of the state): the history digest,
    and with it the application's digest of its state when the application gives one
    (``PbftConfig.app_checkpoints``), so a stable checkpoint certifies a state that a
    replica whose missing entries are gone everywhere can fetch and check (CL §5.3)."""
    if not app_state:
        return history
    return _h(b"grantchain/pbft/checkpoint", history, app_state)


GENESIS_EPOCH_PREV = bytes(32)
"""The ``prev`` of the first epoch: nothing before it."""


def epoch_digest(
    start: int, replicas: tuple[str, ...], keys: tuple[bytes, ...], prev: bytes
) -> bytes:
    """An epoch's identity: where it starts, its set (and keys) and the epoch before it,
    so the digests of a replica's epochs chain back to the first set."""
    return _h(
        b"grantchain/pbft/epoch",
        start.to_bytes(8, "big"),
        *(r.encode() for r in replicas),
        b"|",
        *keys,
        b"|",
        prev,
    )


def epoch_checkpoint_digest(base: bytes, epoch: bytes) -> bytes:
    """What a following replica's checkpoint signs: the state digest ``base``
    (``checkpoint_digest``) and the ``epoch_digest`` of the epoch in force after it."""
    return _h(b"grantchain/pbft/checkpoint/epoch", base, epoch)


def chain_digest(prev: bytes, seq: int, entry_digest: bytes) -> bytes:
    """The history digest after executing ``seq``: what checkpoints sign. The state is a
    deterministic function of the entries executed, so equal histories mean equal
    states; a real node may sign its state root instead."""
    return hashlib.sha256(prev + seq.to_bytes(8, "big") + entry_digest).digest()
