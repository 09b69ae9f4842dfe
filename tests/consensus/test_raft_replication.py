"""Log replication and commitment: Raft §5.3, §5.4.2, and the thesis's batching and
pipelining (§10.2)."""

from __future__ import annotations

import dataclasses
import random

import pytest
from raft_harness import CFG, Applied, Cluster

from consensus.config import RaftConfig
from consensus.raft import Raft
from consensus.storage import MemoryRaftStorage
from consensus.types import (
    AppendEntries,
    AppendEntriesResponse,
    Entry,
    EntryKind,
    HardState,
    Ready,
    Role,
)


def test_committed_entries_are_applied_in_order_everywhere() -> None:
    # Raft §5.3: the leader appends, replicates, commits on a majority, and every
    # server applies the same entries in log order.
    c = Cluster()
    c.elect("a")
    for i in range(20):
        assert c.cores["a"].propose(b"x%d" % i)
    c.settle()
    c.run(2)
    want = [b"x%d" % i for i in range(20)]
    for n in "abc":
        assert c.applied[n].data() == want
        assert c.cores[n].log.commit == 21  # The leader's no-op is entry 1.


def test_a_new_leader_appends_a_no_op() -> None:
    # Raft §8 / thesis §6.4: a no-op of the new term lets earlier entries commit.
    c = Cluster()
    c.elect("a")
    first = c.storage["a"].entries()[0]
    assert first.kind is EntryKind.NOOP and first.term == 1


def test_only_a_non_leader_refuses_proposals() -> None:
    c = Cluster()
    c.elect("a")
    assert c.cores["b"].propose(b"x") is False
    assert c.cores["b"].status().leader == "a"  # Where the node forwards the write.


def test_consistency_check_rejects_a_gap_and_hints_where_to_resume() -> None:
    # Raft §5.3: a follower refuses entries whose predecessor it lacks; the thesis's
    # optimisation reports where its log could still match.
    storage = MemoryRaftStorage(["a", "b", "c"])
    storage.save(HardState(1, None, 0), [Entry(1, 1, b"p"), Entry(2, 1, b"q")], None)
    core = Raft("b", storage, random.Random(1), CFG)
    core.step(AppendEntries("a", "b", 2, 5, 2, (Entry(6, 2, b"z"),), 0))
    (reply,) = [m for m in core.ready().messages if isinstance(m, AppendEntriesResponse)]
    assert not reply.success
    assert reply.index == 5
    assert (reply.hint_index, reply.hint_term) == (2, 1)


def test_conflicting_suffix_is_replaced_by_the_leaders() -> None:
    # Raft §5.3: "If an existing entry conflicts with a new one (same index but
    # different terms), delete the existing entry and all that follow it."
    storage = MemoryRaftStorage(["a", "b", "c"])
    old = [Entry(1, 1, b"p"), Entry(2, 1, b"stale"), Entry(3, 1, b"stale2")]
    storage.save(HardState(1, None, 1), old, None)
    core = Raft("b", storage, random.Random(1), CFG)
    core.step(AppendEntries("a", "b", 2, 1, 1, (Entry(2, 2, b"new"),), 1))
    rd = core.ready()
    assert rd.entries == (Entry(2, 2, b"new"),)  # The store truncates from index 2.
    storage.save(rd.hard_state, rd.entries, rd.snapshot)
    core.advance(rd)
    assert [e.data for e in storage.entries()] == [b"p", b"new"]


def test_a_follower_with_a_divergent_log_is_repaired() -> None:
    # Raft §5.3 / Figure 7: the leader backs up until the logs agree, then overwrites.
    c = Cluster()
    c.elect("a")
    c.cores["a"].propose(b"common")
    c.settle()
    c.isolate("a")
    for i in range(5):
        c.cores["a"].propose(b"lost%d" % i)  # Never reaches a majority.
    c.process()
    c.run(40)
    new = c.leader()
    assert new in ("b", "c")
    for i in range(3):
        c.cores[new].propose(b"kept%d" % i)
    c.settle()
    c.heal()
    c.run(10)
    for n in "abc":
        assert c.applied[n].data() == [b"common", b"kept0", b"kept1", b"kept2"]
        assert [e.data for e in c.storage[n].entries() if e.data.startswith(b"lost")] == []


