"""The tx index's runs as LMDB items: pages of sorted (id, location) entries.

A run (``storage/lmdb_store.py``) is a sorted batch of tx ids, written once. Kept as one
LMDB item per entry, a run of 65,536 ids was 196,608 Python objects to build and a
B-tree node (8 bytes of header, a 4-byte run prefix) per id; packed ``PAGE_ENTRIES``
entries to a value it is ~900 items, built with numpy, and 54 bytes per id. Item ``run
(4 bytes BE) + first id of the page`` -> ``PAGE_ENTRIES`` (or, last, fewer) entries of
``id (32 bytes) + location (22 bytes)``, in id order; an id is found by the item at or
before ``run + id`` and a binary search of its value.

Pure: bytes and numpy only (what may import this: ``storage``).
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np

ID_BYTES = 32
LOC_BYTES = 22
ENTRY_BYTES = ID_BYTES + LOC_BYTES
PAGE_ENTRIES = 75
"""4,050 bytes: one LMDB overflow page (4,096 less its 16-byte header) per value."""
RUN_BYTES = 4


def run_key(run: int) -> bytes:
    return run.to_bytes(RUN_BYTES, "big")


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


def pages(run: bytes, rows: np.ndarray) -> list[tuple[bytes, bytes]]:
    """The LMDB items of run ``run`` (its 4-byte key) holding the sorted ``rows``."""
    # Sliced from a view of the rows (a copy of the whole run first, as one fresh buffer
    # of up to 56 MB, page-faulted in 4 KiB at a time, cost more than the slicing).
    raw = np.ascontiguousarray(rows, dtype=np.uint8).reshape(-1).data
    step = PAGE_ENTRIES * ENTRY_BYTES
    return [
        (run + raw[i : i + ID_BYTES].tobytes(), raw[i : i + step].tobytes())
        for i in range(0, len(raw), step)
    ]


def page_rows(value: bytes) -> np.ndarray:
    """The ``(k, 54)`` entries of one stored page (a copy, independent of ``value``)."""
    if not value or len(value) % ENTRY_BYTES:
        raise ValueError(f"a tx index page of {len(value)} bytes")
    return np.frombuffer(value, dtype=np.uint8).reshape(-1, ENTRY_BYTES).copy()


def find(value: bytes, tx_id: bytes) -> bytes | None:
    """The location of ``tx_id`` in one stored page, or None (a binary search)."""
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


def stored_rows(run: bytes, items: Sequence[tuple[bytes, bytes]]) -> np.ndarray | None:
    """The ``(n, 54)`` entries of run ``run``'s stored ``items`` (in key order) if they
    are laid out as ``pages`` lays out sorted distinct ids (full pages but the last, each
    keyed by its first id, ids strictly increasing), else None. What ``verify`` checks a
    run with, in O(n) with no sort (rebuilding the run from its blocks sorts them)."""
    if not items:
        return np.empty((0, ENTRY_BYTES), dtype=np.uint8)
    step = PAGE_ENTRIES * ENTRY_BYTES
    last = items[-1][1]
    if not 0 < len(last) <= step or len(last) % ENTRY_BYTES:
        return None
    for key, value in items:
        if key != run + value[:ID_BYTES]:
            return None
    if any(len(value) != step for _, value in items[:-1]):
        return None
    rows = np.frombuffer(b"".join([value for _, value in items]), dtype=np.uint8)
    rows = rows.reshape(-1, ENTRY_BYTES)
    n = rows.shape[0]
    words = np.ascontiguousarray(rows[:, :ID_BYTES]).view(">u8").reshape(n, ID_BYTES // 8)
    before, after = words[:-1], words[1:]
    increasing = before[:, -1] < after[:, -1]
    for j in range(ID_BYTES // 8 - 2, -1, -1):  # lexicographic, most significant word last
        increasing = (before[:, j] < after[:, j]) | ((before[:, j] == after[:, j]) & increasing)
    return rows if bool(increasing.all()) else None
