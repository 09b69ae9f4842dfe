"""The checkers can fail (issue 5, item 4): each planted bug is flagged by the
simulator on some seed of a fixed range, with the property it breaks."""

from __future__ import annotations

import pytest
from planted_bugs import ForgetVoteRaft, NoQuorumRaft, StaleTermAppendRaft, factory

from consensus.raft import Raft
from node.sim.checker import (
    CORE_INVARIANT,
    DURABILITY,
    ELECTION_SAFETY,
    LEADER_COMPLETENESS,
    LOG_MATCHING,
    STATE_MACHINE_SAFETY,
)
from node.sim.runner import describe_failure
from node.sim.world import SimOptions, run_seed

SAFETY = {
    ELECTION_SAFETY,
    LOG_MATCHING,
    LEADER_COMPLETENESS,
    STATE_MACHINE_SAFETY,
    DURABILITY,
    CORE_INVARIANT,
}


@pytest.mark.parametrize(
    ("bug", "seeds", "expected"),
    [
        (NoQuorumRaft, range(0, 20), SAFETY),
        (ForgetVoteRaft, range(0, 100), {ELECTION_SAFETY}),
        (StaleTermAppendRaft, range(0, 60), SAFETY),
    ],
    ids=["commit-without-quorum", "forget-to-persist-vote", "accept-stale-term-append"],
)
def test_the_simulator_flags_a_planted_bug(
    bug: type[Raft], seeds: range, expected: set[str]
) -> None:
    opts = SimOptions(core=factory(bug))
    for seed in seeds:
        result = run_seed(seed, opts)
        if result.ok:
            continue
        assert result.violation is not None
        prop = result.violation.split(":")[0]
        if prop in expected:
            report = describe_failure(result)
            assert f"reproduce with --seed {seed}" in report
            print(f"{bug.__name__}: seed {seed}: {result.violation}")
            return
    pytest.fail(f"{bug.__name__} was not flagged on seeds {seeds.start}..{seeds.stop - 1}")


def test_the_correct_core_is_clean_on_the_same_seeds() -> None:
    # The negative control's control: the same seeds pass with the real core.
    for seed in (29, 35):
        assert run_seed(seed).ok
