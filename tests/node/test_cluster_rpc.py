"""A real 3-node cluster over its RPC, as apps and auditors use it: the audit story,
receipts verified offline, the queries, proofs, metrics, and bad requests of every kind
answered with a precise 4xx while the node keeps serving."""

from __future__ import annotations

import asyncio
import base64
import contextlib
import json
import socket
import ssl
import time
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from acl import kinds as k
from acl import payloads as pl
from chain import codec, merkle, signing
from chain.genesis import Genesis
from chain.receipt import Receipt, verify_receipt
from chain.tx import sign_tx
from node.client import AsyncClient, Client, RpcError, TxSigner
from node.cluster.consortium import Manifest
from node.cluster.scenario import StoryRun, run_story, signer_for
from tests.conftest import grantchain
from tests.node.clusters import register_dataset, running_cluster, wait_converged


@pytest.fixture(scope="module")
def cluster(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Manifest]:
    with running_cluster(tmp_path_factory.mktemp("rpc")) as manifest:
        yield manifest


@pytest.fixture(scope="module")
def story(cluster: Manifest) -> StoryRun:
    with Client([n.rpc_url for n in reversed(cluster.nodes)]) as client:
        return run_story(cluster, client, say=lambda _: None)


def genesis(manifest: Manifest) -> Genesis:
    return Genesis.from_json(manifest.genesis.read_text())


def test_status_names_role_leader_and_head(cluster: Manifest, story: StoryRun) -> None:
    docs = [httpx.get(n.rpc_url + "/v1/status").json() for n in cluster.nodes]
    assert sorted(d["role"] for d in docs) == ["follower", "follower", "leader"]
    assert len({d["leader"] for d in docs}) == 1
    for d in docs:
        assert {"node_id", "role", "leader", "term", "height", "head_hash"} <= d.keys()


def test_the_story_is_recorded_with_its_results(story: StoryRun) -> None:
    results = {name: doc["result"] for name, doc in story.steps}
    assert results["bias evaluation on the data (not granted)"] == "no_grant"
    assert results["training run 2 after revocation"] == "no_grant"
    assert all(
        r == "accepted"
        for n, r in results.items()
        if "not granted" not in n and "after revocation" not in n
    )


def test_receipts_verify_offline_and_tx_lookup_agrees(cluster: Manifest, story: StoryRun) -> None:
    g = genesis(cluster)
    for name, doc in story.steps:
        check = verify_receipt(Receipt.from_json(doc["receipt"]), g)
        assert check.height == doc["height"], name
        for n in cluster.nodes:  # every node serves the same tx, with its receipt
            got = httpx.get(f"{n.rpc_url}/v1/txs/{doc['tx_id']}").json()
            assert (got["height"], got["position"], got["result"]) == (
                doc["height"],
                doc["position"],
                doc["result"],
            )
            assert got["receipt"]["header_hash"] == doc["receipt"]["header_hash"]


def test_queries_answer_the_audit_story(cluster: Manifest, story: StoryRun) -> None:
    url = cluster.nodes[0].rpc_url
    orgs = sorted({n.org_id for n in cluster.nodes})
    report = httpx.get(url + "/v1/audit/report", params={"from_ms": 0}).json()
    assert report["by_result"] == {"accepted": 7, "no_grant": 2}
    violations = httpx.get(url + "/v1/violations", params={"from_ms": 0}).json()
    assert len(json.dumps(violations)) > 0 and "no_grant" in json.dumps(violations)
    grants = httpx.get(url + "/v1/grants", params={"dataset": story.dataset_id}).json()
    assert story.grant_id in json.dumps(grants)
    lineage = httpx.get(f"{url}/v1/models/{story.model_name}/1/lineage").json()
    assert story.dataset_id in json.dumps(lineage)
    history = httpx.get(f"{url}/v1/datasets/{story.dataset_id}/history").json()
    assert story.grant_id in json.dumps(history)
    access = httpx.get(
        url + "/v1/access",
        params={"org": orgs[1], "dataset": story.dataset_id, "purpose": "training"},
    ).json()
    assert access["allowed"] is False  # the grant was revoked


