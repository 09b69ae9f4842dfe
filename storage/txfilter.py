"""Bloom filters over the tx index's runs, bit-sliced so one lookup tests every run.

Why: the tx index is written as sorted runs that are never rewritten (see
``storage/lmdb_store.py``), so an id may be in any of them. A Bloom filter per run says
which runs may hold it; kept *transposed* (row = one bit position, column = one run),
testing an id against every run is ``HASHES`` row reads and an AND, whatever the number
of runs, and a block's 1,000 ids are tested in one numpy expression.

Tx ids are SHA-256 outputs, so the bit positions are taken from the id itself (four
32-bit words), not rehashed. An id ground to collide only costs a false positive: an
extra LMDB lookup, never a wrong answer, since every candidate run is then read.

Memory: ``2**bits_log2`` bits per run (``BITS_LOG2``: 128 KiB for a run of 65,536 ids,
16 bits per id, a false-positive rate of about 0.24% per run). Merged runs are larger and
have their own, larger filters: one ``TxFilter`` per size.

Runs are named by number (a column holds any run's filter): merging runs removes their
columns and adds one for the merged run.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Any

import numpy as np

BITS_LOG2 = 20
HASHES = 4
ADD_CHUNK_BYTES = 1 << 17
"""Packed filter bytes set into a table's column at a time (``TxFilter.add_runs``)."""
HASH_BYTES = 32
_ROW_DTYPE: dict[int, Any] = {64: np.dtype("<u8"), 8: np.dtype(np.uint8)}
"""A filter table's words, little-endian (see ``TxFilter.candidates_of``)."""


