"""The rules of governance txs (``gov.*``): how the consortium changes its members.

Admins of active organisations propose adding or removing an organisation or a validator
node; a proposal counts as its organisation's approval. It takes effect when approvals
of active organisations reach the genesis quorum (capped at the number of active
organisations) and closes as rejected when that can no longer happen; it expires after
``PROPOSAL_TTL_MS``. The consortium always keeps one organisation and one validator.

Raft and PBFT chains alike follow the validators these rules decide
(docs/architecture.md §9, "Validator sets": Raft changes its configuration, PBFT its
replica set from a checkpoint on, and certificates follow the set in force at each
height).
"""

from __future__ import annotations

from typing import Any, Final

from acl import keys as K
from acl.block_context import BlockContext, Handler, Principal
from acl.records import decode_u64, identity_record, org_record, validator_record
from acl.results import Result
from acl.state import scan_prefix
from chain import codec

PROPOSAL_TTL_MS: Final = 30 * 24 * 3600 * 1000
"""A governance proposal not decided within this time can no longer be voted on, so an
old proposal cannot be revived when the consortium has moved on."""


def propose(b: BlockContext, p: Principal, payload: dict[str, Any]) -> Result:
    if p.role != "admin":
        return Result.UNAUTHORIZED
    problem = _precondition(b, payload)
    if problem is not None:
        return problem
    proposal = {
        "proposal_id": b.tx_id,
        "action": payload["action"],
        "params": {name: v for name, v in payload.items() if name not in ("v", "action", "reason")},
        "proposer_org": p.org_id,
        "proposed": b.position(),
        "approvals": [p.org_id],
        "rejections": [],
        "status": "open",
        "decided": None,
        "expires_ms": b.ms + PROPOSAL_TTL_MS,
    }
    return _decide(b, proposal)


def _precondition(b: BlockContext, payload: dict[str, Any]) -> Result | None:
    """Whether the proposed change can be made to the state as it is now."""
    action = payload["action"]
    org_id = payload["org_id"]
    org = b.load(K.ORG + K.org_key(org_id))
    if action == "add_org":
        if org is not None:
            return Result.ALREADY_EXISTS
        if b.load(K.KEY + payload["admin_public_key"]) is not None:
            return Result.ALREADY_EXISTS
        return None
    if org is None:
        return Result.NOT_FOUND
    if org["status"] != "active":
        return Result.ORG_INACTIVE if action != "remove_org" else Result.INVALID_STATE
    validators = _active_validators(b)
    if action == "remove_org":
        # The consortium keeps at least one organisation and one validator.
        if _active_org_count(b) <= 1 or all(v["org_id"] == org_id for v in validators):
            return Result.INVALID_STATE
        return None
    node = b.load(K.VALIDATOR + K.node_key(payload["node_id"]))
    if action == "add_validator":
        if node is not None and node["status"] == "active":
            return Result.ALREADY_EXISTS
        if any(v["public_key"] == payload["node_public_key"] for v in validators):
            return Result.ALREADY_EXISTS
        return None
    if node is None or node["org_id"] != org_id:
        return Result.NOT_FOUND
    if node["status"] != "active":
        return Result.INVALID_STATE
    if len(validators) <= 1:
        return Result.INVALID_STATE
    return None


def _active_orgs(b: BlockContext) -> list[str]:
    return [
        rec["org_id"]
        for rec in (codec.decode(v) for _, v in scan_prefix(b.ov, K.ORG))
        if rec["status"] == "active"
    ]


def _active_org_count(b: BlockContext) -> int:
    return len(_active_orgs(b))


def _active_validators(b: BlockContext) -> list[dict[str, Any]]:
    return [
        rec
        for rec in (codec.decode(v) for _, v in scan_prefix(b.ov, K.VALIDATOR))
        if rec["status"] == "active"
    ]


def _decide(b: BlockContext, proposal: dict[str, Any]) -> Result:
    """Store the proposal, closing it (and executing it) if the votes of active
    organisations now decide it. Quorum: the genesis quorum, capped at the number of
    active organisations so that removals cannot deadlock governance."""
    active = set(_active_orgs(b))
    quorum = min(decode_u64(b.ov.get(K.META_QUORUM)) or 1, len(active))
    approvals = sum(1 for o in proposal["approvals"] if o in active)
    rejections = sum(1 for o in proposal["rejections"] if o in active)
    if approvals >= quorum:
        problem = _precondition(b, {"action": proposal["action"], **proposal["params"]})
        proposal["status"] = "failed" if problem is not None else "approved"
        proposal["decided"] = b.position()
        if problem is None:
            _execute(b, proposal)
    elif len(active) - rejections < quorum:
        proposal["status"] = "rejected"
        proposal["decided"] = b.position()
    b.store(K.PROPOSAL + proposal["proposal_id"], proposal)
    return Result.ACCEPTED


def _execute(b: BlockContext, proposal: dict[str, Any]) -> None:
    params = proposal["params"]
    action = proposal["action"]
    org_id = params["org_id"]
    okey = K.ORG + K.org_key(org_id)
    if action == "add_org":
        b.store(okey, org_record(org_id, params["org_name"], b.height))
        ik = K.identity_key(org_id, params["admin_name"])
        b.store(
            K.IDENTITY + ik,
            identity_record(
                org_id, params["admin_name"], "admin", params["admin_public_key"], b.height
            ),
        )
        b.store(K.KEY + params["admin_public_key"], [ik, 0])
    elif action == "remove_org":
        org = dict(b.load(okey))
        org["status"] = "removed"
        org["removed_height"] = b.height
        b.store(okey, org)
        for node in _active_validators(b):
            if node["org_id"] == org_id:
                _remove_validator(b, node)
    elif action == "add_validator":
        b.store(
            K.VALIDATOR + K.node_key(params["node_id"]),
            validator_record(params["node_id"], org_id, params["node_public_key"], b.height),
        )
    else:
        _remove_validator(b, b.load(K.VALIDATOR + K.node_key(params["node_id"])))
    b.forget_senders()


def _remove_validator(b: BlockContext, node: dict[str, Any]) -> None:
    b.store(
        K.VALIDATOR + K.node_key(node["node_id"]),
        {**node, "status": "removed", "removed_height": b.height},
    )


def _vote(approve: bool) -> Handler:
    def vote(b: BlockContext, p: Principal, payload: dict[str, Any]) -> Result:
        if p.role != "admin":
            return Result.UNAUTHORIZED
        proposal = b.load(K.PROPOSAL + payload["proposal_id"])
        if proposal is None:
            return Result.NOT_FOUND
        if proposal["status"] != "open" or b.ms >= proposal["expires_ms"]:
            return Result.INVALID_STATE
        if p.org_id in proposal["approvals"] or p.org_id in proposal["rejections"]:
            return Result.DUPLICATE_VOTE
        updated = dict(proposal)
        field = "approvals" if approve else "rejections"
        updated[field] = [*proposal[field], p.org_id]
        return _decide(b, updated)

    return vote


approve: Final = _vote(approve=True)
"""``gov.approve``: the sender's organisation approves an open proposal."""
reject: Final = _vote(approve=False)
"""``gov.reject``: the sender's organisation rejects an open proposal."""
