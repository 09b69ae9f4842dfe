"""The tx index's runs as arrays: sorted (id, location) entries, 54 bytes each.

A run (``storage/lmdb_store.py``) is a sorted batch of tx ids, written once, to a file
of its own (``storage/runfiles.py``): ``(n, 54)`` uint8 rows of ``id (32 bytes) +
location (22 bytes)``, in id order, built and merged with numpy (or the kernels), and
searched a block of rows at a time (``find``).

Pure: bytes and numpy only (what may import this: ``storage``).
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np

ID_BYTES = 32
LOC_BYTES = 22
ENTRY_BYTES = ID_BYTES + LOC_BYTES


def sort_order(ids: np.ndarray) -> np.ndarray:
    """The order that sorts the ``(n, 32)`` uint8 rows of ``ids`` (distinct): on each id's
    first 8 bytes (5x faster than sorting ``bytes`` in Python), on all 32 when two share
    those (a collision someone ground for)."""
    n = ids.shape[0]
    words = np.ascontiguousarray(ids).view(">u8").reshape(n, ID_BYTES // 8)
    order = np.argsort(words[:, 0], kind="stable")
    first = words[order, 0]
    if n > 1 and bool((first[1:] == first[:-1]).any()):
        order = np.lexsort(words.T[::-1])  # the last key given is the primary one
    return order


def entries(ids: bytes, locations: bytes) -> np.ndarray:
    """The ``(n, 54)`` entries of the 32-byte ids and 22-byte locations laid end to end
    (ids distinct), sorted by id."""
    n = len(ids) // ID_BYTES
    if len(ids) != n * ID_BYTES or len(locations) != n * LOC_BYTES:
        raise ValueError("ids and locations of different counts")
    rows = np.empty((n, ENTRY_BYTES), dtype=np.uint8)
    rows[:, :ID_BYTES] = np.frombuffer(ids, dtype=np.uint8).reshape(n, ID_BYTES)
    rows[:, ID_BYTES:] = np.frombuffer(locations, dtype=np.uint8).reshape(n, LOC_BYTES)
    return rows[sort_order(rows[:, :ID_BYTES])]


def merge(parts: Sequence[np.ndarray]) -> np.ndarray:
    """Sorted entries of several runs as one sorted array (ids distinct across them)."""
    rows = np.concatenate(parts) if parts else np.empty((0, ENTRY_BYTES), dtype=np.uint8)
    return rows[sort_order(rows[:, :ID_BYTES])]


def find(value: bytes, tx_id: bytes) -> bytes | None:
    """The location of ``tx_id`` in ``value`` (consecutive sorted entries of a run), or
    None (a binary search)."""
    lo, hi = 0, len(value) // ENTRY_BYTES
    while lo < hi:
        mid = (lo + hi) // 2
        at = mid * ENTRY_BYTES
        if value[at : at + ID_BYTES] < tx_id:
            lo = mid + 1
        else:
            hi = mid
    at = lo * ENTRY_BYTES
    if value[at : at + ID_BYTES] == tx_id:
        return value[at + ID_BYTES : at + ENTRY_BYTES]
    return None


def strictly_increasing(rows: np.ndarray) -> bool:
    """True if the ``(n, 54)`` entries' ids strictly increase (sorted and distinct): what
    ``verify`` checks a run with, in O(n) with no sort."""
    n = rows.shape[0]
    if n < 2:
        return True
    words = np.ascontiguousarray(rows[:, :ID_BYTES]).view(">u8").reshape(n, ID_BYTES // 8)
    before, after = words[:-1], words[1:]
    increasing = before[:, -1] < after[:, -1]
    for j in range(ID_BYTES // 8 - 2, -1, -1):  # lexicographic, most significant word last
        increasing = (before[:, j] < after[:, j]) | ((before[:, j] == after[:, j]) & increasing)
    return bool(increasing.all())
