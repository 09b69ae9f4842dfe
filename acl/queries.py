"""Read-only questions an auditor, a steward or an app asks of the ACL state.

Every function takes a ``StateReader`` (committed state; LMDB or memory) and returns a
frozen dataclass whose ``to_json()`` gives plain JSON-ready data: ids in lowercase hex,
results by name (``no_grant``), times in unix ms. Every answer names the txs it rests on
(``TxRef``: height, index in block, tx id) so a receipt — the tx, its header, a Merkle
inclusion proof and the certificate — can be attached and checked offline.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field
from typing import Any, Final

from acl import keys as K
from acl import kinds as k
from acl.results import Result, label
from acl.state import StateReader, scan_prefix
from chain import codec

EVIDENCE_MAX: Final = 10_000
"""At most this many tx refs in one answer; ``truncated`` says when more existed."""
LINEAGE_DEPTH_MAX: Final = 32


class QueryError(LookupError):
    """The thing asked about does not exist; the message names it."""


@dataclass(frozen=True, slots=True, order=True)
class TxRef:
    """Where a tx is on chain: what a receipt (inclusion proof) is requested for."""

    height: int
    index: int
    tx_id: bytes

    def to_json(self) -> dict[str, Any]:
        return {"height": self.height, "index": self.index, "tx_id": self.tx_id.hex()}


def _ref(position: Any) -> TxRef:
    height, index, tx_id = position
    return TxRef(height, index, tx_id)


def _json(value: Any) -> Any:
    if isinstance(value, bytes):
        return value.hex()
    if isinstance(
        value, TxRef | GrantView | EventView | DatasetView | RunView | ModelView | HistoryEntry
    ):
        return value.to_json()
    if isinstance(value, list | tuple):
        return [_json(v) for v in value]
    if isinstance(value, dict):
        return {key: _json(v) for key, v in value.items()}
    return value


def _evidence(refs: Iterable[TxRef]) -> tuple[tuple[TxRef, ...], bool]:
    unique = sorted(set(refs))
    return tuple(unique[:EVIDENCE_MAX]), len(unique) > EVIDENCE_MAX


# -- views of records -----------------------------------------------------------------------


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
            _ref(rec["issued"]),
            rec["issued_ms"],
            None if rev is None else _ref(rev["at"]),
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
            "subject": _json(list(self.subject)) if self.subject is not None else None,
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
            _ref(rec["registered"]),
            rec["registered_ms"],
            tuple({**_json(v), "added": _ref(v["added"]).to_json()} for v in versions),
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


def _load(state: StateReader, key: bytes) -> Any:
    raw = state.get(key)
    return None if raw is None else codec.decode(raw)


def dataset(state: StateReader, dataset_id: str) -> DatasetView:
    rec = _load(state, K.DATASET + K.dataset_key(dataset_id))
    if rec is None:
        raise QueryError(f"no dataset {dataset_id!r}")
    versions = (
        codec.decode(v) for _, v in scan_prefix(state, K.VERSION + K.dataset_key(dataset_id))
    )
    return DatasetView.from_record(rec, versions)


def grant(state: StateReader, grant_id: bytes) -> GrantView:
    rec = _load(state, K.GRANT + grant_id)
    if rec is None:
        raise QueryError(f"no grant {grant_id.hex()}")
    return GrantView.from_record(rec)


# -- access check ---------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class AccessDecision:
    """May ``org_id`` (optionally one identity of it) use ``dataset_id`` for ``purpose`` at
    ``at_ms``, and under which grant. ``reason``: ``owner``, ``grant`` or why not."""

    allowed: bool
    reason: str
    org_id: str
    identity: str | None
    dataset_id: str
    version: int | None
    purpose: str
    at_ms: int
    grant: GrantView | None
    considered: tuple[GrantView, ...]
    """Every grant of the pair, so the answer shows what was not in force and why."""
    evidence: tuple[TxRef, ...]

    def to_json(self) -> dict[str, Any]:
        return {
            "allowed": self.allowed,
            "reason": self.reason,
            "org_id": self.org_id,
            "identity": self.identity,
            "dataset_id": self.dataset_id,
            "version": self.version,
            "purpose": self.purpose,
            "at_ms": self.at_ms,
            "grant": None if self.grant is None else self.grant.to_json(),
            "considered": [g.to_json() for g in self.considered],
            "evidence": [r.to_json() for r in self.evidence],
        }


def access_check(
    state: StateReader,
    *,
    org_id: str,
    dataset_id: str,
    purpose: str,
    at_ms: int,
    identity: str | None = None,
    version: int | None = None,
) -> AccessDecision:
    """The same rule the machine applies to events, for any time (past grants included):
    owner organisation, or a grant to the org (or to this identity) covering the version
    and purpose, issued, inside its window and not revoked at ``at_ms``."""
    ds = dataset(state, dataset_id)
    base = [ds.registered]
    if ds.owner_org == org_id:
        return AccessDecision(
            True,
            "owner",
            org_id,
            identity,
            dataset_id,
            version,
            purpose,
            at_ms,
            None,
            (),
            tuple(base),
        )
    considered = tuple(grants_for_pair(state, dataset_id, org_id))
    chosen = None
    for g in considered:
        if (
            purpose in g.purposes
            and g.in_force_at(at_ms)
            and (g.version is None or g.version == version)
            and (g.grantee_identity is None or g.grantee_identity == identity)
        ):
            chosen = g
            break
    evidence = base + [r for g in considered for r in g.evidence()]
    if chosen is not None:
        return AccessDecision(
            True,
            "grant",
            org_id,
            identity,
            dataset_id,
            version,
            purpose,
            at_ms,
            chosen,
            considered,
            tuple(sorted(set(evidence))),
        )
    reason = (
        "no grant to this organisation"
        if not considered
        else _why_not(considered, purpose, at_ms, version, identity)
    )
    return AccessDecision(
        False,
        reason,
        org_id,
        identity,
        dataset_id,
        version,
        purpose,
        at_ms,
        None,
        considered,
        tuple(sorted(set(evidence))),
    )


def _why_not(
    grants: tuple[GrantView, ...],
    purpose: str,
    at_ms: int,
    version: int | None,
    identity: str | None,
) -> str:
    if not any(purpose in g.purposes for g in grants):
        return f"no grant covers purpose {purpose}"
    relevant = [g for g in grants if purpose in g.purposes]
    if all(g.revoked_ms is not None and g.revoked_ms <= at_ms for g in relevant):
        return "grant revoked"
    if not any(
        g.valid_from_ms <= at_ms < g.valid_until_ms and g.issued_ms <= at_ms for g in relevant
    ):
        return "no grant valid at that time"
    if not any(g.version is None or g.version == version for g in relevant):
        return "grant covers another version"
    return "grant is for another identity"


def grants_for_pair(state: StateReader, dataset_id: str, org_id: str) -> Iterator[GrantView]:
    """Every grant (revoked included) of one dataset to one organisation, in issue order."""
    prefix = K.BY_DATASET + K.dataset_key(dataset_id) + K.org_key(org_id)
    found = [grant(state, key[-32:]) for key, _ in scan_prefix(state, prefix)]
    return iter(sorted(found, key=lambda g: g.issued))


# -- grants by dataset / grantee -------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class GrantList:
    subject: str
    at_ms: int | None
    grants: tuple[GrantView, ...]
    evidence: tuple[TxRef, ...]

    def to_json(self) -> dict[str, Any]:
        return {
            "subject": self.subject,
            "in_force_at_ms": self.at_ms,
            "grants": [g.to_json() for g in self.grants],
            "evidence": [r.to_json() for r in self.evidence],
        }


def _grant_list(state: StateReader, subject: str, prefix: bytes, at_ms: int | None) -> GrantList:
    found = sorted(
        (grant(state, key[-32:]) for key, _ in scan_prefix(state, prefix)), key=lambda g: g.issued
    )
    if at_ms is not None:
        found = [g for g in found if g.in_force_at(at_ms)]
    evidence, _ = _evidence(r for g in found for r in g.evidence())
    return GrantList(subject, at_ms, tuple(found), evidence)


def grants_by_dataset(
    state: StateReader, dataset_id: str, *, in_force_at_ms: int | None = None
) -> GrantList:
    """Grants of a dataset (all, or only those in force at a time), in issue order."""
    return _grant_list(state, dataset_id, K.BY_DATASET + K.dataset_key(dataset_id), in_force_at_ms)


def grants_by_grantee(
    state: StateReader, org_id: str, *, in_force_at_ms: int | None = None
) -> GrantList:
    """Grants to an organisation (and its identities), in issue order."""
    return _grant_list(state, org_id, K.BY_GRANTEE + K.org_key(org_id), in_force_at_ms)


# -- dataset history ------------------------------------------------------------------------


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


def _history(state: StateReader, prefix: bytes) -> list[HistoryEntry]:
    entries = []
    for key, value in scan_prefix(state, prefix):
        height, index = K.parse_position(key[-12:])
        code, result, ms, tx_id = K.MARK.unpack(value)
        entries.append(HistoryEntry(TxRef(height, index, tx_id), k.KIND_BY_CODE[code], result, ms))
    return entries


@dataclass(frozen=True, slots=True)
class DatasetHistory:
    dataset: DatasetView
    entries: tuple[HistoryEntry, ...]
    """Registration, versions, grants, revocations and every audit event naming it, in chain order."""
    derived_from: tuple[dict[str, Any], ...] = field(hash=False)
    """Derivations whose output is this dataset: activity, inputs, tx."""
    evidence: tuple[TxRef, ...]
    truncated: bool

    def to_json(self) -> dict[str, Any]:
        return {
            "dataset": self.dataset.to_json(),
            "entries": [e.to_json() for e in self.entries],
            "derived_from": list(self.derived_from),
            "evidence": [r.to_json() for r in self.evidence],
            "truncated": self.truncated,
        }


def dataset_history(state: StateReader, dataset_id: str) -> DatasetHistory:
    ds = dataset(state, dataset_id)
    dk = K.dataset_key(dataset_id)
    entries = _history(state, K.HISTORY + dk)
    derivations = tuple(_derivations(state, dataset_id))
    evidence, truncated = _evidence([e.tx for e in entries])
    return DatasetHistory(ds, tuple(entries), derivations, evidence, truncated)


def _derivations(state: StateReader, dataset_id: str) -> Iterator[dict[str, Any]]:
    for key, raw in scan_prefix(state, K.DERIVATION + K.dataset_key(dataset_id)):
        height, index = K.parse_position(key[-12:])
        rec = codec.decode(raw)
        yield {
            "activity": rec["activity"],
            "inputs": [
                {"dataset_id": u[0], "version": u[1], "grant_id": _json(u[2]), "allowed": u[4]}
                for u in rec["inputs"]
            ],
            "output_digest": rec["output_digest"].hex(),
            "result": label(rec["result"]),
            "tx": TxRef(height, index, rec["tx_id"]).to_json(),
        }


# -- model lineage --------------------------------------------------------------------------


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
            _ref(rec["registered"]),
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


@dataclass(frozen=True, slots=True)
class ModelLineage:
    """A model and everything it rests on, transitively: parent models, training runs,
    the datasets they used (and the datasets those were derived from) and the grants that
    allowed each use, plus what was done with the model since (deployments, inference,
    evaluations, oversight, incidents)."""

    model: ModelView
    models: tuple[ModelView, ...]
    """The model and its ancestors, nearest first."""
    runs: tuple[RunView, ...]
    datasets: tuple[DatasetView, ...]
    grants: tuple[GrantView, ...]
    derivations: tuple[dict[str, Any], ...] = field(hash=False)
    uses: tuple[HistoryEntry, ...] = ()
    violations: tuple[TxRef, ...] = ()
    """Txs in the lineage recorded as ``no_grant``."""
    evidence: tuple[TxRef, ...] = ()
    truncated: bool = False

    @property
    def clean(self) -> bool:
        """No use of data in the lineage lacked a grant."""
        return not self.violations

    def to_json(self) -> dict[str, Any]:
        return {
            "model": self.model.to_json(),
            "models": [m.to_json() for m in self.models],
            "runs": [r.to_json() for r in self.runs],
            "datasets": [d.to_json() for d in self.datasets],
            "grants": [g.to_json() for g in self.grants],
            "derivations": list(self.derivations),
            "uses": [u.to_json() for u in self.uses],
            "violations": [r.to_json() for r in self.violations],
            "clean": self.clean,
            "evidence": [r.to_json() for r in self.evidence],
            "truncated": self.truncated,
        }


def model(state: StateReader, model_name: str, model_version: int) -> ModelView:
    rec = _load(state, K.MODEL + K.model_version_key(model_name, model_version))
    if rec is None or model_version == 0:
        raise QueryError(f"no model {model_name!r} version {model_version}")
    return ModelView.from_record(rec)


def run(state: StateReader, run_id: str) -> RunView:
    rec = _load(state, K.RUN + K.run_key(run_id))
    if rec is None:
        raise QueryError(f"no run {run_id!r}")
    return RunView.from_record(rec, scan_prefix(state, K.RUN_EVENT + K.run_key(run_id)))


def model_lineage(state: StateReader, model_name: str, model_version: int) -> ModelLineage:
    """Walk from the model to its parents and base models (breadth first, at most
    ``LINEAGE_DEPTH_MAX`` generations), their training runs, the datasets those used and,
    through registered derivations, the datasets those came from, collecting the grants
    relied on and every ``no_grant`` on the way."""
    root = model(state, model_name, model_version)
    models: list[ModelView] = []
    runs: dict[str, RunView] = {}
    dataset_ids: list[str] = []
    grant_ids: list[bytes] = []
    evidence: list[TxRef] = []
    violations: list[TxRef] = []
    seen_models: set[tuple[str, int]] = set()
    frontier: list[tuple[str, int, int]] = [(model_name, model_version, 0)]
    while frontier:
        name, version, depth = frontier.pop(0)
        if (name, version) in seen_models or depth > LINEAGE_DEPTH_MAX:
            continue
        seen_models.add((name, version))
        m = root if (name, version) == (model_name, model_version) else model(state, name, version)
        models.append(m)
        evidence.append(m.registered)
        frontier.extend((n, v, depth + 1) for n, v in m.parent_models)
        for run_id in m.training_runs:
            if run_id in runs:
                continue
            r = runs[run_id] = run(state, run_id)
            for _event_type, ref, _ms, result in r.events:
                evidence.append(ref)
                if result == Result.NO_GRANT:
                    violations.append(ref)
            for d, _v, g, _c, _a in r.inputs:
                if d not in dataset_ids:
                    dataset_ids.append(d)
                if g is not None and g not in grant_ids:
                    grant_ids.append(g)
            grant_ids.extend(g for g in r.grants_used if g not in grant_ids)
            if r.base_model is not None:
                frontier.append((*r.base_model, depth + 1))
    derivations: list[dict[str, Any]] = []
    i = 0
    while i < len(dataset_ids) and i < EVIDENCE_MAX:
        for derivation in _derivations(state, dataset_ids[i]):
            derivations.append({"output_dataset_id": dataset_ids[i], **derivation})
            ref = _ref_json(derivation["tx"])
            evidence.append(ref)
            if derivation["result"] == Result.NO_GRANT.label:
                violations.append(ref)
            for inp in derivation["inputs"]:
                if inp["dataset_id"] not in dataset_ids:
                    dataset_ids.append(inp["dataset_id"])
                if inp["grant_id"] is not None and bytes.fromhex(inp["grant_id"]) not in grant_ids:
                    grant_ids.append(bytes.fromhex(inp["grant_id"]))
        i += 1
    datasets = tuple(dataset(state, d) for d in dataset_ids)
    evidence.extend(d.registered for d in datasets)
    grants = tuple(grant(state, g) for g in grant_ids)
    evidence.extend(r for g in grants for r in g.evidence())
    uses = tuple(_history(state, K.MODEL_USE + K.model_version_key(model_name, model_version)))
    evidence.extend(u.tx for u in uses)
    violations.extend(u.tx for u in uses if u.result == Result.NO_GRANT)
    refs, truncated = _evidence(evidence)
    return ModelLineage(
        root,
        tuple(models),
        tuple(runs.values()),
        datasets,
        grants,
        tuple(derivations),
        uses,
        tuple(sorted(set(violations))),
        refs,
        truncated,
    )


def _ref_json(doc: dict[str, Any]) -> TxRef:
    return TxRef(doc["height"], doc["index"], bytes.fromhex(doc["tx_id"]))


# -- events, violations, report ------------------------------------------------------------


def _ms(value: int) -> bytes:
    """A time bound as a key part, clamped to the u64 range (callers pass user input)."""
    return K.u64(min(max(int(value), 0), 2**64 - 1))


def events(state: StateReader, from_ms: int, until_ms: int) -> Iterator[EventView]:
    """Audit events recorded in blocks with ``from_ms <= block time < until_ms``, in chain order."""
    for key, raw in state.range(K.LOG + _ms(from_ms), K.LOG + _ms(until_ms)):
        yield EventView.from_entry(key, raw)


def event(state: StateReader, tx_id: bytes, tx_timestamp_ms: int) -> EventView | None:
    """The audit event a tx (its id and its own ``timestamp_ms``) recorded, or None (not
    applied, or not an audit event)."""
    raw = state.get(K.tx_key(tx_timestamp_ms, tx_id))
    if raw is None:
        return None
    height, index, _result, ms = K.TX_RECORD.unpack(raw)
    key = K.LOG + K.time_position(ms, height, index)
    value = state.get(key)
    return None if value is None else EventView.from_entry(key, value)


def tx_result(state: StateReader, tx_id: bytes, tx_timestamp_ms: int) -> tuple[TxRef, int] | None:
    """Where an applied tx (its id and its own ``timestamp_ms``) is and its result
    (rejected txs are in the block store's tx index only)."""
    raw = state.get(K.tx_key(tx_timestamp_ms, tx_id))
    if raw is None:
        return None
    height, index, result, _ms = K.TX_RECORD.unpack(raw)
    return TxRef(height, index, tx_id), result


@dataclass(frozen=True, slots=True)
class Violations:
    from_ms: int
    until_ms: int
    events: tuple[EventView, ...]
    evidence: tuple[TxRef, ...]
    truncated: bool

    def to_json(self) -> dict[str, Any]:
        return {
            "from_ms": self.from_ms,
            "until_ms": self.until_ms,
            "count": len(self.events),
            "events": [e.to_json() for e in self.events],
            "evidence": [r.to_json() for r in self.evidence],
            "truncated": self.truncated,
        }


def violations(
    state: StateReader, from_ms: int, until_ms: int, *, limit: int = EVIDENCE_MAX
) -> Violations:
    """Audit events recorded as ``no_grant`` in blocks with ``from_ms <= time < until_ms``."""
    found: list[EventView] = []
    truncated = False
    for key, _ in state.range(K.VIOLATION + _ms(from_ms), K.VIOLATION + _ms(until_ms)):
        if len(found) >= limit:
            truncated = True
            break
        log_key = K.LOG + key[1:]
        raw = state.get(log_key)
        if raw is None:
            raise QueryError(f"violation index points to a missing event {key.hex()}")
        found.append(EventView.from_entry(log_key, raw))
    return Violations(from_ms, until_ms, tuple(found), tuple(e.tx for e in found), truncated)


@dataclass(frozen=True, slots=True)
class AuditReport:
    """Counts of audit events in ``[from_ms, until_ms)``: by organisation, dataset,
    purpose, kind and result, plus the (organisation, result) and (dataset, result) cross
    tables an auditor reads first. ``first``/``last``: the range of txs it covers."""

    from_ms: int
    until_ms: int
    total: int
    by_org: dict[str, int] = field(hash=False)
    by_dataset: dict[str, int] = field(hash=False)
    by_purpose: dict[str, int] = field(hash=False)
    by_kind: dict[str, int] = field(hash=False)
    by_result: dict[str, int] = field(hash=False)
    by_org_result: dict[str, dict[str, int]] = field(hash=False)
    by_dataset_result: dict[str, dict[str, int]] = field(hash=False)
    violations: tuple[EventView, ...]
    first: TxRef | None
    last: TxRef | None
    evidence: tuple[TxRef, ...]
    truncated: bool

    def to_json(self) -> dict[str, Any]:
        return {
            "from_ms": self.from_ms,
            "until_ms": self.until_ms,
            "total": self.total,
            "by_org": dict(self.by_org),
            "by_dataset": dict(self.by_dataset),
            "by_purpose": dict(self.by_purpose),
            "by_kind": dict(self.by_kind),
            "by_result": dict(self.by_result),
            "by_org_result": {o: dict(c) for o, c in self.by_org_result.items()},
            "by_dataset_result": {d: dict(c) for d, c in self.by_dataset_result.items()},
            "violations": [e.to_json() for e in self.violations],
            "first": None if self.first is None else self.first.to_json(),
            "last": None if self.last is None else self.last.to_json(),
            "evidence": [r.to_json() for r in self.evidence],
            "truncated": self.truncated,
        }


def _sorted_counts(counter: Counter[str]) -> dict[str, int]:
    return {key: counter[key] for key in sorted(counter)}


def audit_report(state: StateReader, from_ms: int, until_ms: int) -> AuditReport:
    """One pass over the audit log of the time range. An event using several datasets
    counts once per dataset in ``by_dataset``; events without a purpose count under
    ``"none"``."""
    by_org: Counter[str] = Counter()
    by_dataset: Counter[str] = Counter()
    by_purpose: Counter[str] = Counter()
    by_kind: Counter[str] = Counter()
    by_result: Counter[str] = Counter()
    org_result: dict[str, Counter[str]] = {}
    dataset_result: dict[str, Counter[str]] = {}
    found_violations: list[EventView] = []
    refs: list[TxRef] = []
    total = 0
    first: TxRef | None = None
    last: TxRef | None = None
    for e in events(state, from_ms, until_ms):
        total += 1
        result = label(e.result)
        by_org[e.org_id] += 1
        by_purpose[e.purpose or "none"] += 1
        by_kind[e.kind] += 1
        by_result[result] += 1
        org_result.setdefault(e.org_id, Counter())[result] += 1
        for d in sorted({u[0] for u in e.uses}):
            by_dataset[d] += 1
            dataset_result.setdefault(d, Counter())[result] += 1
        if e.violation and len(found_violations) < EVIDENCE_MAX:
            found_violations.append(e)
        if len(refs) <= EVIDENCE_MAX:
            refs.append(e.tx)
        first = first or e.tx
        last = e.tx
    evidence, truncated = _evidence(refs)
    return AuditReport(
        from_ms,
        until_ms,
        total,
        _sorted_counts(by_org),
        _sorted_counts(by_dataset),
        _sorted_counts(by_purpose),
        _sorted_counts(by_kind),
        _sorted_counts(by_result),
        {o: _sorted_counts(c) for o, c in sorted(org_result.items())},
        {d: _sorted_counts(c) for d, c in sorted(dataset_result.items())},
        tuple(found_violations),
        first,
        last,
        evidence,
        truncated,
    )


# -- consortium -----------------------------------------------------------------------------


def organisations(state: StateReader) -> list[dict[str, Any]]:
    """Every organisation ever admitted, with its status."""
    return sorted(
        (codec.decode(v) for _, v in scan_prefix(state, K.ORG)), key=lambda o: o["org_id"]
    )


def validators(state: StateReader) -> list[dict[str, Any]]:
    """The validator set (active and removed), by node id; keys in hex."""
    return sorted(
        ({**_json(rec)} for rec in (codec.decode(v) for _, v in scan_prefix(state, K.VALIDATOR))),
        key=lambda v: v["node_id"],
    )


def identity(state: StateReader, public_key: bytes) -> dict[str, Any] | None:
    """The identity a key belongs to, with ``key_current`` False for a rotated-out key."""
    entry = _load(state, K.KEY + public_key)
    if entry is None:
        return None
    rec = _load(state, K.IDENTITY + entry[0])
    return {**_json(rec), "key_current": rec["key_epoch"] == entry[1]}


def proposal(state: StateReader, proposal_id: bytes, *, at_ms: int | None = None) -> dict[str, Any]:
    """A governance proposal; an open one past its expiry at ``at_ms`` shows as ``expired``."""
    rec = _load(state, K.PROPOSAL + proposal_id)
    if rec is None:
        raise QueryError(f"no proposal {proposal_id.hex()}")
    doc: dict[str, Any] = _json(rec)
    if doc["status"] == "open" and at_ms is not None and at_ms >= doc["expires_ms"]:
        doc["status"] = "expired"
    return doc


def state_root(state: StateReader) -> tuple[int, bytes]:
    """(height, state root) the state is at."""
    height = state.get(K.META_HEIGHT)
    root = state.get(K.META_ROOT)
    if height is None or root is None:
        raise QueryError("state has not been initialised from a genesis")
    return int.from_bytes(height, "big"), root
