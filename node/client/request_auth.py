"""``RequestSigner``: signs every RPC request with a member's registered key
(``chain.rpc_auth``), as an ``httpx.Auth`` so that ``Client``, ``AsyncClient`` and their
streams sign each request, retries and failovers included, without a caller noticing."""

from __future__ import annotations

import os
import time
from collections.abc import Generator
from dataclasses import dataclass, field
from pathlib import Path

import httpx

from chain import rpc_auth, signing
from node.runtime.keys import load_private_key


@dataclass
class RequestSigner(httpx.Auth):
    """Signs requests for ``chain_id`` with ``key`` (an identity's current key)."""

    key: signing.PrivateKey
    chain_id: str
    public_key: bytes = field(init=False)

    requires_request_body = True  # the signature covers the body's digest

    def __post_init__(self) -> None:
        self.public_key = signing.public_key_bytes(self.key)

    @classmethod
    def from_key_file(cls, path: str | Path, *, chain_id: str) -> RequestSigner:
        return cls(load_private_key(path), chain_id)

    def header(self, method: str, target: str, body: bytes) -> str:
        """The Authorization header for one request (a fresh time and nonce)."""
        ts_ms = time.time_ns() // 1_000_000
        nonce = os.urandom(rpc_auth.NONCE_BYTES)
        message = rpc_auth.signed_message(self.chain_id, method, target, ts_ms, nonce, body)
        signed = rpc_auth.SignedRequest(
            self.public_key, ts_ms, nonce, signing.sign(self.key, message)
        )
        return signed.header()

    def auth_flow(self, request: httpx.Request) -> Generator[httpx.Request, httpx.Response, None]:
        target = request.url.raw_path.decode("ascii")
        request.headers["Authorization"] = self.header(request.method, target, request.content)
        yield request
