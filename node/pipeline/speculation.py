"""The state a leader builds its next block on while earlier blocks are still in flight.

A proposed block's ACL writes are known when it is built; the block after it must read
them before they are committed. ``SpeculativeView`` stacks the write sets of the blocks
in flight (oldest first) over one read snapshot of the committed store, and reads like
the store would once they are applied: ``get`` and ``range`` see the newest write of a
key, and a ``None`` write is a delete.

If a block in flight is not committed as proposed, what was built on it is stale: its
``prev_hash`` names a block the chain does not hold, so every node skips it
(``node.pipeline.ledger``). Nothing speculative is ever written to the store.
"""

from __future__ import annotations

import bisect
import operator
from collections.abc import Iterator, Sequence
from typing import Protocol

from acl.state import merge_writes
from storage.blockstore import TxLocation

Write = tuple[bytes, bytes | None]

_UNSET = object()


class Snapshot(Protocol):
    def get(self, key: bytes) -> bytes | None: ...

    def range(self, start: bytes, end: bytes | None) -> Iterator[tuple[bytes, bytes]]: ...

    def tx_location(self, tx_id: bytes) -> TxLocation | None: ...


class WriteLayer:
    """One block's write set, sorted by key (as ``BlockOutcome.writes`` is)."""

    __slots__ = ("keys", "values")

    def __init__(self, writes: Sequence[Write]) -> None:
        self.keys = [k for k, _ in writes]
        self.values = dict(writes)
        # Strictly ascending keys are sorted and unique; checked at C speed (once per block).
        if not all(map(operator.lt, self.keys, self.keys[1:])):
            raise ValueError("a write layer needs its writes sorted by key, one per key")


class SpeculativeView:
    """``layers`` (oldest first) over ``base``: a ``StateReader`` and a tx index view."""

    __slots__ = ("_base", "_layers")

    def __init__(self, base: Snapshot, layers: Sequence[WriteLayer]) -> None:
        self._base = base
        self._layers = list(reversed(layers))  # newest first: the first hit wins

    def get(self, key: bytes) -> bytes | None:
        for layer in self._layers:
            value = layer.values.get(key, _UNSET)
            if value is not _UNSET:
                return value  # type: ignore[return-value]
        return self._base.get(key)

    def tx_location(self, tx_id: bytes) -> TxLocation | None:
        # A tx of a block in flight is not in the chain yet (and the mempool hands a tx
        # to one block at a time): only committed txs are found.
        return self._base.tx_location(tx_id)

    def range(self, start: bytes, end: bytes | None) -> Iterator[tuple[bytes, bytes]]:
        mine: dict[bytes, bytes | None] = {}
        for layer in reversed(self._layers):  # oldest first, so newer writes overwrite
            keys = layer.keys
            lo = bisect.bisect_left(keys, start)
            hi = len(keys) if end is None else bisect.bisect_left(keys, end)
            for key in keys[lo:hi]:
                mine[key] = layer.values[key]
        if not mine:
            return self._base.range(start, end)
        return merge_writes(self._base.range(start, end), sorted(mine), mine)