def test_consistency_proof_between_two_sizes(cluster: Manifest, story: StoryRun) -> None:
    url = cluster.nodes[1].rpc_url
    doc = httpx.get(url + "/v1/proofs/consistency", params={"from": 3}).json()
    merkle.verify_consistency(
        doc["from"],
        doc["to"],
        [bytes.fromhex(p) for p in doc["proof"]],
        bytes.fromhex(doc["root_from"]),
        bytes.fromhex(doc["root_to"]),
    )
    block = httpx.get(url + f"/v1/blocks/{story.steps[-1][1]['height']}").json()
    assert block["header"]["log_root"] == doc["root_to"] or block["header"]["log_size"] != doc["to"]


def test_metrics_and_openapi(cluster: Manifest, story: StoryRun) -> None:
    url = cluster.nodes[0].rpc_url
    text = httpx.get(url + "/metrics").text
    assert "grantchain_height" in text and "grantchain_blocks_applied_total" in text
    assert 'python_gc_collections_total{generation="2"}' in text  # see node.runtime.gc_policy
    spec = httpx.get(url + "/openapi.json").json()
    assert spec["openapi"].startswith("3.")
    for path in (
        "/v1/status",
        "/v1/txs",
        "/v1/txs/{tx_id}",
        "/v1/blocks/{height}",
        "/v1/proofs/consistency",
        "/metrics",
    ):
        assert path in spec["paths"]


@pytest.mark.parametrize(
    ("kwargs", "status", "problem"),
    [
        (
            {"content": b"{not json", "headers": {"content-type": "application/json"}},
            400,
            "not JSON",
        ),
        ({"json": {"tx": "!!!"}}, 400, "base64"),
        ({"json": {"tx": "AA==", "txs": []}}, 400, "exactly one"),
        ({"json": {"txs": []}}, 400, "no txs"),
        ({"json": {"txs": [base64.b64encode(b"x" * 70_000).decode()]}}, 400, "over the limit"),
        (
            {"content": b"<xml/>", "headers": {"content-type": "application/xml"}},
            415,
            "content type",
        ),
        ({"content": b"\xc1", "headers": {"content-type": "application/msgpack"}}, 400, "msgpack"),
        (
            {"content": b"x" * (33 * 1024 * 1024), "headers": {"content-type": "application/json"}},
            413,
            "body",
        ),
    ],
)
def test_bad_submissions_get_a_precise_4xx(
    cluster: Manifest, kwargs: dict, status: int, problem: str
) -> None:
    r = httpx.post(cluster.nodes[0].rpc_url + "/v1/txs", timeout=30, **kwargs)
    assert r.status_code == status, r.text
    assert problem in r.json()["error"]


def test_bad_txs_are_rejected_with_reasons(cluster: Manifest, story: StoryRun) -> None:
    app = signer_for(cluster, sorted({n.org_id for n in cluster.nodes})[1], "app")
    good = app.sign(k.AUDIT_DATA_ACCESS, pl.data_access(story.dataset_id, purpose="training"))
    fields = codec.decode(good.to_bytes())
    fields[7] = bytes(64)
    forged = codec.encode(fields)
    stranger = sign_tx(
        signing.generate_private_key(),
        chain_id=cluster.chain_id,
        kind=k.AUDIT_DATA_ACCESS,
        nonce=1,
        timestamp_ms=time.time_ns() // 1_000_000,
        payload=pl.data_access(story.dataset_id, purpose="training"),
    )
    other_chain = sign_tx(
        app.key,
        chain_id="another-chain",
        kind="x",
        nonce=1,
        timestamp_ms=time.time_ns() // 1_000_000,
        payload={},
    )
    with Client(cluster.nodes[0].rpc_url) as c:
        stale = app.sign(
            k.AUDIT_DATA_ACCESS,
            pl.data_access(story.dataset_id, purpose="training"),
            timestamp_ms=1,
        )
        res = c.submit([forged, stranger, other_chain, b"\x93\x01\x02\x03", stale])["results"]
    assert [r["status"] for r in res] == ["rejected"] * 5
    assert "stale" in res[4]["error"]
    assert "bad_signature" in res[0]["error"]
    assert "unknown_sender" in res[1]["error"]
    assert "chain" in res[2]["error"]
    assert "invalid tx" in res[3]["error"]


