"""The shared consensus interface (docs/architecture.md §4) and the driver that executes it."""

from __future__ import annotations

import dataclasses
import random

import pytest
from raft_harness import CFG

from consensus import types
from consensus.raft import Raft
from consensus.storage import MemoryRaftStorage
from consensus.types import (
    ConfChange,
    ConfOp,
    ConsensusCore,
    Entry,
    HardState,
    Message,
    Ready,
    Role,
    Snapshot,
)
from node.consensus_driver.driver import Driver

MESSAGE_TYPES = [
    types.RequestVote,
    types.RequestVoteResponse,
    types.AppendEntries,
    types.AppendEntriesResponse,
    types.Heartbeat,
    types.HeartbeatResponse,
    types.InstallSnapshot,
    types.TimeoutNow,
]


@pytest.mark.parametrize(
    "cls",
    [*MESSAGE_TYPES, Entry, HardState, Ready, ConfChange, Snapshot, types.SnapshotMeta],
)
def test_messages_and_events_are_frozen_slotted_dataclasses(cls: type) -> None:
    assert dataclasses.is_dataclass(cls)
    assert cls.__dataclass_params__.frozen  # type: ignore[attr-defined]
    assert "__slots__" in cls.__dict__


def test_every_message_names_sender_receiver_and_term() -> None:
    for cls in MESSAGE_TYPES:
        names = [f.name for f in dataclasses.fields(cls)]
        assert names[:3] == ["frm", "to", "term"], cls


def test_raft_is_a_consensus_core() -> None:
    core: ConsensusCore = Raft("a", MemoryRaftStorage(["a"]), random.Random(1), CFG)
    assert core.status().role is Role.FOLLOWER
    assert {r.value for r in Role} == {"leader", "follower", "candidate", "pre_candidate"}


def test_entry_digest_is_derived_from_the_data() -> None:
    import hashlib

    e = Entry(1, 1, b"block bytes")
    assert e.digest == hashlib.sha256(b"block bytes").digest()
    assert len(e.digest) == 32


def test_conf_change_round_trips() -> None:
    cc = ConfChange(ConfOp.ADD, "d", ("a", "b", "c", "d"))
    assert ConfChange.decode(cc.encode()) == cc


def test_the_core_is_deterministic_given_its_rng() -> None:
    def run() -> list[Message]:
        core = Raft("a", MemoryRaftStorage(["a", "b", "c"]), random.Random(42), CFG)
        out: list[Message] = []
        for _ in range(100):
            core.tick()
            rd = core.ready()
            out += rd.messages
            core.advance(rd)
        return out

    assert run() == run()


class _Recorder:
    """Storage, transport and applier in one, logging the order of effects."""

    def __init__(self, voters: list[str]) -> None:
        self.store = MemoryRaftStorage(voters)
        self.log: list[str] = []

    def hard_state(self) -> HardState:
        return self.store.hard_state()

    def snapshot(self) -> Snapshot:
        return self.store.snapshot()

    def entries(self) -> list[Entry]:
        return self.store.entries()

    def save(self, hs, entries, snap) -> None:  # type: ignore[no-untyped-def]
        self.log.append("persist")
        self.store.save(hs, entries, snap)

    def compact(self, snap: Snapshot) -> None:
        self.store.compact(snap)

    def send(self, msg: Message) -> None:
        self.log.append("send")

    def apply(self, entry: Entry) -> None:
        self.log.append("apply")

    def restore(self, snap: Snapshot) -> None:
        self.log.append("restore")


def test_driver_executes_persist_send_apply_advance_in_order() -> None:
    rec = _Recorder(["a", "b", "c"])
    core = Raft("a", rec, random.Random(1), CFG)
    drv = Driver(core, rec, rec, rec, failpoint=lambda name: rec.log.append(name))
    core.step(types.AppendEntries("b", "a", 1, 0, 0, (Entry(1, 1, b"x"),), 1))
    assert drv.process() == 1
    assert rec.log == [
        "before_persist",
        "persist",
        "after_persist",
        "send",
        "after_send",
        "apply",
        "after_apply",
    ]
    assert core.log.applied == 1 and not core.has_ready()


def test_a_crash_at_a_failpoint_leaves_only_what_was_persisted() -> None:
    rec = _Recorder(["a", "b", "c"])
    core = Raft("a", rec, random.Random(1), CFG)

    class Crash(Exception):
        pass

    def failpoint(name: str) -> None:
        if name == "after_persist":
            raise Crash

    drv = Driver(core, rec, rec, rec, failpoint=failpoint)
    core.step(types.RequestVote("b", "a", 5, 0, 0))
    with pytest.raises(Crash):
        drv.process()
    assert "send" not in rec.log  # The vote never left...
    assert rec.store.hard_state() == HardState(5, "b", 0)  # ...but it is durable.
    again = Raft("a", rec, random.Random(2), CFG)
    assert (again.term, again.vote) == (5, "b")
