"""Per-key precomputed tables for Ed25519 verification, in a bounded LRU.

Why: a ledger's signers are registered before their signatures arrive, so the work of
[h]A that depends on A alone (its multiples j * 128^i * A) can be done once per key and
reused by every later signature: about 7x fewer field operations on that half. A table
is 284,160 bytes (``edwards25519.KEY_WINDOW``), so the cache is bounded by count
(``capacity``); a key earns a table only after ``uses_min`` signatures (a one-off key
would pay ~0.3-0.8 ms to build a table it never reuses; it takes the window path
instead).

Layout, and why it is safe without a lock (``chain`` may not import ``threading``): the
tables live in one slab, handed to the kernel as is (copying a call's tables out of the
cache cost more than verifying with them, and held the GIL). A slab position is written
once, before any lookup can name it, and never again: eviction only forgets the key,
and when the slab runs out of fresh positions the live tables are copied into a *new*
slab (a new generation) that replaces it. A call takes one generation and uses only it,
and its reference keeps that slab alive, so no kernel can ever read a table that is
being written. Each dict operation is atomic under the GIL; a race between two of them
can only cost a rebuild or send a signature down the window path, never change a
verdict. The cache is keyed by the raw 32 key bytes, the same bytes the kernel decodes.
"""

from __future__ import annotations

import itertools
from collections import Counter, OrderedDict
from collections.abc import Sequence

import numpy as np

from chain.kernels import edwards25519 as ed

CAPACITY_DEFAULT = 256
"""At most 256 live tables (73 MB). A slab reserves twice that many positions (145 MB of
address space, pages committed only as tables are written), and during a compaction
the old slab lives on until the calls using it return."""
USES_MIN_DEFAULT = 2
SIGHTINGS_MAX = 65536

_NO_TABLES = np.zeros(0, dtype=np.int64)
_NO_TABLES.flags.writeable = False


class _Generation:
    """One slab and the positions of the live tables in it, least recently used first."""

    __slots__ = ("fresh", "positions", "size", "slab")

    def __init__(self, size: int) -> None:
        self.size = size
        self.slab = np.empty(size * ed.KEY_TABLE_WORDS, dtype=np.int64) if size else _NO_TABLES
        self.positions: OrderedDict[bytes, int] = OrderedDict()
        self.fresh = itertools.count()  # next() is atomic under the GIL

    def table(self, pos: int) -> np.ndarray:
        return self.slab[pos * ed.KEY_TABLE_WORDS : (pos + 1) * ed.KEY_TABLE_WORDS]


class KeyTables:
    """key bytes -> table, least recently used evicted first."""

    def __init__(self, capacity: int = CAPACITY_DEFAULT, uses_min: int = USES_MIN_DEFAULT):
        if capacity < 0 or uses_min < 1:
            raise ValueError("capacity must be >= 0 and uses_min >= 1")
        self.capacity = capacity
        self.uses_min = uses_min
        # Twice the capacity in positions, so a compaction happens only every
        # ``capacity`` new tables and its copying stays small per table built.
        self._gen = _Generation(2 * capacity)
        self._sightings: OrderedDict[bytes, int] = OrderedDict()

    def __len__(self) -> int:
        return len(self._gen.positions)

    def __contains__(self, key: bytes) -> bool:
        return key in self._gen.positions

    def clear(self) -> None:
        self._gen = _Generation(2 * self.capacity)
        self._sightings.clear()

    def register(self, keys: Sequence[bytes]) -> None:
        """Build tables now for keys known to sign soon (e.g. at registration)."""
        self._build([bytes(k) for k in dict.fromkeys(keys) if len(k) == 32])

    def tables_for(self, keys: Sequence[bytes]) -> tuple[np.ndarray, np.ndarray]:
        """For one verification call: ``slots[i]`` (the position of key i's table in the
        returned slab, or -1 for none) and the slab. Only the named positions are read."""
        gen = self._gen
        wanted = []
        for key, count in Counter(keys).items():
            try:
                gen.positions.move_to_end(key)
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
            gen = self._build(wanted)
        positions = gen.positions
        slots = np.fromiter((positions.get(k, -1) for k in keys), dtype=np.int64, count=len(keys))
        return slots, gen.slab

    def _build(self, keys: list[bytes]) -> _Generation:
        """Build and insert tables; returns the generation that holds them."""
        gen = self._gen
        keys = [k for k in keys if k not in gen.positions]
        if not keys or self.capacity == 0:
            return gen
        keys = keys[-self.capacity :]  # the last ones would evict the first ones anyway
        words = ed.KEY_TABLE_WORDS
        out = np.empty(len(keys) * words, dtype=np.int64)
        ok = np.zeros(len(keys), dtype=np.uint8)
        ed.build_tables(np.frombuffer(b"".join(keys), dtype=np.uint8), ed.KEY_WINDOW, out, ok)
        for i, key in enumerate(keys):
            if not ok[i]:
                continue  # does not decode: every signature under it is rejected anyway
            pos = next(gen.fresh)
            if pos >= gen.size:
                gen = self._compact(gen)
                pos = next(gen.fresh)
            gen.slab[pos * words : (pos + 1) * words] = out[i * words : (i + 1) * words]
            gen.positions[key] = pos  # published only once the table is written
            self._sightings.pop(key, None)
            while len(gen.positions) > self.capacity:
                try:
                    gen.positions.popitem(last=False)
                except KeyError:  # another thread emptied it first
                    break
        return gen

    def _compact(self, old: _Generation) -> _Generation:
        """A new slab holding the most recently used tables of ``old`` (at most half the
        capacity, so the new one has room); calls still using ``old`` keep it alive."""
        new = _Generation(old.size)
        keep = list(old.positions.items())[-max(1, self.capacity // 2) :]
        for key, pos in keep:
            p = next(new.fresh)
            new.table(p)[:] = old.table(pos)
            new.positions[key] = p
        self._gen = new
        return new
