"""The rules of grant txs (``grant.*``): issuing and revoking the use of a dataset.

Only admins and stewards of the dataset's owner organisation may. A grant names the
grantee organisation (optionally one of its identities), the dataset (optionally one
version), the purposes and a validity window. Besides the grant record, issuing
indexes it by dataset and by grantee and adds it to the hot index of the pair's grants
in force (``K.ACTIVE``), which audit events are matched against; revoking takes it out
of that index from the block time on.
"""

from __future__ import annotations

from typing import Any, Final

from acl import keys as K
from acl import kinds as k
from acl.block_context import BlockContext, Principal
from acl.dataset_rules import STEWARD_ROLES
from acl.results import Result

ACTIVE_GRANTS_PER_PAIR_MAX: Final = 256
"""At most this many unexpired, unrevoked grants of one dataset to one organisation: an
access check walks them, so the bound keeps every event's cost bounded."""


def issue(b: BlockContext, p: Principal, payload: dict[str, Any]) -> Result:
    if p.role not in STEWARD_ROLES:
        return Result.UNAUTHORIZED
    ds = b.dataset(payload["dataset_id"])
    if ds is None:
        return Result.NOT_FOUND
    if ds["owner_org"] != p.org_id:
        return Result.UNAUTHORIZED
    version = payload.get("version")
    if version is not None and version > ds["version_count"]:
        return Result.NOT_FOUND
    grantee_org = payload["grantee_org"]
    problem = b.active_org(grantee_org)
    if problem is not None:
        return problem
    identity = payload.get("grantee_identity")
    if identity is not None and b.load(K.IDENTITY + K.identity_key(grantee_org, identity)) is None:
        return Result.NOT_FOUND
    start, until = payload["valid_from_ms"], payload["valid_until_ms"]
    if until <= start or until <= b.ms:
        return Result.INVALID_WINDOW
    dk = K.dataset_key(ds["dataset_id"])
    gk = K.org_key(grantee_org)
    live = [g for g in b.load_active(K.ACTIVE + dk + gk) if g[5] > b.ms]
    if len(live) >= ACTIVE_GRANTS_PER_PAIR_MAX:
        return Result.INVALID_STATE
    gid = b.tx_id
    purposes = sorted(payload["purposes"])
    record: dict[str, Any] = {
        "grant_id": gid,
        "dataset_id": ds["dataset_id"],
        "version": version,
        "owner_org": p.org_id,
        "grantee_org": grantee_org,
        "grantee_identity": identity,
        "purposes": purposes,
        "valid_from_ms": start,
        "valid_until_ms": until,
        "conditions": payload.get("conditions", {}),
        "issued_by": p.name,
        "issued": b.position(),
        "issued_ms": b.ms,
        "revoked": None,
    }
    b.store(K.GRANT + gid, record)
    akey = K.ACTIVE + dk + gk
    # Grants past their window can never match again: drop them from the hot index.
    b.store_active(akey, [*live, (gid, version, identity, frozenset(purposes), start, until)])
    b.ov.put(K.BY_DATASET + dk + gk + gid, b"")
    b.ov.put(K.BY_GRANTEE + gk + dk + gid, b"")
    b.mark(K.HISTORY + dk, k.GRANT_ISSUE, Result.ACCEPTED)
    return Result.ACCEPTED


def revoke(b: BlockContext, p: Principal, payload: dict[str, Any]) -> Result:
    if p.role not in STEWARD_ROLES:
        return Result.UNAUTHORIZED
    gkey = K.GRANT + payload["grant_id"]
    grant = b.load(gkey)
    if grant is None:
        return Result.NOT_FOUND
    if grant["owner_org"] != p.org_id:
        return Result.UNAUTHORIZED
    if grant["revoked"] is not None:
        return Result.INVALID_STATE
    revoked: dict[str, Any] = {"by": p.name, "at": b.position(), "at_ms": b.ms}
    if "reason" in payload:
        revoked["reason"] = payload["reason"]
    b.store(gkey, {**grant, "revoked": revoked})
    dk = K.dataset_key(grant["dataset_id"])
    akey = K.ACTIVE + dk + K.org_key(grant["grantee_org"])
    b.store_active(akey, [g for g in b.load_active(akey) if g[0] != grant["grant_id"]])
    b.mark(K.HISTORY + dk, k.GRANT_REVOKE, Result.ACCEPTED)
    return Result.ACCEPTED
