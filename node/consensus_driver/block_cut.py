"""Cutting the mempool into the next block: shared by the Raft leader's loop
(``loop.ConsensusLoop``) and the PBFT primary's (``pbft_loop.PbftConsensusLoop``).

A partial block waits out ``block_interval_s`` (``_cut_waiting`` tells the loop to wake
then); a full one goes at once. The txs a built block stored are removed from the
mempool; if no block could be built, the taken txs are released for the next one.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable

from chain.block import Block
from node.pipeline.ledger import Ledger
from node.pipeline.mempool import Mempool


class BlockCutting:
    """A mixin: the loops hold these attributes and call ``_cut_block``."""

    node_id: str
    ledger: Ledger
    mempool: Mempool
    mempool_lock: threading.Lock
    block_txs_max: int
    block_bytes_max: int
    block_interval_s: float
    _clock_ms: Callable[[], int]
    _next_cut: float
    _cut_waiting: bool

    def _cut_block(self, round: int) -> tuple[Block, float] | None:
        """The next block built from the mempool and the ``perf_counter`` time its build
        began; None if nothing is to be cut now."""
        with self.mempool_lock:
            pending = self.mempool.pending()
            if not pending:
                return None
            self._cut_waiting = pending < self.block_txs_max and time.monotonic() < self._next_cut
            if self._cut_waiting:
                return None  # a partial block waits out the interval; a full one goes at once
            batch = self.mempool.take(txs_max=self.block_txs_max, bytes_max=self.block_bytes_max)
        self._next_cut = time.monotonic() + self.block_interval_s
        t0 = time.perf_counter()
        with self.mempool_lock:
            decoded = {t: tx for t, _ in batch if (tx := self.mempool.decoded(t)) is not None}
        block, stored = self.ledger.build(
            [raw for _, raw in batch],
            tx_ids=[t for t, _ in batch],
            decoded=decoded,
            timestamp_ms=self._clock_ms(),
            proposer=self.node_id,
            round=round,
        )
        if stored or block is None:
            with self.mempool_lock:
                self.mempool.remove(stored)
                if block is None:
                    self.mempool.release(t for t, _ in batch)
        return None if block is None else (block, t0)
