"""``POST /api/v1/lineage``: an OpenLineage client pointed at a node
(``OPENLINEAGE_URL=http://node:port``, HttpTransport) records its runs on chain.

The node maps each RunEvent onto audit events (``node.api.lineage_events``; the rules
in docs/openlineage.md), signs them with the app identity in ``[openlineage] app_key``
and submits them as any client would, so the state machine checks them against the
grants: a run on data without a grant is committed as a violation and answered 2xx.

Answers: 200 with the committed txs, their results and heights; 202 when they are
admitted but not committed within ``COMMIT_WAIT_S`` (the client's default timeout is
5 s); 400 for an event that is not a RunEvent we can read, naming the field; 401
without the bearer token when ``api_key_file`` is set; 404 when the endpoint is not
enabled; 413 past ``BODY_BYTES_MAX``; 422 when the node refuses the signed txs (e.g. the
app identity is not registered, or ``eventTime`` is outside the chain's freshness
window); 503 with Retry-After when the node cannot take txs now.

Exactly once: the tx nonce is derived from the event itself (SHA-256 of its canonical
JSON) and the tx time is the event's ``eventTime``, so a client that retries an event
(the HttpTransport retries on 5xx and timeouts) produces the same signed txs, which
the chain deduplicates by tx id.

``Content-Encoding: gzip`` (the transport's ``compression``) is decoded by aiohttp; the
size bound applies to the decoded body.
"""

from __future__ import annotations

import hashlib
import hmac
import json
import time
from typing import Any

from aiohttp import web

from acl.machine import TX_AGE_MAX_MS, TX_FUTURE_MAX_MS
from acl.results import label
from chain import signing
from chain.tx import sign_tx
from node.api.lineage_events import LineageError, Plan, plan
from node.api.service import NodeService
from node.pipeline.admission import Status
from node.runtime.config import OpenLineageConfig
from node.runtime.keys import load_private_key

PATH = "/api/v1/lineage"
BODY_BYTES_MAX = 1024 * 1024
COMMIT_WAIT_S = 3.0


def _error(status: int, message: str, **extra: Any) -> web.Response:
    return web.json_response({"error": message, **extra}, status=status)


def tx_nonce(event: Any, index: int) -> int:
    """The nonce of the ``index``-th tx of an event: the same event, the same txs."""
    canonical = json.dumps(event, sort_keys=True, separators=(",", ":"), ensure_ascii=False)
    digest = hashlib.sha256(b"openlineage\x00%d\x00" % index + canonical.encode()).digest()
    return int.from_bytes(digest[:8], "big") >> 1


