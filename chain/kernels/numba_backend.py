"""The numba backend: compiled kernels behind the same plain-Python API as the reference.

Small inputs go to the reference twin, where a kernel call's fixed cost (array packing,
dispatch) would exceed the work; the verdicts and hashes are identical either way.
"""

from __future__ import annotations

from collections.abc import Sequence

from chain.kernels import ed25519, reference, sha256
from chain.kernels.keytables import KeyTables

LEAVES_MIN_FOR_KERNEL = 16
"""Below this many inputs, hashlib in a loop is as fast as packing them for the kernel."""


def leaf_hashes(datas: Sequence[bytes]) -> list[bytes]:
    if len(datas) < LEAVES_MIN_FOR_KERNEL:
        return reference.leaf_hashes(datas)
    return sha256.leaf_hashes(datas)


def merkle_root(leaf_hashes: Sequence[bytes]) -> bytes:
    if len(leaf_hashes) < LEAVES_MIN_FOR_KERNEL:
        return reference.merkle_root(leaf_hashes)
    return sha256.merkle_root(leaf_hashes)


KEY_TABLES = KeyTables()
"""The process's per-key tables (bounded LRU); ``register_keys`` fills it ahead of time."""


def verify_batch(
    public_keys: Sequence[bytes], messages: Sequence[bytes], signatures: Sequence[bytes]
) -> list[bool]:
    return ed25519.verify_batch(public_keys, messages, signatures, KEY_TABLES)


def register_keys(public_keys: Sequence[bytes]) -> None:
    """Precompute tables for keys about to sign (registered signers, validators)."""
    KEY_TABLES.register(public_keys)


def warmup() -> None:
    """Compile or load every kernel now, and build the table of B, so the first block
    does not pay for either."""
    sha256.warmup()
    ed25519.warmup()
