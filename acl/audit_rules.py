"""The rules of audit events (``audit.*``) but runs: what was done with data and models.

The actor is the sender (organisation, identity, key epoch). Apps, stewards and admins
post events; auditors only oversight interventions and incident reports
(``kinds.AUDIT_ROLES``). Every dataset an event uses is matched against the grants in
force at the block time (owner organisation: always allowed); one unmatched use makes
the event ``no_grant``, recorded and indexed as a violation. Events that use no data
(model registration, deployment, oversight, incidents, inference without declared
inputs) are checked for authorisation and references only. Training runs and federated
rounds, which keep a run record across events, are in ``acl.run_rules``.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any, Final

from acl import keys as K
from acl import kinds as k
from acl.block_context import BlockContext, Handler, Principal
from acl.records import encode_event
from acl.results import Result


def check_actor(b: BlockContext, kind: str, p: Principal, payload: dict[str, Any]) -> Result | None:
    """Whether ``p``'s role may post ``kind`` and the organisation it acts on behalf of
    exists: the check every audit event starts with (None: it passes)."""
    if p.role not in k.AUDIT_ROLES[kind]:
        return Result.UNAUTHORIZED
    behalf = payload.get("on_behalf_of")
    if behalf is not None and b.load(K.ORG + K.org_key(behalf)) is None:
        return Result.NOT_FOUND
    return None


_ACCESS_ROLES: Final = k.AUDIT_ROLES[k.AUDIT_DATA_ACCESS]
_ACCESS_CODE: Final = k.KIND_CODES[k.AUDIT_DATA_ACCESS]


def record_data_access(b: BlockContext, p: Principal, payload: dict[str, Any]) -> Result:
    """The hot path (most of the chain's traffic): one dataset, one walk of the pair's
    grants, three or four writes, so it is written out rather than composed."""
    if p.role not in _ACCESS_ROLES:
        return Result.UNAUTHORIZED
    if "on_behalf_of" in payload and b.load(K.ORG + K.org_key(payload["on_behalf_of"])) is None:
        return Result.NOT_FOUND
    dataset_id = payload["dataset_id"]
    dk = K.dataset_key(dataset_id)
    ds = b.load(K.DATASET + dk)
    if ds is None:
        return Result.NOT_FOUND
    version = payload.get("version")
    if version is not None and version > ds["version_count"]:
        return Result.NOT_FOUND
    allowed, gid = b.match_grant(p, ds, dk, version, payload["purpose"], payload.get("grant_id"))
    result = Result.ACCEPTED if allowed else Result.NO_GRANT
    tx_id, ms = b.tx_id, b.ms
    at = K.position(b.height, b.index)
    pos = K.u64(ms) + at
    purpose = payload["purpose"]
    b.tally.append((_ACCESS_CODE, p.org_id, int(result), purpose, (dataset_id,), b.index, tx_id))
    put = b.ov.put_trusted
    put(
        K.LOG + pos,
        encode_event(
            _ACCESS_CODE,
            tx_id,
            p.actor_bytes,
            result,
            purpose,
            ((dataset_id, version, gid),),
            None,
            payload.get("on_behalf_of"),
            payload.get("run_id"),
        ),
    )
    if not allowed:
        put(K.VIOLATION + pos, b"")
    put(K.HISTORY + dk + at, K.MARK.pack(_ACCESS_CODE, result, ms, tx_id))
    return result


def _with_inputs(
    kind: str,
    subject: Callable[
        [BlockContext, Principal, dict[str, Any]],
        Result | tuple[list[Any] | None, tuple[str, int] | None],
    ],
) -> Handler:
    """An audit event with optional dataset inputs and a kind-specific subject check."""

    def handle(b: BlockContext, p: Principal, payload: dict[str, Any]) -> Result:
        problem = check_actor(b, kind, p, payload)
        if problem is not None:
            return problem
        checked = b.check_inputs(p, payload.get("inputs", ()), payload.get("purpose"))
        if isinstance(checked, Result):
            return checked
        found = subject(b, p, payload)
        if isinstance(found, Result):
            return found
        result, uses = checked
        subj, model = found
        b.log_event(kind, p, payload, result, uses, subj, model, _extra_datasets(payload))
        return result

    return handle


def _extra_datasets(payload: dict[str, Any]) -> list[str]:
    extra = []
    if "dataset_id" in payload:
        extra.append(payload["dataset_id"])
    if "output_dataset_id" in payload:
        extra.append(payload["output_dataset_id"])
    return extra


def _model_subject(
    b: BlockContext, p: Principal, payload: dict[str, Any]
) -> Result | tuple[list[Any] | None, tuple[str, int] | None]:
    name, version = payload.get("model_name"), payload.get("model_version")
    if name is None or version is None:
        return None, None
    if b.model(name, version) is None:
        return Result.NOT_FOUND
    return [name, version], (name, version)


def _incident_subject(
    b: BlockContext, p: Principal, payload: dict[str, Any]
) -> Result | tuple[list[Any] | None, tuple[str, int] | None]:
    if "dataset_id" in payload and b.dataset(payload["dataset_id"]) is None:
        return Result.NOT_FOUND
    return _model_subject(b, p, payload)


record_evaluation: Final = _with_inputs(k.AUDIT_EVALUATION, _model_subject)
record_deployment: Final = _with_inputs(k.AUDIT_DEPLOYMENT, _model_subject)
record_inference_batch: Final = _with_inputs(k.AUDIT_INFERENCE_BATCH, _model_subject)
record_oversight_intervention: Final = _with_inputs(k.AUDIT_OVERSIGHT_INTERVENTION, _model_subject)
record_incident_report: Final = _with_inputs(k.AUDIT_INCIDENT_REPORT, _incident_subject)


def record_derivation(b: BlockContext, p: Principal, payload: dict[str, Any]) -> Result:
    problem = check_actor(b, k.AUDIT_DATASET_DERIVATION, p, payload)
    if problem is not None:
        return problem
    checked = b.check_inputs(p, payload["inputs"], payload["purpose"])
    if isinstance(checked, Result):
        return checked
    output = payload.get("output_dataset_id")
    if output is not None:
        ds = b.dataset(output)
        if ds is None:
            return Result.NOT_FOUND
        if ds["owner_org"] != p.org_id:
            return Result.UNAUTHORIZED
    result, uses = checked
    b.log_event(
        k.AUDIT_DATASET_DERIVATION,
        p,
        payload,
        result,
        uses,
        [output, payload["output_digest"]],
        None,
        _extra_datasets(payload),
    )
    if output is not None:
        b.store(
            K.DERIVATION + K.dataset_key(output) + K.position(b.height, b.index),
            {
                "activity": payload["activity"],
                "inputs": uses,
                "output_digest": payload["output_digest"],
                "result": int(result),
                "tx_id": b.tx_id,
                "at_ms": b.ms,
            },
        )
    return result


def register_model(b: BlockContext, p: Principal, payload: dict[str, Any]) -> Result:
    problem = check_actor(b, k.AUDIT_MODEL_REGISTRATION, p, payload)
    if problem is not None:
        return problem
    name, version = payload["model_name"], payload["model_version"]
    owner_key = K.MODEL + K.model_version_key(name, 0)
    owner = b.load(owner_key)
    if owner is not None and owner["org_id"] != p.org_id:
        return Result.UNAUTHORIZED
    if b.model(name, version) is not None:
        return Result.ALREADY_EXISTS
    runs = payload.get("training_runs", [])
    for run_id in runs:
        if b.load(K.RUN + K.run_key(run_id)) is None:
            return Result.NOT_FOUND
    parents = payload.get("parent_models", [])
    for parent in parents:
        if b.model(parent["model_name"], parent["model_version"]) is None:
            return Result.NOT_FOUND
    if owner is None:
        b.store(owner_key, {"model_name": name, "org_id": p.org_id, "registered": b.position()})
    record = {
        "model_name": name,
        "model_version": version,
        "org_id": p.org_id,
        "registered_by": p.name,
        "weights_digest": payload["weights_digest"],
        "training_runs": runs,
        "parent_models": [[m["model_name"], m["model_version"]] for m in parents],
        "model_card_digest": payload.get("model_card_digest"),
        "registered": b.position(),
        "registered_ms": b.ms,
    }
    b.store(K.MODEL + K.model_version_key(name, version), record)
    b.log_event(
        k.AUDIT_MODEL_REGISTRATION,
        p,
        payload,
        Result.ACCEPTED,
        [],
        [name, version],
        (name, version),
    )
    return Result.ACCEPTED
