"""Leader election: Raft §5.2, §5.4.1, and the thesis's pre-vote (§9.6), check-quorum
(§6.2) and disruption rules (§4.2.3)."""

from __future__ import annotations

import random

from raft_harness import CFG, Cluster

from consensus.config import RaftConfig
from consensus.raft import Raft
from consensus.storage import MemoryRaftStorage
from consensus.types import (
    AppendEntries,
    Entry,
    HardState,
    RequestVote,
    RequestVoteResponse,
    Role,
)


def test_a_follower_that_times_out_wins_with_a_majority() -> None:
    # Raft §5.2: timeout -> candidate at term+1, votes for itself, wins a majority.
    c = Cluster()
    c.elect("a")
    assert c.cores["a"].term == 1
    assert [c.cores[n].leader for n in "abc"] == ["a", "a", "a"]
    assert [c.cores[n].role for n in "bc"] == [Role.FOLLOWER, Role.FOLLOWER]


def test_election_timeouts_are_randomized_within_one_to_two_timeouts() -> None:
    # Raft §5.2: randomized timeouts in [T, 2T) make split votes rare.
    seen = set()
    for seed in range(30):
        core = Raft("a", MemoryRaftStorage(["a", "b", "c"]), random.Random(seed), CFG)
        ticks = 0
        while core.role is Role.FOLLOWER:
            core.tick()
            ticks += 1
        seen.add(ticks)
    assert min(seen) >= CFG.election_timeout_ticks
    assert max(seen) < 2 * CFG.election_timeout_ticks
    assert len(seen) > 3


def _vote(core: Raft, frm: str, term: int, last_index: int = 0, last_term: int = 0) -> bool:
    core.step(RequestVote(frm, core.node_id, term, last_index, last_term))
    replies = [m for m in core.ready().messages if isinstance(m, RequestVoteResponse)]
    assert len(replies) == 1
    return replies[0].granted


def test_at_most_one_vote_per_term() -> None:
    # Raft §5.2: "each server will vote for at most one candidate in a given term".
    core = Raft("a", MemoryRaftStorage(["a", "b", "c"]), random.Random(1), CFG)
    assert _vote(core, "b", 1)
    assert not _vote(core, "c", 1)
    assert _vote(core, "b", 1)  # A retransmitted request gets the same answer.
    assert _vote(core, "c", 2)


def test_vote_is_refused_to_a_less_up_to_date_log() -> None:
    # Raft §5.4.1: compare last term first, then length.
    storage = MemoryRaftStorage(["a", "b", "c"])
    storage.save(HardState(2, None, 0), [Entry(1, 1, b"x"), Entry(2, 2, b"y")], None)
    core = Raft("a", storage, random.Random(1), CFG)
    assert not _vote(core, "b", 3, last_index=5, last_term=1)
    assert not _vote(core, "c", 4, last_index=1, last_term=2)
    assert _vote(core, "b", 5, last_index=2, last_term=2)


def test_term_and_vote_are_persisted_before_the_vote_is_sent() -> None:
    # Raft §5.1 / Figure 2: currentTerm and votedFor are on stable storage before
    # responding; the Ready carries both and the driver persists first.
    core = Raft("a", MemoryRaftStorage(["a", "b", "c"]), random.Random(1), CFG)
    core.step(RequestVote("b", "a", 7, 0, 0))
    rd = core.ready()
    assert rd.hard_state == HardState(7, "b", 0)
    assert any(isinstance(m, RequestVoteResponse) and m.granted for m in rd.messages)


def test_a_restarted_node_remembers_its_vote() -> None:
    # Raft §5.2 + §5.1: the vote survives a crash, so no second vote in that term.
    c = Cluster()
    c.cores["a"].step(RequestVote("b", "a", 3, 0, 0))
    c.process()
    c.crash("a")
    c.start("a")
    assert c.cores["a"].term == 3
    assert c.cores["a"].vote == "b"
    assert not _vote(c.cores["a"], "c", 3)


def test_pre_vote_keeps_an_isolated_node_from_inflating_its_term() -> None:
    # Thesis §9.6: a partitioned server cannot win a pre-vote, so its term stays put
    # and it does not depose the leader when it returns.
    c = Cluster()
    c.elect("a")
    c.isolate("c")
    c.run(100)
    assert c.cores["c"].term == 1
    assert c.cores["c"].role is Role.PRE_CANDIDATE
    c.heal()
    c.run(5)
    assert c.cores["a"].role is Role.LEADER
    assert c.cores["a"].term == 1


def test_without_pre_vote_the_isolated_node_would_disrupt() -> None:
    # The negative control for the test above: thesis §9.6's motivation.
    c = Cluster(cfg=RaftConfig(pre_vote=False, check_quorum=False))
    c.elect("a")
    c.isolate("c")
    c.run(100)
    assert c.cores["c"].term > 5


def test_check_quorum_makes_an_isolated_leader_step_down() -> None:
    # Thesis §6.2: a leader that cannot reach a quorum for an election timeout stops
    # leading, so clients are not served by a deposed leader.
    c = Cluster()
    c.elect("a")
    c.isolate("a")
    c.run(CFG.election_timeout_ticks * 2 + 1)
    assert c.cores["a"].role is not Role.LEADER
    assert c.cores["a"].propose(b"late") is False
    assert c.leader() in ("b", "c")


def test_followers_ignore_vote_requests_while_they_hear_from_a_leader() -> None:
    # Thesis §4.2.3: a server that hears from a current leader ignores RequestVote,
    # so a removed or partitioned server cannot disrupt the cluster.
    c = Cluster()
    c.elect("a")
    b = c.cores["b"]
    b.step(RequestVote("c", "b", 9, 100, 100))
    assert b.term == 1
    assert not [m for m in b.ready().messages if isinstance(m, RequestVoteResponse)]


def test_a_stale_leader_learns_the_new_term_from_a_rejection() -> None:
    # Raft §5.1: a server with a stale term reverts to follower when it sees a newer
    # one; a rejected append carries it back.
    c = Cluster()
    c.elect("a")
    c.isolate("a")
    c.run(40)
    new = c.leader()
    assert new in ("b", "c")
    c.heal()
    c.cores["a"].step(AppendEntries("b", "a", 1, 0, 0, (), 0))  # Nudge a stale message.
    c.run(5)
    assert c.cores["a"].role is Role.FOLLOWER
    assert c.cores["a"].term == c.cores[new].term


def test_a_candidate_of_an_older_term_is_told_the_term() -> None:
    # Raft Figure 2 (RequestVote: "reply false if term < currentTerm", with currentTerm):
    # a candidate below the others' term learns it and can campaign above it. Without
    # the answer the simulator's seed 677849478 never elected a leader: the one voter
    # whose log could win was never sent anything at the others' term.
    core = Raft("a", MemoryRaftStorage(["a", "b", "c"]), random.Random(1), CFG)
    core.step(RequestVote("b", "a", 5, 0, 0))  # a moves to term 5 (and grants)
    core.advance(core.ready())
    core.step(RequestVote("c", "a", 3, 7, 2))  # a candidate of an older term
    answer = [m for m in core.ready().messages if m.to == "c"]
    assert answer == [RequestVoteResponse("a", "c", 5, False)]
    candidate = Raft("c", MemoryRaftStorage(["a", "b", "c"]), random.Random(2), CFG)
    candidate.step(answer[0])
    assert (candidate.term, candidate.role) == (5, Role.FOLLOWER)
