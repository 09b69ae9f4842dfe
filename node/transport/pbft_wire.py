"""The shape a PBFT ``Envelope`` from a peer must have, beyond its field types: digests
of 32 bytes, Ed25519 signatures of 64, replica ids of a bounded size, sequence numbers
and views in range, and every certificate or batch no longer than the protocol can ever
need. ``MessageCodec`` checks the types; ``shape_problem`` the rest, so a peer cannot
make a replica store or hash an oversized certificate before the core looks at it.

The core still verifies every signature and quorum (``consensus.pbft_certs``); this
only refuses what no correct replica sends.
"""

from __future__ import annotations

from consensus.pbft_messages import (
    Checkpoint,
    CheckpointCert,
    Commit,
    CommitCert,
    CommitProof,
    Envelope,
    EpochChanges,
    EpochProof,
    NewView,
    Prepare,
    PreparedCert,
    PrePrepare,
    StableState,
    StateReply,
    StateRequest,
    Status,
    ViewChange,
)
from consensus.types import Entry, EntryKind

DIGEST_BYTES = 32
SIGNATURE_BYTES = 64
REPLICA_ID_BYTES_MAX = 128
REPLICAS_MAX = 256
"""More replicas than any consortium runs: bounds every quorum-sized tuple."""
WINDOW_MAX = 4096
"""Sequence numbers one message may cover (prepared certificates, new-view pre-prepares,
entries of a state transfer or commit proof)."""
NUMBER_MAX = 2**63 - 1
EPOCH_PROOFS_MAX = 16
"""Epoch proofs in one ``EpochChanges`` (``consensus.pbft.EPOCH_PROOFS_MAX``)."""
APP_STATE_BYTES_MAX = 1024
"""An application's state digest in a ``StableState`` (a node's: its head's height and
hash, msgpack)."""


class _Bad(Exception):
    pass


def shape_problem(env: Envelope) -> str | None:
    """None when ``env`` is well formed, else what is wrong with it."""
    try:
        _id(env.frm, "frm")
        _id(env.to, "to")
        _body(env.body)
    except _Bad as exc:
        return f"{type(env.body).__name__}: {exc}"
    return None


def _id(v: str, where: str) -> None:
    if not v or len(v.encode()) > REPLICA_ID_BYTES_MAX:
        raise _Bad(f"{where}: replica id of {len(v.encode())} bytes")


def _num(v: int, where: str) -> None:
    if not 0 <= v <= NUMBER_MAX:
        raise _Bad(f"{where}: {v} out of range")


def _digest(v: bytes, where: str) -> None:
    if len(v) != DIGEST_BYTES:
        raise _Bad(f"{where}: digest of {len(v)} bytes, not {DIGEST_BYTES}")


def _count(n: int, most: int, where: str) -> None:
    if n > most:
        raise _Bad(f"{where}: {n} items, at most {most}")


def _signed(m: PrePrepare | Prepare | Commit | Checkpoint, where: str) -> None:
    _id(m.replica, f"{where}.replica")
    _num(m.view, f"{where}.view")
    _num(m.seq, f"{where}.seq")
    _digest(m.digest, f"{where}.digest")
    if len(m.sig) != SIGNATURE_BYTES:
        raise _Bad(f"{where}.sig: signature of {len(m.sig)} bytes, not {SIGNATURE_BYTES}")


def _checkpoint_cert(c: CheckpointCert, where: str) -> None:
    _num(c.seq, f"{where}.seq")
    _digest(c.digest, f"{where}.digest")
    _count(len(c.proof), REPLICAS_MAX, f"{where}.proof")
    for i, p in enumerate(c.proof):
        _signed(p, f"{where}.proof[{i}]")


def _prepared(p: PreparedCert, where: str) -> None:
    _signed(p.pre_prepare, f"{where}.pre_prepare")
    _count(len(p.prepares), REPLICAS_MAX, f"{where}.prepares")
    for i, x in enumerate(p.prepares):
        _signed(x, f"{where}.prepares[{i}]")


