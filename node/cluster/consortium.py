"""A local consortium directory: everything a local N-node network needs, made in one
step, and the manifest (``consortium.json``) that lets tools find it again.

``grantchain init`` plays every member on one host, with the same steps a real
consortium takes on many (deploy/README.md): each organisation runs ``org init``
(``node.cluster.org``: its own keys, TLS CA and public bundle), the genesis is built from
the bundles alone (``node.cluster.genesis_build``), and each organisation writes its own
nodes' configs from it. Nothing is shared but the bundles and the build's public files.

Layout (all paths in the manifest and the node configs are relative, so the directory can
be moved or copied whole)::

    DIR/consortium.json          manifest: nodes and identities (see ``Manifest``)
    DIR/genesis.json             the genesis (chain.genesis.Genesis.to_json)
    DIR/tls-cas.pem              the trust bundle: every organisation's TLS CA
    DIR/network.json             the nodes' addresses (genesis_build.Network)
    DIR/orgs/orgJ/bundle.json    orgJ's public bundle
    DIR/orgs/orgJ/tls-ca.crt     orgJ's TLS CA (ECDSA P-256, constrained to its node ids)
    DIR/orgs/orgJ/tls-ca.key     its private key (PEM, 0600)
    DIR/orgs/orgJ/admin.key      orgJ's admin identity key (hex, 0600)
    DIR/orgs/orgJ/app.key        orgJ's app identity key (hex, 0600)
    DIR/nodes/nI/config.toml     node config (node.runtime.config)
    DIR/nodes/nI/node.key        node's Ed25519 signing key (hex, 0600; node.runtime.keys)
    DIR/nodes/nI/tls.crt         node TLS certificate from its org's CA, SAN DNS=nI, IP=host
    DIR/nodes/nI/tls.key         its private key (PEM, 0600)
    DIR/nodes/nI/data/           data directory (created by the node)

Nodes ``n1..nN`` are spread round-robin over organisations ``org1..orgK``; node ``nI``
serves RPC on ``base_port + I - 1`` and peers on ``base_port + 100 + I - 1``. The
directories holding private keys are 0700.

The consortium is built in a temporary sibling directory and moved into place at the end,
so a failure halfway never leaves a half-written consortium behind.
"""

from __future__ import annotations

import datetime
import json
import os
import re
import shutil
import tempfile
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from chain import limits
from node.cluster.genesis_build import (
    GENESIS,
    NETWORK,
    TRUST_BUNDLE,
    GenesisParams,
    RpcSettings,
    build_genesis,
    load_published,
    write_built,
    write_node_configs,
)
from node.cluster.org import NodeAddress, OrgSpec, create_org, load_bundle

MANIFEST = "consortium.json"
LAYOUT_ENTRIES = (MANIFEST, GENESIS, TRUST_BUNDLE, NETWORK, "ca", "nodes", "orgs")
"""What ``--force`` replaces; nothing else in the directory is ever touched (``ca`` is
where a consortium CA lived before each organisation had its own)."""

BASE_PORT_DEFAULT = 7700
PEER_PORT_OFFSET = 100
NODES_MAX = PEER_PORT_OFFSET  # more would make RPC and peer port ranges overlap
ORGS_MAX = 100
HOST_DEFAULT = "127.0.0.1"


class ConsortiumError(ValueError):
    """The consortium cannot be created or read; the message says why."""


