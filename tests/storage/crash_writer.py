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
    # "txs[,merge runs]": small tx index runs, merged few at a time
    flush = os.environ.get("CRASH_INDEX_FLUSH")
    if flush:
        sizes = [int(v) for v in flush.split(",")]
        lmdb_store.INDEX_FLUSH_TXS = sizes[0]
        if len(sizes) == 2:
            lmdb_store.MERGE_RUNS = sizes[1]
    filters = os.environ.get("CRASH_FILTER_BITS")  # "l0,l1,l2": each level's filter size
    if filters:
        lmdb_store.RUN_FILTER_BITS_LOG2 = tuple(int(v) for v in filters.split(","))
    # Set: after the first append that leaves a run of the tx index written to its file
    # and not yet recorded (no block has recorded it), say "midrun" instead of
    # "appended" and wait on stdin, so that the parent kills it right there.
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
        mid_run = pause_mid_run and store._round is not None
        if mid_run:
            assert store._round is not None
            store._round.result()  # written, and recorded by no block yet
        word = "midrun" if mid_run else "appended"
        print(word, block.header.height, block.header.hash.hex(), flush=True)
        if mid_run:
            sys.stdin.readline()
            pause_mid_run = False


if __name__ == "__main__":
    main(sys.argv[1])
