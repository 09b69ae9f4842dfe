"""Versioned payload schemas, one per tx kind, validated strictly.

A payload is a str-keyed map. Every payload carries ``"v"``: the schema version of its
kind (all kinds are at version 1). Validation rejects unknown fields, missing required
fields and ill-typed values (``MALFORMED``) and unknown versions (``UNSUPPORTED_VERSION``).
Optional fields are omitted, never null.

The schemas are data (``SCHEMAS``): the SDK, CLI and RPC docs read them, and
``describe()`` renders them for people. ``acl.payloads`` builds valid payloads.

Field names follow OpenLineage (``run_id``, ``event_type``, ``inputs``, ``producer``,
``event_time_ms``), MLflow (``model_name``, ``model_version``, ``metrics``, dataset
``digest`` and ``context``) and W3C PROV (``on_behalf_of`` = prov:actedOnBehalfOf;
derivation ``inputs`` -> ``output_digest`` = prov:wasDerivedFrom) where those have one.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from types import MappingProxyType
from typing import Any, Final

from acl import kinds as k
from acl.results import Result
from chain import limits
from chain.tx import Tx

SCHEMA_VERSION: Final = 1
ID_CHARS_MAX: Final = 128
NAME_CHARS_MAX: Final = 64
TEXT_CHARS_MAX: Final = 1024
LIST_ITEMS_MAX: Final = 64
PARTICIPANTS_MAX: Final = 256
CONDITIONS_MAX: Final = 32

Check = Callable[[Any], bool]

_ID = re.compile(r"[A-Za-z0-9][A-Za-z0-9._:/@+\-]*")


_IDS_SEEN: Final[dict[str, None]] = {}
"""Strings ``is_id`` accepted: ids repeat on the hot path (every event names a dataset),
and the answer is a pure function of the string. Emptied when it holds
``_IDS_SEEN_MAX``, so junk ids cannot grow it."""
_IDS_SEEN_MAX: Final = 1 << 14


def is_id(value: Any) -> bool:
    """A user-chosen id: 1..128 chars, letters, digits and ``._:/@+-``, not starting with
    punctuation. Ids appear in URLs and logs, so no spaces or control characters."""
    if type(value) is not str:
        return False
    if value in _IDS_SEEN:
        return True
    if 0 < len(value) <= ID_CHARS_MAX and _ID.fullmatch(value) is not None:
        if len(_IDS_SEEN) >= _IDS_SEEN_MAX:
            _IDS_SEEN.clear()
        _IDS_SEEN[value] = None
        return True
    return False


def is_name(value: Any) -> bool:
    """An identity name within its organisation: an id of at most 64 chars."""
    return (
        type(value) is str and 0 < len(value) <= NAME_CHARS_MAX and _ID.fullmatch(value) is not None
    )


def is_text(value: Any) -> bool:
    return type(value) is str and 0 < len(value) <= TEXT_CHARS_MAX


_PEER_ADDRESS = re.compile(
    r"(?:\[[0-9A-Fa-f:.]+\]|[A-Za-z0-9](?:[A-Za-z0-9.\-]{0,252})):([0-9]{1,5})"
)


def is_peer_address(value: Any) -> bool:
    """A node's peer address, ``host:port`` (an IPv6 host in brackets), port 1..65535."""
    if type(value) is not str or len(value) > 262:
        return False
    m = _PEER_ADDRESS.fullmatch(value)
    return m is not None and 0 < int(m.group(1)) < 65536


def is_digest(value: Any) -> bool:
    """A SHA-256 digest (content hash, code hash, ...): exactly 32 bytes."""
    return type(value) is bytes and len(value) == limits.HASH_BYTES


def is_public_key(value: Any) -> bool:
    return type(value) is bytes and len(value) == limits.PUBLIC_KEY_BYTES


def is_u64(value: Any) -> bool:
    return type(value) is int and 0 <= value <= limits.TIMESTAMP_MS_MAX


def is_positive_u32(value: Any) -> bool:
    return type(value) is int and 0 < value < 2**32


def one_of(vocabulary: tuple[str, ...]) -> Check:
    allowed = frozenset(vocabulary)

    def check(value: Any) -> bool:
        return type(value) is str and value in allowed

    check.__doc__ = "one of: " + ", ".join(vocabulary)
    return check


