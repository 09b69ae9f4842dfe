"""The RPC socket's limits (issue 15 §4, "connection caps and read deadlines"): a client
cannot hold the node's connections with slow or idle requests, and one address cannot
take every connection. In process (the guard with aiohttp on a real socket), and on a
real node started from its config."""

from __future__ import annotations

import asyncio
import json
import time
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from pathlib import Path

import pytest
from aiohttp import web
from prometheus_client import CollectorRegistry

from node.api.server import GUARD_KEY, RpcLimits, start_rpc
from tests.node.clusters import running_cluster

HEAD = b"GET /ok HTTP/1.1\r\nHost: x\r\n\r\n"


async def _ok(request: web.Request) -> web.Response:
    return web.json_response({"ok": True})


async def _slow(request: web.Request) -> web.Response:
    await asyncio.sleep(float(request.query["s"]))  # a handler that takes its time
    return web.json_response({"ok": True})


async def _echo(request: web.Request) -> web.Response:
    return web.json_response({"bytes": len(await request.read())})


@asynccontextmanager
async def serving(limits: RpcLimits) -> AsyncIterator[tuple[int, web.Application]]:
    app = web.Application()
    app.router.add_get("/ok", _ok)
    app.router.add_get("/slow", _slow)
    app.router.add_post("/echo", _echo)
    runner, server = await start_rpc(app, "127.0.0.1", 0, limits, CollectorRegistry())
    try:
        yield int(server.sockets[0].getsockname()[1]), app
    finally:
        server.close()
        await runner.cleanup()


async def _connect(
    port: int, source: str = "127.0.0.1"
) -> tuple[asyncio.StreamReader, asyncio.StreamWriter]:
    return await asyncio.open_connection("127.0.0.1", port, local_addr=(source, 0))


async def _answer(reader: asyncio.StreamReader) -> tuple[int, dict[str, object]]:
    """Read one whole answer (status line, headers, a Content-Length body)."""
    async with asyncio.timeout(10):
        head = await reader.readuntil(b"\r\n\r\n")
        lines = head.decode().split("\r\n")
        status = int(lines[0].split()[1])
        length = next(int(h.split(":")[1]) for h in lines if h.lower().startswith("content-length"))
        body = await reader.readexactly(length)
    return status, json.loads(body)


async def _closed(reader: asyncio.StreamReader) -> bool:
    async with asyncio.timeout(10):
        return await reader.read() == b""


def test_one_address_cannot_take_every_connection() -> None:
    async def run() -> None:
        async with serving(RpcLimits(connections_max=6, per_ip_max=3)) as (port, app):
            held = [await _connect(port) for _ in range(3)]
            reader, _ = await _connect(port)
            status, doc = await _answer(reader)
            assert status == 503
            assert "127.0.0.1 holds its maximum of 3 RPC connections" in str(doc["error"])
            assert await _closed(reader)
            # Another address is still served, on a connection of its own.
            other = await _connect(port, "127.0.0.2")
            other[1].write(HEAD)
            assert (await _answer(other[0]))[0] == 200
            # And the held connections work: the cap refused nothing it had taken.
            held[0][1].write(HEAD)
            assert (await _answer(held[0][0]))[0] == 200
            guard = app[GUARD_KEY]
            assert guard.open == 4
            for _, w in held:
                w.close()
            for _, w in held:
                await w.wait_closed()

            async def drained() -> None:
                while guard.open != 1:  # the 127.0.0.2 connection is still open
                    await asyncio.sleep(0.01)

            await asyncio.wait_for(drained(), 10)
            again = await _connect(port)  # released slots are reusable
            again[1].write(HEAD)
            assert (await _answer(again[0]))[0] == 200

    asyncio.run(run())


def test_the_node_wide_cap() -> None:
    async def run() -> None:
        async with serving(RpcLimits(connections_max=2, per_ip_max=2)) as (port, _):
            held = [await _connect(port, "127.0.0.2"), await _connect(port, "127.0.0.3")]
            reader, _ = await _connect(port, "127.0.0.4")
            status, doc = await _answer(reader)
            assert status == 503
            assert "maximum of 2 RPC connections" in str(doc["error"])
            for _, w in held:
                w.close()

    asyncio.run(run())


def test_a_slow_request_head_is_cut_off_and_others_are_served() -> None:
    async def run() -> None:
        limits = RpcLimits(header_timeout_s=0.5)
        async with serving(limits) as (port, app):
            reader, writer = await _connect(port)
            started = time.monotonic()
            writer.write(b"GET /ok HTTP/1.1\r\nHost: x\r\n")  # slowloris: never ends
            while time.monotonic() - started < 0.3:  # dribble one header
                writer.write(b"X-a: b\r\n")
                await asyncio.sleep(0.05)
            other_r, other_w = await _connect(port)
            other_w.write(HEAD)
            assert (await _answer(other_r))[0] == 200
            status, doc = await _answer(reader)
            assert status == 408
            assert doc["error"] == "request head not received within 0.5 s"
            assert await _closed(reader)
            assert time.monotonic() - started < 5
            assert app[GUARD_KEY].metrics.timeouts.labels("head")._value.get() == 1

    asyncio.run(run())


