"""A start-up cross-check of the numba kernels against their references.

Why: the tests prove the kernels on the build machine; a node runs them on its own CPU,
compiled (or loaded from cache) there. Before a node accepts a single block, ``run()``
hashes and verifies a fixed set of inputs on both backends, crafted cases included, and
raises if any answer differs: a node that would split the chain stops instead
(docs/architecture.md §8, invariants stay on in production). It costs a few milliseconds.
"""

from __future__ import annotations

import hashlib
import struct
from collections.abc import Callable, Sequence

import msgpack
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


_INT_FORMS = [  # (marker, struct format, least, greatest): every msgpack int form
    (0xCC, ">B", 0, 2**8 - 1),
    (0xCD, ">H", 0, 2**16 - 1),
    (0xCE, ">I", 0, 2**32 - 1),
    (0xCF, ">Q", 0, 2**64 - 1),
    (0xD0, ">b", -(2**7), 2**7 - 1),
    (0xD1, ">h", -(2**15), 2**15 - 1),
    (0xD2, ">i", -(2**31), 2**31 - 1),
    (0xD3, ">q", -(2**63), 2**63 - 1),
]
_LENGTH_FORMS = {  # kind: [(marker, length bytes, greatest length)], the fix form aside
    "str": [(0xD9, 1, 2**8 - 1), (0xDA, 2, 2**16 - 1), (0xDB, 4, 2**32 - 1)],
    "bin": [(0xC4, 1, 2**8 - 1), (0xC5, 2, 2**16 - 1), (0xC6, 4, 2**32 - 1)],
    "array": [(0xDC, 2, 2**16 - 1), (0xDD, 4, 2**32 - 1)],
    "map": [(0xDE, 2, 2**16 - 1), (0xDF, 4, 2**32 - 1)],
}


def msgpack_cases() -> list[bytes]:
    """Encodings around every boundary of the canonical rule: each int, str, bin, array
    and map at the edges of its forms in every form that holds it (one is canonical),
    strs of every UTF-8 shape and misshape, unsorted, repeated and non-str map keys,
    floats, extension types, 0xc1, depth at and past the limit, truncation, trailing
    bytes."""
    cases: list[bytes] = []
    edges = [0, 1, 31, 32, 127, 128, 255, 256, 2**15, 2**16 - 1, 2**16, 2**31, 2**32 - 1]
    edges += [2**32, 2**63, 2**64 - 1]
    ints = sorted({*edges, *(-e for e in edges if 0 < e <= 2**63), -33, -129, -32769})
    for v in ints:
        if -32 <= v <= 127:
            cases.append(struct.pack(">b", v) if v < 0 else bytes([v]))
        for marker, fmt, lo, hi in _INT_FORMS:
            if lo <= v <= hi:
                cases.append(bytes([marker]) + struct.pack(fmt, v))
    for kind, forms in _LENGTH_FORMS.items():
        for n in (0, 1, 15, 16, 31, 32, 255, 256, 65535, 65536):
            if kind in ("array", "map") and n > 16:
                continue
            if kind == "str":
                body = b"a" * n
            elif kind == "bin":
                body = b"\x07" * n
            elif kind == "array":
                body = b"\xc0" * n
            else:
                body = b"".join(msgpack.packb(f"k{i:02d}") + b"\xc0" for i in range(n))
            fix = {"str": (0xA0, 32), "array": (0x90, 16), "map": (0x80, 16)}.get(kind)
            if fix and n < fix[1]:
                cases.append(bytes([fix[0] + n]) + body)
            for marker, width, hi in forms:
                if n <= hi:
                    cases.append(bytes([marker]) + n.to_bytes(width, "big") + body)
    for utf8 in (
        "é€😀".encode(),
        b"\x7f",
        b"\xc2\x80",
        b"\xdf\xbf",
        b"\xe0\xa0\x80",
        b"\xef\xbf\xbf",
        b"\xf0\x90\x80\x80",
        b"\xf4\x8f\xbf\xbf",  # the edges of the well-formed
        b"\xc0\x80",
        b"\xc1\xbf",
        b"\xe0\x9f\xbf",
        b"\xf0\x8f\xbf\xbf",  # overlong
        b"\xed\xa0\x80",
        b"\xed\xbf\xbf",
        b"\xf4\x90\x80\x80",
        b"\xf5\x80\x80\x80",
        b"\x80",
        b"\xbf",
        b"\xe2\x82",
        b"\xf0\x90\x80",
        b"\xc3\x28",
        b"\xe2\x28\xa1",
        b"\xe2\x82\x28",
        b"\xf0\x90\x80\x28",
    ):
        cases.append(bytes([0xA0 + len(utf8)]) + utf8)
        cases.append(b"\x81" + bytes([0xA0 + len(utf8)]) + utf8 + b"\xc0")  # as a key
    one = msgpack.packb
    cases += [
        one({"a": 1, "b": [1, {"c": None}]}),
        b"\x82\xa1b\x01\xa1a\x01",  # unsorted
        b"\x82\xa1a\x01\xa1a\x02",  # repeated
        b"\x82\xa1a\x01\xa2a\x00\x02",  # a prefix first: sorted
        b"\x82\xa2a\x00\x01\xa1a\x02",  # the prefix second: not
        b"\x81\x01\x01",  # int key
        b"\x81\xc4\x01a\x01",  # bin key
        b"\x81\xc0\x01",  # nil key
        b"\xca\x00\x00\x00\x00",
        b"\xcb" + bytes(8),
        b"\xc1",
        b"\xd4\x01\x00",
        b"\xd8\x01" + bytes(16),
        b"\xc7\x01\x01\x00",
        b"\xc9\x00\x00\x00\x01\x01\x00",
        b"",
        b"\x00\x00",
        b"\x92\x01",
        b"\xdc\x00",
        b"\xcd\x01",
        b"\xa3ab",
        b"\xc4\x05abc",
    ]
    for depth in (7, 8, 9):  # lists and maps nested to the limit and past it
        cases.append(b"\x91" * depth + b"\x90")
        cases.append(b"\x91" * depth + b"\x91\x00")
        cases.append(b"\x81\xa1k" * depth + b"\x80")
        cases.append(b"\x81\xa1k" * depth + b"\x81\xa1k\xc0")
    return cases


def run(
    leaf_hashes: Callable[[Sequence[bytes]], list[bytes]],
    merkle_root: Callable[[Sequence[bytes]], bytes],
    verify_batch: Verify,
    canonical_msgpack: Callable[[Sequence[bytes]], list[bool]] | None = None,
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
    if canonical_msgpack is not None:
        cases = msgpack_cases()
        got, want = canonical_msgpack(cases), reference.canonical_msgpack(cases)
        if got != want:
            wrong = [c[:16].hex() for c, a, b in zip(cases, got, want, strict=False) if a != b]
            raise KernelMismatch(f"canonical msgpack verdicts differ from the codec's: {wrong}")