def test_a_leader_does_not_commit_an_old_term_entry_by_counting() -> None:
    # Raft §5.4.2 / Figure 8: an entry from an earlier term is not committed because
    # a majority stores it; only the current term's entries commit by counting.
    c = Cluster()
    for n in "ab":
        c.storage[n].save(HardState(2, None, 0), [Entry(1, 1, b"x"), Entry(2, 2, b"y")], None)
    c.storage["c"].save(HardState(2, None, 0), [Entry(1, 1, b"x")], None)
    for n in "abc":
        c.start(n)
    a = c.cores["a"]
    while a.role is not Role.LEADER:  # Win term 3 with votes only.
        c.tick("a")
        c.deliver(lambda m: not isinstance(m, AppendEntries))
    assert a.term == 3
    c.deliver(lambda m: isinstance(m, AppendEntries))  # Followers get the no-op...
    c.pool = []  # ...but their acknowledgements are lost.
    a.step(AppendEntriesResponse("b", "a", 3, True, 2))  # b holds entry 2 (term 2).
    c.process()
    assert a.log.commit == 0  # A majority holds entry 2, yet it is not committed.
    a.step(AppendEntriesResponse("b", "a", 3, True, 3))  # b holds the term-3 no-op.
    c.process()
    assert a.log.commit == 3  # Now entry 3 commits, and 1-2 with it (§5.4.2).


def test_the_leader_counts_itself_only_once_its_entries_are_durable() -> None:
    # Raft §5.1: an entry counts towards a quorum only where it is persisted; the
    # leader's own copy is durable once the driver reports it (advance).
    core = Raft("a", MemoryRaftStorage(["a"]), random.Random(1), CFG)
    for _ in range(30):
        core.tick()
    assert core.role is Role.LEADER
    rd = core.ready()
    assert rd.entries and not rd.committed  # Not committed before persisted.
    core.advance(rd)
    rd2 = core.ready()
    assert [e.index for e in rd2.committed] == [1]


def test_proposals_between_readies_go_out_as_one_batch() -> None:
    # Thesis §10.2.1 batching: many proposals, one AppendEntries per follower.
    c = Cluster()
    c.elect("a")
    c.settle()
    for i in range(50):
        c.cores["a"].propose(b"x%d" % i)
    rd = c.cores["a"].ready()
    appends = [m for m in rd.messages if isinstance(m, AppendEntries)]
    assert sorted(m.to for m in appends) == ["b", "c"]
    assert all(len(m.entries) == 50 for m in appends)


def test_pipelined_appends_are_bounded_by_the_inflight_window() -> None:
    # Thesis §10.2.2 pipelining with flow control: a replicating follower gets up to
    # max_inflight_msgs appends without waiting, then the leader pauses.
    cfg = RaftConfig(max_batch_entries=2, max_inflight_msgs=3)
    c = Cluster(cfg=cfg)
    c.elect("a")
    c.run(2)
    a = c.cores["a"]
    for i in range(20):
        a.propose(b"x%d" % i)
    c.process()
    to_b = [m for m in c.pool if isinstance(m, AppendEntries) and m.to == "b"]
    assert len(to_b) == 3
    assert [len(m.entries) for m in to_b] == [2, 2, 2]
    assert [m.prev_log_index for m in to_b] == [1, 3, 5]  # Sent without waiting.
    c.settle()
    assert c.cores["b"].log.last_index == a.log.last_index  # Acks reopen the window.


def test_a_lost_append_is_recovered_by_probing() -> None:
    # Thesis §10.2: when pipelined appends are lost the leader falls back to probing.
    c = Cluster()
    c.elect("a")
    c.run(2)
    for i in range(5):
        c.cores["a"].propose(b"x%d" % i)
    c.process()
    c.pool = [m for m in c.pool if not (isinstance(m, AppendEntries) and m.to == "b")]
    c.run(6)
    assert c.applied["b"].data() == [b"x%d" % i for i in range(5)]


def test_entries_are_persisted_before_they_are_acknowledged() -> None:
    # Raft §5.3 + Figure 2: a follower's success reply must not overtake its write;
    # the driver persists a Ready before sending its messages.
    order: list[str] = []

    class Spy(MemoryRaftStorage):
        def save(self, hs, entries, snap):  # type: ignore[no-untyped-def]
            if entries:
                order.append(f"persist {entries[-1].index}")
            super().save(hs, entries, snap)

    c = Cluster()
    c.storage["b"] = Spy(["a", "b", "c"])
    c.start("b")
    c.elect("a")
    c.cores["a"].propose(b"x")
    c.process()
    real_send = c.send

    def send(msg):  # type: ignore[no-untyped-def]
        if isinstance(msg, AppendEntriesResponse) and msg.frm == "b" and msg.success:
            order.append(f"ack {msg.index}")
        real_send(msg)

    c.send = send  # type: ignore[method-assign]
    c.settle()
    assert order.index("persist 2") < order.index("ack 2")


