"""Reads are for members (issue 15 §3), on a real 3-organisation cluster started with
``rpc_auth = "members"``: unsigned reads are refused with 401, signed ones read as the
signer's organisation, a key revoked on chain is refused from the next request on, and
the open endpoints stay open."""

from __future__ import annotations

import json
import socket
import ssl
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from acl import kinds as k
from acl import payloads as pl
from chain import signing
from node.client import Client, RequestSigner, RpcError, TxSigner
from node.cluster.consortium import Manifest
from node.cluster.scenario import StoryRun, run_story, signer_for
from tests.conftest import grantchain
from tests.node.clusters import running_cluster, wait_converged


@pytest.fixture(scope="module")
def cluster(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Manifest]:
    with running_cluster(
        tmp_path_factory.mktemp("members"), auditor_orgs=("org3",), rpc_auth="members"
    ) as manifest:
        yield manifest


def reader(manifest: Manifest, org_id: str, role: str = "admin") -> RequestSigner:
    ident = next(i for i in manifest.identities if i.org_id == org_id and i.role == role)
    return RequestSigner.from_key_file(ident.key, chain_id=manifest.chain_id)


def urls(manifest: Manifest) -> list[str]:
    return [n.rpc_url for n in manifest.nodes]


@pytest.fixture(scope="module")
def story(cluster: Manifest) -> StoryRun:
    with Client(urls(cluster)) as client:  # submitting is open: txs carry their signatures
        return run_story(cluster, client, say=lambda _: None)


def test_unsigned_reads_are_refused_and_open_endpoints_answer(cluster: Manifest) -> None:
    url = cluster.nodes[0].rpc_url
    for path in ("/v1/grants?grantee=org1", "/metrics", "/v1/blocks/1", "/v1/kinds"):
        got = httpx.get(url + path)
        assert got.status_code == 401, (path, got.text)
        assert got.headers["WWW-Authenticate"] == "GrantChain-Ed25519"
        assert got.json()["reason"] == "missing"
    for path in ("/v1/status", "/health", "/openapi.json"):
        assert httpx.get(url + path).status_code == 200, path
    signed = httpx.get(url + "/metrics", auth=reader(cluster, "org1"))
    assert signed.status_code == 200 and "grantchain_height" in signed.text


def test_a_key_revoked_on_chain_is_refused_from_then_on(cluster: Manifest) -> None:
    admin = signer_for(cluster, "org2", "admin")
    member = TxSigner(signing.private_key_from_bytes(b"\x61" * 32), cluster.chain_id)
    with Client(urls(cluster)) as c:
        done = c.submit(
            [
                admin.sign(
                    k.IDENTITY_REGISTER, pl.identity_register("org2-r", "app", member.public_key)
                )
            ],
            wait=True,
        )
        assert done["results"][0]["result"] == "accepted"
    wait_converged(cluster)
    as_member = RequestSigner(member.key, cluster.chain_id)
    for url in urls(cluster):
        with Client(url, signer=as_member) as c:
            assert c.query("/v1/grants", grantee="org2")["subject"] == "org2"
    with Client(urls(cluster)) as c:
        revoke = admin.sign(k.IDENTITY_REVOKE, pl.build(k.IDENTITY_REVOKE, name="org2-r"))
        assert c.submit([revoke], wait=True)["results"][0]["result"] == "accepted"
    wait_converged(cluster)
    for url in urls(cluster):
        with Client(url, signer=as_member) as c, pytest.raises(RpcError) as refused:
            c.query("/v1/grants", grantee="org2")
        assert refused.value.status == 401
        assert refused.value.body["reason"] == "revoked", refused.value.body
    # an unregistered key, and a registered one signing for another chain
    with (
        Client(
            urls(cluster)[0],
            signer=RequestSigner(signing.private_key_from_bytes(b"\x62" * 32), cluster.chain_id),
        ) as c,
        pytest.raises(RpcError) as unknown,
    ):
        c.query("/v1/kinds")
    assert unknown.value.body["reason"] == "unknown_key"
    with (
        Client(
            urls(cluster)[0], signer=RequestSigner(reader(cluster, "org1").key, "other-chain")
        ) as c,
        pytest.raises(RpcError) as other,
    ):
        c.query("/v1/kinds")
    assert other.value.body["reason"] == "bad_signature"


