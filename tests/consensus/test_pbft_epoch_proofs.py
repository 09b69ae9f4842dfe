"""Epochs as certified facts (``consensus.pbft`` module doc; docs/architecture.md §9):
a following replica's checkpoint signs the epoch in force after it, so the old set's
stable checkpoint at an epoch boundary, with the new set, is an ``EpochProof``. A
replica behind a change of the set learns the later epochs from the proofs its peers
send (checked link by link from the set it trusts) and then judges their checkpoints,
view changes and states by the right set: the PBFT simulator's seed 164 (a replica
behind across a change of the set's size stopped for good) as a unit test.

A proof that is not what the old set certified is refused: forged (another set, an
outsider's signatures), signed by too few of the old set, at the wrong checkpoint, a
replay of an old set's proof of a successor the receiver knows otherwise, or one that
contradicts what the receiver executed itself."""

from __future__ import annotations

import dataclasses
import hashlib
from pathlib import Path

from pbft_harness import CFG, Cluster, key
from test_pbft_membership import Following, _keys, _reqs, _run

from chain import signing
from consensus.pbft import Pbft
from consensus.pbft_messages import (
    Checkpoint,
    CheckpointCert,
    Envelope,
    EpochChanges,
    EpochProof,
    Kind,
    StateReply,
    StateRequest,
    epoch_checkpoint_digest,
    statement_bytes,
)
from consensus.pbft_storage import MemoryPbftStorage
from consensus.types import Snapshot, SnapshotMeta

FIVE = ["r0", "r1", "r2", "r3", "r4"]
FOUR = ["r0", "r2", "r3", "r4"]  # r1 removed: n = 4, quorum 3


def _behind() -> tuple[Following, int]:
    """r4 added (epoch 13, n = 5), then cut off while r1 is removed: the other four
    (a quorum of five) order the removal, and r0, r2, r3 (a quorum of the four left)
    go on into the 4-replica epoch without r4. Returns the cluster and the start of
    that epoch."""
    c = Following()
    _run(c, [b"set:" + ",".join(FIVE).encode()])
    _run(c, _reqs(0, 15))
    r4 = c.nodes["r4"].core
    assert r4.members.n == 5 and r4.is_member and r4.executed == 16

    def no_r4(m: Envelope) -> bool:
        return "r4" not in (m.frm, m.to)

    _run(c, [b"set:" + ",".join(FOUR).encode()], keep=no_r4)
    _run(c, _reqs(100, 40), keep=no_r4)
    r0 = c.nodes["r0"].core
    start = r0._epochs[-1][0]
    assert r0.members_at(start).replicas == tuple(FOUR)
    assert r0.stable.seq > start and r0.members.n == 4
    assert r4.executed < start - 1 and r4.members.n == 5
    return c, start


def _proof(c: Cluster, name: str, start: int) -> EpochProof:
    got = [p for p in c.nodes[name].core.epoch_proofs(0) if p.start == start]
    assert got, f"{name} holds no proof of the epoch from {start}"
    return got[0]


def _step(core: Pbft, *proofs: EpochProof) -> None:
    core.step(Envelope("r0", core.node_id, EpochChanges(tuple(proofs))))


def _starts(core: Pbft) -> list[int]:
    return [s for s, _ in core._epochs]


