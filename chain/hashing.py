"""SHA-256 with RFC 9162 domain separation: leaf = H(0x00 || data), node = H(0x01 || l || r)."""

from __future__ import annotations

import hashlib
from collections.abc import Sequence

from chain.kernels import backend

LEAF_PREFIX = b"\x00"
NODE_PREFIX = b"\x01"
EMPTY_ROOT = hashlib.sha256(b"").digest()


def sha256(data: bytes) -> bytes:
    return hashlib.sha256(data).digest()


def leaf_hash(data: bytes) -> bytes:
    return hashlib.sha256(LEAF_PREFIX + data).digest()


def node_hash(left: bytes, right: bytes) -> bytes:
    return hashlib.sha256(NODE_PREFIX + left + right).digest()


def leaf_hashes(datas: Sequence[bytes]) -> list[bytes]:
    """Leaf hashes of many inputs at once, on the active kernel backend."""
    return backend.active().leaf_hashes(datas)