def test_a_slow_body_is_cut_off() -> None:
    async def run() -> None:
        async with serving(RpcLimits(body_timeout_s=0.3)) as (port, _):
            reader, writer = await _connect(port)
            writer.write(b"POST /echo HTTP/1.1\r\nHost: x\r\nContent-Length: 100\r\n\r\n0123")
            status, doc = await _answer(reader)
            assert status == 408
            assert doc["error"] == "request body not received within 0.3 s"
            # A body that arrives in time is read whole and handed to the handler.
            reader, writer = await _connect(port)
            writer.write(b"POST /echo HTTP/1.1\r\nHost: x\r\nContent-Length: 10\r\n\r\n0123")
            await asyncio.sleep(0.05)
            writer.write(b"456789")
            assert await _answer(reader) == (200, {"bytes": 10})

    asyncio.run(run())


def test_deadlines_time_requests_not_answers_or_idle_keepalive() -> None:
    async def run() -> None:
        async with serving(RpcLimits(header_timeout_s=0.3, keepalive_timeout_s=0.6)) as (port, _):
            reader, writer = await _connect(port)
            writer.write(b"GET /slow?s=0.8 HTTP/1.1\r\nHost: x\r\n\r\n")
            assert (await _answer(reader))[0] == 200  # a slow handler is not cut off
            await asyncio.sleep(0.4)  # idle longer than the head deadline, but kept alive
            writer.write(HEAD)
            assert (await _answer(reader))[0] == 200
            assert await _closed(reader)  # then idle past the keep-alive: closed

    asyncio.run(run())


def test_a_node_applies_its_configured_limits(tmp_path: Path) -> None:
    """The ``rpc_*`` keys of a node's config reach its socket; slow clients at the cap
    neither stop the node nor stay for long."""
    with running_cluster(
        tmp_path,
        nodes=1,
        rpc_connections_per_ip_max=4,
        rpc_header_timeout_ms=800,
        rpc_body_timeout_ms=800,
    ) as manifest:
        url = manifest.nodes[0].rpc_url
        port = int(url.rsplit(":", 1)[1].split("/")[0])

        async def run() -> None:
            slow = [await _connect(port) for _ in range(4)]
            for _, w in slow:
                w.write(b"GET /v1/status HTTP/1.1\r\n")
            reader, _ = await _connect(port)
            assert (await _answer(reader))[0] == 503
            for r, _ in slow:
                assert (await _answer(r))[0] == 408
            reader, writer = await _connect(port)
            writer.write(b"GET /v1/status HTTP/1.1\r\nHost: x\r\n\r\n")
            status, doc = await _answer(reader)
            assert status == 200 and doc["node_id"] == manifest.nodes[0].node_id
            reader, writer = await _connect(port)
            writer.write(
                b"POST /v1/txs HTTP/1.1\r\nHost: x\r\nContent-Type: application/msgpack\r\n"
                b"Content-Length: 1000\r\n\r\n\x91"
            )
            status, doc = await _answer(reader)
            assert (status, doc) == (408, {"error": "request body not received within 0.8 s"})
            assert await _closed(reader)

        asyncio.run(run())
    log = (manifest.directory / "nodes" / manifest.nodes[0].node_id / "node.log").read_text()
    assert "Traceback" not in log
    assert "request head not in within 0.8 s" in log


@pytest.mark.parametrize("key", ["rpc_connections_max", "rpc_header_timeout_ms"])
def test_limits_are_checked_in_the_config(tmp_path: Path, key: str) -> None:
    from node.runtime.config import ConfigError, config_from_mapping

    doc = {
        "node_id": "n1",
        "data_dir": "d",
        "genesis": "g",
        "node_key": "k",
        "tls_cert": "c",
        "tls_key": "k2",
        "ca_cert": "ca",
        "rpc_host": "127.0.0.1",
        "rpc_port": 1,
        "peer_host": "127.0.0.1",
        "peer_port": 2,
        key: 0,
    }
    with pytest.raises(ConfigError, match=key):
        config_from_mapping(doc, tmp_path / "node.toml")


def test_a_slow_tls_handshake_is_cut_off(tmp_path: Path) -> None:
    """Under TLS the guard sees a connection only once its handshake is done: the
    handshake itself has the head's deadline, not asyncio's 60 s."""
    with running_cluster(tmp_path, nodes=1, rpc_tls=True, rpc_header_timeout_ms=800) as manifest:
        node = manifest.nodes[0]
        assert node.rpc_url.startswith("https://")

        async def run() -> None:
            reader, _ = await _connect(node.rpc_port)  # TCP only: no ClientHello
            started = time.monotonic()
            assert await _closed(reader)
            assert time.monotonic() - started < 5

        asyncio.run(run())