def test_a_replica_behind_a_change_of_the_sets_size_learns_it_and_catches_up() -> None:
    """Seed 164's scenario: r4 knows the 5-replica set; the others' checkpoints are
    signed by 3 of the 4-replica set, which a 5-replica quorum (4) refuses. Their
    status answers carry the proof of the new epoch (the 5-set's certificate of the
    checkpoint before it): r4 checks it with the set it knows, then takes their
    checkpoint, fetches the entries and votes in the new epoch."""
    c, start = _behind()
    r4 = c.nodes["r4"].core
    seen: list[EpochChanges] = []

    def spy(m: Envelope) -> bool:
        if m.to == "r4" and isinstance(m.body, EpochChanges):
            seen.append(m.body)
        return True

    c.tick(CFG.status_interval_ticks * 3, keep=spy)
    assert seen and any(p.start == start for b in seen for p in b.proofs)
    assert r4.members_at(start).replicas == tuple(FOUR)
    _run(c, _reqs(200, 6))
    assert c.data("r4") == c.data("r0")
    assert r4.is_member and r4.members.n == 4 and r4.stable.seq > start
    # The proof r4 learned is kept: persisted (a restart finds it) and served.
    assert any(
        isinstance(r, EpochProof) and r.start == start for r in c.nodes["r4"].storage.records()
    )
    assert _proof(c, "r4", start) == _proof(c, "r0", start)


def test_without_the_proof_the_replica_behind_cannot_judge_the_later_epoch() -> None:
    """The control: the same replica, its epoch proofs dropped, stays behind (what
    the simulator found), so the test above shows the proofs at work."""
    c, start = _behind()
    r4 = c.nodes["r4"].core

    def no_proofs(m: Envelope) -> bool:
        return not isinstance(m.body, EpochChanges)

    c.tick(CFG.status_interval_ticks * 3, keep=no_proofs)
    _run(c, _reqs(200, 6), keep=no_proofs)
    assert r4.members.n == 5 and r4.executed < start
    assert r4.members_at(start).replicas == tuple(FIVE)


def test_a_replica_whose_stable_checkpoint_jumped_ahead_of_its_epochs_gets_the_proofs() -> None:
    """The simulator's seed 111: r4, added while cut off, has executed nothing when it
    hears the others again; they have added it, removed r3 and gone on, their
    checkpoints signed by r0, r1, r2, also a quorum of the genesis set r4 judges them
    by, so r4's stable checkpoint jumps to theirs at once. The entries it fetches end at
    a checkpoint that signs an epoch it does not know: the proofs must come by what it
    executed (nothing), not by its stable checkpoint (the others')."""
    c = Following()

    def no_r4(m: Envelope) -> bool:
        return "r4" not in (m.frm, m.to)

    _run(c, [b"set:" + ",".join(FIVE).encode()], keep=no_r4)
    _run(c, _reqs(0, 15), keep=no_r4)
    _run(c, [b"set:r0,r1,r2,r4"], keep=no_r4)
    _run(c, _reqs(100, 30), keep=no_r4)
    r0, r4 = c.nodes["r0"].core, c.nodes["r4"].core
    assert _starts(r0) == [1, 13, 29] and r0.stable.seq > 29
    assert [p.replica for p in r0.stable.proof] == ["r0", "r1", "r2"]
    assert r4.executed == 0 and _starts(r4) == [1]

    def no_proofs(m: Envelope) -> bool:
        return not isinstance(m.body, EpochChanges)

    c.tick(CFG.status_interval_ticks * 2, keep=no_proofs)  # the proofs come late
    assert r4.stable.seq == r0.stable.seq and r4.executed == 0
    c.tick(CFG.status_interval_ticks * 4)
    assert _starts(r4)[:2] == [1, 13] and r4.members_at(29).replicas == ("r0", "r1", "r2", "r4")
    _run(c, _reqs(200, 4))
    c.tick(CFG.status_interval_ticks * 2)  # the last ones by retransmission
    assert c.data("r4") == c.data("r0") and r4.is_member


def test_a_restarted_replica_finds_the_epochs_it_holds_proofs_of() -> None:
    """The proofs are records of the store: a restarted replica links them to its first
    epoch before its driver gives back any epoch (here it gives back none), so an epoch
    it learned by proof, whose change it never executed, survives a restart."""
    c, start = _behind()
    c.tick(CFG.status_interval_ticks * 3)
    r4 = c.nodes["r4"].core
    assert r4.members_at(start).replicas == tuple(FOUR)
    c.restart("r4")
    r4 = c.nodes["r4"].core
    assert _starts(r4) == [1, 13, start]
    assert r4.members_at(start).replicas == tuple(FOUR) and r4.is_member
    r4.restore_epoch(13, FIVE, c.ver, keys=_keys(FIVE))  # what its driver persists: no change
    assert _starts(r4) == [1, 13, start]