def test_ready_docstring_states_the_execution_order() -> None:
    doc = Ready.__doc__ or ""
    positions = [doc.index(w) for w in ("persist", "send", "apply", "advance")]
    assert positions == sorted(positions)


def test_a_leader_without_a_quorum_stops_accepting_at_the_uncommitted_bound() -> None:
    # Back-pressure (docs/architecture.md §7): the uncommitted tail is bounded.
    c = Cluster(cfg=RaftConfig(max_uncommitted_entries=5, check_quorum=False))
    c.elect("a")
    c.settle()
    c.isolate("a")
    accepted = [c.cores["a"].propose(b"x%d" % i) for i in range(10)]
    assert accepted == [True] * 5 + [False] * 5
    c.heal()
    c.run(3)
    assert c.cores["a"].propose(b"again")


def test_malformed_appends_are_dropped() -> None:
    core = Raft("b", MemoryRaftStorage(["a", "b"]), random.Random(1), CFG)
    core.step(AppendEntries("a", "b", 1, 0, 0, (Entry(5, 1, b"gap"),), 0))
    core.step(AppendEntries("a", "b", 1, 0, 0, (Entry(1, 9, b"future term"),), 0))
    assert core.log.last_index == 0
    assert not core.ready().messages


def test_an_ack_for_entries_replaced_before_persisting_is_withdrawn() -> None:
    # Raft §5.3: acknowledge only what is persisted. Two appends in one batch: the
    # second (a newer leader) replaces what the first added before any of it reached
    # the disk, so the first acknowledgement must not leave (found by sim seed 3203).
    core = Raft("b", MemoryRaftStorage(["a", "b", "c"]), random.Random(1), CFG)
    old = tuple(Entry(i, 1, b"old%d" % i) for i in (1, 2, 3))
    core.step(AppendEntries("a", "b", 1, 0, 0, old, 0))
    core.step(AppendEntries("c", "b", 2, 0, 0, (Entry(1, 2, b"new"),), 0))
    rd = core.ready()
    acks = [m for m in rd.messages if isinstance(m, AppendEntriesResponse)]
    assert [(m.to, m.term, m.index) for m in acks] == [("c", 2, 1)]
    assert rd.entries == (Entry(1, 2, b"new"),)


@pytest.mark.parametrize("more_proposals", [True, False], ids=["busy", "idle"])
def test_a_follower_that_lost_acknowledged_entries_is_sent_them_again(
    more_proposals: bool,
) -> None:
    # A follower restored from a backup (or whose disk was emptied) lacks entries it once
    # acknowledged. Raft assumes durable logs, so the leader's ``match`` for it is too
    # high; its rejection of the probe at ``match`` (thesis §10.2: the follower says
    # where its log ends) must lower ``match``, or the leader would resend from above
    # the hole for ever and the follower never catch up while that leader lasts.
    c = Cluster()
    c.elect("a")
    c.run(2)
    for i in range(3):
        c.cores["a"].propose(b"x%d" % i)
    c.run(4)
    assert c.applied["b"].data() == [b"x0", b"x1", b"x2"]
    backup = MemoryRaftStorage(["a", "b", "c"])
    old = c.storage["b"]
    keep = [e for e in old.entries() if e.index <= 2]  # the backup ends before x1
    hs = old.hard_state()  # as the backup saw it: a commit within its own log
    backup.save(dataclasses.replace(hs, commit=min(hs.commit, 2)), keep, None)
    c.crash("b")
    c.storage["b"] = backup
    c.applied["b"] = Applied()
    c.start("b")
    if more_proposals:  # appends reach the node and are refused
        for i in range(3, 6):
            c.cores["a"].propose(b"x%d" % i)
    # Idle, only heartbeats reach it: it says where its log ends after two of them.
    c.run(10)
    assert c.leader() == "a"  # the same leader throughout
    assert c.storage["b"].last_index() == c.storage["a"].last_index()
    assert [e.data for e in c.storage["b"].entries()] == [e.data for e in c.storage["a"].entries()]
