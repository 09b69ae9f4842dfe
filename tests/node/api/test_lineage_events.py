"""The OpenLineage mapping (issue 16 §4) as a pure function: events built with the real
``openlineage-python`` classes and serialised with its own ``Serde``, as the
HttpTransport sends them, and the audit events they become (docs/openlineage.md)."""

from __future__ import annotations

import hashlib
import json
from typing import Any

import pytest
from openlineage.client.event_v2 import InputDataset, Job, OutputDataset, Run, RunEvent, RunState
from openlineage.client.facet_v2 import job_type_job, source_code_job
from openlineage.client.serde import Serde

from acl import kinds as k
from node.api.lineage_events import LineageError, plan
from node.api.lineage_route import tx_nonce

RUN_ID = "0193f0a8-7c2b-7d2e-9a55-2c4c7f1e7a01"
TIME = "2026-12-04T10:00:00.250+01:00"
TIME_MS = 1_796_374_800_250


def chain_ds(name: str, **facet: Any) -> dict[str, Any]:
    return {
        "namespace": "grantchain",
        "name": name,
        "facets": {"grantchain": facet} if facet else {},
    }


def event(
    state: RunState,
    *,
    job_type: str | None = "TRAINING",
    inputs: list[Any] = (),  # type: ignore[assignment]
    outputs: list[Any] = (),  # type: ignore[assignment]
    run_facet: dict[str, Any] | None = None,
    source: str | None = None,
) -> dict[str, Any]:
    """A RunEvent as openlineage-python serialises it, with our facet merged in."""
    job_facets: dict[str, Any] = {}
    if job_type is not None:
        job_facets["jobType"] = job_type_job.JobTypeJobFacet(
            processingType="BATCH", integration="PYTHON", jobType=job_type
        )
    if source is not None:
        job_facets["sourceCode"] = source_code_job.SourceCodeJobFacet(
            language="python", sourceCode=source
        )
    ev = RunEvent(
        eventType=state,
        eventTime=TIME,
        run=Run(runId=RUN_ID),
        job=Job(namespace="acme-ml", name="train-classifier", facets=job_facets),
        inputs=[InputDataset(namespace=d["namespace"], name=d["name"]) for d in inputs],
        outputs=[OutputDataset(namespace=d["namespace"], name=d["name"]) for d in outputs],
        producer="https://github.com/OpenLineage/OpenLineage/tree/1.54.0/client/python",
    )
    doc: dict[str, Any] = json.loads(Serde.to_json(ev))
    for key, given in (("inputs", inputs), ("outputs", outputs)):
        for d, g in zip(doc[key], given, strict=True):
            if g.get("facets"):
                d.setdefault("facets", {}).update(g["facets"])
    if run_facet is not None:
        doc["run"].setdefault("facets", {})["grantchain"] = run_facet
    return doc


def test_a_training_start_becomes_a_training_run_with_its_chain_datasets() -> None:
    grant = "ab" * 32
    doc = event(
        RunState.START,
        inputs=[
            chain_ds("org1/clinical-notes", grantId=grant),
            {"namespace": "s3://public", "name": "wiki-dump"},
        ],
        source="def train(): ...",
    )
    p = plan(doc)
    assert p.event_time_ms == TIME_MS
    assert p.unmapped == ["s3://public/wiki-dump"]
    (tx,) = p.txs
    assert tx.kind == k.AUDIT_TRAINING_RUN
    assert tx.payload["run_id"] == RUN_ID
    assert tx.payload["event_type"] == "START"
    assert tx.payload["purpose"] == "training"
    assert tx.payload["inputs"] == [
        {
            "dataset_id": "org1/clinical-notes",
            "grant_id": bytes.fromhex(grant),
            "context": "training",
        }
    ]
    assert tx.payload["code_digest"] == hashlib.sha256(b"def train(): ...").digest()
    assert tx.payload["event_time_ms"] == TIME_MS
    assert tx.payload["producer"].startswith("https://github.com/OpenLineage")


def test_complete_and_fail_continue_the_run_and_carry_the_run_facet_digests() -> None:
    model = "cd" * 32
    done = plan(event(RunState.COMPLETE, run_facet={"modelDigest": model}))
    (tx,) = done.txs
    assert (tx.payload["event_type"], tx.payload["model_digest"]) == (
        "COMPLETE",
        bytes.fromhex(model),
    )
    assert "inputs" not in tx.payload
    assert plan(event(RunState.FAIL)).txs[0].payload["event_type"] == "FAIL"


