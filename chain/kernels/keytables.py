"""Per-key precomputed tables for Ed25519 verification, in a bounded LRU.

Why: a ledger's signers are registered before their signatures arrive, so the work of
[h]A that depends on A alone (its multiples j * 16^i * A) can be done once per key and
reused by every later signature: about 8x fewer field operations on that half. A table
is 61,440 bytes, so the cache is bounded by count (``capacity``); a key earns a table
only after ``uses_min`` signatures (a one-off key would pay ~100 us to build a table it
never reuses; it takes the window path instead).

Tables are immutable once built and never overwritten in place: eviction only drops the
cache's reference. A verification in flight on another thread holds its own references
(the per-call concatenation), so it can never read a table that is being replaced.
Threads share one cache without a lock (``chain`` may not import ``threading``): each
dict operation is atomic under the GIL, and a race between two of them can only cost a
rebuild or send one call down the window path, never change a verdict. The cache is
keyed by the raw 32 key bytes, the same bytes the kernel decodes.
"""

from __future__ import annotations

from collections import Counter, OrderedDict
from collections.abc import Sequence

import numpy as np

from chain.kernels import edwards25519 as ed

CAPACITY_DEFAULT = 256
"""256 tables = 25 MB."""
USES_MIN_DEFAULT = 2
SIGHTINGS_MAX = 65536

_NO_TABLES = np.zeros(0, dtype=np.int64)
_NO_TABLES.flags.writeable = False


class KeyTables:
    """key bytes -> table, least recently used evicted first."""

    def __init__(self, capacity: int = CAPACITY_DEFAULT, uses_min: int = USES_MIN_DEFAULT):
        if capacity < 0 or uses_min < 1:
            raise ValueError("capacity must be >= 0 and uses_min >= 1")
        self.capacity = capacity
        self.uses_min = uses_min
        self._tables: OrderedDict[bytes, np.ndarray] = OrderedDict()
        self._sightings: OrderedDict[bytes, int] = OrderedDict()

    def __len__(self) -> int:
        return len(self._tables)

    def __contains__(self, key: bytes) -> bool:
        return key in self._tables

    def clear(self) -> None:
        self._tables.clear()
        self._sightings.clear()

    def register(self, keys: Sequence[bytes]) -> None:
        """Build tables now for keys known to sign soon (e.g. at registration)."""
        self._build([bytes(k) for k in dict.fromkeys(keys) if len(k) == 32])

    def tables_for(self, keys: Sequence[bytes]) -> tuple[np.ndarray, np.ndarray]:
        """For one verification call: ``slots[i]`` (index of key i's table in the returned
        concatenation, or -1 for none) and the concatenated tables."""
        wanted = []
        for key, count in Counter(keys).items():
            try:
                self._tables.move_to_end(key)
                continue
            except KeyError:
                pass
            seen = self._sightings.pop(key, 0) + count
            if seen >= self.uses_min:
                wanted.append(key)
            else:
                self._sightings[key] = seen
                while len(self._sightings) > SIGHTINGS_MAX:
                    try:
                        self._sightings.popitem(last=False)
                    except KeyError:
                        break
        if wanted:
            self._build(wanted)
        index: dict[bytes, int] = {}
        chosen: list[np.ndarray] = []
        for key in keys:
            if key not in index:
                table = self._tables.get(key)
                if table is None:
                    index[key] = -1
                else:
                    index[key] = len(chosen)
                    chosen.append(table)
        slots = np.fromiter((index[k] for k in keys), dtype=np.int64, count=len(keys))
        tables = np.concatenate(chosen) if chosen else _NO_TABLES
        return slots, tables

    def _build(self, keys: list[bytes]) -> None:
        keys = [k for k in keys if k not in self._tables]
        if not keys or self.capacity == 0:
            return
        keys = keys[-self.capacity :]  # the last ones would evict the first ones anyway
        words = ed.KEY_TABLE_WORDS
        out = np.empty(len(keys) * words, dtype=np.int64)
        ok = np.zeros(len(keys), dtype=np.uint8)
        ed.build_tables(np.frombuffer(b"".join(keys), dtype=np.uint8), ed.KEY_WINDOW, out, ok)
        for i, key in enumerate(keys):
            if not ok[i]:
                continue  # does not decode: every signature under it is rejected anyway
            table = out[i * words : (i + 1) * words].copy()
            table.flags.writeable = False
            self._tables[key] = table
            self._sightings.pop(key, None)
        while len(self._tables) > self.capacity:
            try:
                self._tables.popitem(last=False)
            except KeyError:  # another thread emptied it first
                break