def list_of(
    item: Check, *, min_items: int = 0, max_items: int = LIST_ITEMS_MAX, unique: bool = False
) -> Check:
    def check(value: Any) -> bool:
        if type(value) is not list or not min_items <= len(value) <= max_items:
            return False
        if not all(item(v) for v in value):
            return False
        if unique:
            try:
                return len(set(value)) == len(value)
            except TypeError:
                return False
        return True

    return check


def map_of(fields: Mapping[str, tuple[Check, bool]]) -> Check:
    """A nested map with its own required/optional fields."""
    required = frozenset(name for name, (_, req) in fields.items() if req)

    def check(value: Any) -> bool:
        if type(value) is not dict or not required <= value.keys():
            return False
        for name, v in value.items():
            spec = fields.get(name)
            if spec is None or not spec[0](v):
                return False
        return True

    return check


def is_conditions(value: Any) -> bool:
    """Free-form grant conditions: up to 32 ``id -> text`` pairs (e.g. ``"retention":
    "delete after 90 days"``); recorded, shown in answers, not interpreted."""
    return (
        type(value) is dict
        and 0 < len(value) <= CONDITIONS_MAX
        and all(is_id(key) and is_text(v) for key, v in value.items())
    )


DATASET_REF: Final = map_of(
    {
        "dataset_id": (is_id, True),
        "version": (is_positive_u32, False),
        "grant_id": (is_digest, False),
        "context": (one_of(k.DATASET_CONTEXTS), False),
        "digest": (is_digest, False),
    }
)
"""An input dataset of an event (OpenLineage input dataset, MLflow dataset input):
``dataset_id``, optional ``version`` (a grant for one version matches only events naming
it), optional ``grant_id`` (the grant the actor relies on; then only that grant matches),
``context`` (training/validation/testing/...), ``digest`` of the exact data used."""

MODEL_REF: Final = map_of({"model_name": (is_id, True), "model_version": (is_positive_u32, True)})


@dataclass(frozen=True, slots=True)
class Field:
    check: Check
    required: bool
    doc: str


@dataclass(frozen=True, slots=True)
class Schema:
    kind: str
    version: int
    fields: Mapping[str, Field]
    rule: Callable[[dict[str, Any]], bool] | None = None
    """A cross-field rule (e.g. "inputs need a purpose"); False = malformed."""
    rule_doc: str = ""
    checks: Mapping[str, Check] = field(init=False, repr=False, compare=False)
    required: frozenset[str] = field(init=False, repr=False, compare=False)

    def __post_init__(self) -> None:
        # Flattened for the hot path: one dict lookup per field, one subset test.
        object.__setattr__(self, "checks", {name: f.check for name, f in self.fields.items()})
        object.__setattr__(
            self, "required", frozenset(n for n, f in self.fields.items() if f.required)
        )

    def validate(self, payload: Any) -> Result | None:
        """None if ``payload`` is valid, else why not."""
        if type(payload) is not dict:
            return Result.MALFORMED
        v = payload.get("v")
        if type(v) is not int:
            return Result.MALFORMED
        if v != self.version:
            return Result.UNSUPPORTED_VERSION
        checks = self.checks
        for name, value in payload.items():
            check = checks.get(name)
            if check is None or not check(value):
                return Result.MALFORMED
        if not self.required <= payload.keys():
            return Result.MALFORMED
        if self.rule is not None and not self.rule(payload):
            return Result.MALFORMED
        return None


def _f(check: Check, doc: str, required: bool = True) -> Field:
    return Field(check, required, doc)


def _opt(check: Check, doc: str) -> Field:
    return Field(check, False, doc)


_V = _f(lambda v: type(v) is int, "schema version of the payload: 1")
_PURPOSE = one_of(k.PURPOSES)

ENVELOPE: Final = {
    "v": _V,
    "on_behalf_of": _opt(is_id, "organisation the actor acted for (prov:actedOnBehalfOf)"),
    "run_id": _opt(is_id, "correlation id: the OpenLineage runId / MLflow run id"),
    "event_time_ms": _opt(
        is_u64,
        "when the producer saw the event (OpenLineage eventTime); the block time is authoritative",
    ),
    "producer": _opt(is_text, "URI of the software that emitted the event (OpenLineage producer)"),
}
"""Fields every audit event may carry. The actor (organisation, identity, key epoch) is
the tx sender and is recorded by the machine, never taken from the payload."""


def _audit(
    kind: str,
    rule: Callable[[dict[str, Any]], bool] | None = None,
    rule_doc: str = "",
    **fields: Field,
) -> Schema:
    return Schema(kind, SCHEMA_VERSION, MappingProxyType({**ENVELOPE, **fields}), rule, rule_doc)


