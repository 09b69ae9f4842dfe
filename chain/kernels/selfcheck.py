"""A start-up cross-check of the numba kernels against their references.

Why: the tests prove the kernels on the build machine; a node runs them on its own CPU,
compiled (or loaded from cache) there. Before a node accepts a single block, ``run()``
hashes and verifies a fixed set of inputs on both backends, crafted cases included, and
raises if any answer differs: a node that would split the chain stops instead
(DESIGN.md §8, invariants stay on in production). It costs a few milliseconds.
"""

from __future__ import annotations

import hashlib
from collections.abc import Callable, Sequence

from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

from chain.kernels import reference

P = 2**255 - 19
L = 2**252 + 27742317777372353535851937790883648493

Verify = Callable[[Sequence[bytes], Sequence[bytes], Sequence[bytes]], list[bool]]


class KernelMismatch(AssertionError):
    """A kernel disagrees with its reference on this machine: do not run with it."""


def _flip(data: bytes, bit: int) -> bytes:
    b = bytearray(data)
    b[bit // 8] ^= 1 << (bit % 8)
    return bytes(b)


def signature_cases() -> tuple[list[bytes], list[bytes], list[bytes]]:
    """Valid signatures from 8 fixed keys, then the same with a bit flipped in R, S, A
    and M, S + L, and keys that OpenSSL decodes leniently (identity, small order,
    non-canonical y, 'negative zero')."""
    keys, msgs, sigs = [], [], []
    for i in range(8):
        sk = Ed25519PrivateKey.from_private_bytes(hashlib.sha256(b"selfcheck%d" % i).digest())
        pk = sk.public_key().public_bytes(
            serialization.Encoding.Raw, serialization.PublicFormat.Raw
        )
        msg = b"grantchain kernel self-check %d" % i * (i + 1)
        sig = sk.sign(msg)
        s = int.from_bytes(sig[32:], "little")
        variants = [
            (pk, msg, sig),
            (pk, msg, _flip(sig, 7 + 29 * i)),
            (pk, msg, _flip(sig, 256 + 31 * i)),
            (_flip(pk, 3 + 17 * i), msg, sig),
            (pk, _flip(msg, 5 * i), sig),
            (pk, msg, sig[:32] + (s + L).to_bytes(32, "little")),
        ]
        for k, m, sg in variants:
            keys.append(k)
            msgs.append(m)
            sigs.append(sg)
    odd_keys = [
        (1).to_bytes(32, "little"),  # the identity
        (1 | 1 << 255).to_bytes(32, "little"),  # identity, x = 0 with the sign bit set
        (P - 1).to_bytes(32, "little"),  # (0, -1), order 2
        (P + 1).to_bytes(32, "little"),  # non-canonical identity
        bytes(32),  # y = 0: order 4
        bytes(31) + b"\x80",  # y = 0, sign bit set
        (2**255 - 1).to_bytes(32, "little"),  # y = 2^255 - 1 >= p
    ]
    for n, pk in enumerate(odd_keys):
        for r in (odd_keys[n], odd_keys[(n + 1) % len(odd_keys)]):
            keys.append(pk)
            msgs.append(b"m%d" % n)
            sigs.append(r + (n).to_bytes(32, "little"))
    return keys, msgs, sigs


def run(
    leaf_hashes: Callable[[Sequence[bytes]], list[bytes]],
    merkle_root: Callable[[Sequence[bytes]], bytes],
    verify_batch: Verify,
) -> None:
    """Raise ``KernelMismatch`` unless the given kernels give the reference's answers."""
    datas = [hashlib.sha512(b"%d" % n).digest() * (n // 64 + 1) for n in range(0, 300, 7)]
    datas = [d[: n % 200] for n, d in enumerate(datas)]
    if leaf_hashes(datas) != reference.leaf_hashes(datas):
        raise KernelMismatch("leaf hashes differ from hashlib")
    leaves = reference.leaf_hashes(datas)
    for n in (1, 2, 3, 17, len(leaves)):
        if merkle_root(leaves[:n]) != reference.merkle_root(leaves[:n]):
            raise KernelMismatch(f"Merkle root of {n} leaves differs from hashlib")
    keys, msgs, sigs = signature_cases()
    want = reference.verify_batch(keys, msgs, sigs)
    if not any(want) or all(want):
        raise KernelMismatch("self-check cases do not exercise both verdicts")
    for batch in (verify_batch(keys, msgs, sigs), verify_batch(keys * 2, msgs * 2, sigs * 2)):
        if batch[: len(want)] != want:
            bad = [i for i, (a, b) in enumerate(zip(batch, want, strict=False)) if a != b]
            raise KernelMismatch(f"Ed25519 verdicts differ from OpenSSL at cases {bad}")
    alone = [verify_batch([k], [m], [s])[0] for k, m, s in zip(keys, msgs, sigs, strict=True)]
    if alone != want:
        raise KernelMismatch("Ed25519 verdicts alone differ from OpenSSL")
