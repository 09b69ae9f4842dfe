"""The ``BlockStore`` protocol: an append-only chain of blocks with a tx index, the RFC 9162
log over every tx, and the ACL state, written together in one atomic step per block."""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from typing import NamedTuple, Protocol

from chain.block import Block, BlockHeader
from chain.merkle import Frontier

StateWrite = tuple[bytes, bytes | None]
"""One state change: ``(key, value)``, or ``(key, None)`` to delete."""


class StoreError(Exception):
    """The store cannot do what was asked; the message says what and where."""


class NotAGrantchainStore(StoreError):
    """The directory is missing, foreign, damaged or of another schema version."""


class OtherSchemaStore(NotAGrantchainStore):
    """A grantchain store of a schema version this one does not read."""


class AppendError(StoreError):
    """A block does not continue the chain (wrong height, link, log size, or a duplicate tx)."""


class TxPrunedError(StoreError):
    """The tx is in the chain, but its bytes were pruned (its id, location and result,
    and every proof over it, are kept)."""


class DuplicateTxError(AppendError):
    """A block holds a tx the chain already has: nothing of it was written."""


class TxLocation(NamedTuple):
    """Where a committed tx is. A named tuple: one is made per tx on the commit path."""

    height: int
    position: int
    """Index of the tx inside its block."""
    log_index: int
    """Index of the tx in the whole log since genesis (its Merkle leaf index)."""
    result: int


class StateView(Protocol):
    def get(self, key: bytes) -> bytes | None: ...

    def range(self, start: bytes, end: bytes | None) -> Iterator[tuple[bytes, bytes]]:
        """Items with ``start <= key < end`` (no upper bound when ``end`` is None), ascending."""
        ...


class BlockStore(Protocol):
    @property
    def height(self) -> int:
        """Height of the last block; 0 when empty (the first block has height 1)."""
        ...

    @property
    def log_size(self) -> int: ...

    def anchor(self) -> bytes | None:
        """``prev_hash`` of block 1 (the genesis hash); None when empty."""
        ...

    def head(self) -> BlockHeader | None: ...

    def frontier(self) -> Frontier:
        """A copy of the log's right edge, to build the next block on."""
        ...

    def header(self, height: int) -> BlockHeader | None: ...

    def block(self, height: int) -> Block | None: ...

    def height_of(self, header_hash: bytes) -> int | None: ...

    def tx(self, tx_id: bytes) -> tuple[bytes, TxLocation] | None: ...

    def tx_location(self, tx_id: bytes) -> TxLocation | None: ...

    def log_root(self, size: int | None = None) -> bytes: ...

    def inclusion_proof(self, log_index: int, tree_size: int) -> list[bytes]: ...

    def inclusion_proofs(self, log_indices: Sequence[int], tree_size: int) -> list[list[bytes]]:
        """``inclusion_proof`` of each index (one read, shared nodes read once)."""
        ...

    def consistency_proof(self, size1: int, size2: int) -> list[bytes]: ...

    def state(self) -> StateView: ...

    def certificate(self, height: int) -> list[tuple[str, bytes]]:
        """The header signatures ``(node_id, signature)`` stored for ``height``."""
        ...

    def put_certificate(self, height: int, signatures: Sequence[tuple[str, bytes]]) -> None: ...

    def append(self, block: Block, state_writes: Sequence[StateWrite] = ()) -> None:
        """Persist the block, its tx index, log nodes and state writes atomically; when this
        returns the block is durable."""
        ...

    def close(self) -> None: ...
