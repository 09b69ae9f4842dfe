"""The RPC's OpenAPI 3.1 document, served at ``/openapi.json``.

Kept beside the handlers it describes; ``tests/node/test_rpc.py`` checks that every
route of the app is documented here and every documented path is routed.
"""

from __future__ import annotations

from typing import Any


def _q(name: str, desc: str, required: bool = False, schema: str = "string") -> dict[str, Any]:
    return {
        "name": name,
        "in": "query",
        "required": required,
        "description": desc,
        "schema": {"type": schema},
    }


def _p(name: str, desc: str, schema: str = "string") -> dict[str, Any]:
    return {
        "name": name,
        "in": "path",
        "required": True,
        "description": desc,
        "schema": {"type": schema},
    }


_JSON = {"application/json": {"schema": {"type": "object"}}}
_PAGING = (
    " Lists answer {items, next_cursor}: pass next_cursor back as cursor for the next page; "
    "null means the last page."
)
_LIMIT = _q("limit", "items per page, 1..200 (default 50)", schema="integer")
_CURSOR = _q("cursor", "next_cursor of the previous page (hex)" + _PAGING)
_CURSOR_HEIGHT = _q(
    "cursor", "next_cursor of the previous page: the height to continue from" + _PAGING
)
_CURSOR_POSITION = _q(
    "cursor", "next_cursor of the previous page: the position to continue from" + _PAGING
)
_RANGE = (
    _q("from_ms", "block time from (inclusive, ms)", schema="integer"),
    _q("until_ms", "block time until (exclusive, ms)", schema="integer"),
)
_ERR = {
    "description": "error",
    "content": {"application/json": {"schema": {"$ref": "#/components/schemas/Error"}}},
}


_PRUNED = {
    "description": "the block's txs were pruned on this node (grantchain prune, or a node "
    "started from a snapshot): {error, reason: 'pruned'}. A receipt carries the tx's bytes, "
    "so this node cannot issue one for a pruned tx either; receipts issued before still "
    "verify offline, and nodes that keep the bytes still answer",
    "content": {"application/json": {"schema": {"$ref": "#/components/schemas/Error"}}},
}


def _get(
    summary: str, params: list[dict[str, Any]] | None = None, **responses: Any
) -> dict[str, Any]:
    return {
        "get": {
            "summary": summary,
            "parameters": params or [],
            "responses": {
                "200": {"description": "OK", "content": _JSON},
                "400": _ERR,
                "404": _ERR,
                **responses,
            },
        }
    }


