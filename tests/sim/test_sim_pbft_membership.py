"""The PBFT simulator with the replica set changing mid-run (``--membership``): a fifth
correct replica is added by a request, then a correct one of the first four removed,
under the usual faults and one Byzantine replica; the checker finds nothing, and every
run ends with the new set ordering (the added replica votes, the removed one does not)."""

from __future__ import annotations

import pytest

from node.sim.options import PbftSimOptions
from node.sim.pbft_world import PbftSimulation


@pytest.mark.parametrize("seed", [0, 1, 2, 3])
def test_the_set_changes_twice_under_faults(seed: int) -> None:
    sim = PbftSimulation(seed, PbftSimOptions(membership=True))
    result = sim.run()
    assert result.ok, result.violation
    removed = sim.removed
    assert removed is not None and removed in sim.correct
    for name in sim.correct:
        core = sim.nodes[name].core
        assert core.members.n == 4, name
        assert core.is_member == (name != removed), name
    assert sim.nodes["n5"].core.is_member


def test_a_replica_behind_across_a_set_change_catches_up() -> None:
    """Seed 164 of ``--membership --byzantine 1``: the added n5 falls behind (executed
    150) across the removal of n2 and must still catch up with the others: it learns the
    epoch of the 4-replica set from the epoch proof the others send it (the 5-replica
    set's certificate of the checkpoint before it, docs/architecture.md §9), then judges
    their checkpoint and NEW-VIEW by it."""
    sim = PbftSimulation(164, PbftSimOptions(byzantine=1, membership=True))
    result = sim.run()
    assert result.ok, result.violation
