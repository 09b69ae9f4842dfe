"""The tx index's ids held in memory: those of the blocks since the last recorded run, each
with its packed location, findable here until a run on disk holds them.

Why: kept as a dict filled by every append, the store's writer thread spent ~0.3 ms a
block of 1,000 txs on it (inserts into a dict growing to 65,536 random keys, its
resizes, the keys' hashes), holding the GIL that the next block's assembly waits for.
Here an append only adds the block's ids and locations as two byte strings, the form
the next run is sorted from; the dict is built by the first lookup that needs it and
caught up by later ones, a block at a time, under a lock. A node that looks up its recent
txs pays for the dict there, on the reader's thread; one that does not never builds it.

May import: ``chain.kernels.hasharray`` (splitting joined ids) and the standard library.
"""

from __future__ import annotations

import threading
from collections.abc import Callable, Sequence

from chain.kernels.hasharray import HASH_BYTES, split_hashes


class MemIds:
    """Ids with their packed locations, added a block at a time (the writer thread) and
    looked up from any thread."""

    __slots__ = ("_count", "_dict", "_indexed", "_lock", "_split_locs", "parts")

    def __init__(self, split_locs: Callable[[bytes], Sequence[bytes]]) -> None:
        """``split_locs`` cuts a block's packed locations, laid end to end, into one per
        id."""
        self.parts: list[tuple[bytes, bytes]] = []
        """Each block's (ids, locations), laid end to end in each: appended to, never
        changed, so a reader that took its length may read that many."""
        self._split_locs = split_locs
        self._count = 0
        self._dict: dict[bytes, bytes] = {}
        self._indexed = 0
        """How many of ``parts`` are in ``_dict``."""
        self._lock = threading.Lock()

    def add(self, joined_ids: bytes, raw_locs: bytes) -> None:
        """A block's ids (32 bytes each) and their locations, laid end to end."""
        self.parts.append((joined_ids, raw_locs))
        self._count += len(joined_ids) // HASH_BYTES

    def __len__(self) -> int:
        return self._count

    def __bool__(self) -> bool:
        return self._count > 0

    def get(self, tx_id: bytes) -> bytes | None:
        """The packed location of ``tx_id``, or None if it is not held here."""
        with self._lock:
            return self._caught_up().get(tx_id)

    def __contains__(self, tx_id: object) -> bool:
        with self._lock:
            return tx_id in self._caught_up()

    def holds_any(self, tx_ids: Sequence[bytes]) -> bool:
        """Whether any of ``tx_ids`` is held here."""
        if not self._count:
            return False
        with self._lock:
            return not self._caught_up().keys().isdisjoint(tx_ids)

    def _caught_up(self) -> dict[bytes, bytes]:
        """The dict, with every part added so far in it (the lock held)."""
        parts, done = self.parts, self._indexed
        end = len(parts)
        for joined, raw_locs in parts[done:end]:
            self._dict.update(zip(split_hashes(joined), self._split_locs(raw_locs), strict=True))
        self._indexed = end
        return self._dict