def test_a_replayed_request_is_refused_by_the_node(cluster: Manifest) -> None:
    url = cluster.nodes[0].rpc_url
    header = reader(cluster, "org1").header("GET", "/v1/kinds", b"")
    first = httpx.get(url + "/v1/kinds", headers={"Authorization": header})
    assert first.status_code == 200
    again = httpx.get(url + "/v1/kinds", headers={"Authorization": header})
    assert again.status_code == 401 and again.json()["reason"] == "replayed_nonce"


def test_the_cli_reads_as_the_identity_it_is_given(cluster: Manifest, story: StoryRun) -> None:
    url = cluster.nodes[0].rpc_url
    unsigned = grantchain("query", "grants", "--grantee", "org2", "--url", url, "--json")
    assert unsigned.returncode != 0 and "HTTP 401" in unsigned.stderr
    key = next(i.key for i in cluster.identities if i.org_id == "org2" and i.role == "app")
    by_key = grantchain(
        "query", "grants", "--grantee", "org2", "--url", url, "--json", "--key", str(key)
    )  # the chain id asked of the node
    assert by_key.returncode == 0, by_key.stderr
    assert json.loads(by_key.stdout)["grants"], "org2 is the story's grantee"
    by_dir = grantchain(
        "query", "kinds", "--url", url, "--json", "--consortium", str(cluster.directory),
        "--identity", "org3-admin",
    )  # fmt: skip
    assert by_dir.returncode == 0, by_dir.stderr
    first = next(
        iter(grantchain("query", "stream", "--url", url, "--from-height", "1", "--count", "1",
                        "--key", str(key)).stdout.splitlines())
    )  # fmt: skip
    assert json.loads(first)["height"] == 1


# -- the read policy ----------------------------------------------------------------------
AUDITORS: dict[str, signing.PrivateKey] = {
    "org3": signing.private_key_from_bytes(b"\x71" * 32),  # org3 is designated auditing
    "org2": signing.private_key_from_bytes(b"\x72" * 32),  # org2 made one for itself
}


@pytest.fixture(scope="module")
def auditors(cluster: Manifest, story: StoryRun) -> dict[str, RequestSigner]:
    """An ``auditor`` identity in org3 (designated by the genesis) and one org2's admin
    registered in its own organisation (not designated)."""
    txs = [
        signer_for(cluster, org, "admin").sign(
            k.IDENTITY_REGISTER,
            pl.identity_register(f"{org}-auditor", "auditor", signing.public_key_bytes(key)),
        )
        for org, key in AUDITORS.items()
    ]
    with Client(urls(cluster)) as c:
        assert [r["result"] for r in c.submit(txs, wait=True)["results"]] == ["accepted"] * 2
    wait_converged(cluster)
    return {org: RequestSigner(key, cluster.chain_id) for org, key in AUDITORS.items()}


def read(manifest: Manifest, signer: RequestSigner, path: str, **params: object) -> httpx.Response:
    return httpx.get(manifest.nodes[0].rpc_url + path, params=params, auth=signer, timeout=30)  # type: ignore[arg-type]


