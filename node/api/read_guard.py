"""The read policy (``acl.read_policy``) applied to the RPC's answers, for requests
authenticated by ``node.api.auth`` (where reads are open, nothing here runs).

Each route has a rule (``RULES``, by the route's path pattern); a route without one is
for auditors only, so a route added later is closed until someone decides who reads it:

- ``/v1/datasets/{id}``: the dataset's owner, its grantees past and present; the
  ``location`` only to its owner and current grantees; anyone else gets the 404 an
  absent dataset gets;
- ``/v1/datasets/{id}/history``: its owner (403 for a grantee, 404 for anyone else);
- ``/v1/grants``: only the grants the reader is party to;
- ``/v1/violations``: only the events the reader is party to;
- ``/v1/access``: about the reader's organisation, or a dataset it owns; else 404;
- ``/v1/models/{name}/{version}/lineage``: the model's organisation, with the locations
  of the datasets in it as for ``/v1/datasets``;
- ``/v1/txs/{id}``: the reader's own txs (their sender is one of its identities); else
  the 404 an unknown tx gets;
- ``/v1/blocks/{height}``: header and certificate for every member (a receipt is checked
  against them), and only the reader's own txs; the raw block (``format=msgpack``) for
  auditors;
- ``/v1/audit/report``, ``/v1/explore/*``: auditors (the explorer's reads can be opened
  with ``explorer_reads = "open"``, ``node.api.auth``);
- ``/v1/status``, ``/v1/kinds``, ``/v1/proofs/consistency``, ``/metrics``, ``/health``,
  ``/openapi.json``, ``POST /v1/txs``: every member.

The commit stream (``node.api.stream``) filters its blocks' txs as ``/v1/blocks`` does
(``SenderOrgs``). A dataset's owner and grantees are read from the committed state the
moment the answer is filtered; time for "current" grants is this node's wall clock.
"""

from __future__ import annotations

import asyncio
import base64
import time
from collections.abc import Awaitable, Callable
from typing import Any

import orjson
from aiohttp import web

from acl import keys as K
from acl import read_policy as rp
from acl.grant_lists import grants_by_dataset
from acl.read_policy import Reader
from acl.records import decode_record
from chain.tx import TxError, decode_tx
from node.api import auth
from node.api.service import NodeService

NODE: web.AppKey[NodeService] = web.AppKey("read_guard_node", NodeService)

Handler = Callable[[web.Request], Awaitable[web.StreamResponse]]
Rule = Callable[[web.Request, Reader, Handler], Awaitable[web.StreamResponse]]


def _json(doc: Any, status: int = 200) -> web.Response:
    return web.Response(body=orjson.dumps(doc), status=status, content_type="application/json")


def _error(status: int, message: str) -> web.Response:
    return _json({"error": message}, status)


def _doc(resp: web.StreamResponse) -> Any | None:
    """The JSON document of a successful answer, or None (an error, a stream)."""
    if not isinstance(resp, web.Response) or resp.status != 200 or resp.body is None:
        return None
    body = resp.body
    return orjson.loads(body if isinstance(body, bytes) else bytes(body))  # type: ignore[arg-type]


class SenderOrgs:
    """The organisation of each tx's sender, read from the committed state (a key that
    was rotated out still names its identity)."""

    def __init__(self, view: Any) -> None:
        self._view = view
        self._of: dict[bytes, str | None] = {}

    def of_key(self, public_key: bytes) -> str | None:
        if public_key not in self._of:
            org = None
            entry = self._load(K.KEY + public_key)
            if entry is not None:
                ident = self._load(K.IDENTITY + entry[0])
                org = None if ident is None else ident["org_id"]
            self._of[public_key] = org
        return self._of[public_key]

    def of_tx(self, raw: bytes) -> str | None:
        try:
            return self.of_key(decode_tx(raw).sender)
        except TxError:
            return None

    def _load(self, key: bytes) -> Any:
        raw = self._view.get(key)
        return None if raw is None else decode_record(raw)


