"""The audit explorer's reads: paginated JSON lists under ``/v1/explore/`` that the page
at ``/ui/`` (``node.api.ui``) is built on, usable by any client.

**Pagination.** Every list answers ``{"items": [...], "next_cursor": str | null}`` with
at most ``limit`` items (``1 <= limit <= PAGE_LIMIT_MAX``, default
``PAGE_LIMIT_DEFAULT``); pass ``next_cursor`` back as ``cursor`` for the next page, and
stop when it is null. A cursor is the position of the last item returned (lowercase hex
of the state key after its family prefix, or a height / a position for blocks and block
txs), so a page is one bounded range scan of LMDB from that key, never a count or an
offset: the cost of a page does not grow with the chain. Cursors are checked where they
enter: a cursor of the wrong form is a 400 naming it.

Orders: blocks newest first; a block's txs in block order; datasets and models in the
order of their id digests (``acl.keys``: ids enter keys hashed); grants by grantee (or by
dataset) then grant id; history, audit events and violations in chain order.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Iterator
from typing import Any, Final

from aiohttp import web

import acl.queries as q
from acl import keys as K
from acl.audit_counters import violations_count
from acl.audit_log import encode_time_bound
from acl.consortium import organisations, validators
from acl.evidence import TxRef, parse_ref
from acl.kinds import KIND_BY_CODE
from acl.lookups import load_record
from acl.results import label
from acl.state import prefix_end, scan_prefix
from acl.views import DatasetView, EventView, GrantView, HistoryEntry, jsonify
from chain import codec
from chain.hashing import leaf_hash
from chain.tx import TxError, decode_tx
from node.api.block_json import header_json, tx_kind
from node.api.params import bad_request, int_param
from node.api.read_view import open_view
from node.api.service import NodeService
from storage.lmdb_store import LmdbSnapshot

PAGE_LIMIT_DEFAULT: Final = 50
PAGE_LIMIT_MAX: Final = 200
SCAN_MAX: Final = 10_000
"""Entries one page may skip over (model owner records) before it answers short."""
USES_MAX: Final = 1_000
"""What was done with a model that its lineage lists (the first ones, in chain order);
``/uses`` pages through all of them."""
RECENT_BLOCKS: Final = 64
"""Blocks the dashboard reads for throughput and for which validators sign."""
DAY_MS: Final = 24 * 3600 * 1000
ID_CHARS_MAX: Final = 256
PREFIX: Final = "/v1/explore"

Node = web.AppKey("explorer_node", NodeService)


def _node(request: web.Request) -> NodeService:
    return request.app[Node]


def _state(request: web.Request) -> LmdbSnapshot:
    return open_view(request, _node(request))


def _limit(request: web.Request) -> int:
    return int_param(request, "limit", PAGE_LIMIT_DEFAULT, 1, PAGE_LIMIT_MAX)


def _text(request: web.Request, name: str, *, required: bool = True) -> str | None:
    raw = request.query.get(name)
    if raw is None or raw == "":
        if required:
            raise bad_request(f"query parameter {name!r} is required")
        return None
    if len(raw) > ID_CHARS_MAX:
        raise bad_request(f"{name} is over {ID_CHARS_MAX} characters")
    return raw


def _key_cursor(request: web.Request, width: int) -> bytes | None:
    """The ``cursor`` parameter: ``width`` bytes in lowercase hex, or None if absent."""
    raw = request.query.get("cursor")
    if raw is None or raw == "":
        return None
    if len(raw) != 2 * width:
        raise bad_request(f"cursor must be {2 * width} hex characters (a next_cursor)")
    try:
        return bytes.fromhex(raw)
    except ValueError:
        raise bad_request("cursor must be hex (a next_cursor)") from None


def _page(
    state: Any,
    prefix: bytes,
    width: int,
    cursor: bytes | None,
    limit: int,
    build: Callable[[bytes, bytes], dict[str, Any] | None],
    end: bytes | None = None,
    start: bytes | None = None,
) -> dict[str, Any]:
    """One page of a key family: entries after ``cursor`` (or from ``start``), built by
    ``build`` (None skips an entry), and the cursor of the next page."""
    if cursor is not None:
        first = prefix + cursor + b"\x00"  # keys of a family have one width
    else:
        first = start if start is not None else prefix
    stop = end if end is not None else prefix_end(prefix)
    items: list[dict[str, Any]] = []
    last: bytes | None = None
    more = False
    for scanned, (key, value) in enumerate(state.range(first, stop)):
        if len(items) >= limit or scanned >= SCAN_MAX:
            more = True
            break
        last = key
        doc = build(key, value)
        if doc is not None:
            items.append(doc)
    return {
        "items": items,
        "next_cursor": last[len(prefix) : len(prefix) + width].hex()
        if more and last is not None
        else None,
    }


def _time_range(request: web.Request) -> tuple[int, int]:
    a = int_param(request, "from_ms", 0)
    b = int_param(request, "until_ms", 2**63 - 1)
    if b < a:
        raise bad_request("until_ms must not be before from_ms")
    return a, b


def _tx_doc(raw: bytes) -> dict[str, Any]:
    try:
        tx = decode_tx(raw)
    except TxError as exc:  # a committed tx always decodes; say so rather than fail
        return {"decode_error": str(exc)}
    return {
        "kind": tx.kind,
        "chain_id": tx.chain_id,
        "sender": tx.sender.hex(),
        "nonce": tx.nonce,
        "timestamp_ms": tx.timestamp_ms,
        "payload": jsonify(tx.payload),
        "signature": tx.signature.hex(),
    }


# -- handlers -------------------------------------------------------------------------
async def blocks(request: web.Request) -> web.Response:
    """Block headers, newest first, with the validators that signed each."""
    node = _node(request)
    head = node.store.height
    limit = _limit(request)
    top = int_param(request, "cursor", head, 0, 2**63 - 1) if request.query.get("cursor") else head
    top = min(top, head)
    items: list[dict[str, Any]] = []
    height = top
    while height >= 1 and len(items) < limit:
        h = node.store.header(height)
        if h is None:
            break
        items.append(
            {
                "height": h.height,
                "hash": h.hash.hex(),
                "timestamp_ms": h.timestamp_ms,
                "proposer": h.proposer,
                "round": h.round,
                "tx_count": h.tx_count,
                "log_size": h.log_size,
                "signers": sorted(n for n, _ in node.store.certificate(height)),
            }
        )
        height -= 1
    return web.json_response(
        {"head": head, "items": items, "next_cursor": str(height) if height >= 1 else None}
    )


async def block_txs(request: web.Request) -> web.Response:
    """A block's header and signers, and its txs in block order with kinds and results
    by name (one request for the explorer's block page; ``/v1/blocks/{height}`` lists
    every tx of the block at once)."""
    node = _node(request)
    try:
        height = int(request.match_info["height"])
    except ValueError:
        raise bad_request("height must be an integer") from None
    block = node.block(height)
    if block is None:
        raise web.HTTPNotFound(
            text=f'{{"error": "no block at height {height} (head is {node.store.height})"}}',
            content_type="application/json",
        )
    limit = _limit(request)
    first = int_param(request, "cursor", 0, 0, 2**32) if request.query.get("cursor") else 0
    end = min(first + limit, len(block.txs))
    page = []
    for position in range(first, end):  # only this page's txs are hashed and read
        raw = block.txs[position]
        doc: dict[str, Any] = {"position": position, "tx_id": leaf_hash(raw).hex()}
        kind = tx_kind(raw)
        if kind is not None:
            doc["kind"] = kind
        doc["result"] = label(block.results[position])
        page.append(doc)
    h = block.header
    return web.json_response(
        {
            "height": h.height,
            "hash": h.hash.hex(),
            "timestamp_ms": h.timestamp_ms,
            "proposer": h.proposer,
            "tx_count": h.tx_count,
            "header": header_json(h),
            "certificate": sorted(n for n, _ in node.store.certificate(height)),
            "items": page,
            "next_cursor": str(end) if end < len(block.txs) else None,
        }
    )


async def tx(request: web.Request) -> web.Response:
    """One committed tx decoded: kind, sender and its identity, payload, result."""
    node = _node(request)
    raw_id = request.match_info["tx_id"]
    try:
        tx_id = bytes.fromhex(raw_id)
    except ValueError:
        raise bad_request("tx id is not hex") from None
    if len(tx_id) != 32:
        raise bad_request("tx id must be 32 bytes (64 hex chars)")
    loc = node.store.tx_location(tx_id)
    if loc is None:
        status = "pending" if node.is_queued(tx_id) else None
        if status:
            return web.json_response({"tx_id": tx_id.hex(), "status": status}, status=202)
        raise q.QueryError(f"tx {tx_id.hex()} is not in the chain")
    block = node.block(loc.height)
    if block is None:
        raise q.QueryError(f"block {loc.height} is not on this node")
    doc = _tx_doc(block.txs[loc.position])
    sender = doc.get("sender")
    ident = q.identity(_state(request), bytes.fromhex(sender)) if sender else None
    return web.json_response(
        {
            "tx_id": tx_id.hex(),
            "status": "committed",
            "height": loc.height,
            "position": loc.position,
            "log_index": loc.log_index,
            "block_timestamp_ms": block.header.timestamp_ms,
            "result": label(loc.result),
            "result_code": loc.result,
            "sender_identity": ident,
            **doc,
        }
    )


async def datasets(request: web.Request) -> web.Response:
    def build(key: bytes, value: bytes) -> dict[str, Any]:
        rec = codec.decode(value)
        return {
            "dataset_id": rec["dataset_id"],
            "owner_org": rec["owner_org"],
            "title": rec.get("title"),
            "sensitivity": rec["sensitivity"],
            "licence": rec.get("licence"),
            "version_count": rec.get("version_count"),
            "registered_ms": rec["registered_ms"],
        }

    state = _state(request)
    return web.json_response(
        _page(state, K.DATASET, 32, _key_cursor(request, 32), _limit(request), build)
    )


async def dataset(request: web.Request) -> web.Response:
    """A dataset without its versions (``/versions`` pages through them; a dataset may
    have any number)."""
    dataset_id = request.match_info["dataset_id"]
    rec = load_record(_state(request), K.DATASET + K.dataset_key(dataset_id))
    if rec is None:
        raise q.QueryError(f"no dataset {dataset_id!r}")
    doc = DatasetView.from_record(rec, ()).to_json()
    del doc["versions"]
    return web.json_response({**doc, "version_count": rec["version_count"]})


async def dataset_versions(request: web.Request) -> web.Response:
    """A dataset's versions, oldest first."""
    dataset_id = request.match_info["dataset_id"]
    cursor = _key_cursor(request, 4)
    limit = _limit(request)
    state = _state(request)
    if state.get(K.DATASET + K.dataset_key(dataset_id)) is None:
        raise q.QueryError(f"no dataset {dataset_id!r}")

    def build(key: bytes, value: bytes) -> dict[str, Any]:
        v = codec.decode(value)
        return {**jsonify(v), "added": parse_ref(v["added"]).to_json()}

    prefix = K.VERSION + K.dataset_key(dataset_id)
    return web.json_response(_page(state, prefix, 4, cursor, limit, build))


