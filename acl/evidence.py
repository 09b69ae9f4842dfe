"""Evidence: where the txs an answer rests on are, and how many one answer names.

Every answer names the txs it rests on as ``TxRef`` (height, index in block, tx id), so a
receipt (the tx, its header, a Merkle inclusion proof and the certificate) can be
attached and checked offline; ``cap_evidence`` keeps a list of them bounded.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from typing import Any, Final

EVIDENCE_MAX: Final = 10_000
"""At most this many tx refs in one answer; ``truncated`` says when more existed."""


@dataclass(frozen=True, slots=True, order=True)
class TxRef:
    """Where a tx is on chain: what a receipt (inclusion proof) is requested for."""

    height: int
    index: int
    tx_id: bytes

    def to_json(self) -> dict[str, Any]:
        return {"height": self.height, "index": self.index, "tx_id": self.tx_id.hex()}


def parse_ref(position: Any) -> TxRef:
    """The ``TxRef`` of a stored ``[height, index, tx id]`` position."""
    height, index, tx_id = position
    return TxRef(height, index, tx_id)


def cap_evidence(refs: Iterable[TxRef]) -> tuple[tuple[TxRef, ...], bool]:
    """The refs sorted and deduplicated, at most ``EVIDENCE_MAX`` of them, and whether
    more existed (an answer's ``truncated``)."""
    unique = sorted(set(refs))
    return tuple(unique[:EVIDENCE_MAX]), len(unique) > EVIDENCE_MAX
