"""``NodeService``: what the HTTP routes need of a running node.

Owned by the routes (DESIGN convention: a Protocol lives with the code that uses it), so
``node.api`` never imports ``node.app``: the composition root hands a ``Node`` to
``make_app`` and the type checker proves that it fits.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any, Protocol

from chain.block import Block
from node.pipeline.admission import Admitted
from node.runtime.metrics import NodeMetrics
from storage.blockstore import TxLocation
from storage.lmdb_store import LmdbBlockStore


class Quorum(Protocol):
    """How many header signatures make a block's certificate."""

    @property
    def quorum(self) -> int: ...

    def quorum_at(self, height: int) -> int:
        """Signatures block ``height``'s certificate needs (the validator set in force
        there: governance changes it)."""
        ...


class NodeService(Protocol):
    """The node as the RPC sees it: admission, commit waits, receipts and reads."""

    @property
    def metrics(self) -> NodeMetrics: ...

    @property
    def store(self) -> LmdbBlockStore: ...

    @property
    def certs(self) -> Quorum: ...

    def status(self) -> dict[str, Any]: ...

    async def submit(self, raws: Sequence[bytes], *, forwarded: bool = False) -> list[Admitted]: ...

    def is_queued(self, tx_id: bytes) -> bool: ...

    def can_wait(self, n: int) -> bool: ...

    async def wait_committed(
        self, tx_ids: Sequence[bytes], timeout_s: float
    ) -> dict[bytes, TxLocation]: ...

    async def wait_certified(self, height: int, timeout_s: float) -> bool: ...

    async def wait_for_height(self, height: int, timeout_s: float) -> int: ...

    async def receipt(self, tx_id: bytes) -> dict[str, Any] | None: ...

    async def receipts(self, tx_ids: Sequence[bytes]) -> dict[bytes, dict[str, Any]]: ...

    def block(self, height: int) -> Block | None: ...
