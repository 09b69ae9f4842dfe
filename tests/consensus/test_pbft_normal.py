"""PBFT normal-case operation (Castro-Liskov TOCS 2002 §4.2) and the watermarks that
bound it (§4.3), driven by hand on four replicas (f = 1)."""

from __future__ import annotations

import dataclasses

from pbft_harness import CFG, Cluster

from consensus.pbft_messages import (
    Commit,
    Envelope,
    Kind,
    Prepare,
    PrePrepare,
    payload_digest,
    statement_bytes,
)
from consensus.types import EntryKind


def _propose_all(c: Cluster, data: bytes) -> None:
    for n in c.names:
        assert c.nodes[n].core.propose(data)


def test_requests_commit_in_order_everywhere_each_once() -> None:
    """CL §4.2: pre-prepare, prepare, commit; every replica executes the same
    sequence, each request once."""
    c = Cluster()
    reqs = [f"req{i}".encode() for i in range(6)]
    for r in reqs:
        _propose_all(c, r)
    c.deliver()
    for n in c.names:
        assert c.data(n) == reqs
        assert [e.index for e in c.nodes[n].applied] == list(range(1, 7))
        assert all(e.kind is EntryKind.NORMAL for e in c.nodes[n].applied)


def test_a_decision_carries_2f_plus_1_commits_from_distinct_replicas() -> None:
    """CL §4.2 committed-local: 2f+1 matching commits, the certificate kept with it."""
    c = Cluster()
    _propose_all(c, b"x")
    c.deliver()
    for n in c.names:
        (d,) = c.nodes[n].decisions
        assert d.source == "protocol"
        assert len({x.replica for x in d.commits}) == len(d.commits) == 3
        assert all((x.view, x.seq, x.digest) == (0, 1, payload_digest(b"x")) for x in d.commits)


def test_several_sequence_numbers_are_in_flight_up_to_the_high_watermark() -> None:
    """CL §4.3: the primary assigns n only within (h, h+L]; more requests wait."""
    c = Cluster()
    for i in range(CFG.log_window + 3):
        c.nodes["r0"].core.propose(f"r{i}".encode())
    pps = [m.body for m in c.flush("r0") if isinstance(m.body, PrePrepare) and m.to == "r1"]
    assert [p.seq for p in pps] == list(range(1, CFG.log_window + 1))


def test_a_backup_rejects_a_pre_prepare_not_from_the_primary_or_not_matching() -> None:
    """CL §4.2: a backup accepts a pre-prepare only if signed by the primary of its
    view, for its view, with the payload's digest, inside the watermarks."""
    c = Cluster()
    r1 = c.nodes["r1"].core
    d = payload_digest(b"p")

    def pp(signer: str, view: int, seq: int, digest: bytes, payload: bytes, claim: str) -> None:
        sig = c.signer(signer).sign(statement_bytes(Kind.PRE_PREPARE, view, seq, digest, claim))
        r1.step(Envelope("r0", "r1", PrePrepare(view, seq, digest, claim, sig, payload)))

    pp("r2", 0, 1, d, b"p", "r2")  # not the primary
    pp("r2", 0, 1, d, b"p", "r0")  # the primary's name, another key
    pp("r0", 0, 1, d, b"other", "r0")  # digest does not match the payload
    pp("r0", 1, 1, d, b"p", "r0")  # another view
    pp("r0", 0, CFG.log_window + 1, d, b"p", "r0")  # above the high watermark
    assert not [m for m in c.flush("r1") if isinstance(m.body, Prepare)]
    pp("r0", 0, 1, d, b"p", "r0")
    assert len([m for m in c.flush("r1") if isinstance(m.body, Prepare)]) == 3


def test_an_equivocating_primary_gets_one_prepare_per_slot() -> None:
    """CL §4.2: a backup accepts at most one pre-prepare per (view, seq)."""
    c = Cluster()
    r1 = c.nodes["r1"].core
    for payload in (b"a", b"b"):
        d = payload_digest(payload)
        sig = c.signer("r0").sign(statement_bytes(Kind.PRE_PREPARE, 0, 1, d, "r0"))
        r1.step(Envelope("r0", "r1", PrePrepare(0, 1, d, "r0", sig, payload)))
    prepares = [m.body for m in c.flush("r1") if isinstance(m.body, Prepare)]
    assert {p.digest for p in prepares} == {payload_digest(b"a")}


def test_commit_needs_2f_plus_1_distinct_commits() -> None:
    """CL §4.2: 2f commits are not enough; a duplicate from one replica counts once."""
    c = Cluster()
    _propose_all(c, b"x")
    commits: list[Envelope] = []
    c.deliver(keep=lambda m: not (isinstance(m.body, Commit) and commits.append(m) is None))
    to_r3 = [m for m in commits if m.to == "r3"]
    assert sorted(m.body.replica for m in to_r3 if isinstance(m.body, Commit)) == ["r0", "r1", "r2"]
    r3 = c.nodes["r3"]
    first = to_r3[0]
    r3.core.step(first)
    r3.core.step(first)  # the same replica again
    c.flush("r3")
    assert r3.applied == []  # own + one other = 2f
    r3.core.step(to_r3[1])
    c.flush("r3")
    assert c.data("r3") == [b"x"]


def test_a_prepare_relabelled_to_another_view_does_not_verify() -> None:
    """CL §4.2/§4.4: the signature covers the view; an old-view vote cannot be replayed
    as one of the current view."""
    c = Cluster()
    sig = c.signer("r2").sign(statement_bytes(Kind.COMMIT, 0, 1, b"d" * 32, "r2"))
    members = c.nodes["r1"].core.members
    assert members.signed_ok(Commit(0, 1, b"d" * 32, "r2", sig))
    assert not members.signed_ok(Commit(1, 1, b"d" * 32, "r2", sig))
    assert not members.signed_ok(Commit(0, 2, b"d" * 32, "r2", sig))


def test_the_planted_unsigned_view_bug_accepts_the_relabelled_vote() -> None:
    """The negative control: with ``unsigned_view`` the same relabelling verifies."""
    bugs = dataclasses.replace(CFG.bugs, unsigned_view=True)
    c = Cluster(cfg=dataclasses.replace(CFG, bugs=bugs))
    members = c.nodes["r1"].core.members
    stmt = statement_bytes(Kind.COMMIT, 0, 1, b"d" * 32, "r2", cover_view=False)
    sig = c.signer("r2").sign(stmt)
    assert members.signed_ok(Commit(5, 1, b"d" * 32, "r2", sig))


def test_votes_are_persisted_in_the_ready_that_sends_them() -> None:
    """CL §4.6 / docs/architecture.md §4: a prepare leaves in the same Ready that
    persists it, so the driver writes it before it sends it."""
    c = Cluster()
    c.nodes["r0"].core.propose(b"x")
    pp = next(m for m in c.flush("r0") if m.to == "r1")
    r1 = c.nodes["r1"].core
    r1.step(pp)
    rd = r1.ready()
    sent = [m.body for m in rd.messages if isinstance(m.body, Prepare)]
    assert sent and all(p in rd.entries for p in sent)
    assert any(isinstance(e, PrePrepare) for e in rd.entries)
