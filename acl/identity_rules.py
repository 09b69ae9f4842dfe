"""The rules of identity txs (``identity.*``): who holds which key for an organisation.

An organisation's admins register and revoke its identities; an admin or the identity
itself rotates its key (the old key then gets ``key_rotated``). Each changes who may
send, so the block's cached senders are dropped.
"""

from __future__ import annotations

from typing import Any

from acl import keys as K
from acl.block_context import BlockContext, Principal
from acl.records import identity_record
from acl.results import Result


def register(b: BlockContext, p: Principal, payload: dict[str, Any]) -> Result:
    if p.role != "admin":
        return Result.UNAUTHORIZED
    ik = K.identity_key(p.org_id, payload["name"])
    if b.load(K.IDENTITY + ik) is not None or b.load(K.KEY + payload["public_key"]) is not None:
        return Result.ALREADY_EXISTS
    record = identity_record(
        p.org_id, payload["name"], payload["role"], payload["public_key"], b.height
    )
    record["registered_by"] = p.name
    if "description" in payload:
        record["description"] = payload["description"]
    b.store(K.IDENTITY + ik, record)
    b.store(K.KEY + payload["public_key"], [ik, 0])
    b.forget_senders()
    return Result.ACCEPTED


def revoke(b: BlockContext, p: Principal, payload: dict[str, Any]) -> Result:
    if p.role != "admin":
        return Result.UNAUTHORIZED
    key = K.IDENTITY + K.identity_key(p.org_id, payload["name"])
    ident = b.load(key)
    if ident is None:
        return Result.NOT_FOUND
    if ident["status"] != "active":
        return Result.INVALID_STATE
    b.store(key, {**ident, "status": "revoked", "revoked": b.position()})
    b.forget_senders()
    return Result.ACCEPTED


def rotate(b: BlockContext, p: Principal, payload: dict[str, Any]) -> Result:
    if p.role != "admin" and p.name != payload["name"]:
        return Result.UNAUTHORIZED
    ik = K.identity_key(p.org_id, payload["name"])
    ident = b.load(K.IDENTITY + ik)
    if ident is None:
        return Result.NOT_FOUND
    if ident["status"] != "active":
        return Result.INVALID_STATE
    new_key = payload["new_public_key"]
    if b.load(K.KEY + new_key) is not None:
        return Result.ALREADY_EXISTS
    epoch = ident["key_epoch"] + 1
    b.store(
        K.IDENTITY + ik,
        {**ident, "public_key": new_key, "key_epoch": epoch, "rotated": b.position()},
    )
    b.store(K.KEY + new_key, [ik, epoch])
    b.forget_senders()
    return Result.ACCEPTED
