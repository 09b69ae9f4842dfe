"""Reference backend: ``hashlib`` and ``cryptography`` (OpenSSL). The numba kernels must
give exactly these answers on every input."""

from __future__ import annotations

import hashlib
from collections.abc import Sequence

from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PublicKey

LEAF_PREFIX = b"\x00"
NODE_PREFIX = b"\x01"


def leaf_hashes(datas: Sequence[bytes]) -> list[bytes]:
    sha = hashlib.sha256
    return [sha(LEAF_PREFIX + d).digest() for d in datas]


def fixed_leaves_root(records: bytes, size: int) -> bytes:
    """RFC 9162 root over the leaf hashes of the ``size``-byte records laid end to end in
    ``records`` (at least one)."""
    if size <= 0 or not records or len(records) % size:
        raise ValueError(f"{len(records)} bytes are not whole records of {size} bytes")
    return merkle_root(leaf_hashes([records[i : i + size] for i in range(0, len(records), size)]))


def merkle_root(leaf_hashes: Sequence[bytes]) -> bytes:
    """RFC 9162 root by pairing level by level; an odd last node moves up unchanged,
    which gives the same tree as the RFC's split at the largest power of two."""
    if not leaf_hashes:
        return hashlib.sha256(b"").digest()
    sha = hashlib.sha256
    level = list(leaf_hashes)
    while len(level) > 1:
        nxt = [
            sha(NODE_PREFIX + level[i] + level[i + 1]).digest() for i in range(0, len(level) - 1, 2)
        ]
        if len(level) % 2:
            nxt.append(level[-1])
        level = nxt
    return level[0]


def node_hashes(pairs: bytes) -> bytes:
    """RFC 9162 node hashes ``SHA-256(0x01 || l || r)`` of the 64-byte pairs in ``pairs``."""
    if len(pairs) % 64:
        raise ValueError("node_hashes takes pairs of 32-byte hashes")
    sha = hashlib.sha256
    return b"".join(sha(NODE_PREFIX + pairs[i : i + 64]).digest() for i in range(0, len(pairs), 64))


def verify_one(public_key: bytes, message: bytes, signature: bytes) -> bool:
    if len(public_key) != 32 or len(signature) != 64:
        return False
    try:
        Ed25519PublicKey.from_public_bytes(bytes(public_key)).verify(
            bytes(signature), bytes(message)
        )
    except (InvalidSignature, ValueError):
        return False
    return True


def verify_batch(
    public_keys: Sequence[bytes], messages: Sequence[bytes], signatures: Sequence[bytes]
) -> list[bool]:
    return [verify_one(k, m, s) for k, m, s in zip(public_keys, messages, signatures, strict=True)]


def warmup() -> None:
    """Nothing to compile."""


def register_keys(public_keys: Sequence[bytes]) -> None:
    """OpenSSL keeps no per-key state: nothing to precompute."""


def canonical_msgpack(datas: Sequence[bytes]) -> list[bool]:
    """Per input: is it exactly one canonical value? ``chain.codec.decode``'s verdict,
    whatever the size (sizes are the caller's to check)."""
    from chain import codec  # codec screens batches on the active backend: import late

    out = []
    for data in datas:
        try:
            codec.decode(data, max_bytes=max(1, len(data)))
        except codec.DecodeError:
            out.append(False)
        else:
            out.append(True)
    return out
