"""Authenticated RPC requests (``rpc_auth = "members"``): every request but the open ones
carries a ``GrantChain-Ed25519`` signature (``chain.rpc_auth``) by a key registered on
chain, and reads as that key's identity (``acl.read_policy.Reader``).

The node accepts a request when, in this order (cheap checks first; the signature is
checked before anything is remembered, so an unsigned flood fills nothing):

1. the header is well formed (else ``malformed_header``; none at all: ``missing``);
2. its time is within ``skew_ms`` of this node's wall clock (``stale_timestamp``: the
   wall clock is fine here, this is not consensus);
3. the key may send now by the state machine's own rule, ``acl.senders.active_sender``:
   registered (``unknown_key``), its identity active (``revoked``), the identity's
   current key (``key_rotated``), its organisation active (``org_inactive``);
4. the signature verifies over the canonical form (``bad_signature``): one Ed25519
   verification per request;
5. the nonce was not seen for that key within the window (``replayed_nonce``).

Refusals are ``401`` with ``WWW-Authenticate: GrantChain-Ed25519`` and JSON
``{"error": "..", "reason": "<one of the above>"}``. Nonces are remembered until their
time leaves the window (after which the time check refuses a replay), at most
``nonces_max`` of them: when that many signed requests came within one window the node
answers ``503`` with ``Retry-After`` rather than remember more (memory stays bounded).

Open without authentication (``is_open``; a request that carries the header anyway is
checked all the same): ``GET /v1/status``, ``/health``,
``/openapi.json``, the explorer's static files (``/ui``), ``POST /v1/txs`` (each tx is
signed by its sender already, and the answer only concerns the submitted txs) and
``/api/v1/lineage`` (its own bearer key). With ``explorer_reads = "open"``, also what
the explorer's pages read: ``/v1/explore/*``, the commit stream, ``/v1/audit/report`` and
``GET /v1/txs/{id}``.
"""

from __future__ import annotations

import heapq
import logging
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import Any

from aiohttp import web

from acl.read_policy import Reader, reader_for
from acl.records import decode_record
from acl.results import Result
from acl.senders import active_sender
from chain import rpc_auth, signing

log = logging.getLogger("grantchain.rpc")

AUTH_MODES = ("open", "members")
EXPLORER_READS = ("auditors", "open")
READER: web.RequestKey[Reader] = web.RequestKey("grantchain_reader", Reader)
"""Where an authenticated request's ``Reader`` is kept."""

_SENDER_REASONS = {
    Result.UNKNOWN_SENDER: ("unknown_key", "the key is not registered on chain"),
    Result.SENDER_REVOKED: ("revoked", "the key's identity was revoked"),
    Result.KEY_ROTATED: ("key_rotated", "the key was rotated out: sign with the current key"),
    Result.ORG_INACTIVE: ("org_inactive", "the key's organisation was removed"),
}
_OPEN_EXACT = {("GET", "/v1/status"), ("GET", "/health"), ("GET", "/openapi.json")}
_OPEN_PREFIXES = ("/ui/", "/api/v1/lineage")
_EXPLORER_PREFIXES = ("/v1/explore/", "/v1/txs/")
_EXPLORER_EXACT = {"/v1/stream/blocks", "/v1/audit/report"}


def is_open(method: str, path: str, explorer_reads: str) -> bool:
    """Whether ``method path`` is answered without authentication (see the module doc)."""
    if method == "HEAD":
        method = "GET"
    if (method, path) in _OPEN_EXACT or path == "/ui" or path.startswith(_OPEN_PREFIXES):
        return True
    if method == "POST" and path == "/v1/txs":
        return True
    if explorer_reads == "open" and method == "GET":
        return path in _EXPLORER_EXACT or path.startswith(_EXPLORER_PREFIXES)
    return False


class Refused(Exception):
    """A request the node does not take: its HTTP status, reason label and message."""

    def __init__(self, status: int, reason: str, message: str) -> None:
        super().__init__(message)
        self.status = status
        self.reason = reason


class NonceWindow:
    """The nonces each key used within the window: ``(key, nonce)`` until its time leaves
    the window, at most ``capacity`` at once."""

    def __init__(self, capacity: int) -> None:
        self.capacity = capacity
        self._seen: set[tuple[bytes, bytes]] = set()
        self._expiry: list[tuple[int, bytes, bytes]] = []  # a heap by expiry

    def __len__(self) -> int:
        return len(self._seen)

    def add(self, key: bytes, nonce: bytes, expires_ms: int, now_ms: int) -> None:
        """Remember ``nonce`` of ``key`` until ``expires_ms``; ``Refused`` if it is
        remembered already (a replay) or the window is full."""
        while self._expiry and self._expiry[0][0] < now_ms:
            _, k, n = heapq.heappop(self._expiry)
            self._seen.discard((k, n))
        if (key, nonce) in self._seen:
            raise Refused(401, "replayed_nonce", "this nonce was already used with this key")
        if len(self._seen) >= self.capacity:
            raise Refused(
                503,
                "nonces_full",
                f"the node remembers {self.capacity} request nonces, its limit; retry shortly",
            )
        self._seen.add((key, nonce))
        heapq.heappush(self._expiry, (expires_ms, key, nonce))


