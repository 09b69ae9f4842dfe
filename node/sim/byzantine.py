"""The Byzantine adversary of the PBFT simulator (issue 14, item 4).

Faulty replicas run the real core, so they stay plausible; the adversary sits in their
transport, holds all their keys (faulty replicas collude, as CL §2 allows) and rewrites
or drops what they send, and injects messages of its own. Each faulty replica draws a
few behaviours per seed:

- ``equivocate``: as primary, send a second batch for the same (view, seq) to one group
  of correct replicas; as backup, prepare and commit that second batch towards them;
- ``conflict``: prepares and commits with random digests to random replicas;
- ``forge``: statements in another replica's name, or with altered contents under a
  valid signature; epoch proofs (``--membership``) naming another set than the one
  certified, or with one signature too few;
- ``replay``: old messages again, as they were or relabelled to the current view;
- ``silent``: as primary, send no pre-prepare and no new-view;
- ``storm``: view-change messages for views ahead, again and again;
- ``bad_checkpoint``: checkpoints with a wrong state digest;
- ``bad_state``: state-transfer replies with altered entries;
- ``state_loss``: lose the disk and restart.
"""

from __future__ import annotations

import dataclasses
import hashlib
import random
from collections import deque
from collections.abc import Callable, Mapping

from consensus.pbft import Pbft
from consensus.pbft_messages import (
    Checkpoint,
    Commit,
    Envelope,
    EpochChanges,
    EpochProof,
    Kind,
    NewView,
    Prepare,
    PrePrepare,
    StateReply,
    ViewChange,
    payload_digest,
    statement_bytes,
)
from consensus.pbft_signing import Signer
from consensus.types import Entry

BEHAVIOURS = (
    "equivocate",
    "conflict",
    "forge",
    "replay",
    "silent",
    "storm",
    "bad_checkpoint",
    "bad_state",
    "state_loss",
)


