"""Checking PBFT's signed messages and certificates (CL §4.2-§4.4): who may sign what,
how many distinct signers make a quorum, and whether a certificate's parts agree.

A ``Membership`` is the replica set of one configuration: n replicas tolerate
f = (n-1)//3 faults, a quorum is n-f (2f+1 when n = 3f+1) so any two quorums share a
correct replica, and the primary of view v is the v mod n-th replica in sorted order
(CL §4.1).
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence

from consensus.pbft_messages import (
    GENESIS_DIGEST,
    NULL_DIGEST,
    CheckpointCert,
    Commit,
    CommitCert,
    EpochProof,
    PreparedCert,
    Signed,
    ViewChange,
    epoch_checkpoint_digest,
    payload_digest,
    statement_bytes,
)
from consensus.pbft_signing import Ed25519Verifier, Verifier
from consensus.types import EntryKind


class Membership:
    def __init__(
        self,
        replicas: Sequence[str],
        verifier: Verifier,
        log_window: int,
        cover_view: bool = True,
    ) -> None:
        self.replicas = tuple(sorted(set(replicas)))
        if len(self.replicas) != len(replicas) or not self.replicas:
            raise ValueError("replica ids must be distinct and non-empty")
        self.n = len(self.replicas)
        self.f = (self.n - 1) // 3
        self.quorum = self.n - self.f
        self.verifier = verifier
        self.log_window = log_window
        self.cover_view = cover_view

    def primary(self, view: int) -> str:
        return self.replicas[view % self.n]

    def signed_ok(self, m: Signed) -> bool:
        if m.replica not in self.replicas:
            return False
        stmt = statement_bytes(m.kind, m.view, m.seq, m.digest, m.replica, self.cover_view)
        return self.verifier.verify(m.replica, stmt, m.sig)

    def prime(self, msgs: Iterable[Signed]) -> int:
        """Verify the signatures of ``msgs`` by this set's replicas in one batch, where
        the verifier can (``Ed25519Verifier.prime``), so that ``signed_ok`` finds their
        verdicts: what a driver holding several messages at once calls before stepping
        them. Changes no verdict; how many signatures were verified."""
        verifier = self.verifier
        if not isinstance(verifier, Ed25519Verifier):
            return 0
        claims = [
            (
                m.replica,
                statement_bytes(m.kind, m.view, m.seq, m.digest, m.replica, self.cover_view),
                m.sig,
            )
            for m in msgs
            if m.replica in self.replicas
        ]
        return verifier.prime(claims) if len(claims) > 1 else 0

    def checkpoint_cert_ok(self, c: CheckpointCert) -> bool:
        """CL §4.3: 2f+1 checkpoint messages with one (seq, digest) from distinct
        replicas; or the genesis checkpoint."""
        if c.seq == 0:
            return c.digest == GENESIS_DIGEST and not c.proof
        signers = _distinct(
            p.replica
            for p in c.proof
            if p.seq == c.seq and p.digest == c.digest and self.signed_ok(p)
        )
        return len(signers) >= self.quorum and len(c.proof) == len(signers)

    def prepared_cert_ok(self, p: PreparedCert, below_view: int, low: int) -> bool:
        """CL §4.4: a pre-prepare signed by the primary of its view, and 2f prepares
        for the same (view, seq, digest) from distinct backups; of a view before
        ``below_view`` and a sequence number inside the window above ``low``."""
        pp = p.pre_prepare
        if not (pp.view < below_view and low < pp.seq <= low + self.log_window):
            return False
        if pp.replica != self.primary(pp.view) or not self.signed_ok(pp):
            return False
        if payload_digest(pp.payload) != pp.digest:
            return False
        signers = _distinct(
            x.replica
            for x in p.prepares
            if x.view == pp.view
            and x.seq == pp.seq
            and x.digest == pp.digest
            and x.replica != pp.replica
            and self.signed_ok(x)
        )
        return len(signers) >= self.quorum - 1 and len(p.prepares) == len(signers)

    def view_change_ok(self, v: ViewChange, checkpoint_by: Membership | None = None) -> bool:
        """CL §4.4; the stable-checkpoint proof is judged by ``checkpoint_by`` when given:
        the set that ordered up to it, which an epoch's first checkpoint is signed by
        (``consensus.pbft``, module doc)."""
        judge = checkpoint_by or self
        if not self.signed_ok(v) or not judge.checkpoint_cert_ok(v.checkpoint):
            return False
        seqs = [p.pre_prepare.seq for p in v.prepared]
        if len(set(seqs)) != len(seqs):
            return False
        return all(self.prepared_cert_ok(p, v.view, v.checkpoint.seq) for p in v.prepared)

    def epoch_proof_ok(self, p: EpochProof, epoch: bytes, start: int) -> bool:
        """Whether ``p`` proves the epoch after this set's, which started at ``start``
        with digest ``epoch``: ``p`` names that epoch as the one before, starts after
        it, is a well-formed set, and its certificate is a stable checkpoint of this set
        at ``p.start - 1`` signing the new epoch (``EpochProof``)."""
        if p.prev != epoch or not start < p.start or p.cert.seq != p.start - 1:
            return False
        names = p.replicas
        if not names or tuple(sorted(set(names))) != names:
            return False
        if p.keys and len(p.keys) != len(names):
            return False
        if p.cert.digest != epoch_checkpoint_digest(p.base, p.digest):
            return False
        return self.checkpoint_cert_ok(p.cert)

    def commit_cert_ok(self, c: CommitCert, quorum: int | None = None) -> bool:
        """CL §4.2 committed-local: 2f+1 commits for the entry's (view, seq, digest)
        from distinct replicas. The entry is a no-op exactly when it is the null
        request."""
        e = c.entry
        null = e.data == b""
        if null != (e.kind is EntryKind.NOOP) or e.kind is EntryKind.CONF_CHANGE:
            return False
        digest = NULL_DIGEST if null else e.digest
        signers = _distinct(
            x.replica
            for x in c.commits
            if _matches(x, e.term, e.index, digest) and self.signed_ok(x)
        )
        need = self.quorum if quorum is None else quorum
        return len(signers) >= need and len(c.commits) == len(signers)


def _matches(c: Commit, view: int, seq: int, digest: bytes) -> bool:
    return c.view == view and c.seq == seq and c.digest == digest


def _distinct(replicas: Iterable[str]) -> list[str]:
    seen: list[str] = []
    for r in replicas:
        if r not in seen:
            seen.append(r)
    return seen
