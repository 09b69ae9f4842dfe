"""The bounded mempool: signed txs waiting for a block, deduplicated by tx id.

Bounded by count and bytes: when full, ``add`` says so and the RPC answers 503 (MQTT
pauses) — back-pressure, never unbounded memory. Txs leave only when a committed block
holds them, so a block that is cut but never committed (a leader change) costs nothing:
``release`` makes its txs eligible again.

One sender key may hold at most ``sender_txs_max`` of the pool (counted for txs added
with their decoded form, as admission adds them): an identity that floods the node, by
mistake or on purpose, fills its own share and gets 503s while every other member's txs
still find room.
"""

from __future__ import annotations

import enum
from collections.abc import Iterable

from chain.tx import Tx


class AddOutcome(enum.Enum):
    ADDED = "added"
    DUPLICATE = "duplicate"
    FULL = "full"
    SENDER_FULL = "sender_full"
    """The pool has room, but not for more of this sender's txs."""


class Mempool:
    def __init__(self, *, txs_max: int, bytes_max: int, sender_txs_max: int | None = None) -> None:
        self.txs_max = txs_max
        self.bytes_max = bytes_max
        self.sender_txs_max = txs_max if sender_txs_max is None else sender_txs_max
        self._by_sender: dict[bytes, int] = {}
        self._txs: dict[bytes, bytes] = {}  # insertion order = arrival order
        self._decoded: dict[bytes, Tx] = {}  # as admission decoded them: not decoded twice
        self._in_block: set[bytes] = set()
        self._bytes = 0

    def __len__(self) -> int:
        return len(self._txs)

    @property
    def size_bytes(self) -> int:
        return self._bytes

    def __contains__(self, tx_id: bytes) -> bool:
        return tx_id in self._txs

    def room(self) -> int:
        return self.txs_max - len(self._txs)

    def add(self, tx_id: bytes, raw: bytes, tx: Tx | None = None) -> AddOutcome:
        if tx_id in self._txs:
            return AddOutcome.DUPLICATE
        if len(self._txs) >= self.txs_max or self._bytes + len(raw) > self.bytes_max:
            return AddOutcome.FULL
        if tx is not None:
            held = self._by_sender.get(tx.sender, 0)
            if held >= self.sender_txs_max:
                return AddOutcome.SENDER_FULL
            self._by_sender[tx.sender] = held + 1
            self._decoded[tx_id] = tx
        self._txs[tx_id] = raw
        self._bytes += len(raw)
        return AddOutcome.ADDED

    def held_by(self, sender: bytes) -> int:
        """Txs of ``sender`` in the pool (of those added with their decoded form)."""
        return self._by_sender.get(sender, 0)

    def decoded(self, tx_id: bytes) -> Tx | None:
        return self._decoded.get(tx_id)

    def take(self, *, txs_max: int, bytes_max: int) -> list[tuple[bytes, bytes]]:
        """The oldest txs not already in a pending block, up to the limits; they stay in
        the pool, marked as in a block, until ``remove`` or ``release``."""
        out: list[tuple[bytes, bytes]] = []
        size = 0
        for tx_id, raw in self._txs.items():
            if len(out) >= txs_max:
                break
            if tx_id in self._in_block:
                continue
            if size + len(raw) > bytes_max:
                break
            out.append((tx_id, raw))
            size += len(raw)
        self._in_block.update(t for t, _ in out)
        return out

    def pending(self) -> int:
        """Txs not yet in a block."""
        return len(self._txs) - len(self._in_block)

    def release(self, tx_ids: Iterable[bytes] | None = None) -> None:
        """The given txs marked as in a block — every such tx when None — become eligible
        again."""
        if tx_ids is None:
            self._in_block.clear()
        else:
            self._in_block.difference_update(tx_ids)

    def remove(self, tx_ids: Iterable[bytes]) -> None:
        for tx_id in tx_ids:
            raw = self._txs.pop(tx_id, None)
            if raw is not None:
                self._bytes -= len(raw)
                tx = self._decoded.pop(tx_id, None)
                if tx is not None:
                    held = self._by_sender[tx.sender] - 1
                    if held:
                        self._by_sender[tx.sender] = held
                    else:
                        del self._by_sender[tx.sender]
            self._in_block.discard(tx_id)
