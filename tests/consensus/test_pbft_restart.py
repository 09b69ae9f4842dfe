"""A restarted PBFT replica keeps its word (Castro-Liskov TOCS 2002 §4.6 assumes the
log survives a crash; BFT-PR §4 shows the double vote otherwise): the pre-prepares it
accepted, the votes it sent and its view change survive in storage."""

from __future__ import annotations

import dataclasses

from pbft_harness import CFG, Cluster

from consensus.pbft_messages import (
    Commit,
    Envelope,
    Kind,
    Prepare,
    PrePrepare,
    ViewChange,
    payload_digest,
    statement_bytes,
)


def _conflicting_pre_prepare(c: Cluster, payload: bytes) -> Envelope:
    d = payload_digest(payload)
    sig = c.signer("r0").sign(statement_bytes(Kind.PRE_PREPARE, 0, 1, d, "r0"))
    return Envelope("r0", "r1", PrePrepare(0, 1, d, "r0", sig, payload))


def _prepares(c: Cluster, name: str) -> set[bytes]:
    return {m.body.digest for m in c.flush(name) if isinstance(m.body, Prepare)}


def test_a_restarted_backup_does_not_prepare_a_conflicting_request() -> None:
    c = Cluster()
    c.nodes["r1"].core.step(_conflicting_pre_prepare(c, b"first"))
    assert _prepares(c, "r1") == {payload_digest(b"first")}
    c.restart("r1")
    c.nodes["r1"].core.step(_conflicting_pre_prepare(c, b"second"))
    assert _prepares(c, "r1") == set()


def test_the_planted_forget_votes_bug_prepares_again() -> None:
    """The negative control: with ``forget_votes`` the restarted replica equivocates."""
    cfg = dataclasses.replace(CFG, bugs=dataclasses.replace(CFG.bugs, forget_votes=True))
    c = Cluster(cfg=cfg)
    c.nodes["r1"].core.step(_conflicting_pre_prepare(c, b"first"))
    assert _prepares(c, "r1") == {payload_digest(b"first")}
    c.restart("r1")
    c.nodes["r1"].core.step(_conflicting_pre_prepare(c, b"second"))
    assert _prepares(c, "r1") == {payload_digest(b"second")}


def test_a_restarted_primary_does_not_reuse_a_sequence_number() -> None:
    c = Cluster()
    c.nodes["r0"].core.propose(b"a")
    c.flush("r0")
    c.restart("r0")
    c.nodes["r0"].core.propose(b"b")
    pps = [m.body for m in c.flush("r0") if isinstance(m.body, PrePrepare)]
    assert {p.seq for p in pps} == {2}


def test_a_replica_restarted_during_a_view_change_resends_the_same_message() -> None:
    c = Cluster()
    for n in c.names:
        c.nodes[n].core.propose(b"a")
    c.deliver(keep=lambda m: not isinstance(m.body, Commit))
    r2 = c.nodes["r2"]
    for _ in range(CFG.view_change_timeout_ticks):
        r2.core.tick()
    sent = [m.body for m in c.flush("r2") if isinstance(m.body, ViewChange)]
    assert sent and not r2.core.active
    c.restart("r2")
    assert (r2.core.view, r2.core.active) == (1, False)
    for _ in range(CFG.status_interval_ticks):
        r2.core.tick()
    again = [m.body for m in c.flush("r2") if isinstance(m.body, ViewChange)]
    assert again and all(v == sent[0] for v in again)


def test_a_restart_delivers_what_the_application_had_not_applied() -> None:
    """Executed entries are in storage; the application (volatile here) gets them
    again after a restart, in order, once."""
    c = Cluster()
    for i in range(3):
        for n in c.names:
            c.nodes[n].core.propose(f"r{i}".encode())
    c.deliver()
    r3 = c.nodes["r3"]
    r3.applied = r3.applied[:1]
    c.restart("r3")
    c.flush("r3")
    assert [e.index for e in r3.applied] == [1, 2, 3]
    assert [d.source for d in r3.decisions[-2:]] == ["replay", "replay"]