# --- attacks: each leaves the receiver's epochs as they were ---------------------------


def _fresh_r4(c: Following) -> Pbft:
    """A restarted r4 that knows epochs 1 and 13 (not the later one), to step proofs
    into; its store still holds what it had, so no proof of its own."""
    c.nodes["r4"].storage = MemoryPbftStorage(c.names)
    c.restart("r4")
    r4 = c.nodes["r4"].core
    r4.restore_epoch(13, FIVE, c.ver, keys=_keys(FIVE))
    assert _starts(r4) == [1, 13]
    return r4


def _sign_cert(seq: int, digest: bytes, signers: list[str]) -> CheckpointCert:
    proof = tuple(
        Checkpoint(
            seq,
            digest,
            n,
            signing.sign(key(n), statement_bytes(Kind.CHECKPOINT, 0, seq, digest, n)),
        )
        for n in sorted(signers)
    )
    return CheckpointCert(seq, digest, proof)


def _forge(p: EpochProof, signers: list[str], **changes: object) -> EpochProof:
    """``p`` with ``changes``, its certificate signed again by ``signers`` over the
    digest the changed proof binds (so only who signs decides)."""
    q = dataclasses.replace(p, **changes)  # type: ignore[arg-type]
    digest = epoch_checkpoint_digest(q.base, q.digest)
    return dataclasses.replace(q, cert=_sign_cert(q.cert.seq, digest, signers))


def test_the_genuine_proof_is_accepted_by_a_fresh_receiver() -> None:
    """The baseline the attacks below change one thing of."""
    c, start = _behind()
    p = _proof(c, "r0", start)
    r4 = _fresh_r4(c)
    _step(r4, p)
    assert _starts(r4) == [1, 13, start] and r4.members_at(start).replicas == tuple(FOUR)
    # A second copy (a replay of the same proof) changes nothing.
    _step(r4, p)
    assert _starts(r4) == [1, 13, start]


def test_a_proof_of_another_set_than_the_old_set_certified_is_refused() -> None:
    """Forged: the certificate is genuine but the set is not the one it signs (r1 kept,
    r4 dropped; or an outsider added): the digest it binds differs."""
    c, start = _behind()
    p = _proof(c, "r0", start)
    r4 = _fresh_r4(c)
    _step(r4, dataclasses.replace(p, replicas=("r0", "r1", "r2", "r3")))
    _step(r4, dataclasses.replace(p, replicas=("r0", "r2", "r3", "r4", "r9"), keys=()))
    _step(r4, dataclasses.replace(p, base=bytes(32)))  # another state at the boundary
    assert _starts(r4) == [1, 13]


def test_a_proof_signed_by_outsiders_or_the_new_set_alone_is_refused() -> None:
    """Uncertified: signatures of replicas outside the old (5-replica) set count for
    nothing, and the new set cannot vouch for itself: 3 signatures of it are no
    quorum of the 5 that must certify the change."""
    c, start = _behind()
    p = _proof(c, "r0", start)
    r4 = _fresh_r4(c)
    _step(r4, _forge(p, ["r7", "r8", "r9", "r0"]))
    _step(r4, _forge(p, ["r0", "r2", "r3"]))
    assert _starts(r4) == [1, 13]
    _step(r4, _forge(p, ["r0", "r1", "r2", "r3"]))  # 4 of the 5: a quorum, accepted
    assert _starts(r4) == [1, 13, start]


