"""What can go wrong in a simulated run: the per-seed fault profile, and the crash a
failpoint raises."""

from __future__ import annotations

import random
from dataclasses import dataclass

from node.sim.network import LinkFaults


@dataclass(frozen=True)
class FaultProfile:
    """How hostile this seed's world is, drawn once per seed so that seeds span calm
    to brutal runs instead of averaging into one medium."""

    link: LinkFaults
    crash_rate: float
    partition_rate: float
    pause_rate: float
    slow_rate: float
    transfer_rate: float
    membership: bool
    #: Crashed nodes come back within a few ticks (a supervisor restarting them).
    quick_restart: bool = False
    #: Leaders other than the newest also get client writes (clients with stale views).
    stale_clients: bool = False
    pre_vote: bool = True
    check_quorum: bool = True

    @staticmethod
    def draw(rng: random.Random) -> FaultProfile:
        link = LinkFaults(
            loss=rng.choice([0.0, 0.0, 0.01, 0.05, 0.2]),
            duplicate=rng.choice([0.0, 0.01, 0.05]),
            reorder=rng.choice([0.0, 0.01, 0.1]),
            delay_min_ticks=1,
            delay_max_ticks=rng.choice([1, 2, 3, 6]),
            late=rng.choice([0.0, 0.0, 0.001, 0.01]),
        )
        return FaultProfile(
            link=link,
            crash_rate=rng.choice([0.0, 0.005, 0.02, 0.05]),
            partition_rate=rng.choice([0.0, 0.005, 0.02]),
            pause_rate=rng.choice([0.0, 0.0, 0.005]),
            slow_rate=rng.choice([0.0, 0.0, 0.005]),
            transfer_rate=rng.choice([0.0, 0.0, 0.01]),
            membership=rng.random() < 0.5,
            quick_restart=rng.random() < 0.3,
            stale_clients=rng.random() < 0.5,
            pre_vote=rng.random() < 0.75,
            check_quorum=rng.random() < 0.75,
        )

    @staticmethod
    def calm() -> FaultProfile:
        return FaultProfile(LinkFaults(), 0.0, 0.0, 0.0, 0.0, 0.0, False)


class NodeCrash(Exception):
    """Raised from a failpoint: the process dies here. ``quick``: its supervisor
    restarts it on the next tick, the case where a lost vote would be reused."""

    def __init__(self, where: str, quick: bool = False) -> None:
        super().__init__(where)
        self.quick = quick