def _plain(
    kind: str,
    rule: Callable[[dict[str, Any]], bool] | None = None,
    rule_doc: str = "",
    **fields: Field,
) -> Schema:
    return Schema(kind, SCHEMA_VERSION, MappingProxyType({"v": _V, **fields}), rule, rule_doc)


def _inputs_need_purpose(p: dict[str, Any]) -> bool:
    return not p.get("inputs") or "purpose" in p


def _gov_fields_match(p: dict[str, Any]) -> bool:
    action = p["action"]
    present = p.keys()
    if action == "add_org":
        return {
            "org_name",
            "admin_name",
            "admin_public_key",
        } <= present and not present & {"node_id", "node_address"}
    if action == "remove_org":
        return not present & {
            "org_name",
            "admin_name",
            "admin_public_key",
            "node_id",
            "node_public_key",
            "node_address",
        }
    if action == "add_validator":
        return {"node_id", "node_public_key"} <= present and not present & {
            "org_name",
            "admin_name",
            "admin_public_key",
        }
    return "node_id" in present and not present & {
        "org_name",
        "admin_name",
        "admin_public_key",
        "node_public_key",
        "node_address",
    }


def _federated_lengths_match(p: dict[str, Any]) -> bool:
    return len(p["participants"]) == len(p["update_digests"]) and _inputs_need_purpose(p)


_INPUTS = _opt(
    list_of(DATASET_REF, max_items=LIST_ITEMS_MAX),
    "datasets used: [{dataset_id, version?, grant_id?, context?, digest?}]",
)
_MODEL_NAME = _f(is_id, "registered model name (MLflow)")
_MODEL_VERSION = _f(is_positive_u32, "model version number (MLflow), from 1")

