"""The RPC's listening socket, guarded: how many connections it holds, how many of them
one address holds, and how long a client may take to send a request.

aiohttp (3.x) bounds none of these: a client that opens connections and sends a request
head a byte every few seconds (slowloris) holds each for the keep-alive time (an hour by
default), and enough of them take every file descriptor of the node. So every
connection passes through ``_Guarded``, which:

- refuses a connection over ``connections_max``, or over ``per_ip_max`` from one
  address (one member's misbehaving fleet cannot crowd out the others), with a
  ``503`` naming the limit, written before the socket is closed;
- closes a connection whose request head is not in within ``header_timeout_s`` of
  its first byte, or whose body is not in within ``body_timeout_s`` of its head
  (``408``, written before the socket is closed);
- closes a connection idle for ``keepalive_timeout_s`` (aiohttp's own keep-alive).

The deadlines time reading a request, never the handler's work or writing its answer
(the commit stream lives for hours). The body's deadline ends at its last byte however
the handler reads it (``request.content.on_eof``), so a handler may refuse a request
before reading its body (the OpenLineage route checks its key first).

The guard's state lives on the event loop; a connection's bookkeeping is undone in
``connection_lost`` however it ends.
"""

from __future__ import annotations

import asyncio
import json
import logging
import ssl
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass
from typing import Any, cast

from aiohttp import web
from prometheus_client import CollectorRegistry, Counter, Gauge

from node.runtime.config import NodeConfig

log = logging.getLogger(__name__)

GUARD_KEY: web.AppKey[ConnectionGuard] = web.AppKey("connection_guard")


@dataclass(frozen=True, slots=True)
class RpcLimits:
    """The limits of the RPC socket (``rpc_*`` in the node's config)."""

    connections_max: int = 1024
    per_ip_max: int = 256
    header_timeout_s: float = 10.0
    body_timeout_s: float = 30.0
    keepalive_timeout_s: float = 75.0


def rpc_limits(cfg: NodeConfig) -> RpcLimits:
    return RpcLimits(
        connections_max=cfg.rpc_connections_max,
        per_ip_max=cfg.rpc_connections_per_ip_max,
        header_timeout_s=cfg.rpc_header_timeout_ms / 1000,
        body_timeout_s=cfg.rpc_body_timeout_ms / 1000,
        keepalive_timeout_s=cfg.rpc_keepalive_timeout_ms / 1000,
    )


class GuardMetrics:
    def __init__(self, registry: CollectorRegistry) -> None:
        self.connections = Gauge(
            "grantchain_rpc_connections", "Open RPC connections", registry=registry
        )
        self.refused = Counter(
            "grantchain_rpc_connections_refused",
            "RPC connections refused: full (connections_max) or address_full (per_ip_max)",
            ["reason"],
            registry=registry,
        )
        self.timeouts = Counter(
            "grantchain_rpc_request_timeouts",
            "RPC connections closed because a request was not sent in time: head or body",
            ["phase"],
            registry=registry,
        )


def _answer(status: int, reason: str, message: str) -> bytes:
    body = json.dumps({"error": message}).encode()
    head = (
        f"HTTP/1.1 {status} {reason}\r\nContent-Type: application/json\r\n"
        f"Content-Length: {len(body)}\r\nConnection: close\r\n\r\n"
    )
    return head.encode() + body


class ConnectionGuard:
    """Counts connections by address and times request heads; see the module doc."""

    def __init__(self, limits: RpcLimits, metrics: GuardMetrics) -> None:
        self.limits = limits
        self.metrics = metrics
        self._by_ip: dict[str, int] = {}
        self._open = 0
        self._by_transport: dict[asyncio.BaseTransport, _Guarded] = {}

    @property
    def open(self) -> int:
        return self._open

    def wrap(self, inner: Callable[[], asyncio.Protocol]) -> Callable[[], asyncio.Protocol]:
        """A protocol factory for ``loop.create_server`` around aiohttp's."""
        return lambda: _Guarded(self, inner())

    def _admit(self, ip: str) -> str | None:
        if self._open >= self.limits.connections_max:
            self.metrics.refused.labels("full").inc()
            return f"the node holds its maximum of {self.limits.connections_max} RPC connections"
        if self._by_ip.get(ip, 0) >= self.limits.per_ip_max:
            self.metrics.refused.labels("address_full").inc()
            return f"{ip} holds its maximum of {self.limits.per_ip_max} RPC connections"
        self._open += 1
        self._by_ip[ip] = self._by_ip.get(ip, 0) + 1
        self.metrics.connections.set(self._open)
        return None

    def _release(self, ip: str, transport: asyncio.BaseTransport) -> None:
        self._by_transport.pop(transport, None)
        self._open -= 1
        left = self._by_ip[ip] - 1
        if left:
            self._by_ip[ip] = left
        else:
            del self._by_ip[ip]
        self.metrics.connections.set(self._open)

    def connection(self, transport: asyncio.BaseTransport | None) -> _Guarded | None:
        return self._by_transport.get(transport) if transport is not None else None


