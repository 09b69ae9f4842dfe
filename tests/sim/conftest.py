"""Fresh simulator seeds for this run, printed at the end so any failure reproduces.

The base comes from ``GRANTCHAIN_SIM_SEED_BASE`` if set, else from the OS's random
source; the run covers ``FRESH_SEEDS`` consecutive seeds from there.
"""

from __future__ import annotations

import os
import random

import pytest

FRESH_SEEDS = 200
FRESH_BASE = int(
    os.environ.get("GRANTCHAIN_SIM_SEED_BASE") or random.SystemRandom().randrange(10**6, 10**9)
)
FRESH_5_NODE_SEEDS = 20


def fresh_seeds() -> range:
    return range(FRESH_BASE, FRESH_BASE + FRESH_SEEDS)


def pytest_terminal_summary(terminalreporter: pytest.TerminalReporter) -> None:
    last = FRESH_BASE + FRESH_SEEDS - 1
    terminalreporter.write_line(
        f"raft sim fresh seeds: {FRESH_BASE}..{last} (3 nodes), "
        f"{FRESH_BASE}..{FRESH_BASE + FRESH_5_NODE_SEEDS - 1} (5 nodes); "
        f"rerun with GRANTCHAIN_SIM_SEED_BASE={FRESH_BASE}"
    )
