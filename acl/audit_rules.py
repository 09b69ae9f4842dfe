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
_MARKER: Final = b"\xa5" * 32
_ACCESS_HEAD: Final = (lambda raw: raw[: raw.index(_MARKER)])(
    encode_event(_ACCESS_CODE, _MARKER, b"", 0, None, (), None, None, None)
)
"""What every access event record starts with: the array header, the kind code and the
tx id's bin header (the 32-byte id follows, then ``_access_tail``)."""
_ACCESS_TAIL_AT: Final = len(_ACCESS_HEAD) + 32
_ACCESS_TAILS: Final[dict[tuple[Any, ...], bytes]] = {}
"""The end of an access event's record (all but its head and tx id), by what it is made
of: a pure function of the key, so a cache (emptied at ``_ACCESS_TAILS_MAX``)."""
_ACCESS_TAILS_MAX: Final = 1 << 12
_ACCEPTED: Final = Result.ACCEPTED
_NO_GRANT: Final = Result.NO_GRANT
_ACCEPTED_CODE: Final = int(Result.ACCEPTED)
_NO_GRANT_CODE: Final = int(Result.NO_GRANT)
_POS: Final = K.POSITION.pack
_U64: Final = K.U64.pack
_MARK: Final = K.MARK.pack
_LOG: Final = K.LOG
_VIOLATION: Final = K.VIOLATION
_HISTORY: Final = K.HISTORY
_DATASET: Final = K.DATASET
_dataset_key: Final = K.dataset_key


def _access_tail(key: tuple[Any, ...]) -> bytes:
    actor, allowed, purpose, dataset_id, version, gid, on_behalf_of, run_id = key
    record = encode_event(
        _ACCESS_CODE,
        bytes(32),
        actor,
        _ACCEPTED if allowed else _NO_GRANT,
        purpose,
        ((dataset_id, version, gid),),
        None,
        on_behalf_of,
        run_id,
    )
    if len(_ACCESS_TAILS) >= _ACCESS_TAILS_MAX:
        _ACCESS_TAILS.clear()
    tail = _ACCESS_TAILS[key] = record[_ACCESS_TAIL_AT:]
    return tail


def record_data_access(b: BlockContext, p: Principal, payload: dict[str, Any]) -> Result:
    """The hot path (most of the chain's traffic, judged on every replica): one dataset,
    one walk of the pair's grants, three or four writes, so it is written out rather
    than composed. The event record is ``encode_event``'s, byte for byte (the tests
    compare the two), with its end cached by what it holds."""
    if p.role not in _ACCESS_ROLES:
        return Result.UNAUTHORIZED
    get = payload.get
    on_behalf_of = get("on_behalf_of")
    if on_behalf_of is not None and b.load(K.ORG + K.org_key(on_behalf_of)) is None:
        return Result.NOT_FOUND
    dataset_id = payload["dataset_id"]
    dk = _dataset_key(dataset_id)
    ds = b.load(_DATASET + dk)
    if ds is None:
        return Result.NOT_FOUND
    version = get("version")
    if version is not None and version > ds["version_count"]:
        return Result.NOT_FOUND
    purpose = payload["purpose"]
    allowed, gid = b.match_grant(p, ds, dk, version, purpose, get("grant_id"))
    tx_id, ms, index = b.tx_id, b.ms, b.index
    at = _POS(b.height, index)
    pos = _U64(ms) + at
    actor = p.actor_bytes
    key = (actor, allowed, purpose, dataset_id, version, gid, on_behalf_of, get("run_id"))
    tail = _ACCESS_TAILS.get(key)
    if tail is None:
        tail = _access_tail(key)
    put = b.ov.put_trusted
    put(_LOG + pos, _ACCESS_HEAD + tx_id + tail)
    if allowed:
        b.tally.append(
            (_ACCESS_CODE, p.org_id, _ACCEPTED_CODE, purpose, (dataset_id,), index, tx_id)
        )
        put(_HISTORY + dk + at, _MARK(_ACCESS_CODE, _ACCEPTED_CODE, ms, tx_id))
        return _ACCEPTED
    b.tally.append((_ACCESS_CODE, p.org_id, _NO_GRANT_CODE, purpose, (dataset_id,), index, tx_id))
    put(_VIOLATION + pos, b"")
    put(_HISTORY + dk + at, _MARK(_ACCESS_CODE, _NO_GRANT_CODE, ms, tx_id))
    return _NO_GRANT


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
