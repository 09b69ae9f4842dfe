"""The one place that turns a core's ``Ready`` into effects, in the order that makes
crashes safe: persist -> send -> apply -> advance (docs/architecture.md §4).

Synchronous and IO-agnostic on purpose: the simulator calls it directly, and the
asyncio node calls it from its own loop with a storage that writes on the LMDB writer
thread and a transport that only enqueues. ``failpoint`` lets the simulator crash the
node between any two effects; production passes nothing.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Protocol

from consensus.storage import RaftStorage
from consensus.types import ConsensusCore, Entry, Message, Ready, Snapshot


class Transport(Protocol):
    def send(self, msg: Message) -> None:
        """Queue ``msg`` for ``msg.to``; best effort, never blocks on the peer."""
        ...


class Applier(Protocol):
    def apply(self, entry: Entry) -> None:
        """Apply one committed entry (every kind; appliers skip ``NOOP``)."""
        ...

    def restore(self, snapshot: Snapshot) -> None:
        """Replace the state machine with ``snapshot.data``."""
        ...


class Driver:
    """Executes one core's ``Ready``s. The storage is the same object the core was
    built from, so a restart sees exactly what was persisted."""

    def __init__(
        self,
        core: ConsensusCore,
        storage: RaftStorage,
        transport: Transport,
        applier: Applier,
        failpoint: Callable[[str], None] | None = None,
    ) -> None:
        self.core = core
        self.storage = storage
        self.transport = transport
        self.applier = applier
        self._failpoint = failpoint or _no_failpoint

    def process(self) -> int:
        """Execute every pending ``Ready``; returns how many there were."""
        n = 0
        while self.core.has_ready():
            self.execute(self.core.ready())
            n += 1
        return n

    def execute(self, rd: Ready) -> None:
        fp = self._failpoint
        fp("before_persist")
        if rd.hard_state is not None or rd.entries or rd.snapshot is not None:
            self.storage.save(rd.hard_state, rd.entries, rd.snapshot)
        fp("after_persist")
        for msg in rd.messages:
            self.transport.send(msg)
            fp("after_send")
        if rd.snapshot is not None:
            self.applier.restore(rd.snapshot)
        for entry in rd.committed:
            self.applier.apply(entry)
            fp("after_apply")
        self.core.advance(rd)

    def compact(self, index: int, data: bytes) -> Snapshot:
        """Take a snapshot at ``index`` (already applied; ``data`` is the state machine
        as of then): the core drops its log prefix, then the storage persists it. A
        crash in between leaves the old, longer log on disk, which is still valid."""
        snap = self.core.compact(index, data)
        self._failpoint("before_compact")
        self.storage.compact(snap)
        return snap


def _no_failpoint(_: str) -> None:
    return None