def _view_change(m: ViewChange, where: str) -> None:
    _id(m.replica, f"{where}.replica")
    _num(m.view, f"{where}.view")
    if len(m.sig) != SIGNATURE_BYTES:
        raise _Bad(f"{where}.sig: signature of {len(m.sig)} bytes, not {SIGNATURE_BYTES}")
    _checkpoint_cert(m.checkpoint, f"{where}.checkpoint")
    _count(len(m.prepared), WINDOW_MAX, f"{where}.prepared")
    for i, p in enumerate(m.prepared):
        _prepared(p, f"{where}.prepared[{i}]")


def _entry(e: Entry, where: str) -> None:
    _num(e.index, f"{where}.index")
    _num(e.term, f"{where}.term")
    if e.kind not in (EntryKind.NORMAL, EntryKind.NOOP):
        raise _Bad(f"{where}.kind: {e.kind.name} is not a PBFT entry")


def _body(b: object) -> None:
    if isinstance(b, PrePrepare | Prepare | Commit | Checkpoint):
        _signed(b, "body")
    elif isinstance(b, ViewChange):
        _view_change(b, "body")
    elif isinstance(b, NewView):
        _id(b.replica, "body.replica")
        _num(b.view, "body.view")
        if len(b.sig) != SIGNATURE_BYTES:
            raise _Bad(f"body.sig: signature of {len(b.sig)} bytes, not {SIGNATURE_BYTES}")
        _count(len(b.view_changes), REPLICAS_MAX, "body.view_changes")
        for i, v in enumerate(b.view_changes):
            _view_change(v, f"body.view_changes[{i}]")
        _count(len(b.pre_prepares), WINDOW_MAX, "body.pre_prepares")
        for i, p in enumerate(b.pre_prepares):
            _signed(p, f"body.pre_prepares[{i}]")
    elif isinstance(b, Status):
        for name in ("view", "executed", "stable"):
            _num(getattr(b, name), f"body.{name}")
    elif isinstance(b, StateRequest):
        _num(b.from_seq, "body.from_seq")
        _num(b.to_seq, "body.to_seq")
        if not b.from_seq <= b.to_seq <= b.from_seq + WINDOW_MAX:
            raise _Bad(f"body: range ({b.from_seq}, {b.to_seq}] is not a request")
    elif isinstance(b, StateReply):
        _count(len(b.entries), WINDOW_MAX, "body.entries")
        for i, e in enumerate(b.entries):
            _entry(e, f"body.entries[{i}]")
    elif isinstance(b, CommitProof):
        _count(len(b.certs), WINDOW_MAX, "body.certs")
        for i, c in enumerate(b.certs):
            _commit_cert(c, f"body.certs[{i}]")
    elif isinstance(b, StableState):
        _checkpoint_cert(b.cert, "body.cert")
        _digest(b.history, "body.history")
        if not 0 < len(b.app_state) <= APP_STATE_BYTES_MAX:
            raise _Bad(f"body.app_state: {len(b.app_state)} bytes")
    elif isinstance(b, EpochChanges):
        _count(len(b.proofs), EPOCH_PROOFS_MAX, "body.proofs")
        for i, proof in enumerate(b.proofs):
            _epoch_proof(proof, f"body.proofs[{i}]")
    else:
        raise _Bad("not a PBFT message")


def _epoch_proof(e: EpochProof, where: str) -> None:
    _num(e.start, f"{where}.start")
    _count(len(e.replicas), REPLICAS_MAX, f"{where}.replicas")
    for r in e.replicas:
        _id(r, f"{where}.replicas")
    _count(len(e.keys), REPLICAS_MAX, f"{where}.keys")
    for k in e.keys:
        _digest(k, f"{where}.keys")  # an Ed25519 public key: 32 bytes too
    _digest(e.prev, f"{where}.prev")
    _digest(e.base, f"{where}.base")
    _checkpoint_cert(e.cert, f"{where}.cert")


def _commit_cert(c: CommitCert, where: str) -> None:
    _entry(c.entry, f"{where}.entry")
    _count(len(c.commits), REPLICAS_MAX, f"{where}.commits")
    for i, x in enumerate(c.commits):
        _signed(x, f"{where}.commits[{i}]")
