"""A simulated network: per-link FIFO delivery after a random delay, with loss,
duplication, occasional reordering, and directed link cuts for partitions.

Links are FIFO unless a message is picked for reordering, because the real transport
(TCP per peer) is FIFO and a pipelined Raft leader relies on that for throughput, not
for safety; reordering still happens often enough to exercise the safety paths.
"""

from __future__ import annotations

import heapq
import random
from dataclasses import dataclass
from typing import Generic, Protocol, TypeVar


class Addressed(Protocol):
    """Anything the network can route: Raft messages and PBFT envelopes."""

    @property
    def frm(self) -> str: ...

    @property
    def to(self) -> str: ...


M = TypeVar("M", bound=Addressed)


@dataclass(slots=True)
class LinkFaults:
    loss: float = 0.0
    duplicate: float = 0.0
    reorder: float = 0.0
    delay_min_ticks: int = 1
    delay_max_ticks: int = 1
    #: A message now and then arrives very late (retransmission after a reconnect):
    #: the classic source of stale-term traffic.
    late: float = 0.0
    late_max_ticks: int = 40


class SimNetwork(Generic[M]):
    def __init__(self, rng: random.Random, faults: LinkFaults) -> None:
        self._rng = rng
        self.faults = faults
        self._queue: list[tuple[int, int, M]] = []
        self._seq = 0
        self._link_clock: dict[tuple[str, str], int] = {}
        #: Directed (from, to) pairs that drop everything: partitions.
        self.cut: set[tuple[str, str]] = set()
        self.sent = 0
        self.dropped = 0

    def send(self, msg: M, now: int) -> None:
        self.sent += 1
        f = self.faults
        link = (msg.frm, msg.to)
        if link in self.cut or (f.loss and self._rng.random() < f.loss):
            self.dropped += 1
            return
        copies = 2 if f.duplicate and self._rng.random() < f.duplicate else 1
        for _ in range(copies):
            delay = f.delay_min_ticks
            if f.delay_max_ticks > delay:
                delay = self._rng.randint(delay, f.delay_max_ticks)
            at = now + delay
            if f.late and self._rng.random() < f.late:
                at += self._rng.randint(1, f.late_max_ticks)
            elif not (f.reorder and self._rng.random() < f.reorder):
                at = max(at, self._link_clock.get(link, 0))
                self._link_clock[link] = at
            self._seq += 1
            heapq.heappush(self._queue, (at, self._seq, msg))

    def due(self, now: int) -> list[M]:
        """Messages whose delivery time has come, in delivery order. A message on a
        link cut while it was in flight is lost."""
        out: list[M] = []
        q = self._queue
        while q and q[0][0] <= now:
            msg = heapq.heappop(q)[2]
            if (msg.frm, msg.to) in self.cut:
                self.dropped += 1
                continue
            out.append(msg)
        return out

    def in_flight(self) -> int:
        return len(self._queue)
