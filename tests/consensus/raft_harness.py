"""A tiny hand-driven cluster for the paper tests: real cores, real driver, in-memory
storage, and a message pool the test delivers explicitly (or all at once)."""

from __future__ import annotations

import random
from collections.abc import Callable, Iterable

from consensus.config import RaftConfig
from consensus.raft import Raft
from consensus.storage import MemoryRaftStorage
from consensus.types import Entry, EntryKind, Message, Role, Snapshot
from node.consensus_driver.driver import Driver

CFG = RaftConfig(election_timeout_ticks=10, heartbeat_ticks=1)


class Applied:
    def __init__(self) -> None:
        self.entries: list[Entry] = []
        self.snapshots: list[Snapshot] = []

    def apply(self, entry: Entry) -> None:
        self.entries.append(entry)

    def restore(self, snapshot: Snapshot) -> None:
        self.snapshots.append(snapshot)
        self.entries = []

    def data(self) -> list[bytes]:
        return [e.data for e in self.entries if e.kind is EntryKind.NORMAL]


class Cluster:
    def __init__(
        self,
        names: Iterable[str] = ("a", "b", "c"),
        cfg: RaftConfig = CFG,
        core: Callable[..., Raft] = Raft,
        members: Iterable[str] | None = None,
    ) -> None:
        self.names = list(names)
        voters = list(members) if members is not None else self.names
        self.cfg = cfg
        self.core_cls = core
        self.storage = {n: MemoryRaftStorage(voters if n in voters else ()) for n in self.names}
        self.applied = {n: Applied() for n in self.names}
        self.pool: list[Message] = []
        self.cut: set[tuple[str, str]] = set()
        self.cores: dict[str, Raft] = {}
        self.drivers: dict[str, Driver] = {}
        self.down: set[str] = set()
        for n in self.names:
            self.start(n)

    def start(self, n: str) -> None:
        self.down.discard(n)
        core = self.core_cls(n, self.storage[n], random.Random(n), self.cfg)
        self.cores[n] = core
        self.drivers[n] = Driver(core, self.storage[n], self, self.applied[n])

    def crash(self, n: str) -> None:
        """Lose everything not persisted: the core and whatever it had in memory."""
        self.down.add(n)
        self.pool = [m for m in self.pool if m.to != n]

    def send(self, msg: Message) -> None:
        self.pool.append(msg)

    def process(self) -> None:
        for n in self.names:
            if n not in self.down:
                self.drivers[n].process()

    def deliver(self, match: Callable[[Message], bool] = lambda m: True) -> int:
        """Deliver pooled messages that ``match`` (dropping cut links); returns count."""
        todo = [m for m in self.pool if match(m)]
        self.pool = [m for m in self.pool if not match(m)]
        for m in todo:
            if m.to in self.down or (m.frm, m.to) in self.cut:
                continue
            self.cores[m.to].step(m)
        self.process()
        return len(todo)

    def settle(self, rounds: int = 50) -> None:
        self.process()
        for _ in range(rounds):
            if not self.deliver():
                return

    def tick(self, n: str | None = None, times: int = 1) -> None:
        for _ in range(times):
            for name in [n] if n else self.names:
                if name not in self.down:
                    self.cores[name].tick()
            self.process()

    def run(self, ticks: int) -> None:
        for _ in range(ticks):
            self.tick()
            self.settle()

    def elect(self, n: str) -> None:
        """Make ``n`` time out first and win."""
        core = self.cores[n]
        for _ in range(3 * self.cfg.election_timeout_ticks):
            if core.role is Role.LEADER:
                break
            core.tick()
            self.process()
            self.settle()
        assert core.role is Role.LEADER, f"{n} did not win: {core.status()}"

    def isolate(self, n: str) -> None:
        for m in self.names:
            if m != n:
                self.cut |= {(n, m), (m, n)}

    def heal(self) -> None:
        self.cut = set()

    def leader(self) -> str | None:
        leaders = [
            n for n in self.names if n not in self.down and self.cores[n].role is Role.LEADER
        ]
        return max(leaders, key=lambda n: self.cores[n].term) if leaders else None
