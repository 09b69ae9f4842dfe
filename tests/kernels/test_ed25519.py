"""Ed25519 verification gives OpenSSL's verdict on every input, on both backends.

Evidence, in order of strength: every case in ``openssl_verdicts.json`` (OpenSSL's own
answers, incl. small-order, non-canonical and cofactored-only crafted signatures), alone
and shuffled into batches of 1, 7, 64 and 1,024 with several seeds; then Hypothesis
differential tests against ``cryptography`` on random keys and crafted mutations. The
numba verifier has two paths for [h]A (per-key table, per-signature window); every test
runs both.
"""

from __future__ import annotations

import hashlib
import importlib.util
import json
import random
from collections.abc import Callable
from functools import cache
from types import ModuleType

import pytest
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from chain import signing
from chain.kernels import ed25519, reference
from chain.kernels.keytables import KeyTables
from tests.conftest import VECTORS

ED = VECTORS / "ed25519"
L = ed25519.L
P = 2**255 - 19

Case = tuple[bytes, bytes, bytes, bool, str]
Verifier = Callable[[list[bytes], list[bytes], list[bytes]], list[bool]]


@cache
def _cases() -> list[Case]:
    data = json.loads((ED / "openssl_verdicts.json").read_text())
    return [
        (
            bytes.fromhex(c["public_key"]),
            bytes.fromhex(c["message"]),
            bytes.fromhex(c["signature"]),
            c["openssl"] == "accept",
            c["id"],
        )
        for group in data["ed25519"].values()
        for c in group["cases"]
    ]


@cache
def _model() -> ModuleType:
    spec = importlib.util.spec_from_file_location("openssl_model", ED / "ed25519_openssl_model.py")
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def _numba_tables(keys: list[bytes], msgs: list[bytes], sigs: list[bytes]) -> list[bool]:
    return ed25519.verify_batch(keys, msgs, sigs, KeyTables(capacity=4096, uses_min=1))


def _numba_window(keys: list[bytes], msgs: list[bytes], sigs: list[bytes]) -> list[bool]:
    return ed25519.verify_batch(keys, msgs, sigs, KeyTables(capacity=0))


VERIFIERS: dict[str, Verifier] = {
    "reference": reference.verify_batch,
    "numba-tables": _numba_tables,
    "numba-window": _numba_window,
}


def test_vector_file_holds_every_set() -> None:
    ids = {c[4].split("/")[0] for c in _cases()}
    assert ids == {"wycheproof", "rfc8032", "speccheck", "supercop", "supercop_mutated", "edge"}
    assert len(_cases()) == 2272


@pytest.mark.parametrize("name", VERIFIERS)
def test_every_vector_in_one_batch(name: str) -> None:
    cases = _cases()
    got = VERIFIERS[name]([c[0] for c in cases], [c[1] for c in cases], [c[2] for c in cases])
    wrong = [c[4] for c, v in zip(cases, got, strict=True) if v != c[3]]
    assert wrong == []


@pytest.mark.parametrize("name", ["numba-tables", "numba-window"])
def test_every_vector_alone(name: str) -> None:
    wrong = [c[4] for c in _cases() if VERIFIERS[name]([c[0]], [c[1]], [c[2]]) != [c[3]]]
    assert wrong == []


@pytest.mark.parametrize("seed", [1, 2, 3])
@pytest.mark.parametrize("size", [1, 7, 64, 1024])
def test_every_hard_case_mixed_into_batches(seed: int, size: int) -> None:
    """Each non-SUPERCOP case (the crafted ones) at a random position in a batch of
    random other cases; the batch's other verdicts must not move either."""
    rng = random.Random(seed * 10007 + size)
    cases = _cases()
    hard = [c for c in cases if not c[4].startswith("supercop")]
    verifiers = [_numba_tables, _numba_window]
    rounds = hard if size < 64 else [hard[i::8] for i in range(8)]
    for item in rounds:
        chosen = [item] if isinstance(item, tuple) else list(item)
        filler = [rng.choice(cases) for _ in range(max(0, size - len(chosen)))]
        batch = filler[:]
        for c in chosen:
            batch.insert(rng.randrange(len(batch) + 1), c)
        batch = batch[: max(size, len(chosen))]
        verify = verifiers[rng.randrange(2)] if size < 64 else None
        for v in [verify] if verify else verifiers:
            got = v([c[0] for c in batch], [c[1] for c in batch], [c[2] for c in batch])
            assert got == [c[3] for c in batch], [c[4] for c in batch]


