"""Child process for the crash test: appends blocks to an LMDB store forever, printing
``appended <height> <head hash>`` after each ``append`` has returned (i.e. is durable)."""

from __future__ import annotations

import os
import sys

from chain.assemble import assemble_block
from storage import lmdb_store
from storage.lmdb_store import LmdbBlockStore
from tests.factories import ANCHOR, CHAIN_ID, txs


def main(path: str) -> None:
    # "txs,chunks[,merge runs,merge chunks]": small tx index batches, merged few at a time
    flush = os.environ.get("CRASH_INDEX_FLUSH")
    if flush:
        sizes = [int(v) for v in flush.split(",")]
        lmdb_store.INDEX_FLUSH_TXS, lmdb_store.INDEX_FLUSH_CHUNKS = sizes[:2]
        if len(sizes) == 4:
            lmdb_store.MERGE_RUNS, lmdb_store.MERGE_CHUNKS = sizes[2:]
            lmdb_store.GARBAGE_PAGES_PER_BLOCK = 1
    store = LmdbBlockStore.open(path)
    print("ready", store.height, flush=True)
    while True:
        head = store.head()
        n = 1 + store.height % 37
        batch = txs(n, start=store.log_size)
        block, _ = assemble_block(
            chain_id=CHAIN_ID,
            prev=head,
            anchor=ANCHOR,
            frontier=store.frontier(),
            txs=batch,
            results=[0] * n,
            state_root=b"\x00" * 32,
            timestamp_ms=10_000 + store.height,
            proposer="crash",
            round=1,
        )
        store.append(block, [(b"height", block.header.height.to_bytes(8, "big"))])
        print("appended", block.header.height, block.header.hash.hex(), flush=True)


if __name__ == "__main__":
    main(sys.argv[1])
