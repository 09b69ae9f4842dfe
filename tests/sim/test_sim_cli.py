"""``python -m node.sim``: the exit status and what it prints (issue 5, item 3)."""

from __future__ import annotations

import pytest

from node.sim.__main__ import main
from node.sim.runner import parse_seeds


def test_seed_ranges_are_inclusive() -> None:
    assert parse_seeds("0..999") == range(0, 1000)
    assert parse_seeds("5") == range(5, 6)
    with pytest.raises(ValueError):
        parse_seeds("9..3")


def test_a_clean_run_exits_zero_with_a_summary(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["--protocol", "raft", "--seeds", "0..2", "--nodes", "3", "--ticks", "600"]) == 0
    out = capsys.readouterr().out
    assert "3 seeds, 0 failed" in out
    assert "entries/s" in out


def test_a_violation_exits_nonzero_with_trace_and_seed(capsys: pytest.CaptureFixture[str]) -> None:
    code = main(["--seeds", "0..3", "--core", "planted_bugs:NoQuorumRaft"])
    out = capsys.readouterr().out
    assert code == 1
    assert "VIOLATION" in out
    assert "reproduce with --seed" in out
    assert "last " in out and " events:" in out
    assert "t=" in out  # The readable trace.
