"""One simulated PBFT replica: the real ``Pbft`` core, the real ``Driver`` (extended
with the one effect PBFT adds, serving state transfer), in-memory durable storage, a
volatile state machine, and a transport that the Byzantine adversary sits in for
faulty replicas.

The driver is the node's own ``PbftDriver``: the generic ``Driver`` (persist -> send
-> apply -> advance) plus PBFT's two extra effects, decisions reported to the checker
and state-transfer requests answered from the store, after the sends (a replica's own
commit counts in its certificate, and the checker knows it once it has left).
"""

from __future__ import annotations

import hashlib
from collections import deque
from collections.abc import Callable, Sequence
from typing import Protocol

from chain import signing
from consensus.pbft import Pbft
from consensus.pbft_config import PbftConfig
from consensus.pbft_messages import Envelope
from consensus.pbft_signing import Ed25519Signer, Verifier
from consensus.pbft_storage import MemoryPbftStorage, PbftHardState, PbftRecord
from consensus.types import Entry, EntryKind, Snapshot
from node.consensus_driver.driver import PbftDriver
from node.sim.byzantine import Adversary
from node.sim.checker import Violation
from node.sim.faults import NodeCrash
from node.sim.network import SimNetwork
from node.sim.options import PbftSimOptions
from node.sim.pbft_checker import AGREEMENT, PbftChecker


class PbftHost(Protocol):
    """What a simulated replica needs of the run (``pbft_world.PbftSimulation``)."""

    seed: int
    now: int
    order: list[str]
    opts: PbftSimOptions
    checker: PbftChecker
    net: SimNetwork[Envelope]
    adversary: Adversary
    verifier: Verifier

    def config_for(self, node: str) -> PbftConfig: ...

    def trace_event(self, what: object) -> None: ...


_ZERO_ROOT = bytes(32)


def replica_key(seed: int, node_id: str) -> signing.PrivateKey:
    """Deterministic per seed and replica, so a seed replays byte for byte."""
    return signing.private_key_from_bytes(
        hashlib.sha256(f"pbft/{seed}/{node_id}".encode()).digest()
    )


SET_PREFIX = b"set:"
"""A request ``set:n1,n2,...`` changes the replica set when it executes (``--membership``:
the application's governance, in the simulator)."""


def _set_request(data: bytes, known: frozenset[str]) -> list[str] | None:
    """The replica set a ``set:`` request names, if it is one the application accepts:
    distinct known replicas (a request a faulty primary altered is an ordinary one)."""
    if not data.startswith(SET_PREFIX):
        return None
    try:
        names = data[len(SET_PREFIX) :].decode().split(",")
    except UnicodeDecodeError:
        return None
    if not names or len(set(names)) != len(names) or not set(names) <= known:
        return None
    return names


class PbftStateMachine:
    """A hash chain over delivered payloads; volatile, like the Raft simulator's.
    ``on_entry`` sees each entry once applied (the replica reports it to its core)."""

    def __init__(
        self, node_id: str, checker: PbftChecker, on_entry: Callable[[Entry], None]
    ) -> None:
        self.node_id = node_id
        self.checker = checker
        self.index = 0
        self.root = _ZERO_ROOT
        self._on_entry = on_entry

    def apply(self, entry: Entry) -> None:
        if entry.index != self.index + 1:
            raise Violation(
                AGREEMENT, f"{self.node_id} delivered seq {entry.index} after {self.index}"
            )
        self.index = entry.index
        if entry.kind is EntryKind.NORMAL:
            self.root = hashlib.sha256(self.root + entry.data).digest()
        self.checker.on_apply(self.node_id, entry, self.root)
        self._on_entry(entry)

    def restore(self, snapshot: Snapshot) -> None:
        self.index, self.root = snapshot.meta.index, _ZERO_ROOT


class SimPbftStorage(MemoryPbftStorage):
    """Reports what a replica persists to the checker."""

    def __init__(self, node_id: str, replicas: list[str], checker: PbftChecker) -> None:
        super().__init__(replicas)
        self._node_id = node_id
        self._checker = checker

    def save(
        self,
        hard_state: PbftHardState | None,
        entries: Sequence[PbftRecord],
        snapshot: Snapshot | None,
    ) -> None:
        super().save(hard_state, entries, snapshot)
        self._checker.on_persist(self._node_id, entries)


