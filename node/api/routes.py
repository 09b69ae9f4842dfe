"""The HTTP RPC (aiohttp): JSON for people and scripts, msgpack for batches.

Every boundary check lives here or below: body size, content type, JSON shape, base64,
per-tx limits. Errors are JSON ``{"error": "..."}`` with a 4xx naming the problem; an
unexpected failure is a 500 that is logged, never a crashed node.
"""

from __future__ import annotations

import asyncio
import json
import logging
import time
from collections.abc import Awaitable, Callable
from typing import Any

import orjson
from aiohttp import web

import acl.queries as q
from acl.kinds import KINDS
from acl.results import label
from chain import merkle
from node.api import explorer, lineage_route, stream, ui
from node.api.block_json import committed_doc, header_json, txs_json
from node.api.lineage_route import LineageIntake
from node.api.openapi import OPENAPI
from node.api.params import bad_request as _bad
from node.api.params import int_param as _int_param
from node.api.read_view import close_view, open_view
from node.api.secure import health
from node.api.service import NodeService
from node.api.tx_body import TxBodyError, parse_txs
from node.pipeline.admission import Status
from storage.blockstore import TxLocation, TxPrunedError
from storage.lmdb_store import LmdbSnapshot

log = logging.getLogger("grantchain.rpc")

BODY_BYTES_MAX = 32 * 1024 * 1024
WAIT_TIMEOUT_MS_DEFAULT = 10_000
WAIT_TIMEOUT_MS_MAX = 60_000
CERT_WAIT_S = 2.0
RESUBMIT_AFTER_S = 2.0
"""How long a commit wait lasts before the txs not yet committed are submitted again."""
SCANS_IN_FLIGHT_MAX = 2
"""Scanning queries running at once (``_scan``); the node has two cores' worth of work."""
SCAN_SLOTS = web.AppKey("scan_slots", asyncio.Semaphore)
NODE_KEY: web.AppKey[NodeService] = web.AppKey("node")


def _error(status: int, message: str, **extra: Any) -> web.Response:
    return web.json_response({"error": message, **extra}, status=status)


def _json_fast(doc: dict[str, Any], *, status: int) -> web.Response:
    """A JSON answer through orjson: a batch's answer holds a result per tx, and the
    standard encoder spent ~1 us per tx of the event loop's time on it."""
    return web.Response(body=orjson.dumps(doc), status=status, content_type="application/json")


@web.middleware
async def errors(
    request: web.Request, handler: Callable[[web.Request], Awaitable[web.StreamResponse]]
) -> web.StreamResponse:
    try:
        return await handler(request)
    except web.HTTPRequestEntityTooLarge:
        return _error(413, f"request body over {BODY_BYTES_MAX} bytes")
    except web.HTTPException as exc:
        if exc.status >= 400 and exc.content_type != "application/json":
            return _error(exc.status, exc.reason)
        raise
    except (q.QueryError, KeyError) as exc:
        return _error(404, str(exc.args[0]) if exc.args else "not found")
    except TxPrunedError as exc:
        # The tx (or block) is committed, but its bytes were pruned here (``grantchain
        # prune``, or a node started from a snapshot): neither they nor a receipt (which
        # carries them) can be served. Gone on this node, not "not found"; receipts
        # issued before still verify, and a node that keeps the bytes answers.
        return _error(410, str(exc), reason="pruned")
    except Exception:
        log.exception("RPC %s %s failed", request.method, request.path)
        return _error(500, "internal error (logged on the node)")
    finally:
        close_view(request)


def _node(request: web.Request) -> NodeService:
    return request.app[NODE_KEY]


def _hex32(value: str, what: str) -> bytes:
    try:
        raw = bytes.fromhex(value)
    except ValueError:
        raise web.HTTPBadRequest(
            text=json.dumps({"error": f"{what} is not hex"}), content_type="application/json"
        ) from None
    if len(raw) != 32:
        raise web.HTTPBadRequest(
            text=json.dumps({"error": f"{what} must be 32 bytes (64 hex chars)"}),
            content_type="application/json",
        )
    return raw


def _str_param(request: web.Request, name: str, required: bool = True) -> str | None:
    raw = request.query.get(name)
    if raw is None or raw == "":
        if required:
            raise _bad(f"query parameter {name!r} is required")
        return None
    if len(raw) > 256:
        raise _bad(f"{name} is too long")
    return raw