@dataclass(frozen=True, slots=True)
class ConsortiumSpec:
    nodes: int
    orgs: int
    chain_id: str
    genesis_time_ms: int
    consensus: str = "raft"
    base_port: int = BASE_PORT_DEFAULT
    host: str = HOST_DEFAULT
    auditor_orgs: tuple[str, ...] = ()
    """Organisations designated as auditing (``grantchain genesis build --auditor-org``)."""
    rpc_auth: str = "members"
    """The nodes' ``rpc_auth``: reads signed by a member and under the read policy."""
    rpc_tls: bool = True
    """The nodes' ``rpc_tls``: the RPC over TLS with each node's certificate."""
    explorer_reads: str = "open"
    """The nodes' ``explorer_reads``: a local consortium's explorer reads without signing."""

    def check(self) -> None:
        if not 1 <= self.nodes <= NODES_MAX:
            raise ConsortiumError(f"--nodes must be in 1..{NODES_MAX}, got {self.nodes}")
        if not 1 <= self.orgs <= ORGS_MAX:
            raise ConsortiumError(f"--orgs must be in 1..{ORGS_MAX}, got {self.orgs}")
        if self.consensus not in ("raft", "pbft"):
            raise ConsortiumError(f"--consensus must be raft or pbft, got {self.consensus!r}")
        top = self.base_port + PEER_PORT_OFFSET + self.nodes - 1
        if not self.base_port >= 1 or top > 65535:
            raise ConsortiumError(
                f"--base-port {self.base_port} puts ports outside 1..65535 (highest {top})"
            )
        if not 0 < len(self.chain_id) <= limits.CHAIN_ID_CHARS_MAX:
            raise ConsortiumError(f"chain id must be 1..{limits.CHAIN_ID_CHARS_MAX} chars")
        if not 0 <= self.genesis_time_ms <= limits.TIMESTAMP_MS_MAX:
            raise ConsortiumError(f"genesis time must be >= 0 ms, got {self.genesis_time_ms}")
        orgs = {f"org{j}" for j in range(1, self.orgs + 1)}
        for org_id in self.auditor_orgs:
            if org_id not in orgs:
                raise ConsortiumError(
                    f"--auditor-org {org_id!r} is not one of org1..org{self.orgs}"
                )


@dataclass(frozen=True, slots=True)
class NodeEntry:
    node_id: str
    org_id: str
    public_key: bytes
    rpc_host: str
    rpc_port: int
    peer_host: str
    peer_port: int
    config: Path
    data_dir: Path
    node_key: Path
    rpc_tls: bool = False
    """The node serves its RPC over TLS: ``https://``, verified with the manifest's
    ``ca_cert`` (the consortium's CA bundle)."""

    @property
    def rpc_url(self) -> str:
        return f"{'https' if self.rpc_tls else 'http'}://{self.rpc_host}:{self.rpc_port}"


@dataclass(frozen=True, slots=True)
class IdentityEntry:
    org_id: str
    name: str
    role: str
    public_key: bytes
    key: Path


@dataclass(frozen=True, slots=True)
class Manifest:
    """What ``consortium.json`` says, with paths made absolute."""

    directory: Path
    chain_id: str
    consensus: str
    genesis: Path
    genesis_hash: bytes
    ca_cert: Path
    """The trust bundle (every organisation's TLS CA) the nodes verify peers against."""
    nodes: tuple[NodeEntry, ...]
    identities: tuple[IdentityEntry, ...]

    def node(self, node_id: str) -> NodeEntry:
        for n in self.nodes:
            if n.node_id == node_id:
                return n
        raise KeyError(node_id)

    def to_json(self) -> str:
        rel = self._relative
        doc = {
            "version": 1,
            "chain_id": self.chain_id,
            "consensus": self.consensus,
            "genesis": rel(self.genesis),
            "genesis_hash": self.genesis_hash.hex(),
            "ca_cert": rel(self.ca_cert),
            "nodes": [
                {
                    "node_id": n.node_id,
                    "org_id": n.org_id,
                    "public_key": n.public_key.hex(),
                    "rpc_url": n.rpc_url,
                    "rpc_tls": n.rpc_tls,
                    "rpc_host": n.rpc_host,
                    "rpc_port": n.rpc_port,
                    "peer_host": n.peer_host,
                    "peer_port": n.peer_port,
                    "config": rel(n.config),
                    "data_dir": rel(n.data_dir),
                    "node_key": rel(n.node_key),
                }
                for n in self.nodes
            ],
            "identities": [
                {
                    "org_id": i.org_id,
                    "name": i.name,
                    "role": i.role,
                    "public_key": i.public_key.hex(),
                    "key": rel(i.key),
                }
                for i in self.identities
            ],
        }
        return json.dumps(doc, indent=2) + "\n"

    def _relative(self, path: Path) -> str:
        return os.path.relpath(path, self.directory)