class LineageIntake:
    """The endpoint of one node: its signing key, its token, its node."""

    def __init__(self, node: NodeService, cfg: OpenLineageConfig, chain_id: str) -> None:
        if cfg.app_key is None:
            raise ValueError("[openlineage] app_key is required when enabled")
        self.node = node
        self.chain_id = chain_id
        self.key: signing.PrivateKey = load_private_key(cfg.app_key)
        self.token: bytes | None = None
        if cfg.api_key_file is not None:
            lines = cfg.api_key_file.read_text(encoding="utf-8").splitlines()
            if not lines or not lines[0].strip():
                raise ValueError(f"{cfg.api_key_file}: the first line must be the API key")
            self.token = lines[0].strip().encode()

    def _authorized(self, request: web.Request) -> bool:
        if self.token is None:
            return True
        scheme, _, given = request.headers.get("Authorization", "").partition(" ")
        return scheme.lower() == "bearer" and hmac.compare_digest(
            given.strip().encode(), self.token
        )

    async def _event(self, request: web.Request) -> Any:
        if request.content_type not in ("application/json", ""):
            raise LineageError(f"content type {request.content_type!r}: send application/json")
        body = bytearray()
        async for chunk in request.content.iter_chunked(64 * 1024):
            body += chunk
            if len(body) > BODY_BYTES_MAX:
                raise web.HTTPRequestEntityTooLarge(BODY_BYTES_MAX, len(body))
        try:
            return json.loads(body)
        except (ValueError, RecursionError) as exc:
            raise LineageError(f"the body is not JSON: {exc}") from None

    async def handle(self, request: web.Request) -> web.Response:
        count = self.node.metrics.openlineage_events.labels
        if not self._authorized(request):
            count("unauthorized").inc()
            resp = _error(401, "send the node's OpenLineage API key as 'Authorization: Bearer ..'")
            resp.headers["WWW-Authenticate"] = 'Bearer realm="openlineage"'
            return resp
        try:
            event = await self._event(request)
            planned = plan(event)
        except LineageError as exc:
            count("invalid").inc()
            return _error(400, f"not an OpenLineage RunEvent the chain can record: {exc}")
        if not planned.txs:
            count("nothing_to_record").inc()
            return web.json_response(self._answer(planned, []))
        now_ms = time.time_ns() // 1_000_000  # the RPC boundary's clock, as admission's
        if not now_ms - TX_AGE_MAX_MS <= planned.event_time_ms <= now_ms + TX_FUTURE_MAX_MS:
            count("refused").inc()
            return _error(
                422,
                f"eventTime is {(now_ms - planned.event_time_ms) / 3_600_000:.1f} h from now: "
                "the chain records events from the last 24 h up to 10 min ahead",
            )
        return await self._submit(event, planned)

    async def _submit(self, event: Any, planned: Plan) -> web.Response:
        count = self.node.metrics.openlineage_events.labels
        txs = [
            sign_tx(
                self.key,
                chain_id=self.chain_id,
                kind=t.kind,
                nonce=tx_nonce(event, i),
                timestamp_ms=planned.event_time_ms,
                payload=t.payload,
            )
            for i, t in enumerate(planned.txs)
        ]
        verdicts = await self.node.submit([t.to_bytes() for t in txs])
        if any(v.status is Status.MEMPOOL_FULL or v.status is Status.NO_LEADER for v in verdicts):
            count("unavailable").inc()
            resp = _error(
                503,
                "the node cannot take txs now; retry (the same event makes the same txs)",
                txs=[v.to_json() for v in verdicts],
            )
            resp.headers["Retry-After"] = "1"
            return resp
        refused = [v for v in verdicts if v.status is Status.REJECTED or v.tx_id is None]
        if refused:
            count("refused").inc()
            return _error(
                422,
                "the node refused the event's txs: " + "; ".join(str(v.error) for v in refused),
                txs=[v.to_json() for v in verdicts],
            )
        ids = [v.tx_id for v in verdicts if v.tx_id is not None]
        found = await self.node.wait_committed(ids, COMMIT_WAIT_S)
        docs = []
        for t, tx_id in zip(planned.txs, ids, strict=True):
            loc = found.get(tx_id)
            doc: dict[str, Any] = {"tx_id": tx_id.hex(), "kind": t.kind}
            if loc is None:
                doc["status"] = "pending"
            else:
                doc |= {"status": "committed", "height": loc.height, "result": label(loc.result)}
            docs.append(doc)
        count("recorded").inc()
        return web.json_response(
            self._answer(planned, docs), status=200 if len(found) == len(ids) else 202
        )

    def _answer(self, planned: Plan, docs: list[dict[str, Any]]) -> dict[str, Any]:
        doc: dict[str, Any] = {"txs": docs, "unmapped": planned.unmapped}
        if planned.note is not None:
            doc["note"] = planned.note
        return doc


def add_routes(app: web.Application, intake: LineageIntake | None) -> None:
    """``POST /api/v1/lineage``; without an intake it answers 404 and says how to enable."""

    async def disabled(request: web.Request) -> web.Response:
        return _error(404, "OpenLineage is not enabled on this node: see [openlineage] enabled")

    app.router.add_post(PATH, intake.handle if intake is not None else disabled)