class PbftSimTransport:
    def __init__(self, node: SimPbftNode) -> None:
        self._node = node

    def send(self, env: Envelope) -> None:
        node = self._node
        sim = node.sim
        sim.checker.on_send(node.id, env)
        out = [env]
        if sim.adversary.controls(node.id):
            out = sim.adversary.outgoing(node.id, env)
        for m in out:
            sim.net.send(m, sim.now)

    def send_raw(self, env: Envelope) -> None:
        """What the adversary injects in a faulty replica's name."""
        sim = self._node.sim
        sim.net.send(env, sim.now)


class SimPbftNode:
    def __init__(self, sim: PbftHost, node_id: str, replicas: list[str]) -> None:
        self.sim = sim
        self.id = node_id
        self.replicas = replicas
        #: The epochs its core returned (durable, like the node's ``pbft-epochs.json``).
        self.epochs: list[tuple[int, list[str]]] = []
        self.storage = SimPbftStorage(node_id, replicas, sim.checker)
        self.up = False
        self.incarnation = 0
        self.core: Pbft
        self.driver: PbftDriver
        self.sm: PbftStateMachine
        self.inbox: deque[Envelope] = deque()
        self.paused_until = 0
        self.crash_countdown = 0
        self.restart_at = 0
        self.transport = PbftSimTransport(self)
        self.signer = Ed25519Signer(replica_key(sim.seed, node_id))

    def start(self) -> None:
        self.incarnation += 1
        sim = self.sim
        sim.checker.on_restart(self.id, self.storage)
        self.sm = PbftStateMachine(self.id, sim.checker, self._note)
        snap = self.storage.snapshot()
        self.sm.restore(snap)
        self.core = self.make_core(sim.config_for(self.id), sim.verifier, snap.meta.index)
        for start, names in self.epochs:
            self.core.restore_epoch(start, names, sim.verifier, keys=self._keys(names))
        self.driver = PbftDriver(
            self.core,
            self.storage,
            self.transport,
            self.sm,
            self._failpoint,
            on_decision=lambda d: sim.checker.on_decision(self.id, d),
        )
        self.up = True
        self.crash_countdown = 0
        self.inbox.clear()

    def make_core(self, cfg: PbftConfig, verifier: Verifier, applied: int) -> Pbft:
        if self.sim.opts.membership:
            return Pbft(
                self.id,
                self.replicas,
                self.storage,
                self.signer,
                verifier,
                cfg,
                applied,
                follow_membership=True,
                keys=self._keys(self.replicas),
            )
        return self.sim.opts.core(
            self.id, self.replicas, self.storage, self.signer, verifier, cfg, applied
        )

    def _note(self, entry: Entry) -> None:
        if not self.sim.opts.membership:
            return
        names = _set_request(entry.data, frozenset(self.sim.order))
        if names is None:
            self.core.note_executed(entry.index)
            return
        start = self.core.note_executed(
            entry.index, names, self.sim.verifier, keys=self._keys(names)
        )
        if start is not None:
            self.epochs = [(s, n) for s, n in self.epochs if s < start] + [(start, names)]
            self.sim.trace_event(f"{self.id} SET {names} from {start}")

    def _keys(self, names: Sequence[str]) -> list[bytes]:
        """The public keys of ``names``: each epoch's digest covers them (``Pbft``)."""
        return [signing.public_key_bytes(replica_key(self.sim.seed, n)) for n in names]

    def crash(self, why: str) -> None:
        self.up = False
        self.crash_countdown = 0
        self.inbox.clear()
        self.sim.checker.applied_before[self.id] = self.sm.index
        self.sim.trace_event(f"{self.id} CRASH ({why})")

    def _failpoint(self, name: str) -> None:
        if self.crash_countdown:
            self.crash_countdown -= 1
            if self.crash_countdown == 0:
                raise NodeCrash(name)

    def active(self, now: int) -> bool:
        return self.up and now >= self.paused_until

    def process(self) -> None:
        try:
            self.driver.process()
        except NodeCrash as e:
            self.crash(f"at failpoint {e}")