SCHEMAS: Final[Mapping[str, Schema]] = MappingProxyType(
    {
        k.GOV_PROPOSE: _plain(
            k.GOV_PROPOSE,
            _gov_fields_match,
            "add_org needs org_name, admin_name, admin_public_key; add_validator needs node_id, node_public_key (node_address: its peer address); remove_validator needs node_id",
            action=_f(one_of(k.GOV_ACTIONS), "what changes"),
            org_id=_f(is_id, "the organisation added or removed, or the validator's organisation"),
            org_name=_opt(is_text, "display name of an added organisation"),
            admin_name=_opt(is_name, "first admin identity of an added organisation"),
            admin_public_key=_opt(is_public_key, "that admin's Ed25519 key"),
            node_id=_opt(is_id, "validator node id"),
            node_public_key=_opt(is_public_key, "validator's Ed25519 key"),
            node_address=_opt(
                is_peer_address,
                "an added validator's peer address (host:port), which the nodes dial",
            ),
            reason=_opt(is_text, "why"),
        ),
        k.GOV_APPROVE: _plain(
            k.GOV_APPROVE,
            proposal_id=_f(is_digest, "tx id of the gov.propose"),
            reason=_opt(is_text, "why"),
        ),
        k.GOV_REJECT: _plain(
            k.GOV_REJECT,
            proposal_id=_f(is_digest, "tx id of the gov.propose"),
            reason=_opt(is_text, "why"),
        ),
        k.IDENTITY_REGISTER: _plain(
            k.IDENTITY_REGISTER,
            name=_f(is_name, "identity name, unique within the sender's organisation"),
            role=_f(one_of(k.ROLES), "admin, steward, app or auditor"),
            public_key=_f(is_public_key, "its Ed25519 key, not registered anywhere yet"),
            description=_opt(is_text, "who or what this is"),
        ),
        k.IDENTITY_REVOKE: _plain(
            k.IDENTITY_REVOKE,
            name=_f(is_name, "identity of the sender's organisation"),
            reason=_opt(is_text, "why"),
        ),
        k.IDENTITY_ROTATE: _plain(
            k.IDENTITY_ROTATE,
            name=_f(is_name, "identity of the sender's organisation (or the sender itself)"),
            new_public_key=_f(is_public_key, "the replacement Ed25519 key"),
        ),
        k.DATASET_REGISTER: _plain(
            k.DATASET_REGISTER,
            lambda p: "licence" in p or "consent_basis" in p,
            "a licence or a consent basis (or both) is required",
            dataset_id=_f(is_id, "globally unique dataset id"),
            title=_opt(is_text, "human-readable title"),
            content_hash=_f(is_digest, "SHA-256 of the content of version 1 (never the data)"),
            location=_f(is_text, "off-chain location (URI)"),
            sensitivity=_f(one_of(k.SENSITIVITY_CLASSES), "sensitivity class"),
            licence=_opt(is_text, "licence (SPDX id or URI)"),
            consent_basis=_opt(
                is_text, "consent or legal basis (e.g. GDPR Art. 6(1)(a) + 9(2)(a))"
            ),
            original_purpose=_opt(
                is_text, "the purpose the data were collected for (EU AI Act Art. 10)"
            ),
            record_count=_opt(is_u64, "number of records"),
            size_bytes=_opt(is_u64, "size in bytes"),
        ),
        k.DATASET_ADD_VERSION: _plain(
            k.DATASET_ADD_VERSION,
            dataset_id=_f(is_id, "a dataset of the sender's organisation"),
            content_hash=_f(is_digest, "SHA-256 of the new version's content"),
            parent_version=_f(is_positive_u32, "the version this one derives from"),
            location=_opt(is_text, "off-chain location if it moved"),
            change_summary=_opt(is_text, "what changed"),
        ),
        k.GRANT_ISSUE: _plain(
            k.GRANT_ISSUE,
            dataset_id=_f(is_id, "a dataset of the sender's organisation"),
            version=_opt(is_positive_u32, "only this version (default: every version)"),
            grantee_org=_f(is_id, "the organisation granted"),
            grantee_identity=_opt(
                is_name, "only this identity of grantee_org (default: all of it)"
            ),
            purposes=_f(
                list_of(_PURPOSE, min_items=1, max_items=len(k.PURPOSES), unique=True),
                "purposes allowed",
            ),
            valid_from_ms=_f(is_u64, "start of validity, inclusive, unix ms"),
            valid_until_ms=_f(is_u64, "end of validity, exclusive, unix ms"),
            conditions=_opt(is_conditions, "free-form conditions: {id: text}"),
        ),
        k.GRANT_REVOKE: _plain(
            k.GRANT_REVOKE,
            grant_id=_f(is_digest, "tx id of the grant.issue"),
            reason=_opt(is_text, "why"),
        ),
        k.AUDIT_DATA_ACCESS: _audit(
            k.AUDIT_DATA_ACCESS,
            dataset_id=_f(is_id, "dataset accessed"),
            version=_opt(is_positive_u32, "version accessed"),
            grant_id=_opt(is_digest, "the grant relied on"),
            purpose=_f(_PURPOSE, "purpose of the access"),
            access_type=_opt(one_of(k.ACCESS_TYPES), "read, query, export or stream"),
            digest=_opt(is_digest, "digest of the data read"),
            record_count=_opt(is_u64, "records read"),
        ),
        k.AUDIT_DATASET_DERIVATION: _audit(
            k.AUDIT_DATASET_DERIVATION,
            activity=_f(
                one_of(k.DERIVATION_ACTIVITIES), "preparation step (EU AI Act Art. 10(2)(c))"
            ),
            purpose=_f(_PURPOSE, "purpose the inputs are used for"),
            inputs=_f(list_of(DATASET_REF, min_items=1), "parent datasets"),
            output_digest=_f(is_digest, "digest of the derived data (prov:wasDerivedFrom)"),
            output_dataset_id=_opt(
                is_id, "the registered dataset (of the actor's organisation) the output is"
            ),
            code_digest=_opt(is_digest, "hash of the code that derived it"),
        ),
        k.AUDIT_TRAINING_RUN: _audit(
            k.AUDIT_TRAINING_RUN,
            lambda p: p["event_type"] != "START" or bool(p.get("inputs")),
            "START needs inputs",
            run_id=_f(is_id, "the run (OpenLineage runId)"),
            event_type=_f(one_of(k.RUN_EVENT_TYPES), "OpenLineage eventType"),
            purpose=_f(_PURPOSE, "training or fine_tuning, usually"),
            inputs=_INPUTS,
            code_digest=_opt(is_digest, "hash of the training code"),
            config_digest=_opt(is_digest, "hash of the configuration / hyper-parameters"),
            environment_digest=_opt(is_digest, "hash of the environment (image, lockfile)"),
            model_digest=_opt(is_digest, "digest of the output model (on COMPLETE)"),
            base_model=_opt(MODEL_REF, "model fine-tuned: {model_name, model_version}"),
        ),
        k.AUDIT_MODEL_REGISTRATION: _audit(
            k.AUDIT_MODEL_REGISTRATION,
            model_name=_MODEL_NAME,
            model_version=_MODEL_VERSION,
            weights_digest=_f(is_digest, "hash of the weights"),
            training_runs=_opt(list_of(is_id, unique=True), "run ids that produced it"),
            parent_models=_opt(list_of(MODEL_REF), "models it derives from"),
            model_card_digest=_opt(is_digest, "hash of the model card"),
        ),
        k.AUDIT_EVALUATION: _audit(
            k.AUDIT_EVALUATION,
            _inputs_need_purpose,
            "inputs need a purpose",
            model_name=_MODEL_NAME,
            model_version=_MODEL_VERSION,
            evaluation_type=_f(
                one_of(k.EVALUATION_TYPES), "performance, bias, robustness, safety or fairness"
            ),
            purpose=_opt(_PURPOSE, "purpose the inputs are used for (evaluation)"),
            inputs=_INPUTS,
            metrics=_f(
                list_of(is_id, min_items=1, unique=True), "metric names (MLflow metric keys)"
            ),
            result_digest=_f(is_digest, "hash of the result document"),
        ),
        k.AUDIT_DEPLOYMENT: _audit(
            k.AUDIT_DEPLOYMENT,
            model_name=_MODEL_NAME,
            model_version=_MODEL_VERSION,
            action=_f(
                one_of(k.DEPLOYMENT_ACTIONS), "deploy, substantial_modification, rollback or retire"
            ),
            deployment_id=_f(is_id, "the deployment"),
            environment=_opt(is_text, "where (e.g. production, eu-west)"),
            change_digest=_opt(is_digest, "hash of the change description"),
        ),
        k.AUDIT_INFERENCE_BATCH: _audit(
            k.AUDIT_INFERENCE_BATCH,
            _inputs_need_purpose,
            "inputs need a purpose",
            model_name=_MODEL_NAME,
            model_version=_MODEL_VERSION,
            deployment_id=_opt(is_id, "the deployment that served it"),
            count=_f(is_u64, "inferences in the batch"),
            input_digest=_f(is_digest, "digest of the inputs"),
            output_digest=_f(is_digest, "digest of the outputs"),
            purpose=_opt(_PURPOSE, "purpose the inputs are used for (inference)"),
            inputs=_INPUTS,
        ),
        k.AUDIT_OVERSIGHT_INTERVENTION: _audit(
            k.AUDIT_OVERSIGHT_INTERVENTION,
            lambda p: ("model_name" in p) == ("model_version" in p),
            "model_name and model_version come together",
            action=_f(one_of(k.OVERSIGHT_ACTIONS), "review, override, halt, resume or escalate"),
            model_name=_opt(is_id, "model concerned"),
            model_version=_opt(is_positive_u32, "its version"),
            deployment_id=_opt(is_id, "deployment concerned"),
            subject_tx=_opt(is_digest, "tx id of the event intervened on"),
            rationale_digest=_opt(is_digest, "hash of the rationale document"),
            summary=_opt(is_text, "short summary"),
        ),
        k.AUDIT_INCIDENT_REPORT: _audit(
            k.AUDIT_INCIDENT_REPORT,
            lambda p: ("model_name" in p) == ("model_version" in p),
            "model_name and model_version come together",
            incident_id=_f(is_id, "the incident"),
            severity=_f(one_of(k.INCIDENT_SEVERITIES), "low, medium, high or serious"),
            model_name=_opt(is_id, "model concerned"),
            model_version=_opt(is_positive_u32, "its version"),
            dataset_id=_opt(is_id, "dataset concerned"),
            description_digest=_opt(is_digest, "hash of the report"),
            summary=_opt(is_text, "short summary"),
            related_txs=_opt(list_of(is_digest, unique=True), "tx ids of related events"),
        ),
        k.AUDIT_FEDERATED_ROUND: _audit(
            k.AUDIT_FEDERATED_ROUND,
            _federated_lengths_match,
            "one update digest per participant; inputs need a purpose",
            run_id=_f(is_id, "the federated run"),
            round=_f(is_positive_u32, "round number"),
            participants=_f(
                list_of(is_id, min_items=1, max_items=PARTICIPANTS_MAX, unique=True),
                "organisations that contributed",
            ),
            update_digests=_f(
                list_of(is_digest, min_items=1, max_items=PARTICIPANTS_MAX),
                "their update digests, in order",
            ),
            aggregate_digest=_f(is_digest, "digest of the aggregated model"),
            model_name=_opt(is_id, "model trained"),
            purpose=_opt(_PURPOSE, "purpose the sender's inputs are used for"),
            inputs=_INPUTS,
        ),
    }
)
"""kind -> the schema its payload must match."""

