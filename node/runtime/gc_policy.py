"""The garbage collector's settings for the node and the load generator: long-running,
allocation-heavy processes whose hot paths make no reference cycles.

CPython starts a young collection every 700 net container allocations, and promotes what
survives; at 15,000 txs/s the leader's survivors (decoded txs waiting in the mempool,
a block's write sets) kept filling the old generation, so full collections, each a walk
of the whole heap, ran every second or so. Measured in one 200,000-tx `bench e2e` run
(gc callbacks timing each collection): 4,045 young and 17 full collections on the
leader, 1.5 s of CPU, about 8 µs per committed tx, plus 2 µs on each follower; with
``GEN0_THRESHOLD`` at 50,000, 10-20 young collections and no full one, 0.05-0.2 s.

Refcounting still frees everything acyclic at once; cycles (asyncio internals, exception
tracebacks) are still collected, only after more allocations. ``freeze`` moves what
start-up built (modules, numba's compiled kernels) out of the collector's sight for good.
"""

from __future__ import annotations

import gc

GEN0_THRESHOLD = 50_000
"""Net container allocations between young collections (CPython's default: 700)."""
GEN1_THRESHOLD = 50
GEN2_THRESHOLD = 100


def tune() -> None:
    """Set this process's collection thresholds (call once, at start)."""
    gc.set_threshold(GEN0_THRESHOLD, GEN1_THRESHOLD, GEN2_THRESHOLD)


def freeze_startup() -> None:
    """Collect once, then exempt every object alive now from later collections (call
    once start-up is done: what it built lives as long as the process)."""
    gc.collect()
    gc.freeze()
