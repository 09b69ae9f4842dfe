"""Raft tuning knobs, all in ticks or counts so the core never reads a clock."""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True, slots=True)
class RaftConfig:
    """Defaults suit a 10-100 ms tick. ``election_timeout_ticks`` is the lower bound of
    the randomized timeout, drawn from [t, 2t) (Raft §5.2); it must exceed
    ``heartbeat_ticks`` by a wide margin or followers time out under a healthy leader."""

    election_timeout_ticks: int = 10
    heartbeat_ticks: int = 1
    #: Thesis §9.6: a would-be candidate first asks whether it could win.
    pre_vote: bool = True
    #: Thesis §6.2: a leader that has not heard from a quorum for an election timeout
    #: steps down. (Followers ignore votes while they hear from a leader either way.)
    check_quorum: bool = True
    #: Flow control (thesis §10.2): entries per AppendEntries and appends in flight.
    max_batch_entries: int = 256
    max_batch_bytes: int = 1 << 20
    max_inflight_msgs: int = 8
    #: Back-pressure (docs/architecture.md §7, every queue bounded): a leader refuses proposals
    #: while this many entries await commitment, e.g. when it has lost its quorum.
    max_uncommitted_entries: int = 10_000
    #: Largest payload a proposal may carry; bigger ones are a caller bug.
    max_entry_bytes: int = 16 << 20
    #: A follower stuck in snapshot state is re-probed after this long (lost message).
    snapshot_retry_ticks: int = 20

    def __post_init__(self) -> None:
        if self.heartbeat_ticks < 1 or self.election_timeout_ticks <= self.heartbeat_ticks:
            raise ValueError("need 1 <= heartbeat_ticks < election_timeout_ticks")
        if min(self.max_batch_entries, self.max_inflight_msgs, self.max_uncommitted_entries) < 1:
            raise ValueError("batch and inflight limits must be positive")
