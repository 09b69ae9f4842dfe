"""PBFT view changes (Castro-Liskov TOCS 2002 §4.4, liveness §4.5.2): prepared
certificates carried into the new view, NEW-VIEW validated by recomputing O, the f+1
rule, and what a view-change storm from one faulty replica cannot do."""

from __future__ import annotations

import dataclasses

from pbft_harness import CFG, Cluster

from consensus.pbft_messages import (
    NULL_DIGEST,
    Commit,
    Envelope,
    Kind,
    NewView,
    PrePrepare,
    ViewChange,
    statement_bytes,
)
from consensus.pbft_viewchange import plan_new_view


def _propose_all(c: Cluster, data: bytes) -> None:
    for n in c.names:
        c.nodes[n].core.propose(data)


def test_a_silent_primary_is_replaced_and_the_requests_execute() -> None:
    """CL §4.5.2: backups whose requests do not execute change view."""
    c = Cluster()
    _propose_all(c, b"a")
    c.deliver()
    _propose_all(c, b"b")
    c.tick(CFG.view_change_timeout_ticks + 5, keep=lambda m: m.frm != "r0")
    for n in ("r1", "r2", "r3"):
        core = c.nodes[n].core
        assert (core.view, core.active) == (1, True)
        assert c.data(n) == [b"a", b"b"]


def test_a_prepared_request_keeps_its_sequence_number_in_the_new_view() -> None:
    """CL §4.4: a request prepared at 2f+1 replicas (so possibly committed somewhere)
    is re-proposed at the same n in the new view, never replaced."""
    c = Cluster()
    _propose_all(c, b"a")
    commits_to_r1: list[Envelope] = []

    def keep(m: Envelope) -> bool:
        if isinstance(m.body, Commit):
            if m.to == "r1":
                commits_to_r1.append(m)
            return False
        return True

    c.deliver(keep=keep)
    # Only r1 commits "a" at seq 1 (it hears every commit); nobody else does.
    for m in commits_to_r1:
        c.nodes["r1"].core.step(m)
    c.flush("r1")
    assert c.data("r1") == [b"a"]
    assert all(c.data(n) == [] for n in ("r0", "r2", "r3"))
    _propose_all(c, b"b")
    c.tick(CFG.view_change_timeout_ticks + 10, keep=lambda m: m.frm != "r0")
    for n in ("r1", "r2", "r3"):
        assert c.data(n)[:2] == [b"a", b"b"], n


def test_plan_new_view_takes_the_highest_view_certificate_and_fills_gaps_with_nulls() -> None:
    """CL §4.4: min-s from the highest checkpoint, max-s from the highest prepared
    certificate, the highest view wins, gaps become null requests."""
    c = Cluster()
    _propose_all(c, b"a")
    _propose_all(c, b"b")
    c.deliver(keep=lambda m: not isinstance(m.body, Commit))
    prepared = c.nodes["r1"].core._prepared
    assert sorted(prepared) == [1, 2]
    from consensus.pbft_messages import GENESIS_CHECKPOINT

    vc_both = ViewChange(1, GENESIS_CHECKPOINT, (prepared[1], prepared[2]), "r1", b"")
    vc_two = ViewChange(1, GENESIS_CHECKPOINT, (prepared[2],), "r2", b"")
    vc_none = ViewChange(1, GENESIS_CHECKPOINT, (), "r3", b"")
    plan = plan_new_view([vc_two, vc_none, vc_none])
    assert [(s.seq, s.digest == NULL_DIGEST) for s in plan.slots] == [(1, True), (2, False)]
    plan = plan_new_view([vc_both, vc_two, vc_none])
    assert [s.payload for s in plan.slots] == [b"a", b"b"]
    assert plan_new_view([vc_both, vc_two], ignore_prepared=True).slots == ()


def test_a_new_view_with_a_tampered_o_set_is_rejected() -> None:
    """CL §4.4: backups recompute O from V and reject a NEW-VIEW that differs."""
    c = Cluster()
    _propose_all(c, b"a")
    c.deliver(keep=lambda m: not isinstance(m.body, Commit))
    new_views: list[Envelope] = []

    def keep(m: Envelope) -> bool:
        if isinstance(m.body, NewView):
            new_views.append(m)
            return False
        return m.frm != "r0" and not isinstance(m.body, Commit)

    c.tick(CFG.view_change_timeout_ticks + 2, keep=keep)
    nv = next(m.body for m in new_views if m.to == "r2")
    assert isinstance(nv, NewView) and nv.replica == "r1" and len(nv.pre_prepares) == 1
    # r1 (the new primary) swaps the re-proposed request for another, correctly signed.
    other = PrePrepare(
        1,
        1,
        NULL_DIGEST,
        "r1",
        c.signer("r1").sign(statement_bytes(Kind.PRE_PREPARE, 1, 1, NULL_DIGEST, "r1")),
        b"",
    )
    bad = NewView(1, nv.view_changes, (other,), "r1", b"")
    bad = dataclasses.replace(
        bad, sig=c.signer("r1").sign(statement_bytes(Kind.NEW_VIEW, 1, 0, bad.digest, "r1"))
    )
    r2 = c.nodes["r2"].core
    r2.step(Envelope("r1", "r2", bad))
    assert not r2.active
    r2.step(Envelope("r1", "r2", nv))
    assert (r2.view, r2.active) == (1, True)


def test_f_plus_1_view_changes_pull_a_replica_along_but_f_do_not() -> None:
    """CL §4.5.2: f+1 VIEW-CHANGEs for later views include a correct replica's, so a
    replica joins; f of them (a storm from one faulty replica) change nothing."""
    c = Cluster()
    r3 = c.nodes["r3"].core
    from consensus.pbft_messages import GENESIS_CHECKPOINT

    def vc(who: str, view: int) -> Envelope:
        m = ViewChange(view, GENESIS_CHECKPOINT, (), who, b"")
        sig = c.signer(who).sign(statement_bytes(Kind.VIEW_CHANGE, view, 0, m.digest, who))
        return Envelope(who, "r3", dataclasses.replace(m, sig=sig))

    for view in (1, 2, 3, 4):
        r3.step(vc("r1", view))  # a storm from one replica
    assert (r3.view, r3.active) == (0, True)
    r3.step(vc("r2", 2))
    assert (r3.view, r3.active) == (2, False)  # the smallest view of the f+1


def test_a_view_change_signed_by_someone_else_is_ignored() -> None:
    c = Cluster()
    r3 = c.nodes["r3"].core
    from consensus.pbft_messages import GENESIS_CHECKPOINT

    for who in ("r1", "r2"):
        m = ViewChange(1, GENESIS_CHECKPOINT, (), who, b"")
        sig = c.signer("r0").sign(statement_bytes(Kind.VIEW_CHANGE, 1, 0, m.digest, who))
        r3.step(Envelope("r0", "r3", dataclasses.replace(m, sig=sig)))
    assert (r3.view, r3.active) == (0, True)
