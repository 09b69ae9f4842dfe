"""Builders of valid payloads, for the SDK, the CLI, the demo and tests.

Each builder takes keyword arguments named like the schema fields, drops the ones left
None (optional fields are omitted, never null), adds ``"v"`` and checks the result against
``acl.schema.SCHEMAS``, raising ``PayloadError`` that names the kind, so a client learns
about a malformed payload before it signs and sends it.
"""

from __future__ import annotations

from typing import Any

from acl import kinds as k
from acl.schema import SCHEMA_VERSION, SCHEMAS


class PayloadError(ValueError):
    """The fields given do not make a valid payload for the kind."""


def build(kind: str, **fields: Any) -> dict[str, Any]:
    """A valid payload of ``kind`` from its fields (None = leave out)."""
    schema = SCHEMAS.get(kind)
    if schema is None:
        raise PayloadError(f"unknown kind {kind!r}")
    payload: dict[str, Any] = {"v": SCHEMA_VERSION}
    for name, value in fields.items():
        if value is None:
            continue
        if name not in schema.fields:
            raise PayloadError(f"{kind}: no field {name!r} (fields: {', '.join(schema.fields)})")
        payload[name] = list(value) if isinstance(value, tuple) else value
    problem = schema.validate(payload)
    if problem is not None:
        missing = [n for n, f in schema.fields.items() if f.required and n not in payload]
        bad = [n for n, v in payload.items() if not schema.fields[n].check(v)]
        detail = f"missing {missing}" if missing else f"invalid {bad}" if bad else schema.rule_doc
        raise PayloadError(f"{kind}: {problem.label}: {detail}")
    return payload


def dataset_ref(
    dataset_id: str,
    *,
    version: int | None = None,
    grant_id: bytes | None = None,
    context: str | None = None,
    digest: bytes | None = None,
) -> dict[str, Any]:
    """One entry of an event's ``inputs``."""
    ref: dict[str, Any] = {"dataset_id": dataset_id}
    for name, value in (
        ("version", version),
        ("grant_id", grant_id),
        ("context", context),
        ("digest", digest),
    ):
        if value is not None:
            ref[name] = value
    return ref


def model_ref(model_name: str, model_version: int) -> dict[str, Any]:
    return {"model_name": model_name, "model_version": model_version}


def identity_register(
    name: str, role: str, public_key: bytes, description: str | None = None
) -> dict[str, Any]:
    return build(
        k.IDENTITY_REGISTER, name=name, role=role, public_key=public_key, description=description
    )


def dataset_register(
    dataset_id: str,
    *,
    content_hash: bytes,
    location: str,
    sensitivity: str,
    licence: str | None = None,
    consent_basis: str | None = None,
    title: str | None = None,
    original_purpose: str | None = None,
) -> dict[str, Any]:
    return build(
        k.DATASET_REGISTER,
        dataset_id=dataset_id,
        content_hash=content_hash,
        location=location,
        sensitivity=sensitivity,
        licence=licence,
        consent_basis=consent_basis,
        title=title,
        original_purpose=original_purpose,
    )


def grant_issue(
    dataset_id: str,
    *,
    grantee_org: str,
    purposes: list[str] | tuple[str, ...],
    valid_from_ms: int,
    valid_until_ms: int,
    version: int | None = None,
    grantee_identity: str | None = None,
    conditions: dict[str, str] | None = None,
) -> dict[str, Any]:
    return build(
        k.GRANT_ISSUE,
        dataset_id=dataset_id,
        grantee_org=grantee_org,
        purposes=list(purposes),
        valid_from_ms=valid_from_ms,
        valid_until_ms=valid_until_ms,
        version=version,
        grantee_identity=grantee_identity,
        conditions=conditions,
    )


def grant_revoke(grant_id: bytes, reason: str | None = None) -> dict[str, Any]:
    return build(k.GRANT_REVOKE, grant_id=grant_id, reason=reason)


def data_access(
    dataset_id: str,
    *,
    purpose: str,
    version: int | None = None,
    grant_id: bytes | None = None,
    access_type: str | None = None,
    digest: bytes | None = None,
    record_count: int | None = None,
    run_id: str | None = None,
) -> dict[str, Any]:
    return build(
        k.AUDIT_DATA_ACCESS,
        dataset_id=dataset_id,
        purpose=purpose,
        version=version,
        grant_id=grant_id,
        access_type=access_type,
        digest=digest,
        record_count=record_count,
        run_id=run_id,
    )
