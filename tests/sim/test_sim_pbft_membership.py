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