def test_lookups_of_unknown_things(cluster: Manifest) -> None:
    url = cluster.nodes[2].rpc_url
    assert httpx.get(url + "/v1/txs/" + "00" * 32).status_code == 404
    r = httpx.get(url + "/v1/txs/xyz")
    assert r.status_code == 400 and "hex" in r.json()["error"]
    assert httpx.get(url + "/v1/blocks/999999").status_code == 404
    r = httpx.get(url + "/v1/nope")
    assert r.status_code == 404 and "openapi" in r.json()["error"]
    r = httpx.get(url + "/v1/proofs/consistency", params={"from": "x"})
    assert r.status_code == 400
    r = httpx.get(
        url + "/v1/access", params={"org": "o", "dataset": "d", "purpose": "p", "version": "two"}
    )
    assert r.status_code == 400 and "version" in r.json()["error"]
    assert httpx.get(url + "/v1/datasets/no-such-dataset").status_code == 404


def test_garbage_on_the_peer_port_does_not_hurt_the_node(
    cluster: Manifest, story: StoryRun
) -> None:
    victim = cluster.nodes[0]
    # A client without a consortium certificate: the TLS handshake fails.
    with socket.create_connection((victim.peer_host, victim.peer_port), timeout=5) as raw:
        raw.sendall(b"\x00\x00\x00\x05hello" * 100)
    # A peer with a valid certificate that sends an oversize frame and then garbage.
    peer_dir = Path(cluster.nodes[1].config).parent
    ctx = ssl.create_default_context(ssl.Purpose.SERVER_AUTH, cafile=str(cluster.ca_cert))
    ctx.check_hostname = False
    ctx.load_cert_chain(str(peer_dir / "tls.crt"), str(peer_dir / "tls.key"))
    with (
        socket.create_connection((victim.peer_host, victim.peer_port), timeout=5) as raw,
        ctx.wrap_socket(raw, server_hostname=victim.node_id) as tls,
        contextlib.suppress(OSError),  # the node may hang up at once: that is the point
    ):
        tls.sendall(b"\xff\xff\xff\xff" + b"\x00" * 1000)
        tls.sendall(b"garbage" * 1000)
    # The node still serves and still commits.
    with Client(victim.rpc_url) as c:
        doc = register_dataset(c, cluster, victim.org_id, "after-garbage")
    assert doc["status"] == "committed"
    wait_converged(cluster)


def test_client_reports_errors_as_rpc_error(cluster: Manifest) -> None:
    with Client(cluster.nodes[0].rpc_url) as c, pytest.raises(RpcError) as err:
        c.tx("00" * 32)
    assert err.value.status == 404


def test_cli_submits_any_kind_and_queries(
    cluster: Manifest, story: StoryRun, tmp_path: Path
) -> None:
    owner = sorted({n.org_id for n in cluster.nodes})[0]
    admin_key = next(i.key for i in cluster.identities if i.org_id == owner and i.role == "admin")
    url = cluster.nodes[1].rpc_url
    payload = json.dumps(
        {
            "dataset_id": f"{owner}/cli-dataset",
            "content_hash": "hex:" + "ab" * 32,
            "location": "s3://cli/",
            "sensitivity": "internal",
            "licence": "CC-BY-4.0",
        }
    )
    r = grantchain(
        "tx",
        "submit",
        "dataset.register",
        "--payload",
        payload,
        "--key",
        str(admin_key),
        "--chain-id",
        cluster.chain_id,
        "--url",
        url,
        "--json",
    )
    assert r.returncode == 0, r.stderr
    doc = json.loads(r.stdout.splitlines()[-1])
    assert doc["status"] == "committed" and doc["result"] == "accepted"
    receipt_file = tmp_path / "receipt.json"
    receipt_file.write_text(json.dumps(doc))
    r = grantchain("verify-receipt", str(receipt_file), "--genesis", str(cluster.genesis), "--json")
    assert r.returncode == 0, r.stderr
    assert json.loads(r.stdout.splitlines()[-1])["valid"] is True
    r = grantchain("query", "dataset", f"{owner}/cli-dataset", "--url", url, "--json")
    assert json.loads(r.stdout)["owner_org"] == owner
    r = grantchain("query", "report", "--url", url, "--json")
    assert json.loads(r.stdout)["by_result"]["no_grant"] == 2
    r = grantchain(
        "tx",
        "submit",
        "grant.issue",
        "--payload",
        '{"nope": 1}',
        "--key",
        str(admin_key),
        "--chain-id",
        cluster.chain_id,
        "--url",
        url,
    )
    assert r.returncode == 1 and "grant.issue" in r.stderr and "Traceback" not in r.stderr


