"""What the node's config asks of the RPC's security, assembled for ``node.app.serve``:
request authentication (``rpc_auth``, ``node.api.auth``), TLS (``rpc_tls``), and the
separate metrics listener (``metrics_host``/``metrics_port``)."""

from __future__ import annotations

import ssl
from typing import Any

from aiohttp import web

from node.api import auth, read_guard
from node.api.service import NodeService
from node.runtime.config import NodeConfig


def rpc_ssl_context(cfg: NodeConfig) -> ssl.SSLContext | None:
    """TLS for the RPC with the node's own certificate and key (``rpc_tls``); clients
    verify it with the consortium's CA bundle. No client certificate is asked for:
    members authenticate by signing requests."""
    if not cfg.rpc_tls:
        return None
    ctx = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    ctx.minimum_version = ssl.TLSVersion.TLSv1_2
    ctx.load_cert_chain(certfile=str(cfg.tls_cert), keyfile=str(cfg.tls_key))
    return ctx


def rpc_auth(
    cfg: NodeConfig, node: NodeService, *, chain_id: str, auditor_orgs: tuple[str, ...]
) -> auth.RpcAuth:
    settings = auth.AuthSettings(
        mode=cfg.rpc_auth,
        skew_ms=cfg.rpc_auth_skew_ms,
        nonces_max=cfg.rpc_auth_nonces_max,
        explorer_reads=cfg.explorer_reads,
    )
    return auth.RpcAuth(
        settings, chain_id=chain_id, auditor_orgs=auditor_orgs, load=node.store.snapshot
    )


def rpc_middlewares(app: web.Application, checker: auth.RpcAuth, node: NodeService) -> list[Any]:
    """The middlewares that authenticate requests and apply the read policy, in order."""
    return [*auth.install(app, checker), *read_guard.install(app, node)]


async def health(request: web.Request) -> web.Response:
    """Liveness: the process answers. No data."""
    return web.json_response({"status": "ok"})


async def start_metrics(cfg: NodeConfig, node: NodeService) -> web.AppRunner | None:
    """``/metrics`` and ``/health`` on ``metrics_host:metrics_port`` without
    authentication (for a scraper on a private network), if ``metrics_port`` is set."""
    if cfg.metrics_port is None:
        return None

    async def metrics(request: web.Request) -> web.Response:
        node.status()  # refresh the gauges
        return web.Response(body=node.metrics.render(), content_type="text/plain", charset="utf-8")

    app = web.Application()
    app.router.add_get("/metrics", metrics)
    app.router.add_get("/health", health)
    runner = web.AppRunner(app, access_log=None, shutdown_timeout=1.0)
    await runner.setup()
    await web.TCPSite(runner, cfg.metrics_host, cfg.metrics_port, reuse_address=True).start()
    return runner