# -- handlers -------------------------------------------------------------------------
async def status(request: web.Request) -> web.Response:
    return web.json_response(_node(request).status())


async def _read_txs(request: web.Request) -> list[bytes]:
    try:
        return parse_txs(await request.read(), request.content_type)
    except TxBodyError as exc:
        if exc.status == 415:
            raise web.HTTPUnsupportedMediaType(
                text=json.dumps({"error": str(exc)}), content_type="application/json"
            ) from None
        raise _bad(str(exc)) from None


async def submit_txs(request: web.Request) -> web.Response:
    node = _node(request)
    wait = request.query.get("wait")
    if wait not in (None, "commit"):
        raise _bad("wait must be 'commit' if given")
    timeout_ms = _int_param(request, "timeout_ms", WAIT_TIMEOUT_MS_DEFAULT, 1, WAIT_TIMEOUT_MS_MAX)
    receipts_param = request.query.get("receipts", "true")
    if receipts_param not in ("true", "false"):
        raise _bad("receipts must be 'true' or 'false'")
    with_receipts = receipts_param == "true"
    txs = await _read_txs(request)
    if wait and not node.can_wait(len(txs)):
        return _error(
            429, "too many clients are waiting for commits; retry, or submit without wait"
        )
    started = time.perf_counter()
    verdicts = await node.submit(txs)
    # (identity tests: hashing an Enum member runs Python code, and this runs per tx)
    if verdicts and all(
        v.status is Status.MEMPOOL_FULL or v.status is Status.NO_LEADER for v in verdicts
    ):
        code = 503
        resp = _json_fast(
            {
                "results": [v.to_json() for v in verdicts],
                "error": "node cannot take txs now; retry",
            },
            status=code,
        )
        resp.headers["Retry-After"] = "1"
        return resp
    if not wait:
        return _json_fast({"results": [v.to_json() for v in verdicts]}, status=202)
    want = {
        v.tx_id: None
        for v in verdicts
        if v.tx_id and v.status in (Status.ACCEPTED, Status.DUPLICATE, Status.COMMITTED)
    }
    deadline = started + timeout_ms / 1000
    found = await _wait_resubmitting(
        node, want, dict(zip((v.tx_id for v in verdicts), txs, strict=True)), deadline
    )
    node.metrics.commit_latency.observe(time.perf_counter() - started)
    if with_receipts:  # a receipt proves commitment only with its certificate
        for height in sorted({loc.height for loc in found.values()}):
            await node.wait_certified(
                height, max(0.0, min(CERT_WAIT_S, deadline - time.perf_counter()))
            )
    receipts = await node.receipts(list(found)) if with_receipts else {}
    results = []
    for v in verdicts:
        tx_id = v.tx_id
        loc = found.get(tx_id) if tx_id is not None else None
        if tx_id is not None and loc is not None:
            doc = committed_doc(tx_id, loc, None)
            if with_receipts:  # null when the receipt could not be built
                doc["receipt"] = receipts.get(tx_id)
        else:
            doc = v.to_json()
            if tx_id in want:
                doc["status"] = "pending"
        results.append(doc)
    all_done = all(v.tx_id in found for v in verdicts if v.tx_id in want)
    return _json_fast({"results": results}, status=200 if all_done else 202)


async def _wait_resubmitting(
    node: NodeService,
    want: dict[bytes, None],
    raw_of: dict[bytes | None, bytes],
    deadline: float,
) -> dict[bytes, TxLocation]:
    """Wait for ``want`` to commit until ``deadline``, handing the txs still missing to
    the node again every ``RESUBMIT_AFTER_S``. A follower forwards to the leader it knows
    without an answer, so a tx forwarded to a leader that just died, or queued in a
    deposed leader's mempool, is lost; the client then waited out its whole timeout for
    a "pending". Submitting again is safe: txs are deduplicated by id everywhere (a tx
    still queued is a duplicate, one committed meanwhile answers where it is)."""
    found: dict[bytes, TxLocation] = {}
    while True:
        missing = [t for t in want if t not in found]
        left = deadline - time.perf_counter()
        if not missing or left <= 0:
            return found
        found.update(await node.wait_committed(missing, min(left, RESUBMIT_AFTER_S)))
        # A tx still queued here is not handed over again: admission would only find it
        # a duplicate (after decoding it), and under overload, when commits take longer
        # than RESUBMIT_AFTER_S, that was most of them, every RESUBMIT_AFTER_S.
        queued = node.is_queued
        missing = [t for t in want if t not in found and not queued(t)]
        if missing and deadline - time.perf_counter() > 0:
            await node.submit([raw_of[t] for t in missing])


