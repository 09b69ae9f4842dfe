"""Deliberately broken Raft variants. Each breaks one rule the paper states; the
simulator must flag every one of them (a checker that cannot fail proves nothing)."""

from __future__ import annotations

import random

from consensus.config import RaftConfig
from consensus.raft import Raft
from consensus.storage import MemoryRaftStorage
from consensus.types import AppendEntries, HardState, Heartbeat, Message, RequestVote, Role


class NoQuorumRaft(Raft):
    """Breaks Raft §5.3/§5.4.2: commits whatever the leader itself has persisted,
    without waiting for a majority."""

    def _commit_candidate(self) -> int:
        return self.log.stable


class ForgetVoteRaft(Raft):
    """Breaks Raft §5.1 (Figure 2): never persists ``votedFor``, so a node that crashes
    after voting can vote again in the same term."""

    def _hard_state(self) -> HardState:
        return HardState(self.term, None, self.log.commit)


class StaleTermAppendRaft(Raft):
    """Breaks Raft §5.1/§5.3: accepts an AppendEntries (or a heartbeat, which is an empty
    AppendEntries in the paper) from an older term as if it came from the current
    leader, and answers in the sender's term."""

    def step(self, msg: Message) -> None:
        if isinstance(msg, AppendEntries | Heartbeat) and msg.term < self.term:
            saved_term = self.term
            self.term = msg.term
            self.role = Role.FOLLOWER
            if isinstance(msg, AppendEntries):
                self._on_append_entries(msg)
            else:
                self._on_heartbeat(msg)
            self.term = saved_term
            return
        super().step(msg)


class DoubleVoteRaft(Raft):
    """Breaks Raft §5.2: grants every up-to-date candidate, ignoring ``votedFor``. The
    negative control for the election-safety checker (no crash needed)."""

    def _on_request_vote(self, m: RequestVote) -> None:
        if not m.pre_vote:
            self.vote = None
            self.leader = None
        super()._on_request_vote(m)


class NoConsistencyCheckRaft(Raft):
    """Breaks Raft §5.3: a follower appends without checking ``prevLogIndex/Term``
    (it trusts the leader about what precedes the new entries)."""

    def _on_append_entries(self, m: AppendEntries) -> None:
        log = self.log
        splice = (
            self.role is not Role.LEADER
            and m.entries
            and log.commit <= m.prev_log_index <= log.last_index
            and not log.matches(m.prev_log_index, m.prev_log_term)
        )
        if splice:  # Pretend the predecessor matched: splice the entries onto our log.
            own_term = log.term(m.prev_log_index) or 0
            m = AppendEntries(
                m.frm, m.to, m.term, m.prev_log_index, own_term, m.entries, m.leader_commit
            )
        super()._on_append_entries(m)


class NeverCampaignRaft(Raft):
    """Breaks liveness (Raft §5.2): followers never time out. The negative control for
    the progress-after-heal check."""

    def _tick_election(self) -> None:
        pass


def factory(cls: type[Raft]):  # type: ignore[no-untyped-def]
    def make(node_id: str, storage: MemoryRaftStorage, rng: random.Random, cfg: RaftConfig) -> Raft:
        return cls(node_id, storage, rng, cfg)

    return make
