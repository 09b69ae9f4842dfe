"""OpenLineage RunEvents as audit events: the pure mapping behind ``POST /api/v1/lineage``
(``node.api.lineage_route``). docs/openlineage.md is the user's version of these rules.

An event (OpenLineage spec 2-0-2, ``RunEvent``) is JSON: ``eventType``, ``eventTime``,
``run {runId, facets}``, ``job {namespace, name, facets}``, ``inputs`` and ``outputs``
(``{namespace, name, facets, inputFacets|outputFacets}``), ``producer``. What it becomes:

- **Which datasets.** A dataset is one of the chain's when its ``grantchain`` facet
  names it (``{"datasetId": .., "version"?, "grantId"?, "context"?, "digest"?}``, hex
  for the digests), or when its namespace is ``grantchain`` (then ``name`` is the
  dataset id). Any other dataset is not under the consortium's grants: it is left out
  and listed in the answer as ``unmapped``. The version, if no facet names it, is the
  standard ``version`` facet's ``datasetVersion`` when that is a positive integer.
- **Which kind.** A run is a *training run* when the run's ``grantchain`` facet says
  ``"kind": "training_run"`` or the job's standard ``jobType`` facet says
  ``TRAINING`` / ``FINE_TUNING``; otherwise it is a *derivation* (a data job), unless
  the run facet says ``"kind": "dataset_derivation"`` explicitly.
- **Training run**: every ``START``, ``RUNNING``, ``COMPLETE``, ``FAIL`` and ``ABORT``
  is one ``audit.training_run`` (``run_id`` = ``runId``, ``event_type`` = ``eventType``),
  its mapped inputs with ``context`` ``training`` unless a facet says otherwise.
- **Derivation**: only ``COMPLETE`` records anything, one ``audit.dataset_derivation``
  per output (``output_dataset_id`` when the output is mapped), from the mapped inputs
  that event carries (Spark, Airflow and dbt integrations repeat them on COMPLETE).
  ``output_digest`` is the output facet's ``digest``, or else SHA-256 of the output's
  name as ``namespace/name@datasetVersion``: the identity of the output, not of its
  content, and documented as such.
- **Purpose**: the run facet's ``purpose``, else ``fine_tuning`` for a FINE_TUNING job,
  else ``training``. The state machine checks it against the grants like any event:
  a use without a grant is recorded as a violation (``no_grant``), not refused here.
- **Digests**: ``code_digest`` is SHA-256 of the job's ``sourceCode.sourceCode``, else of
  ``sourceCodeLocation`` ``url@version``, else the run facet's ``codeDigest``;
  ``config_digest``, ``environment_digest`` and ``model_digest`` (COMPLETE) come from
  the run facet (hex); ``base_model`` from its ``baseModel {name, version}``.
- **Envelope**: ``event_time_ms`` from ``eventTime`` (ISO 8601 with a zone),
  ``producer`` from ``producer``.
- ``OTHER`` events, and a derivation's events before COMPLETE, record nothing; the
  answer says so.

Pure: no I/O, no clock. A violation of the spec's shape, or of the chain's limits, is a
``LineageError`` naming the field.
"""

from __future__ import annotations

import datetime
import hashlib
from dataclasses import dataclass, field
from typing import Any

from acl import kinds as k
from acl import payloads as pl
from acl.schema import LIST_ITEMS_MAX, TEXT_CHARS_MAX, is_id

FACET = "grantchain"
"""The name of the custom facet (run, job input or output) that carries chain fields."""
NAMESPACE = "grantchain"
"""Datasets in this OpenLineage namespace are named by their chain dataset id."""
OUTPUTS_MAX = 16
"""Derivations one event may record (one per output)."""
TRAINING_JOB_TYPES = {"TRAINING": "training", "FINE_TUNING": "fine_tuning"}
KINDS = ("training_run", "dataset_derivation")


class LineageError(ValueError):
    """The event is not one we can record; the message names the field and the rule."""


@dataclass(frozen=True, slots=True)
class PlannedTx:
    """One audit event to sign (at the plan's ``event_time_ms``)."""

    kind: str
    payload: dict[str, Any]


@dataclass(slots=True)
class Plan:
    event_time_ms: int
    txs: list[PlannedTx] = field(default_factory=list)
    unmapped: list[str] = field(default_factory=list)
    note: str | None = None


def _obj(value: Any, where: str, *, required: bool = True) -> dict[str, Any]:
    if value is None and not required:
        return {}
    if not isinstance(value, dict):
        raise LineageError(f"{where} must be an object")
    return value


def _str(doc: dict[str, Any], key: str, where: str) -> str:
    value = doc.get(key)
    if not isinstance(value, str) or not value:
        raise LineageError(f"{where}.{key} must be a non-empty string")
    return value


def _hex32(value: Any, where: str) -> bytes:
    if not isinstance(value, str):
        raise LineageError(f"{where} must be 64 hex characters (a SHA-256)")
    try:
        raw = bytes.fromhex(value)
    except ValueError:
        raise LineageError(f"{where} must be 64 hex characters (a SHA-256)") from None
    if len(raw) != 32:
        raise LineageError(f"{where} must be 64 hex characters (a SHA-256)")
    return raw