async def get_tx(request: web.Request) -> web.Response:
    node = _node(request)
    tx_id = _hex32(request.match_info["tx_id"], "tx id")
    receipt = await node.receipt(tx_id)
    if receipt is None:
        if node.is_queued(tx_id):
            return web.json_response({"tx_id": tx_id.hex(), "status": "pending"}, status=202)
        return _error(404, f"tx {tx_id.hex()} is not in the chain or this node's mempool")
    return web.json_response(
        {
            "tx_id": tx_id.hex(),
            "status": "committed",
            "height": receipt["height"],
            "position": receipt["position"],
            "log_index": receipt["log_index"],
            "result": label(receipt["result"]),
            "result_code": receipt["result"],
            "certified": len(receipt["certificate"]) >= node.certs.quorum_at(receipt["height"]),
            "receipt": receipt,
        }
    )


async def get_block(request: web.Request) -> web.Response:
    node = _node(request)
    try:
        height = int(request.match_info["height"])
    except ValueError:
        raise _bad("height must be an integer") from None
    block = node.block(height)
    if block is None:
        return _error(404, f"no block at height {height} (head is {node.store.height})")
    if request.query.get("format") == "msgpack":
        return web.Response(body=block.to_bytes(), content_type="application/msgpack")
    h = block.header
    return web.json_response(
        {
            "height": h.height,
            "hash": h.hash.hex(),
            "header": header_json(h),
            "txs": txs_json(block),
            "certificate": [
                {"node_id": n, "signature": s.hex()} for n, s in node.store.certificate(height)
            ],
        }
    )


async def consistency(request: web.Request) -> web.Response:
    node = _node(request)
    size = node.store.log_size
    first = _int_param(request, "from", None, 1, size if size else 1)
    second = _int_param(request, "to", size, first, size if size else 1)
    try:
        proof = node.store.consistency_proof(first, second)
    except merkle.ProofError as exc:
        raise _bad(str(exc)) from None
    return web.json_response(
        {
            "from": first,
            "to": second,
            "root_from": node.store.log_root(first).hex(),
            "root_to": node.store.log_root(second).hex(),
            "proof": [p.hex() for p in proof],
        }
    )


async def _scan(request: web.Request, query: Callable[[Any], dict[str, Any]]) -> web.Response:
    """Run a query whose cost grows with the chain (history, grants, violations, the
    report) on a worker thread, in a read transaction of its own, at most
    ``SCANS_IN_FLIGHT_MAX`` at a time: on the event loop, one such query held up peers'
    heartbeats and every other request for as long as it ran. Past the limit: 503 with
    ``Retry-After``, as a full mempool answers."""
    slots = request.app[SCAN_SLOTS]
    if slots.locked():
        busy = _error(503, f"{SCANS_IN_FLIGHT_MAX} scanning queries are running; retry shortly")
        busy.headers["Retry-After"] = "1"
        return busy
    store = _node(request).store

    def run() -> dict[str, Any]:
        with store.snapshot() as view:  # opened and closed on the worker thread
            return query(view)

    async with slots:
        doc = await asyncio.to_thread(run)
    return _json_fast(doc, status=200)


def _state(request: web.Request) -> LmdbSnapshot:
    return open_view(request, _node(request))


async def access(request: web.Request) -> web.Response:
    version = (
        _int_param(request, "version", 0, 1, 2**32 - 1) if "version" in request.query else None
    )
    decision = q.access_check(
        _state(request),
        org_id=_str_param(request, "org") or "",
        dataset_id=_str_param(request, "dataset") or "",
        purpose=_str_param(request, "purpose") or "",
        at_ms=_int_param(request, "at_ms", int(time.time() * 1000)),
        identity=_str_param(request, "identity", required=False),
        version=version,
    )
    return web.json_response(decision.to_json())