class TxFilter:
    __slots__ = ("_dtype", "_flat", "_table", "_wb", "bits_log2")

    def __init__(self, bits_log2: int = BITS_LOG2, word_bits: int = 64) -> None:
        """``word_bits`` (64 or 8): runs per word of a row. A table takes at least one
        word a row: 8 MiB at 2**20 rows of 64 bits, but 128 MiB at 2**24, where bytes
        (8 runs a word) waste less for the few large runs that merging makes."""
        self.bits_log2 = bits_log2
        self._wb = word_bits
        self._dtype: Any = np.uint64 if word_bits == 64 else np.uint8
        if word_bits not in (8, 64):
            raise ValueError("word_bits is 8 or 64")
        self._table: tuple[np.ndarray, list[int]] = (
            np.zeros((1 << bits_log2, 1), dtype=_ROW_DTYPE[word_bits]),
            [],
        )
        """(rows, column -> run number), replaced as one: ``rows[p, c // wb]`` bit
        ``c % wb`` is bit ``p`` of column ``c``'s filter. A reader takes the pair once,
        so it never pairs one table's columns with another's run numbers."""
        self._flat: tuple[np.ndarray | None, memoryview] = (None, memoryview(b""))
        """(rows, their bytes as one flat memoryview), made once per table."""

    @property
    def runs(self) -> int:
        """How many runs the filter holds."""
        return len(self._table[1])

    @property
    def run_ids(self) -> list[int]:
        return list(self._table[1])

    @staticmethod
    def positions(ids: Sequence[bytes], bits_log2: int = BITS_LOG2) -> np.ndarray:
        """(len(ids), HASHES) bit positions; every id is 32 bytes."""
        return TxFilter.positions_joined(b"".join(ids), bits_log2)

    @staticmethod
    def positions_joined(joined: bytes, bits_log2: int = BITS_LOG2) -> np.ndarray:
        """``positions`` of the 32-byte ids laid end to end in ``joined``."""
        words = np.frombuffer(joined, dtype=">u4").reshape(-1, HASH_BYTES // 4)
        return (words[:, :HASHES] & np.uint32((1 << bits_log2) - 1)).astype(np.int64)

    @staticmethod
    def bits_of(ids: Sequence[bytes], bits_log2: int = BITS_LOG2) -> bytes:
        """One run's filter as a packed bit string (what the store persists)."""
        return TxFilter.bits_of_joined(b"".join(ids), bits_log2)

    @staticmethod
    def bits_of_joined(joined: bytes, bits_log2: int = BITS_LOG2) -> bytes:
        """``bits_of`` the 32-byte ids laid end to end in ``joined``."""
        bits = np.zeros(1 << bits_log2, dtype=np.uint8)
        if joined:
            bits[TxFilter.positions_joined(joined, bits_log2).ravel()] = 1
        return np.packbits(bits).tobytes()

    def add_runs(self, filters: Sequence[bytes], run_ids: Sequence[int] | None = None) -> None:
        """Make runs ``run_ids`` (default: numbered on from ``self.runs``) visible, from
        their packed bits (``bits_of``). Readers on other threads see the old table or the
        new one: new columns are set where no reader looks (past its run count), then the
        run numbers are published with the rows (the rows are copied only to widen)."""
        if not filters:
            return
        if run_ids is None:
            run_ids = range(self.runs, self.runs + len(filters))
        if len(run_ids) != len(filters):
            raise ValueError("one run number per filter")
        rows, ids = self._table
        first = len(ids)
        if -(-(first + len(filters)) // self._wb) > rows.shape[1]:
            rows = self._widened(rows, first + len(filters))
        for col, bits in enumerate(filters, first):
            packed = np.frombuffer(bits, dtype=np.uint8)
            if packed.shape[0] * 8 != 1 << self.bits_log2:
                raise ValueError(f"a run filter is {1 << self.bits_log2} bits")
            # The column a chunk of rows at a time (a view of the rows, strided when a row
            # has several words): 4x faster than scattering its set bits, at open's 14+
            # runs, and the unpacked bits of a chunk, not of a whole 2**28-bit filter
            # (a level-2 run's: 512 MiB of temporaries at once, 1.3x slower).
            column = rows[:, col // self._wb]
            for lo in range(0, packed.shape[0], ADD_CHUNK_BYTES):
                part = np.unpackbits(packed[lo : lo + ADD_CHUNK_BYTES])
                view = column[8 * lo : 8 * lo + part.shape[0]]
                np.bitwise_or(
                    view, np.left_shift(part, col % self._wb, dtype=self._dtype), out=view
                )
        self._table = (rows, [*ids, *run_ids])

    def remove_runs(self, run_ids: Sequence[int]) -> None:
        """Drop the filters of ``run_ids`` (a merge replaced them); the table is replaced."""
        gone = set(run_ids)
        old, ids = self._table
        keep = [(c, r) for c, r in enumerate(ids) if r not in gone]
        wb, t = self._wb, self._dtype
        rows = np.zeros((1 << self.bits_log2, max(1, -(-len(keep) // wb))), dtype=_ROW_DTYPE[wb])
        for new_col, (col, _) in enumerate(keep):
            bit = (old[:, col // wb] >> t(col % wb)) & t(1)
            rows[:, new_col // wb] |= bit << t(new_col % wb)
        self._table = (rows, [r for _, r in keep])

    def _widened(self, old: np.ndarray, columns: int) -> np.ndarray:
        words = max(1, -(-columns // self._wb))
        rows = np.zeros((1 << self.bits_log2, words), dtype=_ROW_DTYPE[self._wb])
        rows[:, : old.shape[1]] = old
        return rows

    def candidates_of(self, tx_id: bytes) -> list[int]:
        """``candidates([tx_id])[0]`` in plain Python: a single lookup (an API read, a
        receipt) would otherwise pay numpy's fixed costs, ~15 us, for four row reads.
        Each row is read as one int (little-endian: bit ``c`` of the int is column
        ``c``, whatever the word size), so the AND and the decoding are int operations,
        not a list per row (3x faster at 1-2 words a row)."""
        rows, run_ids = self._table
        if not run_ids:
            return []
        mask = (1 << self.bits_log2) - 1
        width = rows.shape[1] * rows.itemsize
        made_for, flat = self._flat
        if made_for is not rows:
            flat = memoryview(rows.reshape(-1).view(np.uint8).data)
            self._flat = (rows, flat)
        from_bytes = int.from_bytes
        at = (from_bytes(tx_id[0:4], "big") & mask) * width
        acc = from_bytes(flat[at : at + width], "little")
        for j in range(1, HASHES):
            if not acc:
                return []
            at = (from_bytes(tx_id[4 * j : 4 * j + 4], "big") & mask) * width
            acc &= from_bytes(flat[at : at + width], "little")
        out: list[int] = []
        n = len(run_ids)
        while acc:
            low = acc & -acc
            col = low.bit_length() - 1
            if col < n:
                out.append(run_ids[col])
            acc ^= low
        out.sort(reverse=True)
        return out

    def candidate_pairs(self, ids: Sequence[bytes]) -> tuple[list[int], list[int]]:
        """Every (position in ``ids``, run) that may hold that id, as two lists, decoded
        in numpy a set bit at a time (an id is almost always in at most one run)."""
        rows, run_ids = self._table
        n = len(run_ids)
        if not ids or not n:
            return [], []
        pos = self.positions(ids, self.bits_log2)
        acc = rows[pos[:, 0]]
        for j in range(1, HASHES):
            acc = acc & rows[pos[:, j]]
        which: list[int] = []
        run_of: list[int] = []
        one = self._dtype(1)
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
                found = np.log2(low.astype(np.float64)).astype(np.int64) + self._wb * w
                found = found.tolist()
                for i, c in zip(hit.tolist(), found, strict=True):
                    if c < n:
                        which.append(i)
                        run_of.append(run_ids[c])
        return which, run_of

    def candidate_pairs_joined(
        self, joined: bytes, kernel: Callable[[bytes, Any, int, int], tuple[Any, Any]]
    ) -> tuple[list[int], list[int]]:
        """``candidate_pairs`` of the 32-byte ids laid end to end in ``joined``, found by
        ``kernel`` (``Backend.filter_candidates``: (positions, columns) of the table's
        pairs in one call), in its order (id, then column): the same pairs."""
        rows, run_ids = self._table
        if not joined or not run_ids:
            return [], []
        which, cols = kernel(joined, rows, self.bits_log2, len(run_ids))
        return which.tolist(), [run_ids[c] for c in cols.tolist()]

    def candidates(self, ids: Sequence[bytes]) -> list[list[int]]:
        """For each id, the runs that may hold it, newest first (ids must be 32 bytes)."""
        out: list[list[int]] = [[] for _ in ids]
        for i, run in zip(*self.candidate_pairs(ids), strict=True):
            out[i].append(run)
        for found in out:
            found.sort(reverse=True)
        return out
