"""Reads are for members (issue 15 §3), on a real 3-organisation cluster started with
``rpc_auth = "members"``: unsigned reads are refused with 401, signed ones read as the
signer's organisation, a key revoked on chain is refused from the next request on, and
the open endpoints stay open."""

from __future__ import annotations

import json
from collections.abc import Iterator

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
