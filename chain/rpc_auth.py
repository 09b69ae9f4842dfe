"""Signed RPC requests: the canonical form both the client (``node.client.rpc_auth``)
and the node (``node.api.auth``) use, so the two can never disagree on a byte.

A member signs each request with a key registered on chain (its identity's current
key; no new key material), in one header::

    Authorization: GrantChain-Ed25519 key=<64 hex>, ts=<unix ms>, nonce=<32 hex>, sig=<128 hex>

The signature (Ed25519, ``chain.signing``) is over::

    b"grantchain-rpc-v1\\n" + chain_id + "\\n" + METHOD + "\\n" + path-with-raw-query
      + "\\n" + ts + "\\n" + nonce + "\\n" + sha256(body).hex()

The chain id binds a signature to one consortium, the method and the target (the path
with its query exactly as sent) to one request, the body's digest to its content, and
the time and nonce let the node refuse a replay (``node.api.auth``). The domain line
starts differently from every other signed message (``chain.signing``), so a request
signature is never a tx or header signature.

Pure: the time and the nonce are the caller's.
"""

from __future__ import annotations

import hashlib
import re
from dataclasses import dataclass

SCHEME = "GrantChain-Ed25519"
DOMAIN = b"grantchain-rpc-v1\n"
NONCE_BYTES = 16
HEADER_CHARS_MAX = 512
"""An Authorization header longer than this is malformed (the real one is ~300 chars)."""

_HEADER = re.compile(
    r"GrantChain-Ed25519 key=([0-9a-f]{64}), ts=([0-9]{1,16}), "
    r"nonce=([0-9a-f]{32}), sig=([0-9a-f]{128})"
)


class AuthHeaderError(ValueError):
    """The Authorization header is not a well-formed ``GrantChain-Ed25519`` one."""


@dataclass(frozen=True, slots=True)
class SignedRequest:
    """The fields of a ``GrantChain-Ed25519`` Authorization header."""

    public_key: bytes
    ts_ms: int
    nonce: bytes
    signature: bytes

    def header(self) -> str:
        return (
            f"{SCHEME} key={self.public_key.hex()}, ts={self.ts_ms}, "
            f"nonce={self.nonce.hex()}, sig={self.signature.hex()}"
        )


def signed_message(
    chain_id: str, method: str, target: str, ts_ms: int, nonce: bytes, body: bytes
) -> bytes:
    """The bytes a request's signature is over. ``target`` is the path with its raw query
    (``/v1/grants?dataset=a%2Fb``), exactly as on the request line."""
    return (
        DOMAIN
        + "\n".join(
            (
                chain_id,
                method.upper(),
                target,
                str(ts_ms),
                nonce.hex(),
                hashlib.sha256(body).hexdigest(),
            )
        ).encode()
    )


def parse_header(value: str) -> SignedRequest:
    """The fields of an Authorization header; ``AuthHeaderError`` says what is wrong."""
    if len(value) > HEADER_CHARS_MAX:
        raise AuthHeaderError(f"the Authorization header is over {HEADER_CHARS_MAX} chars")
    if not value.startswith(SCHEME + " "):
        scheme = value.split(" ", 1)[0][:40]
        raise AuthHeaderError(f"the Authorization scheme must be {SCHEME}, got {scheme!r}")
    found = _HEADER.fullmatch(value)
    if found is None:
        raise AuthHeaderError(
            f"the Authorization header must be '{SCHEME} key=<64 hex>, ts=<unix ms>, "
            "nonce=<32 hex>, sig=<128 hex>' (lowercase hex, in that order)"
        )
    key, ts, nonce, sig = found.groups()
    return SignedRequest(bytes.fromhex(key), int(ts), bytes.fromhex(nonce), bytes.fromhex(sig))
