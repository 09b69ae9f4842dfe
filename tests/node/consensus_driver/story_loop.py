"""A ``ConsensusLoop`` of the story genesis's ``hospital-node`` on a real LMDB store, not
started: tests hand it peers' messages through ``_handle`` and read its core."""

from __future__ import annotations

import threading
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

from acl.samples import story_genesis
from chain import signing
from consensus.config import RaftConfig
from node.consensus_driver.loop import ConsensusLoop
from node.pipeline.ledger import Ledger
from node.pipeline.mempool import Mempool
from node.runtime.metrics import NodeMetrics
from storage.lmdb_store import LmdbBlockStore

GENESIS, KEYS = story_genesis()
VOTERS = tuple(v.node_id for v in GENESIS.validators)  # hospital-node, lab-node, regulator-node


@contextmanager
def story_loop(
    directory: Path, *, now_ms: int = GENESIS.timestamp_ms, block_time_skew_ms_max: int = 10_000
) -> Iterator[ConsensusLoop]:
    store = LmdbBlockStore.open(directory / "store")
    ledger = Ledger(store, GENESIS, signing.verify_batch)
    ledger.ensure_genesis()
    try:
        yield ConsensusLoop(
            node_id="hospital-node",
            voters=VOTERS,
            ledger=ledger,
            mempool=Mempool(txs_max=10, bytes_max=1 << 20),
            mempool_lock=threading.Lock(),
            raft_config=RaftConfig(),
            tick_s=0.01,
            block_txs_max=10,
            block_interval_s=0.01,
            block_bytes_max=1 << 20,
            send=lambda _: None,
            request_blocks=lambda _: None,
            on_applied=lambda _: None,
            on_fatal=lambda _: None,
            clock_ms=lambda: now_ms,
            seed=1,
            metrics=NodeMetrics(),
            block_time_skew_ms_max=block_time_skew_ms_max,
        )
    finally:
        store.close()
