"""PBFT follows the replica set the application changes (``Pbft.note_executed``,
docs/architecture.md §9): a change executed at seq s orders from the first checkpoint
c >= s + L on (c + 1), each epoch a Castro-Liskov configuration of its own; the window
never crosses an epoch's end, an added replica votes from there, a removed one stops,
and view changes after the switch run among the new set."""

from __future__ import annotations

from collections.abc import Callable

from pbft_harness import CFG, Cluster, Replica, key, verifier

from chain import signing
from consensus.pbft import Pbft
from consensus.pbft_messages import Checkpoint, Commit, Envelope, Prepare, ViewChange
from consensus.pbft_signing import Ed25519Signer
from consensus.pbft_storage import MemoryPbftStorage

GENESIS = ["r0", "r1", "r2", "r3"]


class Following(Cluster):
    """r0..r3 in the genesis set, r4 outside it; an entry ``set:a,b,...`` changes the
    set when it executes (the application's governance, here by hand)."""

    def __init__(self) -> None:
        self.sets: dict[str, list[str]] = {}
        super().__init__(n=5)
        self.ver = verifier(self.names)

    def _core(self, name: str, st: MemoryPbftStorage, applied: int) -> Pbft:
        core = Pbft(
            name,
            GENESIS,
            st,
            Ed25519Signer(key(name)),
            verifier(GENESIS),
            self.cfg,
            applied,
            follow_membership=True,
            keys=_keys(GENESIS),
        )
        return core

    def flush(self, name: str) -> list[Envelope]:
        r = self.nodes[name]
        before = len(r.applied)
        out = super().flush(name)
        self._note(r, before)
        while r.core.has_ready():
            out += super().flush(name)
        return out

    def _note(self, r: Replica, before: int) -> None:
        for e in r.applied[before:]:
            if e.data.startswith(b"set:"):
                names = e.data[4:].decode().split(",")
                r.core.note_executed(e.index, names, verifier(names), keys=_keys(names))
            else:
                r.core.note_executed(e.index)


def _keys(names: list[str]) -> list[bytes]:
    """The public keys of ``names``: each epoch's digest covers them, and a replica that
    learns an epoch by proof checks its members' signatures with them."""
    return [signing.public_key_bytes(key(n)) for n in names]


def _run(c: Cluster, datas: list[bytes], keep: Callable[[Envelope], bool] = lambda m: True) -> None:
    for d in datas:
        for n in c.names:
            c.nodes[n].core.propose(d)
        c.deliver(keep=keep)


def _reqs(start: int, count: int) -> list[bytes]:
    return [f"req{i}".encode() for i in range(start, start + count)]


def test_an_added_replica_votes_from_the_checkpoint_after_the_window() -> None:
    c = Following()
    _run(c, [b"set:r0,r1,r2,r3,r4"])
    r0 = c.nodes["r0"].core
    assert r0.executed == 1
    start = 13  # the first multiple of K=4 at or above 1 + L=8 is 12
    assert r0.members_at(start).replicas == tuple(f"r{i}" for i in range(5))
    assert r0.members_at(start - 1).replicas == tuple(GENESIS)
    _run(c, _reqs(0, 30))
    data = c.data("r0")
    assert len(data) == 31
    for n in c.names:
        assert c.data(n) == data, n  # r4 executed everything too, learning as it went
    by_seq = {d.entry.index: d for d in c.nodes["r0"].decisions}
    assert all("r4" not in {x.replica for x in by_seq[s].commits} for s in range(1, start))
    late = [s for s in by_seq if s >= start]
    assert late and all(len(by_seq[s].commits) == 4 for s in late)  # n = 5: quorum 4
    # r4's own votes (persisted before sent): commits from the epoch's start only.
    mine = [r.seq for r in c.nodes["r4"].storage.records() if isinstance(r, Commit)]
    assert mine and min(mine) >= start
    assert c.nodes["r4"].core.is_member and r0.members.n == 5


def test_the_window_stops_at_the_epoch_end_until_its_checkpoint_is_stable() -> None:
    """Nothing above c is assigned while the stable checkpoint is below c."""
    c = Following()
    _run(c, [b"set:r0,r1,r2,r3,r4"])
    r0 = c.nodes["r0"].core
    assert r0.window_top == 8  # h=0, L=8: the epoch ends at 12, beyond
    # No checkpoint messages: h stays below 12, so the window stops at 12.

    def no_cp(m: Envelope) -> bool:
        return not isinstance(m.body, Checkpoint)

    _run(c, _reqs(0, 20), keep=no_cp)
    assert r0.stable.seq == 0 and r0.executed == 8
    c.deliver()
    c.tick(CFG.status_interval_ticks)  # checkpoints retransmitted with the status hints
    _run(c, _reqs(20, 1))
    assert r0.stable.seq >= 8
    assert r0.window_top <= 12 or r0.stable.seq >= 12


