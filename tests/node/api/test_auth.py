"""Signed RPC requests (issue 15 §3, "reads are for members"), in process: the guard's
socket with the authentication middleware over a real genesis state. Each refusal is a
401 naming its reason; a replayed nonce, a stale time, a revoked key and a request
altered after signing are refused; the open endpoints stay open; memory for nonces is
bounded. The same on a real node: ``tests/node/test_rpc_members.py``."""

from __future__ import annotations

import asyncio
import time
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Any

import httpx
from aiohttp import web
from prometheus_client import CollectorRegistry

from acl import keys as K
from acl.machine import genesis_state
from acl.records import decode_record
from chain import codec, rpc_auth, signing
from chain.genesis import Genesis, Identity, Organisation, Validator
from node.api import auth
from node.api.server import RpcLimits, start_rpc
from node.client.request_auth import RequestSigner

CHAIN = "auth-test"
NOW_MS = 1_767_225_600_000


def _key(seed: int) -> signing.PrivateKey:
    return signing.private_key_from_bytes(bytes([seed]) * 32)


ORG1_APP, ORG2_AUDITOR, VALIDATOR = _key(1), _key(2), _key(3)
GENESIS = Genesis(
    chain_id=CHAIN,
    consensus="raft",
    timestamp_ms=NOW_MS,
    organisations=(Organisation("org1", "One"), Organisation("org2", "Two")),
    identities=(
        Identity("org1", "org1-app", "app", signing.public_key_bytes(ORG1_APP)),
        Identity("org2", "org2-auditor", "auditor", signing.public_key_bytes(ORG2_AUDITOR)),
    ),
    validators=(Validator("n1", "org1", signing.public_key_bytes(VALIDATOR)),),
    governance_quorum=1,
    auditor_orgs=("org2",),
)


class State:
    """The committed state as the node's snapshots show it (a dict of records)."""

    def __init__(self) -> None:
        self.records = {k: v for k, v in genesis_state(GENESIS).writes}

    def get(self, key: bytes) -> bytes | None:
        return self.records.get(key)

    def __enter__(self) -> State:
        return self

    def __exit__(self, *exc: object) -> None:
        pass

    def change(self, key: bytes, **fields: Any) -> None:
        raw = self.records[key]
        assert raw is not None
        self.records[key] = codec.encode({**decode_record(raw), **fields})

    def revoke(self, org_id: str, name: str) -> None:
        self.change(K.IDENTITY + K.identity_key(org_id, name), status="revoked")


class Clock:
    def __init__(self) -> None:
        self.ms = NOW_MS

    def __call__(self) -> int:
        return self.ms


async def _whoami(request: web.Request) -> web.Response:
    reader = auth.reader_of(request)
    doc: dict[str, Any] = {"reader": None}
    if reader is not None:
        doc["reader"] = [reader.org_id, reader.identity, reader.role, reader.sees_all]
    return web.json_response(doc)


@asynccontextmanager
async def serving(
    state: State, clock: Clock, **settings: Any
) -> AsyncIterator[tuple[str, auth.RpcAuth]]:
    app = web.Application()
    for path in ("/v1/grants", "/v1/status", "/health", "/openapi.json", "/metrics"):
        app.router.add_get(path, _whoami)
    app.router.add_post("/v1/txs", _whoami)
    app.router.add_post("/v1/echo", _whoami)
    app.router.add_get("/ui/", _whoami)
    app.router.add_get("/v1/explore/dashboard", _whoami)
    checker = auth.RpcAuth(
        auth.AuthSettings(**{"mode": "members", **settings}),
        chain_id=CHAIN,
        auditor_orgs=GENESIS.auditor_orgs,
        load=lambda: state,
        clock_ms=clock,
    )
    runner, server = await start_rpc(
        app,
        "127.0.0.1",
        0,
        RpcLimits(),
        CollectorRegistry(),
        middlewares=auth.install(app, checker),
    )
    try:
        yield f"http://127.0.0.1:{server.sockets[0].getsockname()[1]}", checker
    finally:
        server.close()
        await runner.cleanup()