assert SCHEMAS.keys() == k.KINDS.keys(), "every kind has a schema"

_ACCESS_SCHEMA: Final = SCHEMAS[k.AUDIT_DATA_ACCESS]
_ACCESS_GENERIC: Final = _ACCESS_SCHEMA.validate
_PURPOSE_SET: Final = frozenset(k.PURPOSES)
_ACCESS_TYPE_SET: Final = frozenset(k.ACCESS_TYPES)
_U32_END: Final = 2**32
_U64_MAX: Final = limits.TIMESTAMP_MS_MAX
assert (
    set(_ACCESS_SCHEMA.fields)
    == {"v", "dataset_id", "purpose", "access_type", "record_count", "run_id", "version"}
    | {"grant_id", "digest", "on_behalf_of", "event_time_ms", "producer"}
    and _ACCESS_SCHEMA.required == {"v", "dataset_id", "purpose"}
    and _ACCESS_SCHEMA.rule is None
), "audit.data_access's schema changed: change _validate_data_access with it"


def _validate_data_access(payload: Any) -> Result | None:
    """``SCHEMAS["audit.data_access"].validate``, written out for the hot path (most of
    the chain's traffic, judged on every replica): a payload whose every field is one
    the schema knows and passes its check is accepted here; any other goes to the
    schema's own ``validate``, which gives the verdict. The tests hold the two to the
    same answer on generated payloads (``tests/acl/test_schema.py``)."""
    if type(payload) is dict:
        get = payload.get
        v = get("v")
        ds = get("dataset_id")
        purpose = get("purpose")
        if (
            type(v) is int
            and v == SCHEMA_VERSION
            and type(ds) is str
            and ds in _IDS_SEEN
            and type(purpose) is str
            and purpose in _PURPOSE_SET
        ):
            n = 3
            x = get("access_type")
            if x is not None:
                if type(x) is not str or x not in _ACCESS_TYPE_SET:
                    return _ACCESS_GENERIC(payload)
                n += 1
            x = get("record_count")
            if x is not None:
                if type(x) is not int or not 0 <= x <= _U64_MAX:
                    return _ACCESS_GENERIC(payload)
                n += 1
            x = get("run_id")
            if x is not None:
                if type(x) is not str or x not in _IDS_SEEN:
                    return _ACCESS_GENERIC(payload)
                n += 1
            x = get("version")
            if x is not None:
                if type(x) is not int or not 0 < x < _U32_END:
                    return _ACCESS_GENERIC(payload)
                n += 1
            if n == len(payload):
                return None
            for name in ("grant_id", "digest"):
                x = get(name)
                if x is not None:
                    if type(x) is not bytes or len(x) != limits.HASH_BYTES:
                        return _ACCESS_GENERIC(payload)
                    n += 1
            x = get("on_behalf_of")
            if x is not None:
                if type(x) is not str or x not in _IDS_SEEN:
                    return _ACCESS_GENERIC(payload)
                n += 1
            if n == len(payload):
                return None
    return _ACCESS_GENERIC(payload)


VALIDATORS: Final[Mapping[str, Callable[[Any], Result | None]]] = MappingProxyType(
    {
        kind: _validate_data_access if kind == k.AUDIT_DATA_ACCESS else schema.validate
        for kind, schema in SCHEMAS.items()
    }
)
"""kind -> its payload check: ``SCHEMAS[kind].validate``, or a check written out for
the hot path that gives the same answers (``_validate_data_access``)."""


def validate(tx: Tx) -> Result | None:
    """None if the tx's payload is valid for its kind, else the rejection."""
    check = VALIDATORS.get(tx.kind)
    if check is None:
        return Result.UNKNOWN_KIND
    return check(tx.payload)


def describe() -> dict[str, Any]:
    """The schemas as plain data for docs, the RPC and the CLI."""
    return {
        kind: {
            "description": k.KINDS[kind],
            "version": schema.version,
            "fields": {
                name: {
                    "required": f.required,
                    "doc": f.doc
                    + (
                        f" ({f.check.__doc__})"
                        if f.check.__doc__ and f.check.__doc__.startswith("one of")
                        else ""
                    ),
                }
                for name, f in schema.fields.items()
            },
            "rule": schema.rule_doc,
        }
        for kind, schema in SCHEMAS.items()
    }