class Adversary:
    def __init__(
        self,
        rng: random.Random,
        byzantine: list[str],
        correct: list[str],
        signers: Mapping[str, Signer],
        cover_view: bool,
        allowed: tuple[str, ...] = (),
    ) -> None:
        self._rng = rng
        self.byzantine = sorted(byzantine)
        self.correct = sorted(correct)
        self._signers = signers
        self._cover_view = cover_view
        pool = allowed or BEHAVIOURS
        self.behaviours: dict[str, set[str]] = {}
        for b in self.byzantine:
            k = rng.randint(1, min(4, len(pool)))
            self.behaviours[b] = set(rng.sample(sorted(pool), k))
        # The correct replicas that see the second batch of an equivocation.
        shuffled = self.correct[:]
        rng.shuffle(shuffled)
        self._group_b = set(shuffled[: max(1, len(shuffled) // 2)])
        self._alt: dict[tuple[int, int], tuple[bytes, bytes]] = {}
        self._seen: deque[Envelope] = deque(maxlen=300)
        self._replayed: set[tuple[str, int, int, str, int]] = set()

    def describe(self) -> str:
        return "; ".join(f"{b}: {','.join(sorted(self.behaviours[b]))}" for b in self.byzantine)

    def controls(self, node: str) -> bool:
        return node in self.behaviours

    def has(self, node: str, behaviour: str) -> bool:
        return behaviour in self.behaviours.get(node, ())

    def _sign(self, node: str, kind: Kind, view: int, seq: int, digest: bytes) -> bytes:
        stmt = statement_bytes(kind, view, seq, digest, node, self._cover_view)
        return self._signers[node].sign(stmt)

    # --- what faulty replicas send ---------------------------------------------------

    def outgoing(self, node: str, env: Envelope) -> list[Envelope]:
        body = env.body
        rng = self._rng
        if self.has(node, "silent") and isinstance(body, PrePrepare | NewView):
            return []
        if self.has(node, "equivocate") and env.to in self._group_b:
            alt = self._equivocate(node, env)
            if alt is not None:
                return [alt]
        if self.has(node, "conflict") and isinstance(body, Prepare | Commit) and rng.random() < 0.3:
            d = rng.randbytes(32)
            sig = self._sign(node, body.kind, body.view, body.seq, d)
            cls = type(body)
            return [Envelope(env.frm, env.to, cls(body.view, body.seq, d, node, sig))]
        if self.has(node, "bad_checkpoint") and isinstance(body, Checkpoint):
            d = rng.randbytes(32)
            sig = self._sign(node, Kind.CHECKPOINT, 0, body.seq, d)
            return [Envelope(env.frm, env.to, Checkpoint(body.seq, d, node, sig))]
        if self.has(node, "forge") and isinstance(body, EpochChanges) and body.proofs:
            # No draw from the random source: the seed's schedule stays the same.
            forged = tuple(_forged_epoch(p) for p in body.proofs)
            return [Envelope(env.frm, env.to, EpochChanges(forged))]
        if self.has(node, "bad_state") and isinstance(body, StateReply) and body.entries:
            es = list(body.entries)
            i = rng.randrange(len(es))
            e = es[i]
            es[i] = Entry(e.index, e.term, e.data + b"!", e.kind)
            return [Envelope(env.frm, env.to, StateReply(tuple(es)))]
        return [env]

    def _equivocate(self, node: str, env: Envelope) -> Envelope | None:
        body = env.body
        if isinstance(body, PrePrepare) and body.payload:
            alt = self._alt.get((body.view, body.seq))
            if alt is None:
                payload = body.payload + b"#equivocation"
                alt = (payload_digest(payload), payload)
                self._alt[(body.view, body.seq)] = alt
            d, payload = alt
            sig = self._sign(node, Kind.PRE_PREPARE, body.view, body.seq, d)
            return Envelope(env.frm, env.to, PrePrepare(body.view, body.seq, d, node, sig, payload))
        if isinstance(body, Prepare | Commit):
            alt = self._alt.get((body.view, body.seq))
            if alt is None:
                return None
            sig = self._sign(node, body.kind, body.view, body.seq, alt[0])
            cls = type(body)
            return Envelope(env.frm, env.to, cls(body.view, body.seq, alt[0], node, sig))
        return None

    # --- what faulty replicas receive and inject -------------------------------------

    def observe(self, env: Envelope) -> None:
        if isinstance(env.body, PrePrepare | Prepare | Commit | Checkpoint | ViewChange):
            self._seen.append(env)

    def inject(self, node: str, core: Pbft, now: int, send: Callable[[Envelope], None]) -> None:
        rng = self._rng
        peers = [r for r in core.members.replicas if r != node]
        if self.has(node, "storm") and now % 5 == 0:
            for ahead in (1, 2, 3):
                view = core.view + ahead
                vc = ViewChange(view, core.stable, (), node, b"")
                sig = self._sign(node, Kind.VIEW_CHANGE, view, core.stable.seq, vc.digest)
                vc = ViewChange(view, core.stable, (), node, sig)
                for p in peers:
                    send(Envelope(node, p, vc))
        if self.has(node, "forge") and rng.random() < 0.3 and self._seen:
            env = self._seen[rng.randrange(len(self._seen))]
            body = env.body
            victim = rng.choice(peers)
            if isinstance(body, Prepare | Commit):
                # Another replica's statement with a new digest under its old signature,
                # and one in its name signed with our key.
                cls = type(body)
                d = rng.randbytes(32)
                send(Envelope(node, victim, cls(body.view, body.seq, d, body.replica, body.sig)))
                sig = self._sign(node, body.kind, body.view, body.seq, d)
                send(Envelope(node, victim, cls(body.view, body.seq, d, body.replica, sig)))
            elif isinstance(body, PrePrepare):
                payload = body.payload + b"#forged"
                d = hashlib.sha256(payload).digest()
                forged = PrePrepare(body.view, body.seq, d, body.replica, body.sig, payload)
                send(Envelope(node, victim, forged))
        if self.has(node, "replay") and self._seen:
            for _ in range(2):
                env = self._seen[rng.randrange(len(self._seen))]
                send(Envelope(node, rng.choice(peers), env.body))
            # Old-view votes relabelled to the current view, signatures kept: rejected
            # by any core whose signatures cover the view (CL §4.2).
            for env in list(self._seen) if core.active else []:
                body = env.body
                if not isinstance(body, Prepare | Commit) or body.view >= core.view:
                    continue
                key = (body.replica, body.view, body.seq, type(body).__name__, core.view)
                if key in self._replayed:
                    continue
                self._replayed.add(key)
                cls = type(body)
                relabelled = cls(core.view, body.seq, body.digest, body.replica, body.sig)
                for p in peers:
                    send(Envelope(node, p, relabelled))


def _forged_epoch(p: EpochProof) -> EpochProof:
    """``p`` forged, by the parity of its start: another set than the old set certified
    (its first replica left out), or its certificate one signature short of a quorum."""
    if p.start % 2:
        return dataclasses.replace(p, replicas=p.replicas[1:], keys=p.keys[1:])
    proof = p.cert.proof[:-1]
    return dataclasses.replace(p, cert=dataclasses.replace(p.cert, proof=proof))
