"""The numba backend: compiled kernels behind the same plain-Python API as the reference.

Small inputs to the hashing kernels go to the reference twin, where a kernel call's
fixed cost (array packing, dispatch) would exceed the work; the answers are identical
either way. Ed25519 always takes the kernel: even one signature is faster there.

CPU features: the kernels use no instruction-set extension explicitly (no SHA-NI, IFMA
or AVX-512 intrinsics): numba compiles them for the host CPU it runs on, vectorizing to
whatever that CPU has, and its cache is keyed on that CPU, so no machine can load code
meant for another or abort on a missing instruction. ``warmup()`` ends with a
self-check against the references on this machine (``selfcheck``).
"""

from __future__ import annotations

from collections.abc import Sequence

from chain.kernels import (
    blockroots,
    ed25519,
    logextend,
    msgpack_canon,
    reference,
    selfcheck,
    sha256,
    txpack,
    txrun,
)
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


def fixed_leaves_root(records: bytes, size: int) -> bytes:
    if size > 0 and len(records) < size * LEAVES_MIN_FOR_KERNEL:
        return reference.fixed_leaves_root(records, size)
    return sha256.fixed_leaves_root(records, size)


NODES_MIN_FOR_KERNEL = 16
"""Below this many pairs, hashlib in a loop is as fast as the kernel call."""


def node_hashes(pairs: bytes) -> bytes:
    if len(pairs) < 64 * NODES_MIN_FOR_KERNEL:
        return reference.node_hashes(pairs)
    return sha256.node_hashes(pairs)


KEY_TABLES = KeyTables()
"""The process's per-key tables (bounded LRU); ``register_keys`` fills it ahead of time."""


def verify_batch(
    public_keys: Sequence[bytes], messages: Sequence[bytes], signatures: Sequence[bytes]
) -> list[bool]:
    return ed25519.verify_batch(public_keys, messages, signatures, KEY_TABLES)


def canonical_msgpack(datas: Sequence[bytes]) -> list[bool]:
    return msgpack_canon.canonical(datas)


def register_keys(public_keys: Sequence[bytes]) -> None:
    """Precompute tables for keys about to sign (registered signers, validators)."""
    KEY_TABLES.register(public_keys)


def warmup() -> None:
    """Compile or load every kernel now and build the table of B, so the first block
    does not pay for either; then cross-check every kernel against its reference on
    this machine (raises ``selfcheck.KernelMismatch`` if one disagrees)."""
    sha256.warmup()
    if fixed_leaves_root(bytes(range(34)) * 20, 34) != reference.fixed_leaves_root(
        bytes(range(34)) * 20, 34
    ):
        raise selfcheck.KernelMismatch("fixed_leaves_root disagrees with hashlib")
    if not blockroots.warmup():
        raise selfcheck.KernelMismatch("blockroots disagrees with hashlib")
    if not logextend.warmup():
        raise selfcheck.KernelMismatch("logextend disagrees with hashlib")
    txrun.warmup()
    if not txpack.warmup():
        raise selfcheck.KernelMismatch("txpack does not pack txs as the store lays them out")
    ed25519.warmup()
    msgpack_canon.warmup()
    selfcheck.run(sha256.leaf_hashes, sha256.merkle_root, _verify_fresh, msgpack_canon.canonical)


def _verify_fresh(
    public_keys: Sequence[bytes], messages: Sequence[bytes], signatures: Sequence[bytes]
) -> list[bool]:
    """Both verification paths, without touching the process's key cache."""
    with_tables = ed25519.verify_batch(
        public_keys, messages, signatures, KeyTables(capacity=64, uses_min=1)
    )
    without = ed25519.verify_batch(public_keys, messages, signatures, KeyTables(capacity=0))
    if with_tables != without:
        raise selfcheck.KernelMismatch("Ed25519 table and window paths disagree")
    return with_tables
