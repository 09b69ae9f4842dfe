"""What a simulation run is made of: ``SimOptions`` (Raft) or ``PbftSimOptions`` and the
consensus core it runs."""

from __future__ import annotations

import random
from collections.abc import Callable
from dataclasses import dataclass, field

from consensus.config import RaftConfig
from consensus.pbft import Pbft
from consensus.pbft_config import PbftConfig
from consensus.pbft_signing import Signer, Verifier
from consensus.pbft_storage import MemoryPbftStorage
from consensus.raft import Raft
from consensus.storage import MemoryRaftStorage

CoreFactory = Callable[[str, MemoryRaftStorage, random.Random, RaftConfig], Raft]


def default_core(
    node_id: str, storage: MemoryRaftStorage, rng: random.Random, cfg: RaftConfig
) -> Raft:
    return Raft(node_id, storage, rng, cfg)


@dataclass(frozen=True)
class SimOptions:
    nodes: int = 3
    ticks: int = 1000
    proposals_per_tick: int = 10
    #: Faults stop this long before the end; by then the cluster must have a leader,
    #: have committed new entries and have every voter caught up (fault model #10).
    heal_bound_ticks: int = 200
    #: No new proposals in the final ticks, so "caught up" has a fixed target.
    drain_ticks: int = 60
    compact_every_entries: int = 300
    trace_len: int = 80
    faults: bool = True
    #: Check at every send that votes and acknowledged entries are already durable
    #: (off only to show the end-to-end checkers catch the same bugs without it).
    check_persist_before_send: bool = True
    #: Base Raft settings; each seed's profile may turn pre-vote or check-quorum off.
    raft: RaftConfig = field(default_factory=RaftConfig)
    core: CoreFactory = default_core


PbftCoreFactory = Callable[
    [str, list[str], MemoryPbftStorage, Signer, Verifier, PbftConfig, int], Pbft
]


def default_pbft_core(
    node_id: str,
    replicas: list[str],
    storage: MemoryPbftStorage,
    signer: Signer,
    verifier: Verifier,
    cfg: PbftConfig,
    applied: int,
) -> Pbft:
    return Pbft(node_id, replicas, storage, signer, verifier, cfg, applied)


@dataclass(frozen=True)
class PbftSimOptions:
    """A PBFT run: ``nodes`` replicas of which ``byzantine`` are faulty (the first
    ``byzantine`` of a seed-shuffled order). ``byzantine`` may exceed f = (n-1)//3, to
    show the checker then finds a violation."""

    nodes: int = 4
    byzantine: int = 1
    ticks: int = 600
    proposals_per_tick: int = 1
    heal_bound_ticks: int = 250
    drain_ticks: int = 120
    trace_len: int = 60
    faults: bool = True
    #: Byzantine behaviours to draw from (all when empty); see ``node.sim.byzantine``.
    behaviours: tuple[str, ...] = ()
    #: The replica set changes during the run (``Pbft.note_executed``): one more correct
    #: replica, outside the starting set, is added by a request, then a correct one of
    #: the starting set is removed (``pbft_world``).
    membership: bool = False
    pbft: PbftConfig = field(
        default_factory=lambda: PbftConfig(
            checkpoint_interval=8,
            log_window=32,
            view_change_timeout_ticks=20,
            catch_up_batch=8,
        )
    )
    core: PbftCoreFactory = default_pbft_core
