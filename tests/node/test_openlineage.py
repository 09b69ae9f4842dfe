"""OpenLineage accepted as it is (issue 16 §4): the real ``openlineage-python`` client,
configured the way its users configure it (``OPENLINEAGE_URL``, ``OPENLINEAGE_API_KEY``,
HttpTransport), posts RunEvents to a node of a real 3-node cluster, which signs them
with its organisation's app identity and commits them, checked against the grants."""

from __future__ import annotations

import datetime
import gzip
import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import attr
import httpx
import pytest
import requests
from openlineage.client import OpenLineageClient
from openlineage.client.event_v2 import InputDataset, Job, OutputDataset, Run, RunEvent, RunState
from openlineage.client.facet_v2 import RunFacet, job_type_job
from openlineage.client.serde import Serde
from openlineage.client.transport.http import ApiKeyTokenProvider, HttpConfig, HttpTransport

from acl import kinds as k
from acl import payloads as pl
from node.client import Client
from node.cluster.consortium import Manifest
from node.cluster.scenario import signer_for
from node.runtime.config import OpenLineageConfig
from tests.node.clusters import register_dataset, running_cluster

TOKEN = "s3cret-lineage-token"
DAY_MS = 86_400_000


@attr.define
class GrantchainRunFacet(RunFacet):
    """The custom run facet of docs/openlineage.md, declared as its users would."""

    kind: str | None = attr.field(default=None)
    activity: str | None = attr.field(default=None)
    purpose: str | None = attr.field(default=None)


@pytest.fixture(scope="module")
def cluster(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Manifest]:
    directory = tmp_path_factory.mktemp("openlineage")
    token_file = directory / "openlineage.token"
    token_file.write_text(TOKEN + "\n")
    # The consortium is created inside the directory given: orgs/org2/app.key is org2's app.
    root = directory / "c"
    ol = OpenLineageConfig(
        enabled=True, app_key=root / "orgs" / "org2" / "app.key", api_key_file=token_file
    )
    with running_cluster(root, node_config={"n2": {"openlineage": ol}}) as manifest:
        with Client([n.rpc_url for n in manifest.nodes]) as c:
            for name in ("notes", "secret"):
                register_dataset(c, manifest, "org1", name)
            register_dataset(c, manifest, "org2", "clean")
            now_ms = int(datetime.datetime.now(datetime.UTC).timestamp() * 1000)
            grant = signer_for(manifest, "org1", "admin").sign(
                k.GRANT_ISSUE,
                pl.grant_issue(
                    "org1/notes",
                    grantee_org="org2",
                    purposes=["training"],
                    valid_from_ms=now_ms - DAY_MS,
                    valid_until_ms=now_ms + DAY_MS,
                ),
            )
            assert c.submit([grant], wait=True)["results"][0]["result"] == "accepted"
        yield manifest


def n2(manifest: Manifest) -> str:
    return manifest.node("n2").rpc_url


def now() -> str:
    return datetime.datetime.now(datetime.UTC).isoformat()


def run_event(
    state: RunState,
    run_id: str,
    inputs: list[str],
    outputs: list[str] = (),  # type: ignore[assignment]
    *,
    job_type: str = "TRAINING",
    facet: GrantchainRunFacet | None = None,
    at: str | None = None,
) -> RunEvent:
    return RunEvent(
        eventType=state,
        eventTime=at or now(),
        run=Run(runId=run_id, facets={"grantchain": facet} if facet else None),
        job=Job(
            namespace="org2-ml",
            name="train-triage",
            facets={
                "jobType": job_type_job.JobTypeJobFacet(
                    processingType="BATCH", integration="PYTHON", jobType=job_type
                )
            },
        ),
        inputs=[InputDataset(namespace="grantchain", name=n) for n in inputs],
        outputs=[OutputDataset(namespace="grantchain", name=n) for n in outputs],
        producer="https://example.org/org2/pipeline",
    )


def transport(url: str, **config: Any) -> HttpTransport:
    return HttpTransport(HttpConfig(url=url, auth=ApiKeyTokenProvider({"apiKey": TOKEN}), **config))


def answer(resp: requests.Response) -> dict[str, Any]:
    assert resp.status_code == 200, resp.text
    doc: dict[str, Any] = resp.json()
    return doc


def committed(manifest: Manifest, tx_id: str) -> dict[str, Any]:
    r = httpx.get(f"{manifest.nodes[0].rpc_url}/v1/txs/{tx_id}", timeout=10)
    assert r.status_code == 200, r.text
    doc: dict[str, Any] = r.json()
    return doc