def _sha256(text: str) -> bytes:
    return hashlib.sha256(text.encode()).digest()


def event_time_ms(value: Any) -> int:
    """``eventTime`` (ISO 8601 with an offset, as the spec requires) in unix ms."""
    if not isinstance(value, str) or len(value) > 64:
        raise LineageError("eventTime must be an ISO 8601 date-time string")
    try:
        t = datetime.datetime.fromisoformat(value)
    except ValueError:
        raise LineageError(f"eventTime {value!r} is not an ISO 8601 date-time") from None
    if t.tzinfo is None:
        raise LineageError(f"eventTime {value!r} has no time zone offset (the spec needs one)")
    ms = (t - datetime.datetime(1970, 1, 1, tzinfo=datetime.UTC)) // datetime.timedelta(
        milliseconds=1
    )
    if ms < 0:
        raise LineageError(f"eventTime {value!r} is before 1970")
    return ms


@dataclass(frozen=True, slots=True)
class _Dataset:
    label: str
    ref: dict[str, Any] | None
    """The chain's ``dataset_ref``, or None for a dataset the chain does not know."""
    version_text: str | None
    digest: bytes | None


def _dataset(doc: Any, where: str, io_facets: str, context: str) -> _Dataset:
    d = _obj(doc, where)
    namespace, name = _str(d, "namespace", where), _str(d, "name", where)
    facets = _obj(d.get("facets"), f"{where}.facets", required=False)
    own = {
        **_obj(facets.get(FACET), f"{where}.facets.{FACET}", required=False),
        **_obj(
            _obj(d.get(io_facets), f"{where}.{io_facets}", required=False).get(FACET),
            f"{where}.{io_facets}.{FACET}",
            required=False,
        ),
    }
    version_facet = _obj(facets.get("version"), f"{where}.facets.version", required=False)
    version_text = version_facet.get("datasetVersion")
    if not isinstance(version_text, str):
        version_text = None
    digest = _hex32(own["digest"], f"{where} {FACET}.digest") if "digest" in own else None
    label = f"{namespace}/{name}"
    dataset_id = own.get("datasetId")
    if dataset_id is None and namespace == NAMESPACE:
        dataset_id = name
    if dataset_id is None:
        return _Dataset(label, None, version_text, digest)
    if not is_id(dataset_id):
        raise LineageError(f"{where}: {dataset_id!r} is not a dataset id")
    version = own.get("version")
    if version is None and version_text is not None and version_text.isdigit():
        version = int(version_text)
    if version is not None and (type(version) is not int or not 0 < version < 2**32):
        raise LineageError(f"{where}: version must be a positive integer")
    grant_id = own.get("grantId")
    ref = pl.dataset_ref(
        dataset_id,
        version=version,
        grant_id=_hex32(grant_id, f"{where} {FACET}.grantId") if grant_id is not None else None,
        context=own.get("context", context),
        digest=digest,
    )
    return _Dataset(label, ref, version_text, digest)


def _datasets(event: dict[str, Any], key: str, io_facets: str, context: str) -> list[_Dataset]:
    items = event.get(key, [])
    if not isinstance(items, list):
        raise LineageError(f"{key} must be an array")
    if len(items) > LIST_ITEMS_MAX:
        raise LineageError(f"{len(items)} {key}, the chain takes at most {LIST_ITEMS_MAX}")
    return [_dataset(d, f"{key}[{i}]", io_facets, context) for i, d in enumerate(items)]


def _code_digest(job_facets: dict[str, Any], run_facet: dict[str, Any]) -> bytes | None:
    source = job_facets.get("sourceCode")
    if isinstance(source, dict) and isinstance(source.get("sourceCode"), str):
        return _sha256(source["sourceCode"])
    location = job_facets.get("sourceCodeLocation")
    if isinstance(location, dict) and isinstance(location.get("url"), str):
        return _sha256(f"{location['url']}@{location.get('version', '')}")
    if "codeDigest" in run_facet:
        return _hex32(run_facet["codeDigest"], f"run.facets.{FACET}.codeDigest")
    return None


