"""What a leader knows about one follower, and the flow control built on it (thesis
§10.2, etcd's ``Progress``): probe one append at a time until the follower's position
is found, then pipeline up to ``max_inflight_msgs`` appends, or wait for a snapshot."""

from __future__ import annotations

import enum
from collections import deque
from dataclasses import dataclass, field


class ProgressState(enum.Enum):
    PROBE = "probe"
    REPLICATE = "replicate"
    SNAPSHOT = "snapshot"


@dataclass(slots=True)
class Progress:
    match: int = 0
    next: int = 1
    state: ProgressState = ProgressState.PROBE
    #: In PROBE, one append is outstanding; the next waits for a reply or heartbeat.
    probe_sent: bool = False
    #: Last index of each pipelined append not yet acknowledged (REPLICATE).
    inflight: deque[int] = field(default_factory=deque)
    pending_snapshot: int = 0
    snapshot_elapsed_ticks: int = 0
    #: For check-quorum: heard from since the last election timeout.
    recent_active: bool = True
    #: Heartbeat replies seen in REPLICATE without ``match`` moving (lost appends).
    stalled_heartbeats: int = 0
    match_at_heartbeat: int = 0

    def paused(self, max_inflight: int) -> bool:
        if self.state is ProgressState.PROBE:
            return self.probe_sent
        if self.state is ProgressState.REPLICATE:
            return len(self.inflight) >= max_inflight
        return True

    def become_probe(self) -> None:
        if self.state is ProgressState.SNAPSHOT:
            self.next = max(self.match + 1, self.pending_snapshot + 1)
        else:
            self.next = self.match + 1
        self._reset(ProgressState.PROBE)

    def become_replicate(self) -> None:
        self.next = self.match + 1
        self._reset(ProgressState.REPLICATE)

    def become_snapshot(self, index: int) -> None:
        self._reset(ProgressState.SNAPSHOT)
        self.pending_snapshot = index

    def _reset(self, state: ProgressState) -> None:
        self.state = state
        self.probe_sent = False
        self.inflight.clear()
        self.pending_snapshot = 0
        self.snapshot_elapsed_ticks = 0
        self.stalled_heartbeats = 0

    def update(self, index: int) -> bool:
        """An acknowledgement up to ``index``; False if it taught us nothing."""
        self.probe_sent = False
        if index <= self.match:
            return False
        self.match = index
        self.next = max(self.next, index + 1)
        while self.inflight and self.inflight[0] <= index:
            self.inflight.popleft()
        return True

    def maybe_decrease(self, rejected: int, match_hint: int) -> bool:
        """A rejection of the append at ``rejected``; False if it is stale (a reply to
        an append sent before the follower's position was last settled).

        A follower that rejects the append at ``match`` itself lacks an entry it once
        acknowledged: its log was lost (restored from a backup, an emptied disk), which
        Raft's durability assumption rules out but operators do. Then ``match`` comes
        down to where the follower says its log ends, so the leader sends the hole
        again instead of probing above it for ever. Lowering ``match`` is always safe
        (the commit index never moves back); a duplicated old rejection costs at most a
        probe."""
        if self.state is ProgressState.REPLICATE:
            if rejected < self.match:
                return False
            if rejected == self.match:
                self.match = min(self.match, max(0, match_hint))
            self.next = self.match + 1
            return True
        if self.next - 1 != rejected:
            return False
        if rejected <= self.match:
            self.match = min(self.match, max(0, match_hint))
        self.next = max(min(rejected, match_hint + 1), self.match + 1)
        self.probe_sent = False
        return True
