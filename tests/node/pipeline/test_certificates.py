"""Header signatures into certificates: a quorum of validators, only for the header this
node applied, and a window of heights no peer can move (issue 15 §4)."""

from __future__ import annotations

import dataclasses

from chain import signing
from chain.block import BlockHeader
from chain.genesis import Genesis, Organisation, Validator
from chain.receipt import header_signing_bytes
from chain.validator_sets import ValidatorHistory
from node.pipeline.certificates import HEIGHTS_KEPT, CertificateCollector
from node.transport.messages import HeaderSig
from tests.factories import ChainBuilder, count_verify_batches

NODE_KEYS = {f"n{i}": signing.private_key_from_bytes(bytes([0x60 + i]) * 32) for i in (1, 2, 3)}
GENESIS = Genesis(
    chain_id="certs",
    consensus="raft",
    timestamp_ms=0,
    organisations=(Organisation("org1", "Org 1"),),
    identities=(),
    validators=tuple(
        Validator(n, "org1", signing.public_key_bytes(k)) for n, k in NODE_KEYS.items()
    ),
    governance_quorum=1,
)


def _sig(frm: str, height: int, header_hash: bytes) -> HeaderSig:
    sig = signing.sign(NODE_KEYS[frm], header_signing_bytes(header_hash))
    return HeaderSig(frm, height, header_hash, sig)


def _headers(n: int) -> list[BlockHeader]:
    chain = ChainBuilder()
    return [chain.block(1).header for _ in range(n)]


def _collector(applied_height: int = 0) -> CertificateCollector:
    return CertificateCollector(
        ValidatorHistory(GENESIS), "n1", NODE_KEYS["n1"], applied_height=applied_height
    )


def test_a_quorum_of_signatures_over_the_applied_header_is_a_certificate() -> None:
    [h] = _headers(1)
    certs = _collector()
    certs.sign_applied(h)
    assert certs.ready(1) is None  # 1 of 3, quorum 2
    forged = dataclasses.replace(_sig("n2", 1, h.hash), signature=b"x" * 64)
    assert not certs.add(forged)
    assert not certs.add(dataclasses.replace(_sig("n2", 1, h.hash), frm="n9"))  # no such node
    assert certs.add(_sig("n2", 1, b"\x07" * 32))  # a valid signature over another header
    assert certs.ready(1) is None
    assert certs.add(_sig("n3", 1, h.hash))
    cert = certs.ready(1)
    assert cert is not None and [n for n, _ in cert] == ["n1", "n3"]
    assert certs.ready(1) is None  # once


def test_signatures_for_far_future_heights_cannot_push_honest_ones_out() -> None:
    """Seen: five junk signatures from one validator, each HEIGHTS_KEPT past the last,
    moved the window so far that honest signatures were refused until restart."""
    headers = _headers(3)
    certs = _collector()
    for h in headers[:2]:
        certs.sign_applied(h)
    for i in range(1, 6):
        certs.add(_sig("n3", 2 + i * HEIGHTS_KEPT, b"\x09" * 32))
    certs.sign_applied(headers[2])
    assert certs.add(_sig("n2", 3, headers[2].hash))
    assert certs.ready(3) is not None


def test_the_window_starts_at_the_height_a_restarted_node_has_applied() -> None:
    certs = _collector(applied_height=100_000)
    assert certs.add(_sig("n2", 100_001, b"\x01" * 32))
    assert not certs.add(_sig("n2", 100_000 + HEIGHTS_KEPT + 1, b"\x01" * 32))
    assert not certs.add(_sig("n2", 100_000 - HEIGHTS_KEPT - 1, b"\x01" * 32))


def test_signatures_that_came_before_the_apply_are_checked_together_as_it_applies() -> None:
    """They are kept unchecked, then verified in one batch by ``sign_applied``: a forged
    one and one from an unknown node are dropped, the others count as if added after."""
    [h] = _headers(1)
    certs = _collector()
    forged = dataclasses.replace(_sig("n2", 1, h.hash), signature=b"x" * 64)
    assert certs.add(forged)  # not checkable yet: kept
    assert certs.add(dataclasses.replace(_sig("n3", 1, h.hash), frm="n9"))
    certs.sign_applied(h)
    assert certs.signatures(1) == [("n1", certs.own(1, h.hash))]
    assert certs.ready(1) is None
    certs2 = _collector()
    assert certs2.add(_sig("n2", 1, h.hash)) and certs2.add(_sig("n3", 1, b"\x07" * 32))
    certs2.sign_applied(h)
    cert = certs2.ready(1)
    assert cert is not None and [n for n, _ in cert] == ["n1", "n2"]


def test_a_signature_taken_before_is_not_verified_again(monkeypatch) -> None:
    """Each peer's signature arrives twice (its broadcast, then its reply to ours): the
    second, byte for byte the same, is taken without a second verification."""
    [h] = _headers(1)
    certs = _collector()
    certs.sign_applied(h)
    calls = count_verify_batches(monkeypatch)
    sig = _sig("n2", 1, h.hash)
    assert certs.add(sig) and certs.add(sig)
    assert calls == [1]
    forged = dataclasses.replace(sig, signature=b"x" * 64)
    assert not certs.add(forged)  # another signature is checked
    assert calls == [1, 1]
    assert certs.signatures(1) == sorted([("n1", certs.own(1, h.hash)), ("n2", sig.signature)])
