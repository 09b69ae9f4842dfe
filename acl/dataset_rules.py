"""The rules of dataset txs (``dataset.*``): registering a dataset and adding versions.

Only admins and stewards of the owner organisation (``STEWARD_ROLES``) may. Each
applied tx is a mark in the dataset's history.
"""

from __future__ import annotations

from typing import Any, Final

from acl import keys as K
from acl import kinds as k
from acl.block_context import BlockContext, Principal
from acl.results import Result

STEWARD_ROLES: Final = frozenset(("admin", "steward"))
"""The roles that manage an organisation's datasets and the grants of their use."""


def register(b: BlockContext, p: Principal, payload: dict[str, Any]) -> Result:
    if p.role not in STEWARD_ROLES:
        return Result.UNAUTHORIZED
    key = K.DATASET + K.dataset_key(payload["dataset_id"])
    if b.load(key) is not None:
        return Result.ALREADY_EXISTS
    record: dict[str, Any] = {
        name: payload[name]
        for name in (
            "dataset_id",
            "title",
            "location",
            "sensitivity",
            "licence",
            "consent_basis",
            "original_purpose",
            "record_count",
            "size_bytes",
        )
        if name in payload
    }
    record["owner_org"] = p.org_id
    record["registered_by"] = p.name
    record["registered"] = b.position()
    record["registered_ms"] = b.ms
    record["version_count"] = 1
    b.store(key, record)
    b.store(
        K.version_key(payload["dataset_id"], 1),
        {
            "version": 1,
            "content_hash": payload["content_hash"],
            "parent_version": 0,
            "location": payload["location"],
            "added": b.position(),
            "added_ms": b.ms,
        },
    )
    b.mark(K.HISTORY + K.dataset_key(payload["dataset_id"]), k.DATASET_REGISTER, Result.ACCEPTED)
    return Result.ACCEPTED


def add_version(b: BlockContext, p: Principal, payload: dict[str, Any]) -> Result:
    if p.role not in STEWARD_ROLES:
        return Result.UNAUTHORIZED
    key = K.DATASET + K.dataset_key(payload["dataset_id"])
    ds = b.load(key)
    if ds is None:
        return Result.NOT_FOUND
    if ds["owner_org"] != p.org_id:
        return Result.UNAUTHORIZED
    count = ds["version_count"]
    if payload["parent_version"] > count:
        return Result.NOT_FOUND
    if count >= 2**32 - 1:
        return Result.INVALID_STATE
    location = payload.get("location", ds["location"])
    version = {
        "version": count + 1,
        "content_hash": payload["content_hash"],
        "parent_version": payload["parent_version"],
        "location": location,
        "added": b.position(),
        "added_ms": b.ms,
    }
    if "change_summary" in payload:
        version["change_summary"] = payload["change_summary"]
    b.store(key, {**ds, "version_count": count + 1, "location": location})
    b.store(K.version_key(payload["dataset_id"], count + 1), version)
    b.mark(K.HISTORY + K.dataset_key(payload["dataset_id"]), k.DATASET_ADD_VERSION, Result.ACCEPTED)
    return Result.ACCEPTED