async def dataset(request: web.Request) -> web.Response:
    return web.json_response(q.dataset(_state(request), request.match_info["dataset_id"]).to_json())


async def dataset_history(request: web.Request) -> web.Response:
    dataset_id = request.match_info["dataset_id"]
    return await _scan(request, lambda view: q.dataset_history(view, dataset_id).to_json())


async def grants(request: web.Request) -> web.Response:
    ds = _str_param(request, "dataset", required=False)
    grantee = _str_param(request, "grantee", required=False)
    if (ds is None) == (grantee is None):
        raise _bad("give exactly one of 'dataset' or 'grantee'")
    at = request.query.get("at_ms")
    at_ms = _int_param(request, "at_ms") if at is not None else None
    if ds is not None:
        return await _scan(
            request, lambda view: q.grants_by_dataset(view, ds, in_force_at_ms=at_ms).to_json()
        )
    return await _scan(
        request,
        lambda view: q.grants_by_grantee(view, grantee or "", in_force_at_ms=at_ms).to_json(),
    )


async def lineage(request: web.Request) -> web.Response:
    try:
        version = int(request.match_info["version"])
    except ValueError:
        raise _bad("model version must be an integer") from None
    if not 0 <= version < 2**32:
        raise _bad(f"model version must be in [0, {2**32 - 1}]")
    return web.json_response(
        q.model_lineage(_state(request), request.match_info["name"], version).to_json()
    )


async def violations(request: web.Request) -> web.Response:
    a = _int_param(request, "from_ms", 0)
    b = _int_param(request, "until_ms", 2**63 - 1)
    return await _scan(request, lambda view: q.violations(view, a, b).to_json())


async def audit_report(request: web.Request) -> web.Response:
    a = _int_param(request, "from_ms", 0)
    b = _int_param(request, "until_ms", 2**63 - 1)
    # From the audit counters: a few reads per label whatever the range holds, and the
    # first violations and events only (``acl.audit_report``); a scan slot all the same.
    return await _scan(request, lambda view: q.audit_report(view, a, b).to_json())


async def kinds(request: web.Request) -> web.Response:
    return web.json_response(
        {"kinds": [{"kind": k, "description": d} for k, d in sorted(KINDS.items())]}
    )


async def metrics(request: web.Request) -> web.Response:
    node = _node(request)
    node.status()  # refresh the gauges
    return web.Response(body=node.metrics.render(), content_type="text/plain", charset="utf-8")


async def openapi(request: web.Request) -> web.Response:
    return web.json_response(OPENAPI)


async def not_found(request: web.Request) -> web.Response:
    return _error(404, f"no such endpoint: {request.method} {request.path}; see /openapi.json")


def make_app(node: NodeService, openlineage: LineageIntake | None = None) -> web.Application:
    app = web.Application(client_max_size=BODY_BYTES_MAX, middlewares=[errors])
    app[NODE_KEY] = node
    app[SCAN_SLOTS] = asyncio.Semaphore(SCANS_IN_FLIGHT_MAX)
    app.router.add_get("/v1/status", status)
    app.router.add_get("/health", health)
    app.router.add_post("/v1/txs", submit_txs)
    app.router.add_get("/v1/txs/{tx_id}", get_tx)
    app.router.add_get("/v1/blocks/{height}", get_block)
    app.router.add_get("/v1/proofs/consistency", consistency)
    app.router.add_get("/v1/access", access)
    # Ids may contain "/" (org/name): the history route must come first.
    app.router.add_get("/v1/datasets/{dataset_id:.+}/history", dataset_history)
    app.router.add_get("/v1/datasets/{dataset_id:.+}", dataset)
    app.router.add_get("/v1/grants", grants)
    app.router.add_get(r"/v1/models/{name:.+}/{version:\d+}/lineage", lineage)
    app.router.add_get("/v1/violations", violations)
    app.router.add_get("/v1/audit/report", audit_report)
    app.router.add_get("/v1/kinds", kinds)
    app.router.add_get("/metrics", metrics)
    app.router.add_get("/openapi.json", openapi)
    stream.add_routes(app, node)
    lineage_route.add_routes(app, openlineage)
    explorer.add_routes(app, node)
    ui.add_routes(app)
    app.router.add_route("*", "/{tail:.*}", not_found)
    return app