@dataclass(frozen=True, slots=True)
class AuthSettings:
    mode: str = "open"
    skew_ms: int = 60_000
    nonces_max: int = 1_000_000
    explorer_reads: str = "auditors"


class RpcAuth:
    """Checks signed requests against the chain's state (see the module doc)."""

    def __init__(
        self,
        settings: AuthSettings,
        *,
        chain_id: str,
        auditor_orgs: tuple[str, ...],
        load: Callable[[], Any],
        clock_ms: Callable[[], int] = lambda: time.time_ns() // 1_000_000,
    ) -> None:
        """``load()`` opens a read view of the committed state (``get(key)``, closed with
        ``with``); ``clock_ms`` is the wall clock (tests turn it)."""
        self.settings = settings
        self.chain_id = chain_id
        self.auditor_orgs = auditor_orgs
        self._load = load
        self._clock_ms = clock_ms
        self.nonces = NonceWindow(settings.nonces_max)

    def required(self, method: str, path: str) -> bool:
        s = self.settings
        return s.mode == "members" and not is_open(method, path, s.explorer_reads)

    def check(self, method: str, target: str, header: str | None, body: bytes) -> Reader:
        """The reader a request is, or ``Refused`` naming why not."""
        if header is None:
            raise Refused(
                401, "missing", f"this endpoint needs an Authorization: {rpc_auth.SCHEME} header"
            )
        try:
            signed = rpc_auth.parse_header(header)
        except rpc_auth.AuthHeaderError as exc:
            raise Refused(401, "malformed_header", str(exc)) from None
        now_ms = self._clock_ms()
        skew = self.settings.skew_ms
        if abs(now_ms - signed.ts_ms) > skew:
            raise Refused(
                401,
                "stale_timestamp",
                f"ts {signed.ts_ms} is {signed.ts_ms - now_ms:+d} ms from the node's clock "
                f"{now_ms}; at most {skew} ms allowed",
            )
        with self._load() as view:

            def load(key: bytes) -> Any:
                raw = view.get(key)
                return None if raw is None else decode_record(raw)

            found = active_sender(load, signed.public_key)
        if isinstance(found, Result):
            reason, why = _SENDER_REASONS.get(found, ("unknown_key", found.label))
            raise Refused(401, reason, f"{why} ({signed.public_key.hex()})")
        ident = found[0]
        message = rpc_auth.signed_message(
            self.chain_id, method, target, signed.ts_ms, signed.nonce, body
        )
        if not signing.verify(signed.public_key, message, signed.signature):
            raise Refused(
                401,
                "bad_signature",
                f"the signature does not verify over this request for chain {self.chain_id!r}",
            )
        self.nonces.add(signed.public_key, signed.nonce, signed.ts_ms + skew, now_ms)
        return reader_for(ident["org_id"], ident["name"], ident["role"], self.auditor_orgs)


AUTH_KEY: web.AppKey[RpcAuth] = web.AppKey("rpc_auth", RpcAuth)


def refusal(exc: Refused) -> web.Response:
    resp = web.json_response({"error": str(exc), "reason": exc.reason}, status=exc.status)
    if exc.status == 401:
        resp.headers["WWW-Authenticate"] = rpc_auth.SCHEME
    else:
        resp.headers["Retry-After"] = "1"
    return resp


@web.middleware
async def authenticate(
    request: web.Request, handler: Callable[[web.Request], Awaitable[web.StreamResponse]]
) -> web.StreamResponse:
    """Check the request's signature where one is required (``RpcAuth.required``), or
    wherever one is presented (a signed request to an open endpoint is checked as well,
    so a client signing everything learns of a wrong key at once), and keep its reader
    under ``READER``."""
    auth = request.app.get(AUTH_KEY)
    if auth is None or auth.settings.mode != "members":
        return await handler(request)
    if "Authorization" not in request.headers and not auth.required(request.method, request.path):
        return await handler(request)  # open, and no credentials presented
    body = await request.read() if request.body_exists else b""
    try:
        reader = auth.check(
            request.method, request.raw_path, request.headers.get("Authorization"), body
        )
    except Refused as exc:
        log.debug("RPC %s %s refused: %s", request.method, request.path, exc)
        return refusal(exc)
    request[READER] = reader
    return await handler(request)


def reader_of(request: web.Request) -> Reader | None:
    """The request's reader; None where reads are open (no policy applies)."""
    return request.get(READER)


def install(app: web.Application, auth: RpcAuth) -> list[Any]:
    """Keep ``auth`` on ``app``; the middlewares to run after the server's own."""
    app[AUTH_KEY] = auth
    return [authenticate]