class _Guarded(asyncio.Protocol):
    """aiohttp's protocol for one connection, behind the guard."""

    def __init__(self, guard: ConnectionGuard, inner: asyncio.Protocol) -> None:
        self._guard = guard
        self._inner = inner
        self._transport: asyncio.Transport | None = None
        self._ip = ""
        self._admitted = False
        self._waiting = True  # between requests: the next byte starts the head deadline
        self._deadline: asyncio.TimerHandle | None = None
        self._phase: str | None = None

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        # uvloop's transports are not asyncio.Transport instances, but behave as one.
        self._transport = cast(asyncio.Transport, transport)
        peer = transport.get_extra_info("peername")
        self._ip = str(peer[0]) if peer else "unknown"
        refused = self._guard._admit(self._ip)
        if refused is not None:
            self._transport.write(_answer(503, "Service Unavailable", refused))
            self._transport.close()
            return
        self._admitted = True
        self._guard._by_transport[transport] = self
        self._inner.connection_made(transport)

    def data_received(self, data: bytes) -> None:
        if not self._admitted:
            return
        if self._waiting:
            self._waiting = False
            self._arm("head")
        self._inner.data_received(data)

    def eof_received(self) -> bool | None:
        return self._inner.eof_received() if self._admitted else None

    def connection_lost(self, exc: Exception | None) -> None:
        self._disarm()
        if not self._admitted:
            return
        self._admitted = False
        assert self._transport is not None
        self._guard._release(self._ip, self._transport)
        self._inner.connection_lost(exc)

    def pause_writing(self) -> None:
        if self._admitted:
            self._inner.pause_writing()

    def resume_writing(self) -> None:
        if self._admitted:
            self._inner.resume_writing()

    @property
    def closing(self) -> bool:
        return self._transport is None or self._transport.is_closing()

    # -- the request deadline ---------------------------------------------------------
    def busy(self) -> None:
        """The head is in: the handler runs."""
        self._disarm()

    def await_body(self) -> None:
        self._arm("body")

    def body_in(self) -> None:
        if self._phase == "body":
            self._disarm()

    def idle(self) -> None:
        """The answer is out: the next byte starts the next request's deadline."""
        self._disarm()
        self._waiting = True

    def _arm(self, phase: str) -> None:
        self._disarm()
        limits = self._guard.limits
        seconds = limits.header_timeout_s if phase == "head" else limits.body_timeout_s
        loop = asyncio.get_running_loop()
        self._phase = phase
        self._deadline = loop.call_later(seconds, self._expire, phase, seconds)

    def _disarm(self) -> None:
        self._phase = None
        if self._deadline is not None:
            self._deadline.cancel()
            self._deadline = None

    def _expire(self, phase: str, seconds: float) -> None:
        self._deadline = self._phase = None
        if self._transport is None or self._transport.is_closing():
            return
        self._guard.metrics.timeouts.labels(phase).inc()
        log.info(
            "RPC: closing a connection from %s: request %s not in within %g s",
            self._ip,
            phase,
            seconds,
        )
        self._transport.write(
            _answer(408, "Request Timeout", f"request {phase} not received within {seconds:g} s")
        )
        self._transport.close()


@web.middleware
async def deadlines(
    request: web.Request, handler: Callable[[web.Request], Awaitable[web.StreamResponse]]
) -> web.StreamResponse:
    """The head is in: stop its deadline, start the body's (until the body's last byte
    is in, however the handler reads it); after the answer, wait for the next head."""
    guard = request.app.get(GUARD_KEY)
    guarded = guard.connection(request.transport) if guard is not None else None
    if guarded is None:
        return await handler(request)
    guarded.busy()
    if request.body_exists and not request.content.is_eof():
        guarded.await_body()
        request.content.on_eof(guarded.body_in)
    try:
        return await handler(request)
    except ConnectionResetError:
        if not guarded.closing:
            raise
        # The body's deadline closed the connection under a handler reading it: the
        # client has its 408; nothing to log or to answer.
        return web.Response(status=408)
    finally:
        guarded.idle()


async def start_rpc(
    app: web.Application,
    host: str,
    port: int,
    limits: RpcLimits,
    registry: CollectorRegistry,
    *,
    ssl_context: ssl.SSLContext | None = None,
    middlewares: Sequence[Any] = (),
) -> tuple[web.AppRunner, asyncio.Server]:
    """Serve ``app`` on ``host:port`` behind a ``ConnectionGuard``, over TLS if
    ``ssl_context`` is given; ``middlewares`` run after the deadlines' (the request
    authentication of ``node.api.auth``, which reads the body under its deadline)."""
    guard = ConnectionGuard(limits, GuardMetrics(registry))
    app[GUARD_KEY] = guard
    app.middlewares.append(deadlines)
    app.middlewares.extend(middlewares)
    runner = web.AppRunner(
        app, access_log=None, keepalive_timeout=limits.keepalive_timeout_s, shutdown_timeout=1.0
    )
    await runner.setup()
    assert runner.server is not None
    loop = asyncio.get_running_loop()
    # Under TLS the guard sees a connection once its handshake is done: the handshake
    # gets the head's deadline, so a slow one cannot hold a socket for asyncio's 60 s.
    server = await loop.create_server(
        guard.wrap(runner.server),
        host,
        port,
        reuse_address=True,
        ssl=ssl_context,
        ssl_handshake_timeout=limits.header_timeout_s if ssl_context is not None else None,
    )
    return runner, server