def test_a_proof_signed_by_too_few_of_the_old_set_is_refused() -> None:
    c, start = _behind()
    p = _proof(c, "r0", start)
    assert len(p.cert.proof) == 4  # the 5-replica set's quorum
    r4 = _fresh_r4(c)
    short = dataclasses.replace(p, cert=dataclasses.replace(p.cert, proof=p.cert.proof[:3]))
    _step(r4, short)
    twice = p.cert.proof[:3] + p.cert.proof[:1]  # one signer counted twice
    _step(r4, dataclasses.replace(p, cert=dataclasses.replace(p.cert, proof=twice)))
    assert _starts(r4) == [1, 13]


def test_a_proof_at_another_checkpoint_than_the_boundary_is_refused() -> None:
    """The certificate must be the checkpoint just before the epoch: a later one of
    the old set (or a made-up start) proves nothing about where the epoch began."""
    c, start = _behind()
    p = _proof(c, "r0", start)
    r4 = _fresh_r4(c)
    moved = _forge(p, ["r0", "r1", "r2", "r3"], start=p.start + CFG.checkpoint_interval)
    _step(r4, dataclasses.replace(moved, cert=dataclasses.replace(moved.cert, seq=p.cert.seq)))
    assert _starts(r4) == [1, 13]


def test_a_replay_of_an_old_sets_proof_of_another_successor_is_refused() -> None:
    """A past set (the genesis one, which a receiver knows was followed by the
    5-replica epoch from 13) signs a different successor: even with a quorum of its
    signatures the fork is refused (the receiver knows what came after that set), as
    is a proof whose ``prev`` is no epoch it knows."""
    c, start = _behind()
    p = _proof(c, "r0", start)
    r4 = _fresh_r4(c)
    genesis_digest = r4._epoch_digests[0]
    fork = _forge(
        p,
        ["r0", "r1", "r2"],  # a quorum of the genesis set r0..r3
        start=41,
        replicas=("r0", "r1", "r2"),
        keys=(),
        prev=genesis_digest,
        cert=dataclasses.replace(p.cert, seq=40),
    )
    _step(r4, fork)
    _step(r4, dataclasses.replace(p, prev=bytes(32)))
    assert _starts(r4) == [1, 13]
    assert r4.members_at(100).replicas == tuple(FIVE)


def test_a_proof_against_what_the_receiver_executed_is_refused() -> None:
    """r0 executed far past the change: it knows the set there itself, and a quorum
    of the old set (say, colluding long after) cannot make it take another."""
    c, start = _behind()
    r0 = c.nodes["r0"].core
    p = _proof(c, "r0", start)
    lie = _forge(p, ["r0", "r1", "r2", "r3"], replicas=("r0", "r1", "r2"), keys=())
    lie = dataclasses.replace(lie, prev=r0._epoch_digests[1])
    before = list(r0._epochs)
    _step(r0, lie)
    assert r0._epochs == before


def test_an_epoch_proof_round_trips_the_peer_wire_and_the_lmdb_store(tmp_path: Path) -> None:
    """What the node sends (``node.transport.messages.WIRE``, shape-checked) and keeps
    (``LmdbPbftStorage``: an ``epoch/`` record in ``meta``, never collected)."""
    from consensus.pbft_storage import PbftHardState
    from node.consensus_driver.pbft_storage import LmdbPbftStorage
    from node.transport.messages import WIRE

    c, start = _behind()
    p = _proof(c, "r0", start)
    env = Envelope("r0", "r4", EpochChanges((p,)))
    assert WIRE.decode(WIRE.encode(env)) == env
    st = LmdbPbftStorage(tmp_path / "pbft", c.names)
    st.save(None, [p], None)
    st.save(PbftHardState(stable=dataclasses.replace(p.cert, seq=start + 100)), [], None)
    st.close()
    again = LmdbPbftStorage(tmp_path / "pbft", c.names)
    assert [r for r in again.records() if isinstance(r, EpochProof)] == [p]
    again.close()


# --- a certified state installed across a change it does not certify -------------------


