"""The canonical form of a signed RPC request (``chain.rpc_auth``): the header round-trips,
a malformed one is refused with its problem named, and the signed bytes bind every part
of the request."""

from __future__ import annotations

import pytest

from chain import rpc_auth, signing

KEY = signing.private_key_from_bytes(b"\x07" * 32)
PUB = signing.public_key_bytes(KEY)
NONCE = bytes(range(16))


def _header(ts_ms: int = 1_767_225_600_000) -> str:
    message = rpc_auth.signed_message("c1", "GET", "/v1/grants?grantee=org1", ts_ms, NONCE, b"")
    return rpc_auth.SignedRequest(PUB, ts_ms, NONCE, signing.sign(KEY, message)).header()


def test_the_header_round_trips_and_its_signature_verifies() -> None:
    parsed = rpc_auth.parse_header(_header())
    assert parsed.public_key == PUB and parsed.nonce == NONCE
    assert parsed.ts_ms == 1_767_225_600_000
    message = rpc_auth.signed_message(
        "c1", "GET", "/v1/grants?grantee=org1", parsed.ts_ms, parsed.nonce, b""
    )
    assert signing.verify(PUB, message, parsed.signature)


def test_the_signed_bytes_are_the_documented_ones() -> None:
    got = rpc_auth.signed_message("c1", "post", "/v1/x?a=%2F", 5, NONCE, b"body")
    assert got == (
        b"grantchain-rpc-v1\nc1\nPOST\n/v1/x?a=%2F\n5\n"
        + NONCE.hex().encode()
        + b"\n"
        + b"230d8358dc8e8890b4c58deeb62912ee2f20357ae92a5cc861b98e68fe31acb5"
    )


def test_every_part_of_the_request_is_signed() -> None:
    target = "/v1/grants?grantee=org1"
    base = rpc_auth.signed_message("c1", "GET", target, 1, NONCE, b"")
    others = [
        rpc_auth.signed_message("c2", "GET", target, 1, NONCE, b""),
        rpc_auth.signed_message("c1", "POST", target, 1, NONCE, b""),
        rpc_auth.signed_message("c1", "GET", "/v1/grants?grantee=org2", 1, NONCE, b""),
        rpc_auth.signed_message("c1", "GET", target, 2, NONCE, b""),
        rpc_auth.signed_message("c1", "GET", target, 1, bytes(16), b""),
        rpc_auth.signed_message("c1", "GET", target, 1, NONCE, b"x"),
    ]
    assert len({base, *others}) == len(others) + 1


@pytest.mark.parametrize(
    ("value", "problem"),
    [
        ("Bearer abc", "scheme must be GrantChain-Ed25519, got 'Bearer'"),
        ("GrantChain-Ed25519 key=zz", "must be 'GrantChain-Ed25519 key=<64 hex>"),
        (_header().replace("ts=", "ts=-"), "must be 'GrantChain-Ed25519 key=<64 hex>"),
        (_header().upper().replace("GRANTCHAIN-ED25519", "GrantChain-Ed25519"), "lowercase hex"),
        (_header()[:-2], "sig=<128 hex>"),
        (_header() + " " * 300, "over 512 chars"),
    ],
)
def test_a_malformed_header_is_refused_with_its_problem(value: str, problem: str) -> None:
    with pytest.raises(rpc_auth.AuthHeaderError) as exc:
        rpc_auth.parse_header(value)
    assert problem in str(exc.value)
