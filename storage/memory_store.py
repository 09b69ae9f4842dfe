"""In-memory ``BlockStore``: the twin of the LMDB store for tests and the simulator."""

from __future__ import annotations

import bisect
from collections.abc import Iterator, Sequence

from chain import merkle
from chain.block import Block, BlockHeader
from chain.merkle import Frontier
from storage.appendcheck import check_and_extend
from storage.blockstore import DuplicateTxError, StateWrite, TxLocation


class MemoryState:
    """Sorted in-memory key/value state."""

    def __init__(self) -> None:
        self._data: dict[bytes, bytes] = {}
        self._keys: list[bytes] = []

    def get(self, key: bytes) -> bytes | None:
        return self._data.get(key)

    def range(self, start: bytes, end: bytes | None) -> Iterator[tuple[bytes, bytes]]:
        i = bisect.bisect_left(self._keys, start)
        keys = self._keys
        while i < len(keys) and (end is None or keys[i] < end):
            yield keys[i], self._data[keys[i]]
            i += 1

    def apply(self, writes: Sequence[StateWrite]) -> None:
        for key, value in writes:
            if value is None:
                if self._data.pop(key, None) is not None:
                    del self._keys[bisect.bisect_left(self._keys, key)]
            else:
                if key not in self._data:
                    bisect.insort(self._keys, key)
                self._data[key] = value


class MemoryBlockStore:
    def __init__(self) -> None:
        self._blocks: list[Block] = []
        self._by_hash: dict[bytes, int] = {}
        self._txs: dict[bytes, TxLocation] = {}
        self._tree = merkle.MemoryTree()
        self._frontier = Frontier()
        self._log: list[bytes] = []
        self._state = MemoryState()
        self._certs: dict[int, list[tuple[str, bytes]]] = {}

    @property
    def height(self) -> int:
        return len(self._blocks)

    @property
    def log_size(self) -> int:
        return self._tree.size

    def anchor(self) -> bytes | None:
        return self._blocks[0].header.prev_hash if self._blocks else None

    def frontier(self) -> Frontier:
        return self._frontier.copy()

    def head(self) -> BlockHeader | None:
        return self._blocks[-1].header if self._blocks else None

    def header(self, height: int) -> BlockHeader | None:
        b = self.block(height)
        return b.header if b else None

    def block(self, height: int) -> Block | None:
        return self._blocks[height - 1] if 1 <= height <= len(self._blocks) else None

    def height_of(self, header_hash: bytes) -> int | None:
        return self._by_hash.get(header_hash)

    def tx_location(self, tx_id: bytes) -> TxLocation | None:
        return self._txs.get(tx_id)

    def tx(self, tx_id: bytes) -> tuple[bytes, TxLocation] | None:
        loc = self._txs.get(tx_id)
        return None if loc is None else (self._log[loc.log_index], loc)

    def log_root(self, size: int | None = None) -> bytes:
        return self._tree.root(size)

    def inclusion_proof(self, log_index: int, tree_size: int) -> list[bytes]:
        _check_size(tree_size, self.log_size)
        return self._tree.inclusion_proof(log_index, tree_size)

    def inclusion_proofs(self, log_indices: Sequence[int], tree_size: int) -> list[list[bytes]]:
        _check_size(tree_size, self.log_size)
        return [self._tree.inclusion_proof(i, tree_size) for i in log_indices]

    def consistency_proof(self, size1: int, size2: int) -> list[bytes]:
        _check_size(size2, self.log_size)
        return self._tree.consistency_proof(size1, size2)

    def state(self) -> MemoryState:
        return self._state

    def certificate(self, height: int) -> list[tuple[str, bytes]]:
        return list(self._certs.get(height, []))

    def put_certificate(self, height: int, signatures: Sequence[tuple[str, bytes]]) -> None:
        self._certs[height] = sorted(signatures)

    def append(self, block: Block, state_writes: Sequence[StateWrite] = ()) -> None:
        frontier = self._frontier.copy()
        ids, _ = check_and_extend(block, self.head(), frontier)
        for tx_id in ids:
            if tx_id in self._txs:
                raise DuplicateTxError(
                    f"block {block.header.height}: tx {tx_id.hex()} is already stored"
                )
        h = block.header
        for pos, (tx_id, raw) in enumerate(zip(ids, block.txs, strict=True)):
            self._txs[tx_id] = TxLocation(h.height, pos, self.log_size + pos, block.results[pos])
            self._log.append(raw)
        self._tree.extend(ids)
        self._frontier = frontier
        self._blocks.append(block)
        self._by_hash[h.hash] = h.height
        self._state.apply(state_writes)

    def close(self) -> None:
        """Nothing to release."""


def _check_size(size: int, log_size: int) -> None:
    if not 0 <= size <= log_size:
        raise merkle.ProofError(f"tree size {size} is beyond the log size {log_size}")