def test_clients_fail_over_past_a_dead_url(cluster: Manifest, story: StoryRun) -> None:
    dead = "http://127.0.0.1:9"  # discard port: connection refused
    urls = [dead, cluster.nodes[0].rpc_url]
    with Client(urls) as c:
        assert c.submit([bytes.fromhex("93")])["results"][0]["status"] == "rejected"
        assert c.status()["node_id"] == cluster.nodes[0].node_id  # the live one goes first now

    async def run() -> dict[str, object]:
        async with AsyncClient(urls) as ac:
            await ac.submit([bytes.fromhex("93")])
            return await ac.status()

    assert asyncio.run(run())["node_id"] == cluster.nodes[0].node_id


def test_load_command_writes_the_ids_it_saw_committed(cluster: Manifest, tmp_path: Path) -> None:
    """``grantchain load``: every id it writes to --out is committed, and its summary
    counts them."""
    out = tmp_path / "acked.txt"
    res = grantchain(
        "load", "--cluster", str(cluster.directory), "--rate", "300", "--duration", "1",
        "--out", str(out), "--json",
    )  # fmt: skip
    assert res.returncode == 0, res.stderr
    doc = json.loads(res.stdout.strip().splitlines()[-1])
    ids = out.read_text().split()
    assert doc["submitted"] == 300 and doc["committed"] == len(ids) == len(set(ids)) == 300
    assert doc["failed_batches"] == 0 and doc["latency_ms_p99"] > 0
    with Client([n.rpc_url for n in cluster.nodes]) as client:
        for tx_id in ids[:: len(ids) // 10]:
            assert client.tx(tx_id)["result"] == "accepted"


def test_revoked_and_rotated_out_keys_are_refused_at_the_door(cluster: Manifest) -> None:
    """Issue 15 §4: admission applies the state machine's sender rule, so a revoked
    identity's key, or a key rotated out, cannot fill blocks with rejections (before,
    only an unregistered key was refused; the others were admitted and recorded)."""
    admin = signer_for(cluster, "org1", "admin")
    revoked = TxSigner(signing.private_key_from_bytes(b"\x51" * 32), cluster.chain_id)
    rotated = TxSigner(signing.private_key_from_bytes(b"\x52" * 32), cluster.chain_id)
    new_key = signing.public_key_bytes(signing.private_key_from_bytes(b"\x53" * 32))
    with Client([n.rpc_url for n in cluster.nodes]) as c:
        setup = [
            admin.sign(
                k.IDENTITY_REGISTER, pl.identity_register("gone", "app", revoked.public_key)
            ),
            admin.sign(
                k.IDENTITY_REGISTER, pl.identity_register("moved", "app", rotated.public_key)
            ),
        ]
        assert [r["result"] for r in c.submit(setup, wait=True)["results"]] == ["accepted"] * 2
        before = c.submit(
            [revoked.sign(k.AUDIT_DATA_ACCESS, pl.data_access("org1/x", purpose="training"))],
            wait=True,
        )
        assert before["results"][0]["status"] == "committed"  # active: admitted
        changes = [
            admin.sign(k.IDENTITY_REVOKE, pl.build(k.IDENTITY_REVOKE, name="gone")),
            admin.sign(
                k.IDENTITY_ROTATE,
                pl.build(k.IDENTITY_ROTATE, name="moved", new_public_key=new_key),
            ),
        ]
        assert [r["result"] for r in c.submit(changes, wait=True)["results"]] == ["accepted"] * 2
        wait_converged(cluster)
        for url in (n.rpc_url for n in cluster.nodes):  # leader and followers alike
            with Client(url) as one:
                res = one.submit(
                    [
                        revoked.sign(
                            k.AUDIT_DATA_ACCESS, pl.data_access("org1/x", purpose="training")
                        ),
                        rotated.sign(
                            k.AUDIT_DATA_ACCESS, pl.data_access("org1/x", purpose="training")
                        ),
                    ]
                )["results"]
            assert [r["status"] for r in res] == ["rejected", "rejected"], res
            assert res[0]["error"].startswith("sender_revoked"), res[0]
            assert res[1]["error"].startswith("key_rotated"), res[1]