OPENAPI: dict[str, Any] = {
    "openapi": "3.1.0",
    "info": {
        "title": "grantchain node RPC",
        "version": "1",
        "description": "Submit signed txs (dataset grants and AI audit events), read blocks, receipts and "
        "proofs, and query grants and audit history. Errors are JSON objects with an 'error' field. "
        "On a node with rpc_auth = 'members', every request but GET /v1/status, /health, "
        "/openapi.json, /ui/, POST /v1/txs and /api/v1/lineage carries an 'Authorization: "
        "GrantChain-Ed25519 key=.., ts=.., nonce=.., sig=..' header signed by a registered key "
        "(401 with a 'reason' otherwise), and reads follow the read policy: an organisation sees "
        "its own datasets, grants and events; other organisations' records answer 404.",
    },
    "paths": {
        "/v1/status": _get("Node id, role, leader, term, height, head hash"),
        "/health": _get('Liveness: {"status": "ok"}; no data, never authenticated'),
        "/v1/txs": {
            "post": {
                "summary": "Submit one tx or a batch",
                "description": "JSON {'tx': base64} or {'txs': [base64, ...]} of canonical signed tx bytes, or "
                "application/msgpack: an array of bin. With ?wait=commit the answer holds each tx's "
                "height, result and receipt once committed (202 with status 'pending' on timeout).",
                "parameters": [
                    _q("wait", "'commit' to wait for commit and receipts"),
                    _q(
                        "timeout_ms",
                        "how long to wait with wait=commit (default 10000)",
                        schema="integer",
                    ),
                    _q("receipts", "'false': answer wait=commit without receipts (default 'true')"),
                ],
                "requestBody": {
                    "required": True,
                    "content": {
                        "application/json": {"schema": {"$ref": "#/components/schemas/TxBatch"}},
                        "application/msgpack": {"schema": {"type": "string", "format": "binary"}},
                    },
                },
                "responses": {
                    "200": {"description": "committed (wait=commit)", "content": _JSON},
                    "202": {"description": "admitted (per-tx statuses)", "content": _JSON},
                    "400": _ERR,
                    "413": _ERR,
                    "415": _ERR,
                    "429": _ERR,
                    "503": _ERR,
                },
            }
        },
        "/api/v1/lineage": {
            "post": {
                "summary": "Record an OpenLineage RunEvent (the path OpenLineage's HttpTransport posts to)",
                "description": "The node maps the event onto audit.training_run or "
                "audit.dataset_derivation txs, signs them with its [openlineage] app identity and "
                "waits briefly for their commit; a use without a grant is committed as a violation "
                "and still answered 200. The same event always makes the same txs (retries are "
                "deduplicated). Mapping: docs/openlineage.md. Bearer token if the node sets "
                "api_key_file; 404 unless [openlineage] enabled.",
                "requestBody": {
                    "required": True,
                    "content": {"application/json": {"schema": {"type": "object"}}},
                },
                "responses": {
                    "200": {
                        "description": "recorded: txs with kind, status, height, result",
                        "content": _JSON,
                    },
                    "202": {"description": "admitted, not yet committed", "content": _JSON},
                    "400": _ERR,
                    "401": _ERR,
                    "404": _ERR,
                    "413": _ERR,
                    "422": _ERR,
                    "503": _ERR,
                },
            }
        },
        "/v1/txs/{tx_id}": _get(
            "A committed tx: height, position, result and its receipt",
            [_p("tx_id", "64 hex chars")],
            **{"202": {"description": "pending in the mempool", "content": _JSON}, "410": _PRUNED},
        ),
        "/v1/blocks/{height}": _get(
            "A block (JSON, or raw canonical bytes with ?format=msgpack)",
            [_p("height", "block height", "integer"), _q("format", "'msgpack' for raw bytes")],
            **{"410": _PRUNED},
        ),
        "/v1/stream/blocks": {
            "get": {
                "summary": "Committed blocks and their tx results as they commit (Server-Sent Events)",
                "description": "A text/event-stream, chosen because the stream goes one way, is plain "
                "HTTP that proxies pass, and resumes with the standard Last-Event-ID header. One "
                "event per block in height order, no gap: 'id: <height>', 'event: block', 'data: "
                "<one-line JSON>' with height, hash, prev_hash, timestamp_ms, proposer, tx_count, "
                "state_root, log_size and txs [{tx_id, kind, result}]. Comment lines "
                "': keep-alive' every 15 s of idle. A failure on the node ends the stream with "
                "'event: error'. Resume with ?from_height=N or the Last-Event-ID header (the "
                "header wins: the stream starts after that height). See node/api/stream.py.",
                "parameters": [
                    _q(
                        "from_height",
                        "first height to send (default: the block after the current head; "
                        "1: from the first block)",
                        schema="integer",
                    ),
                    {
                        "name": "Last-Event-ID",
                        "in": "header",
                        "required": False,
                        "description": "the last height received: the stream starts after it",
                        "schema": {"type": "integer"},
                    },
                ],
                "responses": {
                    "200": {
                        "description": "the event stream; it ends only when the node stops",
                        "headers": {
                            "X-Grantchain-From-Height": {
                                "description": "the first height this stream sends",
                                "schema": {"type": "integer"},
                            }
                        },
                        "content": {"text/event-stream": {"schema": {"type": "string"}}},
                    },
                    "400": _ERR,
                    "503": _ERR,
                },
            }
        },
        "/v1/proofs/consistency": _get(
            "RFC 9162 consistency proof between two log sizes",
            [
                _q("from", "older log size", True, "integer"),
                _q("to", "newer log size (default: now)", schema="integer"),
            ],
        ),
        "/v1/access": _get(
            "May org (or identity) use dataset for purpose at time?",
            [
                _q("org", "grantee organisation", True),
                _q("dataset", "dataset id", True),
                _q("purpose", "training, fine_tuning, evaluation, inference, ...", True),
                _q("at_ms", "time (ms since epoch; default now)", schema="integer"),
                _q("identity", "identity name within the org"),
                _q("version", "dataset version", schema="integer"),
            ],
        ),
        "/v1/datasets/{dataset_id}": _get(
            "A dataset and its versions", [_p("dataset_id", "dataset id")]
        ),
        "/v1/datasets/{dataset_id}/history": _get(
            "Every event about a dataset: the first 10,000 entries in chain order "
            "(entries_truncated says there are more: page through them with "
            "/v1/explore/datasets/{dataset_id}/history). 503 with Retry-After while two "
            "scanning queries run.",
            [_p("dataset_id", "dataset id")],
        ),
        "/v1/grants": _get(
            "Grants by dataset or by grantee organisation: at most 10,000 read (truncated "
            "says there are more: page with /v1/explore/grants). 503 with Retry-After while "
            "two scanning queries run.",
            [
                _q("dataset", "dataset id"),
                _q("grantee", "organisation id"),
                _q("at_ms", "in force at", schema="integer"),
            ],
        ),
        "/v1/models/{name}/{version}/lineage": _get(
            "Model lineage down to datasets and the grants that allowed their use",
            [_p("name", "model name"), _p("version", "model version", "integer")],
        ),
        "/v1/violations": _get(
            "Audit events recorded as no_grant in a time range (the first 10,000). 503 with "
            "Retry-After while two scanning queries run.",
            [
                _q("from_ms", "from (inclusive)", schema="integer"),
                _q("until_ms", "until (exclusive)", schema="integer"),
            ],
        ),
        "/v1/audit/report": _get(
            "Counts by organisation, dataset, purpose, kind and result in a time range of "
            "block time, read from the audit counters the state keeps (its cost does not grow "
            "with the range; complete is always true, next_from_ms always null). Lists the "
            "first 200 violations (violations_truncated; violations_next_cursor: the cursor "
            "for /v1/explore/violations with the same range) and the first 1,000 events' "
            "places (evidence, truncated; evidence_next_cursor: the cursor for "
            "/v1/explore/events). 503 with Retry-After while two scanning queries run.",
            [
                _q("from_ms", "from (inclusive)", schema="integer"),
                _q("until_ms", "until (exclusive)", schema="integer"),
            ],
        ),
        "/v1/explore/dashboard": _get(
            "The explorer's dashboard: this node's status, the last 64 blocks' timestamps and "
            "tx counts, each validator's last signed height among them, violations in the last day"
        ),
        "/v1/explore/blocks": _get(
            "Block headers newest first, with the validators that signed each (paginated)",
            [_CURSOR_HEIGHT, _LIMIT],
        ),
        "/v1/explore/blocks/{height}/txs": _get(
            "A block's header and the validators that signed it, and its txs in block order: "
            "id, kind, result by name (paginated)",
            [_p("height", "block height", "integer"), _CURSOR_POSITION, _LIMIT],
            **{"410": _PRUNED},
        ),
        "/v1/explore/txs/{tx_id}": _get(
            "A committed tx decoded: kind, sender and its identity, payload, result by name",
            [_p("tx_id", "64 hex chars")],
            **{"202": {"description": "pending in the mempool", "content": _JSON}, "410": _PRUNED},
        ),
        "/v1/explore/datasets": _get(
            "Datasets: id, owner, sensitivity, licence, version count (paginated)",
            [_CURSOR, _LIMIT],
        ),
        "/v1/explore/datasets/{dataset_id}": _get(
            "A dataset: owner, sensitivity, location, licence, consent basis, version_count "
            "(its versions: /versions)",
            [_p("dataset_id", "dataset id")],
        ),
        "/v1/explore/datasets/{dataset_id}/versions": _get(
            "A dataset's versions, oldest first: content hash, parent, location, tx (paginated)",
            [_p("dataset_id", "dataset id"), _CURSOR, _LIMIT],
        ),
        "/v1/explore/datasets/{dataset_id}/history": _get(
            "A dataset's history in chain order: registration, versions, grants, revocations, "
            "audit events (paginated)",
            [_p("dataset_id", "dataset id"), _CURSOR, _LIMIT],
        ),
        "/v1/explore/grants": _get(
            "Grants of a dataset or to an organisation, revoked and expired ones included, each "
            "with in_force at at_ms (paginated)",
            [
                _q("dataset", "dataset id (this or grantee)"),
                _q("grantee", "organisation id (this or dataset)"),
                _q("at_ms", "in_force is judged at this time (default now)", schema="integer"),
                _CURSOR,
                _LIMIT,
            ],
        ),
        "/v1/explore/violations": _get(
            "no_grant audit events in a block-time range, in chain order (paginated)",
            [*_RANGE, _CURSOR, _LIMIT],
        ),
        "/v1/explore/events": _get(
            "Every audit event in a block-time range, in chain order (paginated)",
            [*_RANGE, _CURSOR, _LIMIT],
        ),
        "/v1/explore/models": _get(
            "Registered models: name, version, organisation, training runs (paginated)",
            [_CURSOR, _LIMIT],
        ),
        "/v1/explore/models/{name}/{version}/lineage": _get(
            "A model's lineage as /v1/models/{name}/{version}/lineage, listing at most the "
            "first 1000 uses of the model (uses_truncated: more exist; page them with /uses)",
            [_p("name", "model name"), _p("version", "model version", "integer")],
        ),
        "/v1/explore/models/{name}/{version}/uses": _get(
            "What was done with a model since its registration (deployments, inference "
            "batches, evaluations, ...), in chain order (paginated)",
            [_p("name", "model name"), _p("version", "model version", "integer"), _CURSOR, _LIMIT],
        ),
        "/v1/explore/consortium": _get("Organisations and validators"),
        "/v1/explore/search": _get(
            "What a string names, exactly: a tx id, a block height, a dataset, a model's "
            "versions, an organisation",
            [_q("q", "the text searched (at most 256 chars)", True)],
        ),
        "/ui": {
            "get": {
                "summary": "Redirect to /ui/",
                "responses": {"302": {"description": "to the explorer"}},
            }
        },
        "/ui/{name}": {
            "get": {
                "summary": "The audit explorer: its page (/ui/) and static files (HTML, JS, CSS)",
                "parameters": [_p("name", "a file of the explorer; empty: index.html")],
                "responses": {
                    "200": {"description": "the file", "content": {"text/html": {}}},
                    "404": _ERR,
                },
            }
        },
        "/v1/kinds": _get("Every transaction kind with a description"),
        "/metrics": {
            "get": {
                "summary": "Prometheus metrics",
                "responses": {
                    "200": {"description": "text exposition format", "content": {"text/plain": {}}}
                },
            }
        },
        "/openapi.json": _get("This document"),
    },
    "components": {
        "securitySchemes": {
            "GrantChain-Ed25519": {
                "type": "http",
                "scheme": "GrantChain-Ed25519",
                "description": "Ed25519 over b'grantchain-rpc-v1\\n' + chain_id, METHOD, "
                "path with raw query, ts (unix ms), nonce (32 hex) and sha256(body) hex, "
                "joined by newlines, by an identity's current registered key "
                "(docs/architecture.md, 'Reads are for members').",
            }
        },
        "schemas": {
            "Error": {
                "type": "object",
                "properties": {"error": {"type": "string"}},
                "required": ["error"],
            },
            "TxBatch": {
                "type": "object",
                "properties": {
                    "tx": {"type": "string", "contentEncoding": "base64"},
                    "txs": {
                        "type": "array",
                        "items": {"type": "string", "contentEncoding": "base64"},
                    },
                },
            },
        },
    },
}