def _signed(
    key: signing.PrivateKey,
    method: str,
    target: str,
    ts_ms: int,
    nonce: bytes,
    body: bytes = b"",
    chain_id: str = CHAIN,
) -> str:
    message = rpc_auth.signed_message(chain_id, method, target, ts_ms, nonce, body)
    return rpc_auth.SignedRequest(
        signing.public_key_bytes(key), ts_ms, nonce, signing.sign(key, message)
    ).header()


def _refused(resp: httpx.Response, reason: str) -> str:
    assert resp.status_code == 401, resp.text
    assert resp.headers["WWW-Authenticate"] == "GrantChain-Ed25519"
    assert resp.json()["reason"] == reason, resp.json()
    return str(resp.json()["error"])


def run(coro: Any) -> None:
    asyncio.run(coro)


def test_each_refusal_names_its_reason() -> None:
    async def go() -> None:
        state, clock = State(), Clock()
        async with serving(state, clock) as (url, _), httpx.AsyncClient() as c:
            target = "/v1/grants?grantee=org1"

            async def get(header: str, path: str = target) -> httpx.Response:
                return await c.get(url + path, headers={"Authorization": header})

            ok = await get(_signed(ORG1_APP, "GET", target, NOW_MS, b"\x01" * 16))
            assert ok.status_code == 200, ok.text
            assert ok.json()["reader"] == ["org1", "org1-app", "app", False]
            _refused(await get("Bearer x"), "malformed_header")
            _refused(
                await get(_signed(_key(9), "GET", target, NOW_MS, b"\x02" * 16)), "unknown_key"
            )
            assert "is +60001 ms from" in _refused(
                await get(_signed(ORG1_APP, "GET", target, NOW_MS + 60_001, b"\x03" * 16)),
                "stale_timestamp",
            )
            _refused(
                await get(_signed(ORG1_APP, "GET", target, NOW_MS - 60_001, b"\x04" * 16)),
                "stale_timestamp",
            )
            # within the skew either way: taken
            late = await get(_signed(ORG1_APP, "GET", target, NOW_MS - 59_000, b"\x05" * 16))
            assert late.status_code == 200
            # signed for another request, another chain, another query
            _refused(
                await get(
                    _signed(ORG1_APP, "GET", "/v1/grants?grantee=org2", NOW_MS, b"\x06" * 16)
                ),
                "bad_signature",
            )
            _refused(
                await get(_signed(ORG1_APP, "GET", target, NOW_MS, b"\x07" * 16, chain_id="other")),
                "bad_signature",
            )
            # the body is signed: a body changed after signing is refused
            header = _signed(ORG1_APP, "POST", "/v1/echo", NOW_MS, b"\x08" * 16, b"one")
            changed = await c.post(
                url + "/v1/echo", content=b"two", headers={"Authorization": header}
            )
            _refused(changed, "bad_signature")
            same = await c.post(url + "/v1/echo", content=b"one", headers={"Authorization": header})
            assert same.status_code == 200
            # a replay of a request taken is refused, whatever its age in the window
            replay = _signed(ORG1_APP, "GET", target, NOW_MS, b"\x09" * 16)
            assert (await get(replay)).status_code == 200
            clock.ms += 30_000
            _refused(await get(replay), "replayed_nonce")
            # the same nonce under another key is another request
            other = _signed(ORG2_AUDITOR, "GET", target, NOW_MS, b"\x09" * 16)
            assert (await get(other)).json()["reader"] == ["org2", "org2-auditor", "auditor", True]
            # revoked after it was taken: refused from then on
            state.revoke("org1", "org1-app")
            _refused(await get(_signed(ORG1_APP, "GET", target, clock.ms, b"\x0a" * 16)), "revoked")
            # a key rotated out, and a key of an organisation removed from the consortium
            state.change(K.IDENTITY + K.identity_key("org2", "org2-auditor"), key_epoch=1)
            _refused(
                await get(_signed(ORG2_AUDITOR, "GET", target, clock.ms, b"\x0b" * 16)),
                "key_rotated",
            )
            state.change(K.IDENTITY + K.identity_key("org2", "org2-auditor"), key_epoch=0)
            state.change(K.ORG + K.org_key("org2"), status="removed")
            _refused(
                await get(_signed(ORG2_AUDITOR, "GET", target, clock.ms, b"\x0c" * 16)),
                "org_inactive",
            )

    run(go())


