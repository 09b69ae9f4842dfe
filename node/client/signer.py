"""``TxSigner``: signs txs for one identity, with nonces that never repeat in this process."""

from __future__ import annotations

import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from chain import signing
from chain.tx import Tx, sign_tx
from node.runtime.keys import load_private_key


@dataclass
class TxSigner:
    """Signs txs for one identity, with nonces that never repeat in this process."""

    key: signing.PrivateKey
    chain_id: str
    nonce: int = field(default_factory=time.time_ns)

    @classmethod
    def from_key_file(cls, path: str | Path, *, chain_id: str) -> TxSigner:
        return cls(load_private_key(path), chain_id)

    @property
    def public_key(self) -> bytes:
        return signing.public_key_bytes(self.key)

    def sign(self, kind: str, payload: dict[str, Any], *, timestamp_ms: int | None = None) -> Tx:
        self.nonce += 1
        return sign_tx(
            self.key,
            chain_id=self.chain_id,
            kind=kind,
            nonce=self.nonce,
            timestamp_ms=timestamp_ms if timestamp_ms is not None else time.time_ns() // 1_000_000,
            payload=payload,
        )