def test_a_removed_replica_stops_voting_and_the_rest_go_on_without_it() -> None:
    c = Following()
    _run(c, [b"set:r0,r2,r3"])  # r1 removed: n = 3, f = 0, quorum 3
    start = 13
    sent_by_r1: list[Envelope] = []

    def keep(m: Envelope) -> bool:
        if m.frm == "r1":
            sent_by_r1.append(m)
        return True

    _run(c, _reqs(0, 30), keep=keep)
    r0 = c.nodes["r0"].core
    assert r0.executed == 31 and not c.nodes["r1"].core.is_member
    votes = [m.body for m in sent_by_r1 if isinstance(m.body, (Prepare, Commit, Checkpoint))]
    assert votes and all(v.seq < start for v in votes)
    # The three left commit on their own: r1 is cut off entirely.
    _run(c, _reqs(30, 5), keep=lambda m: "r1" not in (m.frm, m.to))
    assert r0.executed == 36
    assert c.data("r0") == c.data("r2") == c.data("r3")


def test_a_view_change_after_the_switch_runs_among_the_new_set() -> None:
    """Add r4, then cut the new epoch's primary off: the other four (of five, f = 1)
    change view with the new set's quorum, and r4 takes part."""
    c = Following()
    _run(c, [b"set:r0,r1,r2,r3,r4"])
    _run(c, _reqs(0, 20))
    r2 = c.nodes["r2"].core
    assert r2.members.n == 5 and r2.stable.seq >= 12
    dead = r2.primary

    def cut(m: Envelope) -> bool:
        return dead not in (m.frm, m.to)

    for n in c.names:
        c.nodes[n].core.propose(b"after")
    c.tick(CFG.view_change_timeout_ticks * 4, keep=cut)
    alive = [n for n in c.names if n != dead]
    live = c.nodes[alive[0]].core
    assert live.view >= 1 and live.active and live.primary != dead
    _run(c, _reqs(100, 3), keep=cut)
    top = c.data(alive[0])
    assert b"after" in top and top[-1] == b"req102"
    for n in alive:
        assert c.data(n) == top, n
    vcs_from_r4 = [m for m in c.pool if m.frm == "r4" and isinstance(m.body, ViewChange)]
    assert vcs_from_r4 == []  # delivered already; r4 counted as one of the four
    assert c.nodes["r4"].core.view == live.view


def test_two_changes_ordered_in_one_bucket_make_one_epoch_of_the_later_set() -> None:
    c = Following()
    _run(c, [b"set:r0,r1,r2,r3,r4", b"set:r0,r2,r3,r4"])
    r0 = c.nodes["r0"].core
    assert r0.members_at(13).replicas == ("r0", "r2", "r3", "r4")
    _run(c, _reqs(0, 20))
    assert r0.executed == 22
    for n in ("r2", "r3", "r4"):
        assert c.data(n) == c.data("r0"), n


def test_a_restart_after_a_switch_keeps_the_new_set() -> None:
    """The driver persists the epochs ``note_executed`` returned and gives them back
    (``restore_epoch``) before the restarted core takes a step."""
    c = Following()
    _run(c, [b"set:r0,r1,r2,r3,r4"])
    _run(c, _reqs(0, 16))
    names = ["r0", "r1", "r2", "r3", "r4"]
    c.restart("r4")
    r4 = c.nodes["r4"].core
    r4.restore_epoch(13, names, verifier(names))
    assert r4.is_member
    _run(c, _reqs(16, 8))
    assert c.data("r4") == c.data("r0") and len(c.data("r0")) == 25


def test_a_view_change_right_at_the_switch_takes_the_old_sets_checkpoint() -> None:
    """The new epoch's first stable checkpoint (12) is signed by the old set: the new
    set's view changes carry it, and are judged with it (a 5-replica quorum of it would
    never come)."""
    c = Following()
    _run(c, [b"set:r0,r1,r2,r3,r4"])
    _run(c, _reqs(0, 11))
    r1 = c.nodes["r1"].core
    assert r1.executed == 12 and r1.stable.seq == 12 and r1.members.n == 5
    assert len(r1.stable.proof) == 3 and "r4" not in {p.replica for p in r1.stable.proof}
    dead = r1.primary

    def cut(m: Envelope) -> bool:
        return dead not in (m.frm, m.to)

    for n in c.names:
        c.nodes[n].core.propose(b"after")
    c.tick(CFG.view_change_timeout_ticks * 4, keep=cut)
    assert r1.view >= 1 and r1.active and r1.primary != dead
    assert b"after" in c.data("r1")
    for n in c.names:
        if n != dead:
            assert c.data(n) == c.data("r1"), n
