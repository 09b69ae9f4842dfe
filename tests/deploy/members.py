"""A consortium made as deployed members make one: each organisation's ``org init`` in its
own directory, ``genesis build`` from the bundles, each ``org configure`` (RPC as
``org configure`` sets it by default, as the deploy files run it: TLS, reads signed by a
member), plus a ``consortium.json`` naming the nodes and the organisations' keys so that
the local cluster tools (``start_node``, ``grantchain load --cluster``) can drive it, and
the clients a member reads with (TLS verified with the trust bundle, requests signed
with its app key).
"""

from __future__ import annotations

import random
from collections.abc import Iterable
from pathlib import Path

import httpx

from node.client import RequestSigner
from node.cluster.consortium import IdentityEntry, Manifest, NodeEntry, load_manifest
from node.cluster.local import free_base_port, rpc_verify
from node.cluster.org import load_bundle
from node.runtime.config import load_config
from tests.conftest import grantchain


def members_consortium(
    root: Path, nodes: int = 3, *, hosts: dict[str, str] | None = None, chain_id: str = "members"
) -> Manifest:
    """Organisations org1..orgN, one node nI each, under ``root``; nodes on ``hosts``
    (node id -> IP, default 127.0.0.1 with free ports; else the default ports)."""
    node_ids = [f"n{i}" for i in range(1, nodes + 1)]
    base = free_base_port(nodes, random.Random()) if hosts is None else 0
    root.mkdir(parents=True, exist_ok=True)
    for i, node_id in enumerate(node_ids):
        if hosts is None:
            address = f"{node_id}=127.0.0.1:{base + i}:{base + 100 + i}"
        else:
            address = f"{node_id}={hosts[node_id]}"
        r = grantchain(
            "org", "init", str(root / f"org{i + 1}"), "--org", f"org{i + 1}", "--node", address
        )
        assert r.returncode == 0, r.stderr
    bundles = [str(root / f"org{i + 1}" / "bundle.json") for i in range(nodes)]
    r = grantchain(
        "genesis", "build", "--out", str(root / "genesis"), *bundles, "--chain-id", chain_id
    )
    assert r.returncode == 0, r.stderr
    for i in range(nodes):
        org_dir = root / f"org{i + 1}"
        r = grantchain("org", "configure", str(org_dir), "--genesis-dir", str(root / "genesis"))
        assert r.returncode == 0, r.stderr
    return write_view(root, [root / f"org{i + 1}" for i in range(nodes)], chain_id)


def write_view(directory: Path, org_dirs: list[Path], chain_id: str) -> Manifest:
    """``directory/consortium.json`` for these organisations' nodes and keys."""
    directory.mkdir(exist_ok=True)
    nodes, identities = [], []
    for org_dir in org_dirs:
        bundle = load_bundle(org_dir / "bundle.json")
        for n in bundle.nodes:
            config = org_dir / "nodes" / n.node_id / "config.toml"
            cfg = load_config(config)
            nodes.append(
                NodeEntry(
                    node_id=n.node_id,
                    org_id=bundle.org_id,
                    public_key=n.public_key,
                    rpc_host=n.host,
                    rpc_port=cfg.rpc_port,
                    peer_host=n.host,
                    peer_port=cfg.peer_port,
                    config=config,
                    data_dir=cfg.data_dir,
                    node_key=cfg.node_key,
                    rpc_tls=cfg.rpc_tls,
                )
            )
        identities += [
            IdentityEntry(
                bundle.org_id,
                i.name,
                i.role,
                i.public_key,
                org_dir / f"{i.name.removeprefix(bundle.org_id + '-')}.key",
            )
            for i in bundle.identities
        ]
    manifest = Manifest(
        directory=directory,
        chain_id=chain_id,
        consensus="raft",
        genesis=org_dirs[0] / "genesis.json",
        genesis_hash=b"",
        ca_cert=org_dirs[0] / "tls-cas.pem",
        nodes=tuple(nodes),
        identities=tuple(identities),
    )
    (directory / "consortium.json").write_text(manifest.to_json())
    return load_manifest(directory)


def member_http(manifest: Manifest, org_id: str) -> httpx.Client:
    """An HTTP client of ``org_id``'s: it verifies the nodes' TLS with the trust bundle
    and signs every request with the organisation's app key (``RequestSigner``)."""
    app = next(i for i in manifest.identities if i.org_id == org_id and i.role == "app")
    return httpx.Client(
        verify=rpc_verify(manifest),
        auth=RequestSigner.from_key_file(app.key, chain_id=manifest.chain_id),
        timeout=10.0,
    )


def not_committed(manifest: Manifest, rpc_url: str, tx_ids: Iterable[str]) -> list[str]:
    """Those of ``tx_ids`` that the node at ``rpc_url`` does not show committed. A member
    reads only its own txs (anyone else gets the 404 of an unknown tx), so each
    organisation asks with its own key and a tx counts when one of them sees it committed."""
    orgs = sorted({i.org_id for i in manifest.identities if i.role == "app"})
    clients = [member_http(manifest, org) for org in orgs]
    try:
        missing = []
        for tx_id in sorted(tx_ids):
            for client in clients:
                r = client.get(f"{rpc_url}/v1/txs/{tx_id}")
                if r.status_code == 200 and r.json().get("status") == "committed":
                    break
                assert r.status_code in (200, 404), (r.status_code, r.text)
            else:
                missing.append(tx_id)
        return missing
    finally:
        for client in clients:
            client.close()