async def dataset_history(request: web.Request) -> web.Response:
    dataset_id = request.match_info["dataset_id"]
    cursor = _key_cursor(request, 12)
    limit = _limit(request)
    state = _state(request)
    q.dataset(state, dataset_id)  # 404 for an unknown dataset

    def build(key: bytes, value: bytes) -> dict[str, Any]:
        height, index = K.parse_position(key[-12:])
        code, result, ms, tx_id = K.MARK.unpack(value)
        return HistoryEntry(TxRef(height, index, tx_id), KIND_BY_CODE[code], result, ms).to_json()

    prefix = K.HISTORY + K.dataset_key(dataset_id)
    return web.json_response(_page(state, prefix, 12, cursor, limit, build))


async def grants(request: web.Request) -> web.Response:
    """Grants of a dataset or to an organisation, each with ``in_force`` at ``at_ms``
    (default now): revoked and expired ones are listed too, marked."""
    ds = _text(request, "dataset", required=False)
    grantee = _text(request, "grantee", required=False)
    if (ds is None) == (grantee is None):
        raise bad_request("give exactly one of 'dataset' or 'grantee'")
    at_ms = int_param(request, "at_ms", int(time.time() * 1000))
    state = _state(request)
    if ds is not None:
        prefix = K.BY_DATASET + K.dataset_key(ds)
    else:
        prefix = K.BY_GRANTEE + K.org_key(grantee or "")

    def build(key: bytes, value: bytes) -> dict[str, Any]:
        g: GrantView = q.grant(state, key[-32:])
        return {**g.to_json(), "in_force": g.in_force_at(at_ms)}

    page = _page(state, prefix, 64, _key_cursor(request, 64), _limit(request), build)
    return web.json_response({"in_force_at_ms": at_ms, **page})


