"""The signer and verifier a PBFT replica is given (Castro-Liskov TOCS 2002 §3: every
message is signed; we use Ed25519 through ``chain.signing``)."""

from __future__ import annotations

from pbft_harness import key

from chain import signing
from consensus.pbft_signing import Ed25519Signer, Ed25519Verifier


def test_verify_accepts_the_signer_and_nothing_else() -> None:
    ver = Ed25519Verifier({"a": signing.public_key_bytes(key("a"))}, cache_max=2)
    sig = Ed25519Signer(key("a")).sign(b"m")
    assert ver.verify("a", b"m", sig)
    assert not ver.verify("a", b"n", sig)
    assert not ver.verify("b", b"m", sig)  # unknown replica
    assert not ver.verify("a", b"m", Ed25519Signer(key("b")).sign(b"m"))
    assert not ver.verify("a", b"m", b"short")
    assert len(ver._cache) <= 2  # bounded
    assert ver.verify("a", b"m", sig)  # still right after eviction