def test_public_api_shapes() -> None:
    key = Ed25519PrivateKey.from_private_bytes(bytes(range(32)))
    pk = key.public_key().public_bytes(serialization.Encoding.Raw, serialization.PublicFormat.Raw)
    sig = key.sign(b"m")
    assert signing.verify_batch([], [], []) == []
    assert signing.verify_batch([pk], [b"m"], [sig]) == [True]
    assert signing.verify(pk, b"m", sig)
    keys = [pk, pk[:31], pk + b"\x00", pk, b"", pk]
    sigs = [sig, sig, sig, sig[:63], sig, sig + b"\x00"]
    assert signing.verify_batch(keys, [b"m"] * 6, sigs) == [True] + [False] * 5
    assert signing.verify_batch([bytearray(pk)], [memoryview(b"m")], [bytearray(sig)]) == [True]
    with pytest.raises(ValueError):
        signing.verify_batch([pk], [b"m", b"n"], [sig])
    for name, verify in VERIFIERS.items():
        assert verify(keys, [b"m"] * 6, sigs) == [True] + [False] * 5, name
        assert verify([], [], []) == [], name
        with pytest.raises(ValueError):
            verify([pk, pk], [b"m"], [sig, sig])


def test_key_tables_stay_bounded_and_are_used() -> None:
    tables = KeyTables(capacity=3, uses_min=2)
    keys = [_public(i) for i in range(6)]
    tables.tables_for(keys)  # seen once each: no table yet
    assert len(tables) == 0
    slots, slab = tables.tables_for(keys[:2] * 2)
    assert len(tables) == 2 and list(slots) == [0, 1, 0, 1]
    assert slab.shape[0] == 2 * 3 * ed25519.ed.KEY_TABLE_WORDS  # room for 2 x capacity
    tables.register(keys)
    assert len(tables) == 3 and keys[5] in tables and keys[0] not in tables


def test_key_tables_compact_into_a_new_slab_and_verdicts_hold() -> None:
    """Capacity 2: every few keys the slab runs out of fresh positions and the live
    tables move to a new one; a table handed out earlier is never overwritten."""
    tables = KeyTables(capacity=2, uses_min=1)
    signers = [Ed25519PrivateKey.from_private_bytes(bytes([i + 1]) * 32) for i in range(9)]
    pubs = [_public(bytes([i + 1]) * 32) for i in range(9)]
    slots0, slab0 = tables.tables_for(pubs[:1])
    words = ed25519.ed.KEY_TABLE_WORDS
    used = slab0[slots0[0] * words : (slots0[0] + 1) * words]
    before = used.copy()
    for i, key in enumerate(signers):
        msgs = [b"a%d" % i, b"b%d" % i]
        sigs = [key.sign(msgs[0]), key.sign(msgs[1])[:32] + bytes(32)]
        assert ed25519.verify_batch([pubs[i]] * 2, msgs, sigs, tables) == [True, False]
        assert len(tables) <= 2
    assert (used == before).all()
    assert tables.tables_for(pubs[:1])[1] is not slab0


# ---- Hypothesis: differential against cryptography on random and crafted inputs ----


def _public(seed: int | bytes) -> bytes:
    raw = seed if isinstance(seed, bytes) else seed.to_bytes(32, "little")
    return (
        Ed25519PrivateKey.from_private_bytes(raw)
        .public_key()
        .public_bytes(serialization.Encoding.Raw, serialization.PublicFormat.Raw)
    )


@cache
def _small_order_encodings() -> list[bytes]:
    """All eight points of order dividing 8, canonical and every non-canonical encoding
    (y + p for y < 19, either sign bit) of those whose y allows it; plus non-canonical
    y >= p encodings of ordinary points."""
    m = _model()
    rng = random.Random(8)
    while True:
        y = rng.randrange(P)
        x = m._recover_x(y, 0)
        if x is None:
            continue
        t = m._mul(L, (x, y, 1, x * y % P))
        if m._encode(m._mul(4, t)) != m._encode(m.IDENT):  # order 8
            break
    points = [m._mul(k, t) for k in range(8)]
    out = set()
    for pt in points:
        enc = m._encode(pt)
        out.add(enc)
        out.add(bytes(enc[:31]) + bytes([enc[31] ^ 0x80]))
    for y in range(19):
        for sign in (0, 1):
            out.add((y + P + (sign << 255)).to_bytes(32, "little"))
    return sorted(out)


