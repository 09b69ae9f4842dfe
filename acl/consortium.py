"""The consortium: its organisations, validators, identities (by key) and governance
proposals.
"""

from __future__ import annotations

from typing import Any

from acl import keys as K
from acl.lookups import QueryError, load_record
from acl.state import StateReader, scan_prefix
from acl.views import jsonify
from chain import codec


def organisations(state: StateReader) -> list[dict[str, Any]]:
    """Every organisation ever admitted, with its status."""
    return sorted(
        (codec.decode(v) for _, v in scan_prefix(state, K.ORG)), key=lambda o: o["org_id"]
    )


def validators(state: StateReader) -> list[dict[str, Any]]:
    """The validator set (active and removed), by node id; keys in hex."""
    return sorted(
        ({**jsonify(rec)} for rec in (codec.decode(v) for _, v in scan_prefix(state, K.VALIDATOR))),
        key=lambda v: v["node_id"],
    )


def identity(state: StateReader, public_key: bytes) -> dict[str, Any] | None:
    """The identity a key belongs to, with ``key_current`` False for a rotated-out key."""
    entry = load_record(state, K.KEY + public_key)
    if entry is None:
        return None
    rec = load_record(state, K.IDENTITY + entry[0])
    return {**jsonify(rec), "key_current": rec["key_epoch"] == entry[1]}


def proposal(state: StateReader, proposal_id: bytes, *, at_ms: int | None = None) -> dict[str, Any]:
    """A governance proposal; an open one past its expiry at ``at_ms`` shows as ``expired``."""
    rec = load_record(state, K.PROPOSAL + proposal_id)
    if rec is None:
        raise QueryError(f"no proposal {proposal_id.hex()}")
    doc: dict[str, Any] = jsonify(rec)
    if doc["status"] == "open" and at_ms is not None and at_ms >= doc["expires_ms"]:
        doc["status"] = "expired"
    return doc