class AppFollowing(Following):
    """``Following`` with app checkpoints (the node's mode): each application folds the
    entries into a digest, notes each entry's membership effect, then gives the core its
    state at a checkpoint; an installed snapshot replaces the digest."""

    def __init__(self) -> None:
        self.app: dict[str, bytes] = {}
        self.installed: dict[str, list[int]] = {}
        super().__init__()

    def _core(self, name: str, st: MemoryPbftStorage, applied: int) -> Pbft:
        self.cfg = dataclasses.replace(CFG, app_checkpoints=True)
        self.app.setdefault(name, b"genesis")
        self.installed.setdefault(name, [])
        return super()._core(name, st, applied)

    def flush(self, name: str) -> list[Envelope]:
        r = self.nodes[name]
        out: list[Envelope] = []
        while r.core.has_ready():
            rd = r.core.ready()
            if rd.hard_state is not None or rd.entries or rd.snapshot is not None:
                r.storage.save(rd.hard_state, rd.entries, rd.snapshot)
            out += rd.messages
            if rd.snapshot is not None:
                self.installed[name].append(rd.snapshot.meta.index)
                self.app[name] = rd.snapshot.data
            for e in rd.committed:
                before = len(r.applied)
                r.applied.append(e)
                self.app[name] = hashlib.sha256(self.app[name] + e.data).digest()
                self._note(r, before)
                if e.index % self.cfg.checkpoint_interval == 0:
                    r.core.app_checkpoint(e.index, self.app[name])
            for req in rd.serve:
                assert isinstance(req.body, StateRequest)
                body = req.body
                certs = r.storage.committed(body.from_seq + 1, body.to_seq)
                if [x.entry.index for x in certs] == list(
                    range(body.from_seq + 1, body.to_seq + 1)
                ):
                    out.append(Envelope(name, req.frm, StateReply(tuple(x.entry for x in certs))))
            r.decisions += rd.decisions
            r.core.advance(rd)
        self.pool += out
        return out


def test_a_state_installed_across_a_change_it_does_not_certify_learns_the_epoch() -> None:
    """r3 is cut off while the others order 20 requests, add r4 (entry 21: the
    5-replica epoch from 33) and reach checkpoint 24, then drop their entries: r3
    installs the state at 24, which certifies the set at 25 only; the change in the
    entries it skipped is unknown to it. It signs no checkpoint while blind (its own at
    32 would sign the wrong epoch and conflict with the others' certificate), learns
    the epoch from 33 by proof, and goes on with the 5-replica set."""
    c = AppFollowing()
    cut = lambda m: "r3" not in (m.frm, m.to)  # noqa: E731
    _run(c, _reqs(0, 20), keep=cut)
    _run(c, [b"set:" + ",".join(FIVE).encode()], keep=cut)
    _run(c, _reqs(20, 3), keep=cut)
    c.tick(2, keep=cut)
    r0, r3 = c.nodes["r0"].core, c.nodes["r3"].core
    assert r0.stable.seq == 24 and r0.executed == 24 and r0.members_at(33).n == 5
    for n in ("r0", "r1", "r2", "r4"):
        core = c.nodes[n].core
        c.nodes[n].storage.compact(Snapshot(SnapshotMeta(core.executed, 0, ()), b""))
    c.tick(6 * CFG.state_retry_ticks)
    assert c.installed["r3"] == [24] and r3.executed == 24
    assert r3.members_at(33).n == 4  # blind: the change at 21 never reached it
    signed: list[int] = []

    def spy(m: Envelope) -> bool:
        if m.frm == "r3" and isinstance(m.body, Checkpoint):
            signed.append(m.body.seq)
        return True

    for i in range(5):
        _run(c, _reqs(100 + 6 * i, 6), keep=spy)
        c.tick(CFG.status_interval_ticks, keep=spy)
    assert r3.members_at(33).replicas == tuple(FIVE) and r3.is_member
    assert r3.executed == r0.executed > 40 and r3.stable.seq == r0.stable.seq
    assert all(s > 36 for s in signed)  # none while it could not know the epoch
    assert c.app["r3"] == c.app["r0"]
