"""Single-server membership changes (thesis §4.1-§4.2) and leadership transfer
(thesis §3.10)."""

from __future__ import annotations

from raft_harness import Cluster

from consensus.types import ConfChange, ConfOp, EntryKind, Role, TimeoutNow


def _conf_entries(c: Cluster, n: str) -> list[ConfChange]:
    return [
        ConfChange.decode(e.data) for e in c.storage[n].entries() if e.kind is EntryKind.CONF_CHANGE
    ]


def test_adding_a_server_grows_the_quorum() -> None:
    # Thesis §4.1: one server at a time; the new configuration is used as soon as
    # its entry is in the log. A new server starts empty and catches up.
    c = Cluster(names="abcd", members="abc")
    c.elect("a")
    c.cores["a"].propose(b"before")
    c.settle()
    assert c.cores["a"].propose_conf_change(ConfOp.ADD, "d")
    assert c.cores["a"].status().voters == ("a", "b", "c", "d")  # At append time.
    c.run(5)
    assert c.cores["d"].status().voters == ("a", "b", "c", "d")
    assert c.applied["d"].data() == [b"before"]
    # Four voters: a quorum is three, so two servers down stops progress.
    c.crash("c")
    c.crash("d")
    c.cores["a"].propose(b"stuck")
    c.run(3)
    assert b"stuck" not in c.applied["a"].data()


def test_a_new_server_does_not_campaign_before_it_is_added() -> None:
    # Thesis §4.2.1: a server outside the configuration must not start elections.
    c = Cluster(names="abcd", members="abc")
    c.elect("a")
    c.isolate("d")
    c.run(60)
    assert c.cores["d"].term == 0
    assert c.cores["d"].role is Role.FOLLOWER


def test_one_change_at_a_time() -> None:
    # Thesis §4.1: a leader does not start a change until the previous one commits.
    c = Cluster(names="abcd", members="abc")
    c.elect("a")
    c.settle()
    assert c.cores["a"].propose_conf_change(ConfOp.ADD, "d")
    assert not c.cores["a"].propose_conf_change(ConfOp.REMOVE, "b")
    c.settle()
    c.run(2)
    assert c.cores["a"].propose_conf_change(ConfOp.REMOVE, "b")


def test_a_new_leader_changes_membership_only_after_committing_in_its_term() -> None:
    # The fix to the single-server change bug (Ongaro, raft-dev, 2015): a leader must
    # commit an entry of its own term before it appends a configuration entry.
    c = Cluster(names="abcd", members="abc")
    a = c.cores["a"]
    while a.role is not Role.LEADER:
        c.tick("a")
        c.deliver(lambda m: type(m).__name__.startswith("RequestVote"))
    assert not a.propose_conf_change(ConfOp.ADD, "d")  # Its no-op is not committed.
    c.settle()
    assert a.propose_conf_change(ConfOp.ADD, "d")


def test_a_removed_leader_steps_down_once_the_change_commits() -> None:
    # Thesis §4.2.2: the leader manages the cluster until C_new commits, then steps
    # down; the remaining servers elect a leader among themselves.
    c = Cluster()
    c.elect("a")
    c.settle()
    assert c.cores["a"].propose_conf_change(ConfOp.REMOVE, "a")
    c.settle()
    assert c.cores["a"].role is Role.FOLLOWER
    assert _conf_entries(c, "b")[-1].voters == ("b", "c")
    c.run(60)
    leader = c.leader()
    assert leader in ("b", "c")
    c.cores[leader].propose(b"after")
    c.run(3)
    assert c.applied["b"].data()[-1:] == [b"after"]


def test_a_removed_server_does_not_disrupt_the_cluster() -> None:
    # Thesis §4.2.3: servers that hear from a leader ignore RequestVote, so a removed
    # server that keeps timing out does not depose the leader.
    c = Cluster()
    c.elect("a")
    c.settle()
    c.isolate("c")  # c never learns it was removed.
    assert c.cores["a"].propose_conf_change(ConfOp.REMOVE, "c")
    c.run(5)
    c.heal()
    term = c.cores["a"].term
    c.run(80)
    assert c.cores["a"].role is Role.LEADER
    assert c.cores["a"].term == term


def test_a_truncated_configuration_entry_is_rolled_back() -> None:
    # Thesis §4.1: the configuration is the latest in the log, committed or not, so a
    # server whose uncommitted configuration entry is overwritten reverts.
    c = Cluster(names="abcd", members="abc")
    c.elect("a")
    c.settle()
    c.isolate("a")
    assert c.cores["a"].propose_conf_change(ConfOp.ADD, "d")
    assert c.cores["a"].status().voters == ("a", "b", "c", "d")
    c.run(50)
    assert c.leader() in ("b", "c")
    c.heal()
    c.run(10)
    assert c.cores["a"].status().voters == ("a", "b", "c")


def test_leadership_transfer_to_an_up_to_date_follower() -> None:
    # Thesis §3.10: the leader sends TimeoutNow; the target campaigns at once, and
    # voters honour it even though they hear from the current leader.
    c = Cluster()
    c.elect("a")
    c.settle()
    assert c.cores["a"].transfer_leadership("b")
    assert any(isinstance(m, TimeoutNow) and m.to == "b" for m in c.cores["a"].ready().messages)
    c = Cluster()
    c.elect("a")
    c.settle()
    c.cores["a"].transfer_leadership("b")
    c.settle()
    assert c.leader() == "b"
    assert c.cores["b"].term == 2


def test_transfer_catches_the_target_up_first_and_blocks_proposals() -> None:
    # Thesis §3.10: "the prior leader ... stops accepting new client requests" and
    # brings the target's log up to date before TimeoutNow.
    c = Cluster()
    c.elect("a")
    c.settle()
    c.isolate("c")
    for i in range(5):
        c.cores["a"].propose(b"x%d" % i)
    c.settle()
    c.heal()
    assert c.cores["a"].transfer_leadership("c")
    assert not c.cores["a"].propose(b"during")
    c.settle()
    assert c.leader() == "c"
    assert c.applied["c"].data()[:5] == [b"x%d" % i for i in range(5)]


def test_a_stalled_transfer_is_abandoned_after_an_election_timeout() -> None:
    c = Cluster()
    c.elect("a")
    c.settle()
    c.crash("b")
    assert c.cores["a"].transfer_leadership("b")
    c.run(c.cfg.election_timeout_ticks + 1)
    assert c.cores["a"].role is Role.LEADER
    assert c.cores["a"].propose(b"again")


def test_a_server_added_after_compaction_catches_up_by_snapshot() -> None:
    # Thesis §4.2.1 + Raft §7: a new server with an empty log is brought up to date
    # with InstallSnapshot when the leader no longer has the early entries.
    c = Cluster(names="abcd", members="abc")
    c.elect("a")
    for i in range(5):
        c.cores["a"].propose(b"x%d" % i)
    c.settle()
    c.drivers["a"].compact(c.cores["a"].log.applied, b"state")
    assert c.cores["a"].propose_conf_change(ConfOp.ADD, "d")
    c.run(5)
    assert c.applied["d"].snapshots[-1].data == b"state"
    assert c.cores["d"].status().voters == ("a", "b", "c", "d")
    assert c.cores["d"].log.commit == c.cores["a"].log.commit