def load_manifest(directory: Path | str) -> Manifest:
    """Read ``DIR/consortium.json``; paths in the result are absolute."""
    directory = Path(directory).resolve()
    path = directory / MANIFEST
    try:
        doc = json.loads(path.read_text(encoding="utf-8"))
        if doc.get("version") != 1:
            raise ConsortiumError(f"{path}: unsupported manifest version {doc.get('version')!r}")
        at = directory.joinpath
        return Manifest(
            directory=directory,
            chain_id=doc["chain_id"],
            consensus=doc["consensus"],
            genesis=at(doc["genesis"]),
            genesis_hash=bytes.fromhex(doc["genesis_hash"]),
            ca_cert=at(doc["ca_cert"]),
            nodes=tuple(
                NodeEntry(
                    node_id=n["node_id"],
                    org_id=n["org_id"],
                    public_key=bytes.fromhex(n["public_key"]),
                    rpc_host=n["rpc_host"],
                    rpc_port=int(n["rpc_port"]),
                    peer_host=n["peer_host"],
                    peer_port=int(n["peer_port"]),
                    config=at(n["config"]),
                    data_dir=at(n["data_dir"]),
                    node_key=at(n["node_key"]),
                    rpc_tls=bool(n.get("rpc_tls", False)),
                )
                for n in doc["nodes"]
            ),
            identities=tuple(
                IdentityEntry(
                    org_id=i["org_id"],
                    name=i["name"],
                    role=i["role"],
                    public_key=bytes.fromhex(i["public_key"]),
                    key=at(i["key"]),
                )
                for i in doc["identities"]
            ),
        )
    except OSError as exc:
        raise ConsortiumError(f"{path}: cannot read: {exc.strerror or exc}") from None
    except (KeyError, TypeError, ValueError, AttributeError) as exc:
        if isinstance(exc, ConsortiumError):
            raise
        raise ConsortiumError(f"{path}: malformed manifest: {exc!r}") from None


def chain_id_from_name(name: str) -> str:
    """A chain id from a directory name: lowercase letters, digits and '-' only."""
    slug = re.sub(r"[^a-z0-9]+", "-", name.lower()).strip("-")
    return slug[: limits.CHAIN_ID_CHARS_MAX].strip("-") or "grantchain"


def existing_entries(directory: Path) -> list[str]:
    if not directory.exists():
        return []
    if not directory.is_dir():
        raise ConsortiumError(f"{directory} exists and is not a directory")
    return sorted(p.name for p in directory.iterdir())


def create_consortium(
    directory: Path | str,
    spec: ConsortiumSpec,
    *,
    now: datetime.datetime,
    force: bool = False,
) -> Manifest:
    """Write a whole consortium into ``directory`` (see the module docstring).

    Refuses a non-empty directory unless ``force``; with ``force`` only the layout's own
    entries (``LAYOUT_ENTRIES``) are replaced. ``now`` dates the TLS certificates only;
    the genesis time is ``spec.genesis_time_ms``.
    """
    spec.check()
    directory = Path(directory).absolute()
    present = existing_entries(directory)
    if present and not force:
        raise ConsortiumError(
            f"{directory} is not empty ({', '.join(present[:5])}"
            f"{', ...' if len(present) > 5 else ''}); use --force to replace a consortium"
        )
    directory.parent.mkdir(parents=True, exist_ok=True)
    staging = Path(tempfile.mkdtemp(dir=directory.parent, prefix=f".{directory.name}.init-"))
    try:
        _build(staging, spec, now)
        _install(staging, directory)
    finally:
        shutil.rmtree(staging, ignore_errors=True)
    return load_manifest(directory)


