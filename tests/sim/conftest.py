"""Prints this run's fresh simulator seeds at the end, so any failure reproduces."""

from __future__ import annotations

import pytest
from sim_seeds import FRESH_5_NODE_SEEDS, FRESH_BASE, FRESH_SEEDS


def pytest_terminal_summary(terminalreporter: pytest.TerminalReporter) -> None:
    last = FRESH_BASE + FRESH_SEEDS - 1
    terminalreporter.write_line(
        f"raft sim fresh seeds: {FRESH_BASE}..{last} (3 nodes), "
        f"{FRESH_BASE}..{FRESH_BASE + FRESH_5_NODE_SEEDS - 1} (5 nodes); "
        f"rerun with GRANTCHAIN_SIM_SEED_BASE={FRESH_BASE}"
    )
    terminalreporter.write_line(
        f"pbft sim fresh seeds: {FRESH_BASE}..{FRESH_BASE + 1} (4 replicas, 1 Byzantine)"
    )