def _event_page(request: web.Request, family: bytes, of_log: bool) -> dict[str, Any]:
    a, b = _time_range(request)
    state = _state(request)

    def build(key: bytes, value: bytes) -> dict[str, Any]:
        log_key = K.LOG + key[1:]
        raw = value if of_log else state.get(log_key)
        if raw is None:
            raise q.QueryError(f"violation index points to a missing event {key.hex()}")
        return EventView.from_entry(log_key, raw).to_json()

    return _page(
        state,
        family,
        20,
        _key_cursor(request, 20),
        _limit(request),
        build,
        end=family + encode_time_bound(b),
        start=family + encode_time_bound(a),
    )


async def violations(request: web.Request) -> web.Response:
    """``no_grant`` audit events in ``[from_ms, until_ms)`` of block time, in chain order."""
    return web.json_response(_event_page(request, K.VIOLATION, of_log=False))


async def events(request: web.Request) -> web.Response:
    """Every audit event in ``[from_ms, until_ms)`` of block time, in chain order."""
    return web.json_response(_event_page(request, K.LOG, of_log=True))


async def models(request: web.Request) -> web.Response:
    def build(key: bytes, value: bytes) -> dict[str, Any] | None:
        if key[-4:] == b"\x00\x00\x00\x00":
            return None  # version 0: the name's owner record
        rec = codec.decode(value)
        return {
            "model_name": rec["model_name"],
            "model_version": rec["model_version"],
            "org_id": rec["org_id"],
            "training_runs": list(rec["training_runs"]),
            "registered_ms": rec["registered_ms"],
        }

    state = _state(request)
    return web.json_response(
        _page(state, K.MODEL, 36, _key_cursor(request, 36), _limit(request), build)
    )


