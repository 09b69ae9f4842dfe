"""Bloom filters over the tx index's runs, bit-sliced so one lookup tests every run.

Why: the tx index is written as sorted runs that are never rewritten (see
``storage/lmdb_store.py``), so an id may be in any of them. A Bloom filter per run says
which runs may hold it; kept *transposed* (row = one bit position, column = one run),
testing an id against every run is ``HASHES`` row reads and an AND, whatever the number
of runs, and a block's 1,000 ids are tested in one numpy expression.

Tx ids are SHA-256 outputs, so the bit positions are taken from the id itself (four
32-bit words), not rehashed. An id ground to collide only costs a false positive: an
extra LMDB lookup, never a wrong answer, since every candidate run is then read.

Memory: ``2**BITS_LOG2`` bits per run (128 KiB for a run of 65,536 ids, 16 bits per id,
a false-positive rate of about 0.24% per run).
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np

BITS_LOG2 = 20
HASHES = 4
HASH_BYTES = 32


class TxFilter:
    __slots__ = ("_rows", "runs")

    def __init__(self) -> None:
        self.runs = 0
        self._rows = np.zeros((1 << BITS_LOG2, 1), dtype=np.uint64)
        """``_rows[p, r // 64]`` bit ``r % 64``: bit ``p`` of run ``r``'s filter."""

    @staticmethod
    def positions(ids: Sequence[bytes]) -> np.ndarray:
        """(len(ids), HASHES) bit positions; every id is 32 bytes."""
        words = np.frombuffer(b"".join(ids), dtype=">u4").reshape(len(ids), HASH_BYTES // 4)
        return (words[:, :HASHES] & np.uint32((1 << BITS_LOG2) - 1)).astype(np.int64)

    @staticmethod
    def bits_of(ids: Sequence[bytes]) -> bytes:
        """One run's filter as a packed bit string (what the store persists)."""
        bits = np.zeros(1 << BITS_LOG2, dtype=np.uint8)
        if ids:
            bits[TxFilter.positions(ids).ravel()] = 1
        return np.packbits(bits).tobytes()

    def add_runs(self, filters: Sequence[bytes]) -> None:
        """Make runs ``self.runs``, ``self.runs + 1``, ... visible, from their packed bits
        (``bits_of``). Readers on other threads see the old table or the new one, never a
        partial one: the table is replaced, not changed in place."""
        if not filters:
            return
        first = self.runs
        words = (first + len(filters) + 63) // 64
        rows = np.zeros((1 << BITS_LOG2, words), dtype=np.uint64)
        rows[:, : self._rows.shape[1]] = self._rows
        for run, bits in enumerate(filters, first):
            unpacked = np.unpackbits(np.frombuffer(bits, dtype=np.uint8))
            if unpacked.shape[0] != 1 << BITS_LOG2:
                raise ValueError(f"a run filter is {1 << BITS_LOG2} bits")
            rows[np.flatnonzero(unpacked), run // 64] |= np.uint64(1 << (run % 64))
        self._rows = rows
        self.runs = first + len(filters)

    def candidates_of(self, tx_id: bytes) -> list[int]:
        """``candidates([tx_id])[0]`` in plain Python: a single lookup (an API read, a
        receipt) would otherwise pay numpy's fixed costs, ~15 us, for four row reads."""
        runs = self.runs
        if not runs:
            return []
        rows = self._rows
        mask = (1 << BITS_LOG2) - 1
        acc = rows[int.from_bytes(tx_id[0:4], "big") & mask].tolist()
        for j in range(1, HASHES):
            row = rows[int.from_bytes(tx_id[4 * j : 4 * j + 4], "big") & mask].tolist()
            acc = [a & b for a, b in zip(acc, row, strict=True)]
        out: list[int] = []
        for w, word in enumerate(acc):
            while word:
                low = word & -word
                run = 64 * w + low.bit_length() - 1
                if run < runs:
                    out.append(run)
                word ^= low
        out.sort(reverse=True)
        return out

    def candidate_pairs(self, ids: Sequence[bytes]) -> tuple[list[int], list[int]]:
        """Every (position in ``ids``, run) that may hold that id, as two lists, decoded
        in numpy a set bit at a time (an id is almost always in at most one run)."""
        runs = self.runs
        if not ids or not runs:
            return [], []
        rows = self._rows
        pos = self.positions(ids)
        acc = rows[pos[:, 0]]
        for j in range(1, HASHES):
            acc = acc & rows[pos[:, j]]
        which: list[int] = []
        run_of: list[int] = []
        one = np.uint64(1)
        for w in range(acc.shape[1]):
            col = acc[:, w]
            while True:
                hit = np.flatnonzero(col)
                if not hit.size:
                    break
                bits = col[hit]
                low = bits & (~bits + one)  # the lowest set bit of each
                col[hit] = bits ^ low
                # a power of two converts to float64 exactly, and so does its log2
                found = (np.log2(low.astype(np.float64)).astype(np.int64) + 64 * w).tolist()
                for i, r in zip(hit.tolist(), found, strict=True):
                    if r < runs:
                        which.append(i)
                        run_of.append(r)
        return which, run_of

    def candidates(self, ids: Sequence[bytes]) -> list[list[int]]:
        """For each id, the runs that may hold it, newest first (ids must be 32 bytes)."""
        runs = self.runs
        if not ids or not runs:
            return [[] for _ in ids]
        rows = self._rows
        pos = self.positions(ids)
        acc = rows[pos[:, 0]]
        for j in range(1, HASHES):
            acc = acc & rows[pos[:, j]]
        out: list[list[int]] = [[] for _ in ids]
        hit_ids, hit_words = np.nonzero(acc)
        for i, w in zip(hit_ids.tolist(), hit_words.tolist(), strict=True):
            word = int(acc[i, w])
            while word:
                low = word & -word
                run = 64 * w + low.bit_length() - 1
                if run < runs:
                    out[i].append(run)
                word ^= low
        for found in out:
            found.sort(reverse=True)
        return out
