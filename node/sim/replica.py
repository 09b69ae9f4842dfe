"""One simulated node: the real core and driver, with storage, transport and state
machine that the simulator can crash at any step and the checker can watch."""

from __future__ import annotations

import hashlib
import random
from collections import deque
from collections.abc import Sequence
from typing import Protocol

from consensus.config import RaftConfig
from consensus.raft import Raft
from consensus.storage import MemoryRaftStorage
from consensus.types import (
    AppendEntriesResponse,
    Entry,
    EntryKind,
    HardState,
    Message,
    RequestVoteResponse,
    Role,
    Snapshot,
)
from node.consensus_driver.driver import Driver
from node.sim.checker import STATE_MACHINE_SAFETY, Checker, LogView, Violation
from node.sim.faults import NodeCrash
from node.sim.network import SimNetwork
from node.sim.options import SimOptions


class Host(Protocol):
    """What a simulated node needs of the simulation that runs it (``world.Simulation``)."""

    seed: int
    opts: SimOptions
    now: int
    checker: Checker
    net: SimNetwork[Message]
    raft_config: RaftConfig

    def trace_event(self, what: object) -> None: ...


class SimStorage(MemoryRaftStorage):
    """Durable storage that reports every persisted entry to the checker, and can tear
    a write: keep the log part of a ``save`` and lose its hard state, as a store that
    is not one transaction would on a crash (docs/architecture.md §4 "torn writes")."""

    def __init__(self, node_id: str, voters: Sequence[str], checker: Checker) -> None:
        super().__init__(voters)
        self._node_id = node_id
        self._checker = checker
        self.tear_next_write = False

    def save(
        self,
        hard_state: HardState | None,
        entries: Sequence[Entry],
        snapshot: Snapshot | None,
    ) -> None:
        if self.tear_next_write and hard_state is not None and (entries or snapshot):
            self.tear_next_write = False
            super().save(None, entries, snapshot)
            if entries:
                self._checker.on_persist(self._node_id, entries)
            raise NodeCrash("torn write: log kept, hard state lost")
        super().save(hard_state, entries, snapshot)
        if entries:
            self._checker.on_persist(self._node_id, entries)
        if hard_state is not None:
            self._checker.on_commit(hard_state.term, hard_state.commit)


_ZERO_ROOT = bytes(32)


class SimStateMachine:
    """The application: a hash chain over applied payloads, so equal roots at an index
    mean equal histories. Volatile: a crash loses it; restart restores the snapshot."""

    def __init__(self, node_id: str, checker: Checker) -> None:
        self.node_id = node_id
        self.checker = checker
        self.index = 0
        self.root = _ZERO_ROOT

    def apply(self, entry: Entry) -> None:
        if entry.index != self.index + 1:
            raise Violation(
                STATE_MACHINE_SAFETY,
                f"{self.node_id} applied {entry.index} after {self.index}",
            )
        self.index = entry.index
        if entry.kind is EntryKind.NORMAL:
            self.root = hashlib.sha256(self.root + entry.data).digest()
        self.checker.on_apply(self.node_id, entry, self.root)

    def restore(self, snapshot: Snapshot) -> None:
        if snapshot.data:
            self.index = int.from_bytes(snapshot.data[:8], "big")
            self.root = snapshot.data[8:]
        else:
            self.index, self.root = 0, _ZERO_ROOT
        if self.index != snapshot.meta.index:
            raise Violation(STATE_MACHINE_SAFETY, f"{self.node_id} snapshot index mismatch")
        self.checker.on_restore(self.node_id, self.index, self.root)

    def snapshot_bytes(self) -> bytes:
        return self.index.to_bytes(8, "big") + self.root


class SimTransport:
    """Hands messages to the network; can kill the sender right after a granted vote or
    an append acknowledgement leaves (fault model #2's "SIGKILL after sending a vote,
    after answering an append")."""

    def __init__(self, sim: Host, node: SimNode) -> None:
        self._sim = sim
        self._node = node

    def send(self, msg: Message) -> None:
        node = self._node
        if not self._sim.opts.check_persist_before_send:
            pass
        elif isinstance(msg, AppendEntriesResponse) and msg.success:
            self._sim.checker.on_ack_sent(node.id, msg.index, node.storage.last_index())
        elif isinstance(msg, RequestVoteResponse) and msg.granted and not msg.pre_vote:
            durable = node.storage.hard_state()
            self._sim.checker.on_vote_sent(node.id, msg.to, msg.term, durable)
        self._sim.net.send(msg, self._sim.now)
        armed = self._node.crash_after
        not_a_vote = isinstance(msg, RequestVoteResponse) and (msg.pre_vote or not msg.granted)
        if armed is not None and isinstance(msg, armed) and not not_a_vote:
            raise NodeCrash(f"after sending {type(msg).__name__}", quick=True)


class SimNode:
    def __init__(self, sim: Host, node_id: str, voters: Sequence[str]) -> None:
        self.sim = sim
        self.id = node_id
        self.storage = SimStorage(node_id, voters, sim.checker)
        self.up = False
        self.incarnation = 0
        self.core: Raft
        self.driver: Driver
        self.sm: SimStateMachine
        self.inbox: deque[Message] = deque()
        self.paused_until = 0
        self.slow_every = 1
        self.slow_until = 0
        #: Crash at the N-th failpoint from now; 0 = not armed.
        self.crash_countdown = 0
        #: Crash right after sending a message of this type.
        self.crash_after: type | None = None
        self.transport = SimTransport(sim, self)
        self.restart_at = 0
        self.leader_term_seen = -1

    def start(self) -> None:
        self.incarnation += 1
        sim = self.sim
        rng = random.Random(f"{sim.seed}:{self.id}:{self.incarnation}")
        self.core = sim.opts.core(self.id, self.storage, rng, sim.raft_config)
        self.sm = SimStateMachine(self.id, sim.checker)
        self.sm.restore(self.storage.snapshot())
        self.driver = Driver(self.core, self.storage, self.transport, self.sm, self._failpoint)
        self.up = True
        self.crash_countdown = 0
        self.crash_after = None
        self.inbox.clear()
        sim.checker.on_restart(self.id, self.storage.hard_state().commit, self.storage.entries())

    def crash(self, why: str) -> None:
        self.up = False
        self.crash_countdown = 0
        self.crash_after = None
        self.storage.tear_next_write = False
        self.inbox.clear()
        self.leader_term_seen = -1
        self.sim.trace_event(f"{self.id} CRASH ({why})")

    def _failpoint(self, name: str) -> None:
        if self.crash_countdown:
            self.crash_countdown -= 1
            if self.crash_countdown == 0:
                raise NodeCrash(name)

    def active(self, now: int) -> bool:
        if not self.up or now < self.paused_until:
            return False
        return now >= self.slow_until or now % self.slow_every == 0

    def observe(self) -> None:
        core = self.core
        if core.role is Role.LEADER and self.leader_term_seen != core.term:
            self.leader_term_seen = core.term
            self.sim.trace_event(f"{self.id} LEADER term {core.term}")
            log = core.log
            view = LogView(log.first_index, log.slice(log.first_index, log.last_index + 1))
            self.sim.checker.on_leader(self.id, core.term, view)

    def process(self) -> None:
        try:
            self.driver.process()
        except NodeCrash as e:
            self.crash(f"at failpoint {e}")
            if e.quick:
                self.restart_at = self.sim.now + 1