def test_the_client_signs_every_request_transparently() -> None:
    async def go() -> None:
        clock = Clock()
        clock.ms = time.time_ns() // 1_000_000  # the client signs with the real clock
        signer = RequestSigner(ORG1_APP, CHAIN)
        async with serving(State(), clock) as (url, _), httpx.AsyncClient(auth=signer) as c:
            for _ in range(3):  # a fresh nonce each time
                got = await c.get(url + "/v1/grants", params={"dataset": "org1/a b"})
                assert got.status_code == 200, got.text
                assert got.json()["reader"][0] == "org1"
            posted = await c.post(url + "/v1/echo", json={"x": [1, 2]})
            assert posted.status_code == 200, posted.text

    run(go())


def test_open_endpoints_answer_without_a_signature() -> None:
    async def go() -> None:
        async with serving(State(), Clock()) as (url, _), httpx.AsyncClient() as c:
            for path in ("/v1/status", "/health", "/openapi.json", "/ui/"):
                got = await c.get(url + path)
                assert got.status_code == 200 and got.json()["reader"] is None, path
            assert (await c.post(url + "/v1/txs", json={"txs": []})).status_code == 200
            # credentials presented to an open endpoint are checked all the same
            bad = _signed(_key(9), "POST", "/v1/txs", NOW_MS, b"\x01" * 16, b"{}")
            _refused(
                await c.post(url + "/v1/txs", content=b"{}", headers={"Authorization": bad}),
                "unknown_key",
            )
            good = _signed(ORG1_APP, "POST", "/v1/txs", NOW_MS, b"\x02" * 16, b"{}")
            signed = await c.post(url + "/v1/txs", content=b"{}", headers={"Authorization": good})
            assert signed.json()["reader"] == ["org1", "org1-app", "app", False]
            for path in ("/metrics", "/v1/explore/dashboard"):
                _refused(await c.get(url + path), "missing")
        async with (
            serving(State(), Clock(), explorer_reads="open") as (url, _),
            httpx.AsyncClient() as c,
        ):
            assert (await c.get(url + "/v1/explore/dashboard")).status_code == 200
            _refused(await c.get(url + "/v1/grants"), "missing")
        async with serving(State(), Clock(), mode="open") as (url, _), httpx.AsyncClient() as c:
            got = await c.get(url + "/v1/grants")
            assert got.status_code == 200 and got.json()["reader"] is None

    run(go())


def test_remembered_nonces_are_bounded_and_forgotten_after_the_window() -> None:
    async def go() -> None:
        clock = Clock()
        async with (
            serving(State(), clock, nonces_max=1000) as (url, checker),
            httpx.AsyncClient() as c,
        ):

            async def get(n: int) -> httpx.Response:
                nonce = n.to_bytes(16, "big")
                h = _signed(ORG1_APP, "GET", "/v1/grants", clock.ms, nonce)
                return await c.get(url + "/v1/grants", headers={"Authorization": h})

            for n in range(1000):
                assert (await get(n)).status_code == 200
            full = await get(1000)
            assert full.status_code == 503 and full.json()["reason"] == "nonces_full"
            assert full.headers["Retry-After"] == "1"
            assert len(checker.nonces) == 1000
            clock.ms += 60_001  # every remembered time has left the window
            assert (await get(1001)).status_code == 200
            assert len(checker.nonces) == 1

    run(go())
