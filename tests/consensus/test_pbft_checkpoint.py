"""PBFT checkpoints, stable-checkpoint proofs, watermarks and garbage collection
(Castro-Liskov TOCS 2002 §4.3)."""

from __future__ import annotations

from pbft_harness import CFG, Cluster

from consensus.pbft_messages import Checkpoint, Envelope, Kind, PrePrepare, statement_bytes
from consensus.pbft_storage import MemoryPbftStorage


def _run(c: Cluster, count: int, start: int = 0, keep=lambda m: True) -> None:  # type: ignore[no-untyped-def]
    for i in range(start, start + count):
        for n in c.names:
            c.nodes[n].core.propose(f"req{i}".encode())
    c.deliver(keep=keep)


def test_a_checkpoint_becomes_stable_with_2f_plus_1_matching_and_the_log_is_collected() -> None:
    """CL §4.3: every K a replica signs its state digest; 2f+1 matching make it stable,
    h moves, and messages and persisted votes at or below it are discarded."""
    c = Cluster()
    _run(c, CFG.checkpoint_interval + 1)
    for n in c.names:
        core = c.nodes[n].core
        assert core.stable.seq == CFG.checkpoint_interval
        assert len({p.replica for p in core.stable.proof}) == 3
        assert all(seq > core.stable.seq for (_, seq) in core._instances)
        st: MemoryPbftStorage = c.nodes[n].storage
        kinds = {(type(r).__name__, r_seq) for r, r_seq in _seqs(st)}
        assert all(seq > CFG.checkpoint_interval for k, seq in kinds if k != "CommitCert")


def _seqs(st: MemoryPbftStorage) -> list[tuple[object, int]]:
    from consensus.pbft_storage import record_seq

    return [(r, record_seq(r)) for r in st.records()]


def test_checkpoints_with_a_wrong_digest_do_not_become_stable() -> None:
    """CL §4.3: a proof needs 2f+1 checkpoints with the *same* digest."""
    c = Cluster()
    k = CFG.checkpoint_interval
    # r3 hears only the other replicas' checkpoints, and r2's is forged by r2 itself
    # with another digest.
    _run(c, k, keep=lambda m: not (isinstance(m.body, Checkpoint) and m.to == "r3"))
    r3 = c.nodes["r3"].core
    assert r3.stable.seq == 0
    good = c.nodes["r0"].core.history
    bad = b"\x01" * 32
    for who, d in (("r2", bad), ("r0", good)):
        sig = c.signer(who).sign(statement_bytes(Kind.CHECKPOINT, 0, k, d, who))
        r3.step(Envelope(who, "r3", Checkpoint(k, d, who, sig)))
    assert r3.stable.seq == 0  # own + r0 = 2f matching, r2 disagrees
    sig = c.signer("r1").sign(statement_bytes(Kind.CHECKPOINT, 0, k, good, "r1"))
    r3.step(Envelope("r1", "r3", Checkpoint(k, good, "r1", sig)))
    assert r3.stable.seq == k


def test_the_primary_waits_for_a_stable_checkpoint_to_move_the_window() -> None:
    """CL §4.3: nothing is assigned above h+L until h moves."""
    c = Cluster()
    window = CFG.log_window
    _run(c, window + 4, keep=lambda m: not isinstance(m.body, Checkpoint))
    r0 = c.nodes["r0"].core
    assert r0.executed == window and r0.stable.seq == 0
    c.deliver()
    c.tick(CFG.status_interval_ticks)  # checkpoints are retransmitted with status
    assert r0.stable.seq >= CFG.checkpoint_interval
    assert all(c.nodes[n].core.executed == window + 4 for n in c.names)


def test_a_restart_keeps_the_stable_checkpoint_and_its_proof() -> None:
    c = Cluster()
    _run(c, CFG.checkpoint_interval)
    before = c.nodes["r2"].core.stable
    c.restart("r2")
    assert c.nodes["r2"].core.stable == before
    assert not [m for m in c.flush("r2") if isinstance(m.body, PrePrepare)]


def test_own_checkpoints_survive_a_restart_of_every_replica() -> None:
    """CL §4.3 with §4.6: a replica's checkpoint messages are persisted; if all were
    lost before anyone heard them and every replica restarted, no checkpoint could ever
    become stable again and the window would stay full."""
    c = Cluster()
    _run(c, CFG.checkpoint_interval, keep=lambda m: not isinstance(m.body, Checkpoint))
    for n in c.names:
        assert c.nodes[n].core.stable.seq == 0
        c.restart(n)
    c.tick(CFG.status_interval_ticks)
    for n in c.names:
        assert c.nodes[n].core.stable.seq == CFG.checkpoint_interval