def test_the_client_configured_by_environment_records_a_training_run(
    cluster: Manifest, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("OPENLINEAGE_URL", n2(cluster))
    monkeypatch.setenv("OPENLINEAGE_API_KEY", TOKEN)
    client = OpenLineageClient()
    run_id = "0193f0a8-0000-7000-8000-000000000001"
    client.emit(run_event(RunState.START, run_id, ["org1/notes"]))
    client.emit(run_event(RunState.COMPLETE, run_id, ["org1/notes"]))
    report = httpx.get(f"{n2(cluster)}/metrics", timeout=10).text
    assert 'grantchain_openlineage_events_total{outcome="recorded"} 2.0' in report
    # Both events are on chain, from org2's app identity, as accepted.
    start = answer(transport(n2(cluster)).emit(run_event(RunState.START, run_id, ["org1/notes"])))
    (tx,) = start["txs"]
    assert tx["kind"] == k.AUDIT_TRAINING_RUN
    assert tx["result"] == "already_exists", "a second START of one run is not a new run"


def test_a_use_without_a_grant_is_committed_as_a_violation_and_answered_2xx(
    cluster: Manifest,
) -> None:
    run_id = "0193f0a8-0000-7000-8000-000000000002"
    doc = answer(transport(n2(cluster)).emit(run_event(RunState.START, run_id, ["org1/secret"])))
    (tx,) = doc["txs"]
    assert (tx["status"], tx["result"]) == ("committed", "no_grant")
    assert committed(cluster, tx["tx_id"])["result"] == "no_grant"
    violations = httpx.get(f"{n2(cluster)}/v1/violations", timeout=10).json()
    assert tx["tx_id"] in json.dumps(violations)


def test_a_retried_event_commits_once(cluster: Manifest) -> None:
    ev = run_event(RunState.START, "0193f0a8-0000-7000-8000-000000000003", ["org1/notes"])
    first = answer(transport(n2(cluster)).emit(ev))
    again = answer(transport(n2(cluster)).emit(ev))  # what the transport's retry sends
    assert first["txs"][0]["result"] == "accepted"
    assert again["txs"][0]["tx_id"] == first["txs"][0]["tx_id"]
    assert again["txs"][0]["height"] == first["txs"][0]["height"]


def test_a_data_job_becomes_a_derivation_and_gzip_is_taken(cluster: Manifest) -> None:
    ev = run_event(
        RunState.COMPLETE,
        "0193f0a8-0000-7000-8000-000000000004",
        ["org1/notes", "s3-bucket-not-on-chain"],
        ["org2/clean"],
        job_type="ETL",
        facet=GrantchainRunFacet(activity="cleaning"),
    )
    ev.inputs[1].namespace = "s3://org2-scratch"  # type: ignore[index]
    doc = answer(transport(n2(cluster), compression="gzip").emit(ev))
    (tx,) = doc["txs"]
    assert (tx["kind"], tx["result"]) == (k.AUDIT_DATASET_DERIVATION, "accepted")
    assert doc["unmapped"] == ["s3://org2-scratch/s3-bucket-not-on-chain"]


def test_the_token_is_required_and_another_node_is_not_enabled(cluster: Manifest) -> None:
    ev = run_event(RunState.START, "0193f0a8-0000-7000-8000-000000000005", ["org1/notes"])
    anonymous = HttpTransport(HttpConfig(url=n2(cluster)))
    with pytest.raises(requests.HTTPError) as info:
        anonymous.emit(ev)
    assert info.value.response.status_code == 401
    assert "Bearer" in info.value.response.json()["error"]
    with pytest.raises(requests.HTTPError) as info:
        transport(cluster.node("n1").rpc_url).emit(ev)
    assert info.value.response.status_code == 404
    assert "[openlineage] enabled" in info.value.response.json()["error"]


def _post(url: str, body: bytes, **headers: str) -> httpx.Response:
    return httpx.post(
        f"{url}/api/v1/lineage",
        content=body,
        headers={"Authorization": f"Bearer {TOKEN}", "Content-Type": "application/json", **headers},
        timeout=10,
    )


def test_bad_events_get_a_precise_error_and_the_node_keeps_recording(cluster: Manifest) -> None:
    url = n2(cluster)
    good = json.loads(
        Serde.to_json(
            run_event(RunState.START, "0193f0a8-0000-7000-8000-00000000000a", ["org1/notes"])
        )
    )
    old = {
        **good,
        "eventTime": (datetime.datetime.now(datetime.UTC) - datetime.timedelta(days=2)).isoformat(),
    }
    cases = [
        (b"{not json", 400, "not JSON"),
        (b"[]", 400, "must be an object"),
        (json.dumps({**good, "eventType": "DONE"}).encode(), 400, "eventType"),
        (json.dumps({**good, "inputs": []}).encode(), 400, "at least one input"),
        (b"[" * 100_000 + b"]" * 100_000, 400, "not JSON"),
        (json.dumps(old).encode(), 422, "last 24 h"),
    ]
    for body, status, needle in cases:
        r = _post(url, body)
        assert r.status_code == status, (body[:60], r.text)
        assert needle in r.json()["error"], r.text
    big = _post(url, b'{"x": "' + b"a" * (2 * 1024 * 1024) + b'"}')
    assert big.status_code == 413
    bomb = gzip.compress(b'{"x": "' + b"a" * (8 * 1024 * 1024) + b'"}')
    assert _post(url, bomb, **{"Content-Encoding": "gzip"}).status_code == 413
    r = _post(url, json.dumps(good).encode())
    assert r.status_code == 200 and r.json()["txs"][0]["result"] == "accepted", r.text


def test_the_mapping_is_documented(cluster: Manifest) -> None:
    doc = (Path(__file__).parents[2] / "docs" / "openlineage.md").read_text()
    for needle in (
        "OPENLINEAGE_URL",
        "grantchain",
        "audit.training_run",
        "audit.dataset_derivation",
    ):
        assert needle in doc
