"""``RememberingVerifier``: a signature verified once is not verified again, a bad one
is never remembered, a remembered verdict never covers another message or key, and the
memory is bounded."""

from __future__ import annotations

from collections.abc import Sequence

from chain import signing
from node.consensus_driver.verified import RememberingVerifier


def _counting() -> tuple[list[int], RememberingVerifier]:
    calls: list[int] = []

    def verify(k: Sequence[bytes], m: Sequence[bytes], s: Sequence[bytes]) -> list[bool]:
        calls.append(len(k))
        return signing.verify_batch(k, m, s)

    return calls, RememberingVerifier(verify, remembered_max=3)


def test_good_signatures_are_verified_once_and_bad_ones_every_time() -> None:
    keys = [signing.private_key_from_bytes(bytes([i]) * 32) for i in range(4)]
    pubs = [signing.public_key_bytes(k) for k in keys]
    msgs = [f"m{i}".encode() for i in range(4)]
    sigs = [signing.sign(k, m) for k, m in zip(keys, msgs, strict=True)]
    calls, v = _counting()
    assert v(pubs[:2], msgs[:2], sigs[:2]) == [True, True]
    assert v(pubs[:2], msgs[:2], sigs[:2]) == [True, True]
    assert calls == [2] and v.hits == 2
    # The same signature over another message, or under another key: verified, and false.
    assert v([pubs[0], pubs[1]], [msgs[1], msgs[1]], [sigs[0], sigs[0]]) == [False, False]
    assert v([pubs[0]], [msgs[1]], [sigs[0]]) == [False]
    assert calls == [2, 2, 1]
    # Bounded: the oldest good one is forgotten and verified again.
    assert v(pubs[2:], msgs[2:], sigs[2:]) == [True, True]
    assert v(pubs[:1], msgs[:1], sigs[:1]) == [True]
    assert calls[-1] == 1
