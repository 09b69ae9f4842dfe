"""Child process for the crash test: appends blocks to an LMDB store forever, printing
``appended <height> <head hash>`` after each ``append`` has returned (i.e. is durable)."""

from __future__ import annotations

import os
import sys

from chain.assemble import assemble_block
from storage import lmdb_store, txruns
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
        # Pages of a few entries: a run of 40 ids is then 10 pages, so its key ranges go
        # to disk over several blocks (at 75 entries a page it was one page, one block).
        txruns.PAGE_ENTRIES = 4
    # Set: after the first append that leaves a run of the tx index partly written (some
    # of its key ranges committed with their blocks, not its record), say "midrun" instead
    # of "appended" and wait on stdin, so that the parent kills it right there.
    pause_mid_run = bool(os.environ.get("CRASH_PAUSE_MID_RUN"))
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
        mid_run = pause_mid_run and bool(store._round)
        word = "midrun" if mid_run else "appended"
        print(word, block.header.height, block.header.hash.hex(), flush=True)
        if mid_run:
            sys.stdin.readline()
            pause_mid_run = False


if __name__ == "__main__":
    main(sys.argv[1])
