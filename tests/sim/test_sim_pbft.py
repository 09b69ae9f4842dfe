"""The PBFT simulator (issue 14, item 4): clean with f Byzantine replicas, a violation
with f+1, and every planted bug flagged (Castro-Liskov TOCS 2002 §4.1 safety and
liveness under at most f faulty replicas).

Each test's runs are a few seeds of 600 ticks (about a second of CPU each)."""

from __future__ import annotations

import dataclasses

import pytest
from sim_seeds import FRESH_BASE

from consensus.pbft_config import PbftBugs
from node.sim.__main__ import main
from node.sim.byzantine import BEHAVIOURS
from node.sim.checker import CORE_INVARIANT
from node.sim.options import PbftSimOptions
from node.sim.pbft_checker import AGREEMENT, BAD_CERTIFICATE, EQUIVOCATION
from node.sim.pbft_world import run_pbft_seed
from node.sim.runner import describe_failure

SAFETY = {AGREEMENT, BAD_CERTIFICATE, EQUIVOCATION, CORE_INVARIANT}


def _opts(**changes: object) -> PbftSimOptions:
    return dataclasses.replace(PbftSimOptions(), **changes)  # type: ignore[arg-type]


@pytest.mark.parametrize("seed", [0, 1, 2, 3, FRESH_BASE, FRESH_BASE + 1])
def test_one_byzantine_replica_of_four_is_tolerated(seed: int) -> None:
    """CL §4.1: n = 3f+1 stays safe and live with f faulty replicas."""
    r = run_pbft_seed(seed, _opts(byzantine=1))
    assert r.ok, describe_failure(r)
    assert r.committed > 100


@pytest.mark.parametrize("behaviour", BEHAVIOURS)
def test_each_byzantine_behaviour_alone_is_tolerated(behaviour: str) -> None:
    r = run_pbft_seed(7, _opts(byzantine=1, behaviours=(behaviour,)))
    assert r.ok, describe_failure(r)


def test_seven_replicas_tolerate_two() -> None:
    r = run_pbft_seed(0, _opts(nodes=7, byzantine=2, ticks=400, heal_bound_ticks=250))
    assert r.ok, describe_failure(r)


def test_f_plus_1_byzantine_replicas_break_agreement_on_some_seed() -> None:
    """CL §4.1: the bound is tight; with f+1 colluding replicas the checker must find
    two different entries at one sequence number."""
    for seed in range(0, 12):
        r = run_pbft_seed(seed, _opts(byzantine=2, behaviours=("equivocate",)))
        if not r.ok:
            assert r.violation is not None and r.violation.startswith(AGREEMENT)
            assert f"reproduce with --seed {seed}" in describe_failure(r)
            return
    pytest.fail("two Byzantine replicas of four never broke agreement on seeds 0..11")


@pytest.mark.parametrize(
    ("bug", "seeds", "expected"),
    [
        # CL §4.2: 2f commits are not a certificate.
        ("commit_quorum_2f", range(0, 3), {BAD_CERTIFICATE, AGREEMENT}),
        # CL §4.2/§4.4: an old view's commit replayed as the current view's.
        ("unsigned_view", range(0, 8), {BAD_CERTIFICATE, AGREEMENT}),
        # CL §4.4: O must carry prepared requests into the new view.
        ("ignore_prepared_certs", range(0, 8), SAFETY),
        # CL §5.3: the state transfer delivers what the protocol already delivered.
        ("double_delivery", range(0, 10), {AGREEMENT}),
        # CL §4.6: a replica restarted with empty state votes again.
        ("forget_votes", range(0, 8), {EQUIVOCATION, AGREEMENT}),
    ],
)
def test_the_simulator_flags_a_planted_bug(bug: str, seeds: range, expected: set[str]) -> None:
    cfg = dataclasses.replace(PbftSimOptions().pbft, bugs=PbftBugs(**{bug: True}))
    for seed in seeds:
        r = run_pbft_seed(seed, _opts(byzantine=1, pbft=cfg))
        if r.ok:
            continue
        assert r.violation is not None
        prop = r.violation.split(":")[0]
        if prop in expected:
            print(f"{bug}: seed {seed}: {r.violation}")
            return
    pytest.fail(f"{bug} was not flagged on seeds {seeds.start}..{seeds.stop - 1}")


def test_the_cli_runs_pbft_and_exits_nonzero_on_a_violation(
    capsys: pytest.CaptureFixture[str],
) -> None:
    assert main(["--protocol", "pbft", "--byzantine", "1", "--seeds", "0..1"]) == 0
    out = capsys.readouterr().out
    assert "2 seeds, 0 failed" in out and "1 Byzantine" in out
    code = main(
        ["--protocol", "pbft", "--byzantine", "1", "--seed", "0", "--bug", "commit_quorum_2f"]
    )
    out = capsys.readouterr().out
    assert code == 1
    assert "VIOLATION" in out and "reproduce with --seed 0" in out


def test_a_seed_replays_exactly() -> None:
    """Reproducibility: one seed, one run (no wall clock, no global random, no set
    order in anything that decides)."""
    a = run_pbft_seed(5, _opts(byzantine=1, ticks=350, heal_bound_ticks=250))
    b = run_pbft_seed(5, _opts(byzantine=1, ticks=350, heal_bound_ticks=250))
    assert (a.ok, a.committed, a.messages, a.violation) == (
        b.ok,
        b.committed,
        b.messages,
        b.violation,
    )