def _install(staging: Path, directory: Path) -> None:
    if not directory.exists():
        staging.rename(directory)
        return
    for name in LAYOUT_ENTRIES:
        old = directory / name
        if old.is_dir() and not old.is_symlink():
            shutil.rmtree(old)
        elif old.exists() or old.is_symlink():
            old.unlink()
    for name in LAYOUT_ENTRIES:
        if (staging / name).exists():
            (staging / name).rename(directory / name)


def _build(root: Path, spec: ConsortiumSpec, now: datetime.datetime) -> None:
    orgs = [f"org{j}" for j in range(1, spec.orgs + 1)]
    node_ids = [f"n{i}" for i in range(1, spec.nodes + 1)]
    node_org = {nid: orgs[i % len(orgs)] for i, nid in enumerate(node_ids)}
    address = {
        nid: NodeAddress(nid, spec.host, spec.base_port + i, spec.base_port + PEER_PORT_OFFSET + i)
        for i, nid in enumerate(node_ids)
    }
    # 1. Each organisation makes its own keys and bundle (grantchain org init).
    for org_id in orgs:
        own = tuple(address[nid] for nid in node_ids if node_org[nid] == org_id)
        create_org(root / "orgs" / org_id, OrgSpec(org_id, own), now=now, nodes_dir=root / "nodes")
    # 2. The genesis from the public bundles only (grantchain genesis build).
    bundles = [load_bundle(root / "orgs" / org_id / "bundle.json") for org_id in orgs]
    params = GenesisParams(
        spec.chain_id, spec.genesis_time_ms, spec.consensus, auditor_orgs=spec.auditor_orgs
    )
    write_built(root, build_genesis(bundles, params))
    published = load_published(root / GENESIS, root / TRUST_BUNDLE, root / NETWORK)
    # 3. Each organisation checks the genesis and configures its nodes (org configure).
    configs: dict[str, Path] = {}
    for bundle in bundles:
        configs.update(
            write_node_configs(
                bundle,
                published,
                nodes_dir=root / "nodes",
                genesis=root / GENESIS,
                trust_bundle=root / TRUST_BUNDLE,
                rpc=RpcSettings(spec.rpc_auth, spec.rpc_tls, spec.explorer_reads),
            )
        )
    keys = {v.node_id: v.public_key for v in published.genesis.validators}
    nodes = tuple(
        NodeEntry(
            node_id=nid,
            org_id=node_org[nid],
            public_key=keys[nid],
            rpc_host=spec.host,
            rpc_port=address[nid].rpc_port,
            peer_host=spec.host,
            peer_port=address[nid].peer_port,
            config=configs[nid],
            data_dir=root / "nodes" / nid / "data",
            node_key=root / "nodes" / nid / "node.key",
            rpc_tls=spec.rpc_tls,
        )
        for nid in node_ids
    )
    identities = tuple(
        IdentityEntry(
            org_id=b.org_id,
            name=i.name,
            role=i.role,
            public_key=i.public_key,
            key=root / "orgs" / b.org_id / f"{i.name.removeprefix(b.org_id + '-')}.key",
        )
        for b in bundles
        for i in b.identities
    )
    manifest = Manifest(
        directory=root,
        chain_id=spec.chain_id,
        consensus=spec.consensus,
        genesis=root / GENESIS,
        genesis_hash=published.genesis.hash,
        ca_cert=root / TRUST_BUNDLE,
        nodes=nodes,
        identities=identities,
    )
    (root / MANIFEST).write_text(manifest.to_json(), encoding="utf-8")


def manifest_summary(manifest: Manifest) -> dict[str, Any]:
    """A short JSON-able summary for the CLI."""
    return {
        "directory": str(manifest.directory),
        "chain_id": manifest.chain_id,
        "consensus": manifest.consensus,
        "genesis_hash": manifest.genesis_hash.hex(),
        "nodes": [
            {
                "node_id": n.node_id,
                "org_id": n.org_id,
                "rpc_url": n.rpc_url,
                "config": str(n.config),
            }
            for n in manifest.nodes
        ],
    }