class Datasets:
    """Owners and grantees of datasets, read once each per answer."""

    def __init__(self, view: Any, now_ms: int) -> None:
        self._view = view
        self._now_ms = now_ms
        self._owner: dict[str, str | None] = {}
        self._grantees: dict[str, tuple[set[str], set[str]]] = {}

    def owner(self, dataset_id: str) -> str | None:
        if dataset_id not in self._owner:
            raw = self._view.get(K.DATASET + K.dataset_key(dataset_id))
            self._owner[dataset_id] = None if raw is None else decode_record(raw)["owner_org"]
        return self._owner[dataset_id]

    def grantees(self, dataset_id: str) -> tuple[set[str], set[str]]:
        """(every organisation ever granted the dataset, those with a grant in force now)."""
        if dataset_id not in self._grantees:
            grants = grants_by_dataset(self._view, dataset_id).grants
            self._grantees[dataset_id] = (
                {g.grantee_org for g in grants},
                {g.grantee_org for g in grants if g.in_force_at(self._now_ms)},
            )
        return self._grantees[dataset_id]

    def visible(self, reader: Reader, dataset_id: str) -> bool:
        owner = self.owner(dataset_id)
        if owner is None:
            return True  # absent: the handler answers as for anyone
        if reader.sees_all or owner == reader.org_id:
            return True
        return rp.sees_dataset(reader, owner, self.grantees(dataset_id)[0])

    def shown(self, reader: Reader, doc: dict[str, Any]) -> dict[str, Any] | None:
        """A dataset document as ``reader`` may see it (``acl.read_policy.dataset_doc``)."""
        if reader.sees_all or doc["owner_org"] == reader.org_id:
            return doc
        every, current = self.grantees(doc["dataset_id"])
        return rp.dataset_doc(reader, doc, every, current)


def _node(request: web.Request) -> NodeService:
    return request.app[NODE]


def _now_ms() -> int:
    return time.time_ns() // 1_000_000


async def _in_view(request: web.Request, work: Callable[[Any], Any]) -> Any:
    """``work(view)`` on a worker thread in a read transaction of its own: the grantee
    lists and tx decoding grow with the data."""
    store = _node(request).store

    def run() -> Any:
        with store.snapshot() as view:
            return work(view)

    return await asyncio.to_thread(run)


def _absent_dataset(dataset_id: str) -> web.Response:
    return _error(404, f"no dataset {dataset_id!r}")  # as acl.lookups.dataset says it


# -- the rules --------------------------------------------------------------------------
async def members(request: web.Request, reader: Reader, handler: Handler) -> web.StreamResponse:
    return await handler(request)


async def auditors(request: web.Request, reader: Reader, handler: Handler) -> web.StreamResponse:
    if rp.sees_everything(reader):
        return await handler(request)
    return _error(
        403,
        f"{request.path} is for auditors: an auditor identity of an organisation the "
        f"consortium designated as auditing (reading as {reader.org_id}/{reader.identity})",
    )


async def dataset(request: web.Request, reader: Reader, handler: Handler) -> web.StreamResponse:
    resp = await handler(request)
    doc = _doc(resp)
    if doc is None or reader.sees_all:
        return resp
    shown = await _in_view(request, lambda v: Datasets(v, _now_ms()).shown(reader, doc))
    if shown is None:
        return _absent_dataset(doc["dataset_id"])
    return resp if shown is doc else _json(shown)


async def dataset_history(
    request: web.Request, reader: Reader, handler: Handler
) -> web.StreamResponse:
    if reader.sees_all:
        return await handler(request)
    dataset_id = request.match_info["dataset_id"]

    def check(view: Any) -> tuple[str | None, bool]:
        ds = Datasets(view, _now_ms())
        return ds.owner(dataset_id), ds.visible(reader, dataset_id)

    owner, visible = await _in_view(request, check)
    if owner is None or owner == reader.org_id:
        return await handler(request)
    if not visible:
        return _absent_dataset(dataset_id)
    return _error(403, f"the history of {dataset_id!r} is for its owner and auditors")


async def grants(request: web.Request, reader: Reader, handler: Handler) -> web.StreamResponse:
    resp = await handler(request)
    doc = _doc(resp)
    if doc is None or reader.sees_all:
        return resp
    shown = rp.grant_list_doc(reader, doc)
    return resp if shown is doc else _json(shown)


async def violations(request: web.Request, reader: Reader, handler: Handler) -> web.StreamResponse:
    resp = await handler(request)
    doc = _doc(resp)
    if doc is None or reader.sees_all:
        return resp
    shown = await _in_view(
        request, lambda v: rp.events_doc(reader, doc, Datasets(v, _now_ms()).owner)
    )
    return resp if shown is doc else _json(shown)


async def access(request: web.Request, reader: Reader, handler: Handler) -> web.StreamResponse:
    if reader.sees_all:
        return await handler(request)
    org_id = request.query.get("org", "")
    dataset_id = request.query.get("dataset", "")

    def check(view: Any) -> bool:
        ds = Datasets(view, _now_ms())
        owner = ds.owner(dataset_id)
        if owner is None:
            return True  # the handler says it is absent
        return rp.sees_access_check(reader, org_id, owner) and ds.visible(reader, dataset_id)

    if not dataset_id or await _in_view(request, check):
        return await handler(request)
    return _absent_dataset(dataset_id)