def plan(event: Any) -> Plan:
    """The audit events one OpenLineage RunEvent becomes (see the module docstring)."""
    ev = _obj(event, "the event")
    event_type = ev.get("eventType")
    when = event_time_ms(ev.get("eventTime"))
    run = _obj(ev.get("run"), "run")
    run_id = _str(run, "runId", "run")
    if not is_id(run_id):
        raise LineageError(f"run.runId {run_id[:80]!r} is not an id (a UUID is)")
    job = _obj(ev.get("job"), "job")
    _str(job, "namespace", "job")
    _str(job, "name", "job")
    job_facets = _obj(job.get("facets"), "job.facets", required=False)
    run_facet = _obj(
        _obj(run.get("facets"), "run.facets", required=False).get(FACET),
        f"run.facets.{FACET}",
        required=False,
    )
    producer = ev.get("producer")
    if producer is not None and (not isinstance(producer, str) or len(producer) > TEXT_CHARS_MAX):
        raise LineageError(f"producer must be a URI string of at most {TEXT_CHARS_MAX} chars")
    job_type = _obj(job_facets.get("jobType"), "job.facets.jobType", required=False).get("jobType")
    job_type = job_type.upper() if isinstance(job_type, str) else None
    kind = run_facet.get("kind")
    if kind is None:
        kind = "training_run" if job_type in TRAINING_JOB_TYPES else "dataset_derivation"
    if kind not in KINDS:
        raise LineageError(f"run.facets.{FACET}.kind must be one of {', '.join(KINDS)}")
    purpose = run_facet.get("purpose", TRAINING_JOB_TYPES.get(job_type or "", "training"))
    if purpose not in k.PURPOSES:
        raise LineageError(f"purpose {purpose!r} is not one of {', '.join(k.PURPOSES)}")
    out = Plan(when)
    if event_type == "OTHER":
        out.note = "an OTHER event records nothing on chain"
        return out
    if event_type not in k.RUN_EVENT_TYPES:
        raise LineageError(f"eventType must be one of {', '.join((*k.RUN_EVENT_TYPES, 'OTHER'))}")
    context = "training" if kind == "training_run" else "input"
    inputs = _datasets(ev, "inputs", "inputFacets", context)
    outputs = _datasets(ev, "outputs", "outputFacets", "input")
    out.unmapped = [d.label for d in (*inputs, *outputs) if d.ref is None]
    refs = [d.ref for d in inputs if d.ref is not None]
    envelope = {"run_id": run_id, "event_time_ms": when, "producer": producer}
    try:
        if kind == "training_run":
            out.txs.append(
                _training_run(run_facet, job_facets, envelope, event_type, purpose, refs)
            )
        elif event_type != "COMPLETE":
            out.note = "a data job is recorded when its run is COMPLETE"
        else:
            out.txs += _derivations(run_facet, job_facets, envelope, purpose, refs, outputs)
    except pl.PayloadError as exc:
        raise LineageError(f"the event does not make a valid audit event: {exc}") from None
    return out


def _training_run(
    run_facet: dict[str, Any],
    job_facets: dict[str, Any],
    envelope: dict[str, Any],
    event_type: str,
    purpose: str,
    refs: list[dict[str, Any]],
) -> PlannedTx:
    if event_type == "START" and not refs:
        raise LineageError(
            "the START of a training run needs at least one input dataset the chain knows "
            f"(a '{FACET}' facet with datasetId, or the '{NAMESPACE}' namespace)"
        )
    digests = {
        name: _hex32(run_facet[key], f"run.facets.{FACET}.{key}")
        for name, key in (
            ("config_digest", "configDigest"),
            ("environment_digest", "environmentDigest"),
            ("model_digest", "modelDigest"),
        )
        if key in run_facet
    }
    base = run_facet.get("baseModel")
    base_model = None
    if base is not None:
        b = _obj(base, f"run.facets.{FACET}.baseModel")
        base_model = {"model_name": b.get("name"), "model_version": b.get("version")}
    payload = pl.build(
        k.AUDIT_TRAINING_RUN,
        **envelope,
        event_type=event_type,
        purpose=purpose,
        inputs=refs or None,
        code_digest=_code_digest(job_facets, run_facet),
        base_model=base_model,
        **digests,
    )
    return PlannedTx(k.AUDIT_TRAINING_RUN, payload)


def _derivations(
    run_facet: dict[str, Any],
    job_facets: dict[str, Any],
    envelope: dict[str, Any],
    purpose: str,
    refs: list[dict[str, Any]],
    outputs: list[_Dataset],
) -> list[PlannedTx]:
    if not outputs:
        return []
    if not refs:
        raise LineageError(
            "a COMPLETE data job needs its input datasets on the COMPLETE event, at least "
            f"one the chain knows (a '{FACET}' facet with datasetId, or the '{NAMESPACE}' "
            "namespace)"
        )
    if len(outputs) > OUTPUTS_MAX:
        raise LineageError(f"{len(outputs)} outputs, one event may record {OUTPUTS_MAX}")
    activity = run_facet.get("activity", "transformation")
    if activity not in k.DERIVATION_ACTIVITIES:
        raise LineageError(
            f"run.facets.{FACET}.activity must be one of {', '.join(k.DERIVATION_ACTIVITIES)}"
        )
    code = _code_digest(job_facets, run_facet)
    planned = []
    for d in outputs:
        digest = d.digest or _sha256(f"{d.label}@{d.version_text or ''}")
        payload = pl.build(
            k.AUDIT_DATASET_DERIVATION,
            **envelope,
            activity=activity,
            purpose=purpose,
            inputs=refs,
            output_digest=digest,
            output_dataset_id=d.ref["dataset_id"] if d.ref is not None else None,
            code_digest=code,
        )
        planned.append(PlannedTx(k.AUDIT_DATASET_DERIVATION, payload))
    return planned