def test_a_dataset_and_its_location_are_for_its_owner_and_grantees(
    cluster: Manifest, story: StoryRun, auditors: dict[str, RequestSigner]
) -> None:
    path = f"/v1/datasets/{story.dataset_id}"
    owner = read(cluster, reader(cluster, "org1", "app"), path)
    assert owner.status_code == 200 and owner.json()["location"].startswith("s3://")
    # org2's grant was revoked at the end of the story: it sees the dataset, not where it is
    past = read(cluster, reader(cluster, "org2"), path)
    assert past.status_code == 200, past.text
    assert past.json()["location"] is None and past.json()["owner_org"] == "org1"
    # org3 never had a grant: as if there were no such dataset, word for word
    other = read(cluster, reader(cluster, "org3"), path)
    absent = read(cluster, reader(cluster, "org3"), "/v1/datasets/org1/no-such")
    assert other.status_code == absent.status_code == 404
    assert other.json()["error"] == f"no dataset {story.dataset_id!r}"
    assert absent.json()["error"] == "no dataset 'org1/no-such'"
    assert read(cluster, reader(cluster, "org3"), path + "/history").status_code == 404
    assert read(cluster, reader(cluster, "org2"), path + "/history").status_code == 403
    assert read(cluster, reader(cluster, "org1"), path + "/history").status_code == 200
    # an auditor of a designated organisation sees everything; a self-made one does not
    designated = read(cluster, auditors["org3"], path)
    assert designated.status_code == 200 and designated.json()["location"].startswith("s3://")
    assert read(cluster, auditors["org2"], path).json()["location"] is None
    access = {"org": "org2", "dataset": story.dataset_id, "purpose": "training"}
    assert read(cluster, reader(cluster, "org3"), "/v1/access", **access).status_code == 404
    assert read(cluster, reader(cluster, "org2"), "/v1/access", **access).status_code == 200
    assert read(cluster, reader(cluster, "org1"), "/v1/access", **access).status_code == 200


def test_grants_events_and_txs_are_for_the_parties(
    cluster: Manifest, story: StoryRun, auditors: dict[str, RequestSigner]
) -> None:
    by_dataset = {"dataset": story.dataset_id}
    for org, count in (("org1", 1), ("org2", 1), ("org3", 0)):
        doc = read(cluster, reader(cluster, org), "/v1/grants", **by_dataset).json()
        assert len(doc["grants"]) == count, (org, doc)
        assert len(doc["evidence"]) == (2 if count else 0)  # issued and revoked
    assert len(read(cluster, auditors["org3"], "/v1/grants", **by_dataset).json()["grants"]) == 1
    assert read(cluster, auditors["org2"], "/v1/grants", grantee="org1").json()["grants"] == []
    # the lab's (org2) uses of org1's data without a grant: org1 and org2 see them
    for org, seen in (("org1", True), ("org2", True), ("org3", False)):
        doc = read(cluster, reader(cluster, org), "/v1/violations", from_ms=0).json()
        assert bool(doc["events"]) is seen, (org, doc)
        assert doc["count"] == len(doc["events"])
    assert read(cluster, auditors["org3"], "/v1/violations", from_ms=0).json()["events"]
    # the grant tx was sent by org1: its receipt is org1's, not org3's
    grant_tx = story.result("grant: the lab may use it for training")["tx_id"]
    assert read(cluster, reader(cluster, "org1"), f"/v1/txs/{grant_tx}").status_code == 200
    hidden = read(cluster, reader(cluster, "org3"), f"/v1/txs/{grant_tx}")
    assert hidden.status_code == 404
    assert hidden.json()["error"] == f"tx {grant_tx} is not in the chain or this node's mempool"
    assert read(cluster, auditors["org3"], f"/v1/txs/{grant_tx}").status_code == 200
    # the audit report and raw blocks are for auditors; block headers for everyone
    assert read(cluster, reader(cluster, "org3"), "/v1/audit/report").status_code == 403
    assert read(cluster, auditors["org2"], "/v1/audit/report").status_code == 403
    assert read(cluster, auditors["org3"], "/v1/audit/report").status_code == 200
    height = story.result("grant: the lab may use it for training")["height"]
    full = read(cluster, auditors["org3"], f"/v1/blocks/{height}").json()
    mine = read(cluster, reader(cluster, "org1"), f"/v1/blocks/{height}").json()
    theirs = read(cluster, reader(cluster, "org3"), f"/v1/blocks/{height}").json()
    assert full["header"] == mine["header"] == theirs["header"]
    assert full["certificate"] and theirs["certificate"] == full["certificate"]
    assert grant_tx in [t["tx_id"] for t in mine["txs"]]
    assert theirs["txs"] == [] and theirs["txs_filtered"] is True
    raw = read(cluster, reader(cluster, "org1"), f"/v1/blocks/{height}", format="msgpack")
    assert raw.status_code == 403
    assert read(cluster, auditors["org3"], "/v1/explore/dashboard").status_code == 200
    assert read(cluster, reader(cluster, "org1"), "/v1/explore/dashboard").status_code == 403


