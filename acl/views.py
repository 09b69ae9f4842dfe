"""The views of stored records that answers are made of: grants, audit events,
datasets, history entries, runs and models.

Each is a frozen dataclass built from the decoded record (``from_record``, or
``from_entry`` for a log entry) whose ``to_json()`` gives plain JSON-ready data: ids in
lowercase hex, results by name (``no_grant``), times in unix ms.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass, field
from typing import Any

from acl import keys as K
from acl import kinds as k
from acl.evidence import TxRef, parse_ref
from acl.results import Result, label
from chain import codec


def jsonify(value: Any) -> Any:
    """A decoded record (or a view) as plain JSON-ready data: bytes in lowercase hex."""
    if isinstance(value, bytes):
        return value.hex()
    if isinstance(
        value, TxRef | GrantView | EventView | DatasetView | RunView | ModelView | HistoryEntry
    ):
        return value.to_json()
    if isinstance(value, list | tuple):
        return [jsonify(v) for v in value]
    if isinstance(value, dict):
        return {key: jsonify(v) for key, v in value.items()}
    return value


@dataclass(frozen=True, slots=True)
class GrantView:
    grant_id: bytes
    dataset_id: str
    version: int | None
    owner_org: str
    grantee_org: str
    grantee_identity: str | None
    purposes: tuple[str, ...]
    valid_from_ms: int
    valid_until_ms: int
    conditions: dict[str, str] = field(hash=False)
    issued: TxRef
    issued_ms: int
    revoked: TxRef | None
    revoked_ms: int | None
    revoke_reason: str | None

    @classmethod
    def from_record(cls, rec: dict[str, Any]) -> GrantView:
        rev = rec["revoked"]
        return cls(
            rec["grant_id"],
            rec["dataset_id"],
            rec["version"],
            rec["owner_org"],
            rec["grantee_org"],
            rec["grantee_identity"],
            tuple(rec["purposes"]),
            rec["valid_from_ms"],
            rec["valid_until_ms"],
            dict(rec["conditions"]),
            parse_ref(rec["issued"]),
            rec["issued_ms"],
            None if rev is None else parse_ref(rev["at"]),
            None if rev is None else rev["at_ms"],
            None if rev is None else rev.get("reason"),
        )

    def in_force_at(self, at_ms: int) -> bool:
        """Issued, inside its window and not yet revoked at ``at_ms``."""
        return (
            self.issued_ms <= at_ms
            and self.valid_from_ms <= at_ms < self.valid_until_ms
            and (self.revoked_ms is None or at_ms < self.revoked_ms)
        )

    def evidence(self) -> list[TxRef]:
        return [self.issued] + ([self.revoked] if self.revoked is not None else [])

    def to_json(self) -> dict[str, Any]:
        return {
            "grant_id": self.grant_id.hex(),
            "dataset_id": self.dataset_id,
            "version": self.version,
            "owner_org": self.owner_org,
            "grantee_org": self.grantee_org,
            "grantee_identity": self.grantee_identity,
            "purposes": list(self.purposes),
            "valid_from_ms": self.valid_from_ms,
            "valid_until_ms": self.valid_until_ms,
            "conditions": dict(self.conditions),
            "issued": self.issued.to_json(),
            "issued_ms": self.issued_ms,
            "revoked": None if self.revoked is None else self.revoked.to_json(),
            "revoked_ms": self.revoked_ms,
            "revoke_reason": self.revoke_reason,
        }


@dataclass(frozen=True, slots=True)
class EventView:
    """One recorded audit event: the common envelope (actor, on-behalf-of, purpose, the
    datasets used and the grants relied on, run id, result). The kind-specific details
    (digests, counts, metrics) stay in the tx itself, which the block store returns by
    ``tx.tx_id`` with its receipt."""

    kind: str
    tx: TxRef
    timestamp_ms: int
    org_id: str
    identity: str
    key_epoch: int
    result: int
    purpose: str | None
    uses: tuple[tuple[str, int | None, bytes | None], ...]
    """(dataset id, version, grant id relied on: None = the owner's own use or no grant)."""
    subject: tuple[Any, ...] | None
    on_behalf_of: str | None
    run_id: str | None

    @classmethod
    def from_entry(cls, key: bytes, raw: bytes) -> EventView:
        ms, height, index = K.parse_time_position(key[1:])
        code, tx_id, org, ident, epoch, result, purpose, uses, subject, behalf, run_id = (
            codec.decode(raw)
        )
        return cls(
            k.KIND_BY_CODE[code],
            TxRef(height, index, tx_id),
            ms,
            org,
            ident,
            epoch,
            result,
            purpose,
            tuple((u[0], u[1], u[2]) for u in uses),
            None if subject is None else tuple(subject),
            behalf,
            run_id,
        )

    @property
    def violation(self) -> bool:
        return self.result == Result.NO_GRANT

    def to_json(self) -> dict[str, Any]:
        return {
            "kind": self.kind,
            "tx": self.tx.to_json(),
            "timestamp_ms": self.timestamp_ms,
            "actor": {
                "org_id": self.org_id,
                "identity": self.identity,
                "key_epoch": self.key_epoch,
            },
            "on_behalf_of": self.on_behalf_of,
            "run_id": self.run_id,
            "result": label(self.result),
            "purpose": self.purpose,
            "uses": [
                {"dataset_id": d, "version": v, "grant_id": None if g is None else g.hex()}
                for d, v, g in self.uses
            ],
            "subject": jsonify(list(self.subject)) if self.subject is not None else None,
        }


@dataclass(frozen=True, slots=True)
class DatasetView:
    dataset_id: str
    owner_org: str
    sensitivity: str
    location: str
    licence: str | None
    consent_basis: str | None
    original_purpose: str | None
    title: str | None
    registered: TxRef
    registered_ms: int
    versions: tuple[dict[str, Any], ...] = field(hash=False)
    """{version, content_hash (hex), parent_version, location, added (TxRef json), added_ms}."""

    @classmethod
    def from_record(cls, rec: dict[str, Any], versions: Iterable[dict[str, Any]]) -> DatasetView:
        return cls(
            rec["dataset_id"],
            rec["owner_org"],
            rec["sensitivity"],
            rec["location"],
            rec.get("licence"),
            rec.get("consent_basis"),
            rec.get("original_purpose"),
            rec.get("title"),
            parse_ref(rec["registered"]),
            rec["registered_ms"],
            tuple({**jsonify(v), "added": parse_ref(v["added"]).to_json()} for v in versions),
        )

    def to_json(self) -> dict[str, Any]:
        return {
            "dataset_id": self.dataset_id,
            "owner_org": self.owner_org,
            "title": self.title,
            "sensitivity": self.sensitivity,
            "location": self.location,
            "licence": self.licence,
            "consent_basis": self.consent_basis,
            "original_purpose": self.original_purpose,
            "registered": self.registered.to_json(),
            "registered_ms": self.registered_ms,
            "versions": list(self.versions),
        }


@dataclass(frozen=True, slots=True)
class HistoryEntry:
    tx: TxRef
    kind: str
    result: int
    timestamp_ms: int

    def to_json(self) -> dict[str, Any]:
        return {
            "tx": self.tx.to_json(),
            "kind": self.kind,
            "result": label(self.result),
            "timestamp_ms": self.timestamp_ms,
        }


@dataclass(frozen=True, slots=True)
class RunView:
    run_id: str
    type: str
    org_id: str
    purpose: str | None
    status: str
    violation: bool
    inputs: tuple[tuple[str, int | None, bytes | None, str | None, bool], ...]
    """(dataset id, version, grant id used, context, allowed when last checked)."""
    events: tuple[tuple[str, TxRef, int, int], ...]
    """(event type, tx, block ms, result)."""
    grants_used: tuple[bytes, ...]
    """Every grant the run relied on at any of its events."""
    base_model: tuple[str, int] | None
    """The model fine-tuned, if any."""

    @classmethod
    def from_record(cls, rec: dict[str, Any], events: Iterable[tuple[bytes, bytes]]) -> RunView:
        """From the run record and its ``S`` entries (key, value)."""
        base = rec.get("base_model")
        parsed = []
        for key, raw in events:
            height, index = K.parse_position(key[-12:])
            event_type, result, ms, tx_id, _round = codec.decode(raw)
            parsed.append((event_type, TxRef(height, index, tx_id), ms, result))
        return cls(
            rec["run_id"],
            rec["type"],
            rec["org_id"],
            rec["purpose"],
            rec["status"],
            rec["violation"],
            tuple((u[0], u[1], u[2], u[3], u[4]) for u in rec["inputs"]),
            tuple(parsed),
            tuple(rec.get("grants_used", ())),
            None if base is None else (base["model_name"], base["model_version"]),
        )

    def to_json(self) -> dict[str, Any]:
        return {
            "run_id": self.run_id,
            "type": self.type,
            "org_id": self.org_id,
            "purpose": self.purpose,
            "status": self.status,
            "violation": self.violation,
            "inputs": [
                {
                    "dataset_id": d,
                    "version": v,
                    "grant_id": None if g is None else g.hex(),
                    "context": c,
                    "allowed": a,
                }
                for d, v, g, c, a in self.inputs
            ],
            "events": [
                {"event_type": t, "tx": r.to_json(), "timestamp_ms": ms, "result": label(res)}
                for t, r, ms, res in self.events
            ],
            "grants_used": [g.hex() for g in self.grants_used],
            "base_model": None
            if self.base_model is None
            else {"model_name": self.base_model[0], "model_version": self.base_model[1]},
        }


@dataclass(frozen=True, slots=True)
class ModelView:
    model_name: str
    model_version: int
    org_id: str
    weights_digest: bytes
    model_card_digest: bytes | None
    training_runs: tuple[str, ...]
    parent_models: tuple[tuple[str, int], ...]
    registered: TxRef
    registered_ms: int

    @classmethod
    def from_record(cls, rec: dict[str, Any]) -> ModelView:
        return cls(
            rec["model_name"],
            rec["model_version"],
            rec["org_id"],
            rec["weights_digest"],
            rec["model_card_digest"],
            tuple(rec["training_runs"]),
            tuple((m[0], m[1]) for m in rec["parent_models"]),
            parse_ref(rec["registered"]),
            rec["registered_ms"],
        )

    def to_json(self) -> dict[str, Any]:
        return {
            "model_name": self.model_name,
            "model_version": self.model_version,
            "org_id": self.org_id,
            "weights_digest": self.weights_digest.hex(),
            "model_card_digest": None
            if self.model_card_digest is None
            else self.model_card_digest.hex(),
            "training_runs": list(self.training_runs),
            "parent_models": [{"model_name": n, "model_version": v} for n, v in self.parent_models],
            "registered": self.registered.to_json(),
            "registered_ms": self.registered_ms,
        }