class _UsesCapped:
    """A ``StateReader`` whose scans of a model's uses (``N`` keys) stop after
    ``USES_MAX`` entries: a model's lineage is bounded by what it rests on, but a
    deployed model may have millions of inference batches."""

    def __init__(self, state: Any) -> None:
        self._state = state
        self.truncated = False

    def get(self, key: bytes) -> bytes | None:
        value: bytes | None = self._state.get(key)
        return value

    def range(self, start: bytes, end: bytes | None) -> Iterator[tuple[bytes, bytes]]:
        items = self._state.range(start, end)
        if not start.startswith(K.MODEL_USE):
            yield from items
            return
        for n, item in enumerate(items):
            if n >= USES_MAX:
                self.truncated = True
                return
            yield item


def _model_ref(request: web.Request) -> tuple[str, int]:
    name = request.match_info["name"]
    if len(name) > ID_CHARS_MAX:
        raise bad_request(f"model name is over {ID_CHARS_MAX} characters")
    try:
        version = int(request.match_info["version"])
    except ValueError:
        raise bad_request("model version must be an integer") from None
    if not 1 <= version < 2**32:
        raise bad_request("model version must be in [1, 2**32)")
    return name, version


async def model_lineage(request: web.Request) -> web.Response:
    """``/v1/models/{name}/{version}/lineage`` with at most ``USES_MAX`` uses listed
    (``uses_truncated`` says when more exist)."""
    name, version = _model_ref(request)
    state = _UsesCapped(_state(request))
    doc = q.model_lineage(state, name, version).to_json()
    return web.json_response({**doc, "uses_truncated": state.truncated})


async def model_uses(request: web.Request) -> web.Response:
    """What was done with a model since its registration, in chain order."""
    name, version = _model_ref(request)
    cursor = _key_cursor(request, 12)
    limit = _limit(request)
    state = _state(request)
    q.model(state, name, version)  # 404 for an unknown model

    def build(key: bytes, value: bytes) -> dict[str, Any]:
        height, index = K.parse_position(key[-12:])
        code, result, ms, tx_id = K.MARK.unpack(value)
        return HistoryEntry(TxRef(height, index, tx_id), KIND_BY_CODE[code], result, ms).to_json()

    prefix = K.MODEL_USE + K.model_version_key(name, version)
    return web.json_response(_page(state, prefix, 12, cursor, limit, build))