def test_a_fine_tuning_job_names_its_purpose_and_base_model() -> None:
    doc = event(
        RunState.START,
        job_type="FINE_TUNING",
        inputs=[chain_ds("org1/notes", version=2)],
        run_facet={"baseModel": {"name": "triage", "version": 1}},
    )
    payload = plan(doc).txs[0].payload
    assert payload["purpose"] == "fine_tuning"
    assert payload["base_model"] == {"model_name": "triage", "model_version": 1}
    assert payload["inputs"][0]["version"] == 2


def test_a_data_job_records_one_derivation_per_output_on_complete_only() -> None:
    inputs = [chain_ds("org1/raw")]
    outputs = [chain_ds("org2/clean"), {"namespace": "s3://scratch", "name": "tmp"}]
    start = plan(event(RunState.START, job_type=None, inputs=inputs, outputs=outputs))
    assert start.txs == [] and start.note is not None
    p = plan(
        event(
            RunState.COMPLETE,
            job_type="ETL",
            inputs=inputs,
            outputs=outputs,
            run_facet={"activity": "cleaning"},
        )
    )
    assert [t.kind for t in p.txs] == [k.AUDIT_DATASET_DERIVATION] * 2
    first, second = (t.payload for t in p.txs)
    assert first["output_dataset_id"] == "org2/clean"
    assert "output_dataset_id" not in second
    assert first["activity"] == "cleaning" and first["inputs"][0]["context"] == "input"
    assert second["output_digest"] == hashlib.sha256(b"s3://scratch/tmp@").digest()


def test_other_events_record_nothing() -> None:
    p = plan(event(RunState.OTHER))
    assert p.txs == [] and "OTHER" in str(p.note)


@pytest.mark.parametrize(
    ("change", "needle"),
    [
        (lambda d: d.pop("eventTime"), "eventTime"),
        (lambda d: d.update(eventTime="2026-12-04T10:00:00"), "time zone"),
        (lambda d: d.update(eventTime="yesterday"), "not an ISO 8601"),
        (lambda d: d.update(eventType="DONE"), "eventType must be one of"),
        (lambda d: d["run"].update(runId="has spaces"), "not an id"),
        (lambda d: d.pop("job"), "job must be an object"),
        (lambda d: d.update(inputs={}), "inputs must be an array"),
        (lambda d: d.update(inputs=[{"namespace": "grantchain"}]), "inputs[0].name"),
        (lambda d: d.update(inputs=[chain_ds("x", grantId="zz")]), "grantId must be 64 hex"),
        (lambda d: d.update(inputs=[chain_ds("-bad")]), "not a dataset id"),
        (lambda d: d.update(inputs=[chain_ds("x")] * 65), "at most 64"),
        (lambda d: d["run"].update(facets={"grantchain": {"purpose": "fun"}}), "purpose"),
        (lambda d: d["run"].update(facets={"grantchain": {"kind": "x"}}), "kind must be"),
        (lambda d: d.update(inputs=[]), "needs at least one input"),
        (lambda d: d.update(producer=7), "producer"),
    ],
)
def test_bad_events_are_refused_with_the_field_named(change: Any, needle: str) -> None:
    doc = event(RunState.START, inputs=[chain_ds("org1/ds")])
    change(doc)
    with pytest.raises(LineageError) as info:
        plan(doc)
    assert needle in str(info.value)


def test_not_an_object_is_refused() -> None:
    for value in ([], "x", None, 3):
        with pytest.raises(LineageError, match="must be an object"):
            plan(value)


def test_the_same_event_gets_the_same_nonces_and_another_event_others() -> None:
    a = event(RunState.START, inputs=[chain_ds("org1/ds")])
    b = json.loads(json.dumps(a, sort_keys=False))
    assert tx_nonce(a, 0) == tx_nonce(b, 0) != tx_nonce(a, 1)
    assert tx_nonce(a, 0) != tx_nonce(event(RunState.COMPLETE), 0)
    assert 0 <= tx_nonce(a, 0) < 2**63
