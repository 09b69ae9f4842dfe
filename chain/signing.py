"""Ed25519: signing and key handling through ``cryptography`` only; verification through
the kernel backend, whose verdicts equal OpenSSL's on every input.

Every signed message starts with a domain tag, so a signature over one kind of object
can never be replayed as a signature over another.
"""

from __future__ import annotations

from collections.abc import Sequence

from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

from chain.kernels import backend

TX_DOMAIN = b"grantchain/tx/v1\x00"
HEADER_DOMAIN = b"grantchain/header-sig/v1\x00"

PrivateKey = Ed25519PrivateKey


def generate_private_key() -> Ed25519PrivateKey:
    return Ed25519PrivateKey.generate()


def private_key_from_bytes(raw: bytes) -> Ed25519PrivateKey:
    if len(raw) != 32:
        raise ValueError(f"an Ed25519 private key is 32 bytes, got {len(raw)}")
    return Ed25519PrivateKey.from_private_bytes(raw)


def private_key_bytes(key: Ed25519PrivateKey) -> bytes:
    return key.private_bytes(
        serialization.Encoding.Raw,
        serialization.PrivateFormat.Raw,
        serialization.NoEncryption(),
    )


def public_key_bytes(key: Ed25519PrivateKey) -> bytes:
    return key.public_key().public_bytes(serialization.Encoding.Raw, serialization.PublicFormat.Raw)


def sign(key: Ed25519PrivateKey, message: bytes) -> bytes:
    return key.sign(message)


def verify_batch(
    public_keys: Sequence[bytes], messages: Sequence[bytes], signatures: Sequence[bytes]
) -> list[bool]:
    """One verdict per (key, message, signature); a key or signature of the wrong length
    is simply False. The three sequences must have the same length."""
    if not len(public_keys) == len(messages) == len(signatures):
        raise ValueError(
            f"verify_batch needs equal lengths, got {len(public_keys)}, "
            f"{len(messages)}, {len(signatures)}"
        )
    return backend.active().verify_batch(public_keys, messages, signatures)


def verify(public_key: bytes, message: bytes, signature: bytes) -> bool:
    return verify_batch([public_key], [message], [signature])[0]
