"""Which fresh seeds this test run covers: 200 consecutive seeds from a base taken from
``GRANTCHAIN_SIM_SEED_BASE`` if set, else from the OS's random source. ``conftest``
prints the range at the end of the run so any failure reproduces."""

from __future__ import annotations

import os
import random

FRESH_SEEDS = 200
FRESH_5_NODE_SEEDS = 20
FRESH_BASE = int(
    os.environ.get("GRANTCHAIN_SIM_SEED_BASE") or random.SystemRandom().randrange(10**6, 10**9)
)


def fresh_seeds() -> range:
    return range(FRESH_BASE, FRESH_BASE + FRESH_SEEDS)