async def consortium(request: web.Request) -> web.Response:
    """Organisations and validators (bounded: governance admits them one by one)."""
    state = _state(request)
    return web.json_response(
        {
            "organisations": [jsonify(o) for o in organisations(state)],
            "validators": validators(state),
        }
    )


async def search(request: web.Request) -> web.Response:
    """What ``q`` names: a tx id, a block height, a dataset, a model (its versions), an
    organisation. Exact matches only: ids are hashed in the state's keys."""
    text = _text(request, "q") or ""
    text = text.strip()
    node = _node(request)
    state = _state(request)
    matches: list[dict[str, Any]] = []
    if len(text) == 64:
        try:
            raw = bytes.fromhex(text)
        except ValueError:
            raw = b""
        if raw and node.store.tx_location(raw) is not None:
            matches.append({"type": "tx", "id": text.lower()})
    if text.isdigit() and len(text) < 20 and 1 <= int(text) <= node.store.height:
        matches.append({"type": "block", "id": int(text)})
    if state.get(K.DATASET + K.dataset_key(text)) is not None:
        matches.append({"type": "dataset", "id": text})
    versions = [
        int.from_bytes(key[-4:], "big")
        for key, _ in scan_prefix(state, K.MODEL + K.model_key(text))
    ]
    for v in [v for v in versions if v != 0][:PAGE_LIMIT_MAX]:
        matches.append({"type": "model", "id": text, "version": v})
    if load_record(state, K.ORG + K.org_key(text)) is not None:
        matches.append({"type": "org", "id": text})
    return web.json_response({"q": text, "matches": matches})


async def dashboard(request: web.Request) -> web.Response:
    """This node's status, the recent blocks' throughput, which validators signed them
    (a validator that stopped signing is down or cut off), and the violations of the
    last day."""
    node = _node(request)
    status = node.status()
    head = node.store.height
    recent = []
    last_signed: dict[str, int] = {}
    for height in range(head, max(0, head - RECENT_BLOCKS), -1):
        h = node.store.header(height)
        if h is None:
            break
        recent.append({"height": height, "timestamp_ms": h.timestamp_ms, "tx_count": h.tx_count})
        for node_id, _sig in node.store.certificate(height):
            last_signed.setdefault(node_id, height)
    recent.reverse()
    state = _state(request)
    now_ms = int(time.time() * 1000)
    # From the audit counters: exact, at most two seeks per organisation and result.
    count = violations_count(state, now_ms - DAY_MS, now_ms + 1)
    vals = [
        {
            "node_id": v["node_id"],
            "org_id": v.get("org_id"),
            "status": v.get("status"),
            "last_signed_height": last_signed.get(v["node_id"]),
        }
        for v in validators(state)
    ]
    return web.json_response(
        {
            "status": status,
            "now_ms": now_ms,
            "recent_blocks": recent,
            "validators": vals,
            "violations_last_day": count,
            "violations_count_capped": False,  # counted exactly since the audit counters
        }
    )


def add_routes(app: web.Application, node: NodeService) -> None:
    """The explorer's JSON reads (before the app's catch-all route)."""
    app[Node] = node
    r = app.router
    r.add_get(f"{PREFIX}/dashboard", dashboard)
    r.add_get(f"{PREFIX}/blocks", blocks)
    r.add_get(PREFIX + r"/blocks/{height}/txs", block_txs)
    r.add_get(PREFIX + "/txs/{tx_id}", tx)
    r.add_get(f"{PREFIX}/datasets", datasets)
    # Ids may contain "/" (org/name): the longer routes first.
    r.add_get(PREFIX + "/datasets/{dataset_id:.+}/history", dataset_history)
    r.add_get(PREFIX + "/datasets/{dataset_id:.+}/versions", dataset_versions)
    r.add_get(PREFIX + "/datasets/{dataset_id:.+}", dataset)
    r.add_get(f"{PREFIX}/grants", grants)
    r.add_get(f"{PREFIX}/violations", violations)
    r.add_get(f"{PREFIX}/events", events)
    r.add_get(f"{PREFIX}/models", models)
    r.add_get(PREFIX + r"/models/{name:.+}/{version:\d+}/lineage", model_lineage)
    r.add_get(PREFIX + r"/models/{name:.+}/{version:\d+}/uses", model_uses)
    r.add_get(f"{PREFIX}/consortium", consortium)
    r.add_get(f"{PREFIX}/search", search)