def test_a_members_stream_carries_every_header_and_its_own_txs(
    cluster: Manifest, story: StoryRun
) -> None:
    grant = story.result("grant: the lab may use it for training")
    seen: dict[str, list[str]] = {}
    for org in ("org1", "org3"):
        with Client(urls(cluster)[0], signer=reader(cluster, org)) as c:
            doc = next(iter(c.stream(from_height=grant["height"])))
        assert doc["height"] == grant["height"] and doc["txs_filtered"] is True
        seen[org] = [t["tx_id"] for t in doc["txs"]]
    assert grant["tx_id"] in seen["org1"] and seen["org3"] == []


# -- TLS and the metrics listener ----------------------------------------------------------
def test_the_rpc_over_tls_verified_with_the_consortiums_cas(tmp_path: Path) -> None:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        metrics_port = s.getsockname()[1]
    with running_cluster(
        tmp_path / "tls", nodes=1, rpc_tls=True, rpc_auth="members", metrics_port=metrics_port
    ) as m:
        (node,) = m.nodes
        assert node.rpc_url.startswith("https://")
        ca = ssl.create_default_context(cafile=str(m.ca_cert))
        assert httpx.get(node.rpc_url + "/health", verify=ca).json() == {"status": "ok"}
        with pytest.raises(httpx.ConnectError, match="CERTIFICATE_VERIFY_FAILED"):
            httpx.get(node.rpc_url + "/health")  # not in the system's trust store
        with pytest.raises(httpx.HTTPError):
            httpx.get(node.rpc_url.replace("https://", "http://") + "/health")
        admin = signer_for(m, "org1", "admin")
        with Client(node.rpc_url, signer=reader(m, "org1"), ca_cert=m.ca_cert) as c:
            tx = admin.sign(
                k.IDENTITY_REGISTER, pl.identity_register("org1-x", "app", b"\x01" * 32)
            )
            assert c.submit([tx], wait=True)["results"][0]["result"] == "accepted"
            assert c.query("/v1/grants", grantee="org1")["grants"] == []
        # Reached by a name its certificate does not carry (a Kubernetes Service name):
        # refused, unless the client checks the node id the certificate names instead.
        by_name = node.rpc_url.replace("127.0.0.1", "localhost")
        for names in (None, "n9"):
            with (
                Client(by_name, ca_cert=m.ca_cert, tls_server_name=names) as c,
                pytest.raises(httpx.ConnectError, match="CERTIFICATE_VERIFY_FAILED"),
            ):
                c.status()
        with Client(by_name, ca_cert=m.ca_cert, tls_server_name=node.node_id) as c:
            assert c.status()["chain_id"] == m.chain_id
        key = str(next(i.key for i in m.identities if i.org_id == "org1"))
        read = ("query", "grants", "--grantee", "org1", "--url", by_name, "--json", "--key", key)
        refused = grantchain(*read, "--ca-cert", str(m.ca_cert))
        assert refused.returncode != 0 and "CERTIFICATE_VERIFY_FAILED" in refused.stderr
        named = grantchain(*read, "--ca-cert", str(m.ca_cert), "--tls-server-name", node.node_id)
        assert named.returncode == 0, named.stderr
        assert json.loads(named.stdout)["grants"] == []
        # /metrics: signed on the RPC port, open on the metrics listener (plain HTTP)
        assert httpx.get(node.rpc_url + "/metrics", verify=ca).status_code == 401
        scraped = httpx.get(f"http://127.0.0.1:{metrics_port}/metrics")
        assert scraped.status_code == 200 and "grantchain_height" in scraped.text
        assert httpx.get(f"http://127.0.0.1:{metrics_port}/health").status_code == 200
        # grantchain load speaks TLS and signs its submits where the nodes want that
        r = grantchain(
            "load", "--cluster", str(m.directory), "--rate", "200", "--duration", "1", "--json"
        )
        assert r.returncode == 0, r.stderr
        done = json.loads(r.stdout.strip().splitlines()[-1])
        assert done["committed"] == done["submitted"] == 200, done