def _craft_accepting(m: ModuleType, pk: bytes, msg: bytes, s: int = 0) -> bytes:
    """R = encode([s]B - [h]A) is circular (h depends on R), so with s = 0 and A of small
    order, R' = -[h]A is one of at most 8 points: trying every small-order R finds one
    that OpenSSL's rule accepts with good odds."""
    v = int.from_bytes(pk, "little")
    y = (v & ((1 << 255) - 1)) % P
    x = m._recover_x(y, v >> 255)
    if x is None:  # not a point: every signature is rejected
        return bytes(32) + s.to_bytes(32, "little")
    neg_a = ((-x) % P, y, 1, (-x * y) % P)
    for r in _small_order_encodings():
        sig_r = r
        h = int.from_bytes(hashlib.sha512(sig_r + pk + msg).digest(), "little") % L
        want = m._add(m._mul(s, m.BASE), m._mul(h, neg_a))
        if m._encode(want) == sig_r:
            return sig_r + s.to_bytes(32, "little")
    return bytes(32) + s.to_bytes(32, "little")


def _flip(data: bytes, bit: int) -> bytes:
    b = bytearray(data)
    b[(bit // 8) % len(b)] ^= 1 << (bit % 8)
    return bytes(b)


def _agree(keys: list[bytes], msgs: list[bytes], sigs: list[bytes]) -> None:
    want = reference.verify_batch(keys, msgs, sigs)
    assert _numba_tables(keys, msgs, sigs) == want
    assert _numba_window(keys, msgs, sigs) == want
    assert signing.verify_batch(keys, msgs, sigs) == want


MUTATIONS = ["none", "flip_r", "flip_s", "flip_a", "flip_m", "s_plus_l", "small_a", "small_r"]


@settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(
    seed=st.binary(min_size=32, max_size=32),
    msg=st.binary(max_size=80),
    mutation=st.sampled_from(MUTATIONS),
    bit=st.integers(0, 1023),
    pick=st.integers(0, 10**6),
)
def test_differential_random_and_mutated(
    seed: bytes, msg: bytes, mutation: str, bit: int, pick: int
) -> None:
    key = Ed25519PrivateKey.from_private_bytes(seed)
    pk = _public(seed)
    sig = key.sign(msg)
    small = _small_order_encodings()
    if mutation == "flip_r":
        sig = _flip(sig[:32], bit % 256) + sig[32:]
    elif mutation == "flip_s":
        sig = sig[:32] + _flip(sig[32:], bit % 256)
    elif mutation == "flip_a":
        pk = _flip(pk, bit % 256)
    elif mutation == "flip_m":
        msg = _flip(msg, bit) if msg else b"\x01"
    elif mutation == "s_plus_l":
        s = int.from_bytes(sig[32:], "little") + L * (1 + pick % 8)
        if s < 2**256:
            sig = sig[:32] + s.to_bytes(32, "little")
    elif mutation == "small_a":
        pk = small[pick % len(small)]
    elif mutation == "small_r":
        sig = small[pick % len(small)] + sig[32:]
    _agree([pk], [msg], [sig])


@settings(max_examples=40, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(
    a=st.integers(0, 10**6),
    msg=st.binary(max_size=40),
    s=st.integers(0, L - 1),
    extra=st.booleans(),
)
def test_differential_small_order_keys_with_crafted_r(
    a: int, msg: bytes, s: int, extra: bool
) -> None:
    """Signatures under small-order and non-canonical keys, some of which OpenSSL's rule
    accepts (found by search), alone and next to ordinary ones in one batch."""
    small = _small_order_encodings()
    pk = small[a % len(small)]
    sig = _craft_accepting(_model(), pk, msg, s if s % 2 else 0)
    keys, msgs, sigs = [pk], [msg], [sig]
    if extra:
        other = Ed25519PrivateKey.from_private_bytes(bytes(32))
        keys.append(_public(bytes(32)))
        msgs.append(msg)
        sigs.append(other.sign(msg))
    _agree(keys, msgs, sigs)


def test_crafted_small_order_signatures_do_get_accepted() -> None:
    """Guard that the crafting above really reaches the accepting side of the rule."""
    m = _model()
    accepted = 0
    for i, pk in enumerate(_small_order_encodings()):
        msg = b"x%d" % i
        sig = _craft_accepting(m, pk, msg)
        if reference.verify_one(pk, msg, sig):
            accepted += 1
            _agree([pk], [msg], [sig])
    assert accepted >= 10
