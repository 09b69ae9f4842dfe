"""Log compaction and InstallSnapshot: Raft §7 (thesis chapter 5)."""

from __future__ import annotations

import random

import pytest
from raft_harness import CFG, Cluster

from consensus.raft import Raft
from consensus.storage import MemoryRaftStorage
from consensus.types import (
    Entry,
    HardState,
    InstallSnapshot,
    InvariantViolation,
    Snapshot,
    SnapshotMeta,
)
from node.consensus_driver.driver import Driver


def _fill(c: Cluster, leader: str, n: int, tag: str) -> None:
    for i in range(n):
        assert c.cores[leader].propose(f"{tag}{i}".encode())
    c.settle()


def _compact(c: Cluster, n: str) -> Snapshot:
    applied = c.cores[n].log.applied
    return c.drivers[n].compact(applied, f"state@{applied}".encode())


def test_compaction_drops_the_prefix_and_keeps_the_tail() -> None:
    # Raft §7: each server snapshots its committed state independently.
    c = Cluster()
    c.elect("a")
    _fill(c, "a", 10, "x")
    snap = _compact(c, "a")
    assert snap.meta.index == 11 and snap.meta.term == 1
    assert snap.meta.voters == ("a", "b", "c")
    assert c.storage["a"].snapshot() == snap
    assert c.storage["a"].entries() == []
    _fill(c, "a", 2, "y")
    assert [e.index for e in c.storage["a"].entries()] == [12, 13]


def test_cannot_compact_beyond_what_is_applied() -> None:
    c = Cluster()
    c.elect("a")
    with pytest.raises(InvariantViolation):
        c.drivers["a"].compact(c.cores["a"].log.applied + 1, b"")


def test_a_far_behind_follower_receives_the_snapshot() -> None:
    # Raft §7: "the leader must occasionally send snapshots to followers that lag
    # behind", when the entries it needs are already discarded.
    c = Cluster()
    c.elect("a")
    c.crash("c")
    _fill(c, "a", 10, "x")
    _compact(c, "a")
    _fill(c, "a", 3, "y")
    c.start("c")
    sent: list[InstallSnapshot] = []
    real = c.send

    def spy(msg):  # type: ignore[no-untyped-def]
        if isinstance(msg, InstallSnapshot):
            sent.append(msg)
        real(msg)

    c.send = spy  # type: ignore[method-assign]
    c.run(5)
    assert len(sent) == 1 and sent[0].to == "c"
    assert c.applied["c"].snapshots[-1].data == b"state@11"
    assert c.applied["c"].data() == [b"y0", b"y1", b"y2"]  # The tail after the snapshot.
    assert c.storage["c"].snapshot().meta.index == 11
    assert c.cores["c"].log.commit == c.cores["a"].log.commit


def test_a_snapshot_that_agrees_with_the_log_keeps_the_tail() -> None:
    # Raft §7: "If the follower receives a snapshot that describes a prefix of its
    # log, log entries covered by the snapshot are deleted but entries following the
    # snapshot are still valid and must be retained."
    storage = MemoryRaftStorage(["a", "b"])
    entries = [Entry(i, 1, b"e%d" % i) for i in range(1, 6)]
    storage.save(HardState(1, None, 1), entries, None)
    core = Raft("b", storage, random.Random(1), CFG)
    snap = Snapshot(SnapshotMeta(3, 1, ("a", "b")), b"s3")
    core.step(InstallSnapshot("a", "b", 1, snap))
    assert core.log.commit == 3
    assert core.log.last_index == 5  # Fast-forwarded; nothing discarded.


def test_a_snapshot_that_disagrees_replaces_the_log() -> None:
    storage = MemoryRaftStorage(["a", "b"])
    storage.save(HardState(1, None, 0), [Entry(1, 1, b"e1"), Entry(2, 1, b"e2")], None)
    core = Raft("b", storage, random.Random(1), CFG)
    applied: list[Snapshot] = []

    class App:
        def apply(self, entry: Entry) -> None:
            raise AssertionError("nothing to apply beyond the snapshot")

        def restore(self, s: Snapshot) -> None:
            applied.append(s)

    drv = Driver(core, storage, _Null(), App())
    snap = Snapshot(SnapshotMeta(4, 2, ("a", "b")), b"s4")
    core.step(InstallSnapshot("a", "b", 2, snap))
    drv.process()
    assert applied == [snap]
    assert storage.snapshot() == snap and storage.entries() == []
    assert core.log.last_index == 4 and core.log.commit == 4


def test_restart_from_snapshot_and_tail() -> None:
    # Raft §7 + §5.1: a restarted server rebuilds from its snapshot and log.
    c = Cluster()
    c.elect("a")
    _fill(c, "a", 5, "x")
    _compact(c, "b")
    _fill(c, "a", 2, "y")
    c.crash("b")
    c.start("b")
    core = c.cores["b"]
    assert core.log.snapshot.meta.index == 6
    assert core.log.last_index == 8
    assert core.log.applied == 6  # Entries after the snapshot are re-delivered.
    c.run(3)
    assert c.applied["b"].data()[-2:] == [b"y0", b"y1"]


class _Null:
    def send(self, msg: object) -> None:
        pass


def test_an_application_that_persists_its_applied_index_is_not_re_fed() -> None:
    # The real node applies a block and its index in one LMDB transaction; passing
    # ``applied`` on restart keeps the core from delivering those entries again.
    c = Cluster()
    c.elect("a")
    _fill(c, "a", 4, "x")
    c.crash("b")
    storage = c.storage["b"]
    core = Raft("b", storage, random.Random(3), CFG, applied=storage.hard_state().commit)
    assert core.ready().committed == ()
