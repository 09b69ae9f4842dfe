"""The checkers can fail (issue 5, item 4): each planted bug is flagged by the
simulator on some seed of a fixed range, with the property it breaks. The scan stops
at the first seed that flags it; the seed is printed (run with ``-s`` to see it)."""

from __future__ import annotations

import pytest
from planted_bugs import (
    DoubleVoteRaft,
    ForgetVoteRaft,
    NeverCampaignRaft,
    NoConsistencyCheckRaft,
    NoQuorumRaft,
    StaleTermAppendRaft,
    factory,
)

from consensus.raft import Raft
from node.sim.checker import (
    CORE_INVARIANT,
    DURABILITY,
    ELECTION_SAFETY,
    LEADER_COMPLETENESS,
    LOG_MATCHING,
    PERSIST_BEFORE_SEND,
    PROGRESS,
    STATE_MACHINE_SAFETY,
)
from node.sim.options import SimOptions
from node.sim.runner import describe_failure
from node.sim.world import run_seed

SAFETY = {
    ELECTION_SAFETY,
    LOG_MATCHING,
    LEADER_COMPLETENESS,
    STATE_MACHINE_SAFETY,
    DURABILITY,
    CORE_INVARIANT,
    PERSIST_BEFORE_SEND,
}


@pytest.mark.parametrize(
    ("bug", "seeds", "expected", "persist_check"),
    [
        # The three the issue names.
        (NoQuorumRaft, range(0, 50), SAFETY, True),
        (ForgetVoteRaft, range(0, 50), {PERSIST_BEFORE_SEND}, True),
        (StaleTermAppendRaft, range(0, 300), SAFETY, True),
        # Negative controls for the checkers the three do not reach first.
        (DoubleVoteRaft, range(0, 300), {ELECTION_SAFETY}, False),
        (NoConsistencyCheckRaft, range(0, 300), {LOG_MATCHING, STATE_MACHINE_SAFETY}, True),
        (NeverCampaignRaft, range(0, 5), {PROGRESS}, True),
    ],
    ids=[
        "commit-without-quorum",
        "forget-to-persist-vote",
        "accept-stale-term-append",
        "vote-twice-per-term",
        "skip-consistency-check",
        "never-campaign",
    ],
)
def test_the_simulator_flags_a_planted_bug(
    bug: type[Raft], seeds: range, expected: set[str], persist_check: bool
) -> None:
    opts = SimOptions(core=factory(bug), check_persist_before_send=persist_check)
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
    for seed in (0, 2, 29):
        assert run_seed(seed).ok