async def lineage(request: web.Request, reader: Reader, handler: Handler) -> web.StreamResponse:
    resp = await handler(request)
    doc = _doc(resp)
    if doc is None or reader.sees_all:
        return resp
    model = doc["model"]
    if not rp.sees_model(reader, model["org_id"]):
        name, version = model["model_name"], model["model_version"]
        return _error(404, f"no model {name!r} version {version}")  # as acl.lookups says

    def redact(view: Any) -> dict[str, Any]:
        ds = Datasets(view, _now_ms())
        shown = [ds.shown(reader, d) for d in doc["datasets"]]
        return {
            **doc,
            "datasets": [
                d if d is not None else {**o, "location": None}
                for d, o in zip(shown, doc["datasets"], strict=True)
            ],
        }

    return _json(await _in_view(request, redact))


async def tx(request: web.Request, reader: Reader, handler: Handler) -> web.StreamResponse:
    resp = await handler(request)
    doc = _doc(resp)
    if doc is None or reader.sees_all or doc.get("status") != "committed":
        return resp
    raw = base64.b64decode(doc["receipt"]["tx"])
    sender_org = await _in_view(request, lambda v: SenderOrgs(v).of_tx(raw))
    if rp.sees_sender(reader, sender_org):
        return resp
    return _error(404, f"tx {doc['tx_id']} is not in the chain or this node's mempool")


async def block(request: web.Request, reader: Reader, handler: Handler) -> web.StreamResponse:
    if reader.sees_all:
        return await handler(request)
    if request.query.get("format") == "msgpack":
        return _error(
            403,
            "whole raw blocks are for auditors; members read the header and their own txs as JSON",
        )
    resp = await handler(request)
    doc = _doc(resp)
    if doc is None:
        return resp
    found = _node(request).block(doc["height"])
    if found is None:
        return resp
    raws = found.txs

    def own(view: Any) -> list[bool]:
        orgs = SenderOrgs(view)
        return [rp.sees_sender(reader, orgs.of_tx(r)) for r in raws]

    keep = await _in_view(request, own)
    doc["txs"] = [t for t, k in zip(doc["txs"], keep, strict=True) if k]
    doc["txs_filtered"] = True
    return _json(doc)


RULES: dict[tuple[str, str], Rule] = {
    ("GET", "/v1/status"): members,
    ("GET", "/health"): members,
    ("GET", "/openapi.json"): members,
    ("GET", "/metrics"): members,
    ("GET", "/v1/kinds"): members,
    ("GET", "/v1/proofs/consistency"): members,
    ("POST", "/v1/txs"): members,
    ("GET", "/v1/txs/{tx_id}"): tx,
    ("GET", "/v1/blocks/{height}"): block,
    ("GET", "/v1/datasets/{dataset_id}"): dataset,
    ("GET", "/v1/datasets/{dataset_id}/history"): dataset_history,
    ("GET", "/v1/grants"): grants,
    ("GET", "/v1/violations"): violations,
    ("GET", "/v1/access"): access,
    ("GET", "/v1/models/{name}/{version}/lineage"): lineage,
    ("GET", "/v1/audit/report"): auditors,
    ("GET", "/v1/stream/blocks"): members,  # filtered by the stream itself
}
OPEN_PREFIXES = ("/ui", "/api/v1/lineage")


@web.middleware
async def apply_policy(request: web.Request, handler: Handler) -> web.StreamResponse:
    reader = auth.reader_of(request)
    if reader is None or reader.sees_all:
        return await handler(request)
    checker = request.app[auth.AUTH_KEY]
    if auth.is_open(request.method, request.path, checker.settings.explorer_reads):
        return await handler(request)  # open to all: nothing to hide from a member
    route = request.match_info.route
    resource = route.resource
    canonical = resource.canonical if resource is not None else ""
    method = "GET" if request.method == "HEAD" else request.method
    rule = RULES.get((method, canonical))
    if rule is None:
        if canonical == "/{tail}" or request.path.startswith(OPEN_PREFIXES):
            return await handler(request)  # no such endpoint, or static files
        rule = auditors
    return await rule(request, reader, handler)


def install(app: web.Application, node: NodeService) -> list[Any]:
    """The middleware that applies the policy to ``node``'s answers (after ``auth``'s)."""
    app[NODE] = node
    return [apply_policy]
