"""A consortium directory: everything a local N-node network needs, made in one step, and
the manifest (``consortium.json``) that lets tools find it again.

Layout (all paths in the manifest and the node configs are relative, so the directory can
be moved or copied whole)::

    DIR/consortium.json          manifest: nodes and identities (see ``Manifest``)
    DIR/genesis.json             the genesis (chain.genesis.Genesis.to_json)
    DIR/ca/ca.crt                consortium TLS CA certificate (PEM, ECDSA P-256)
    DIR/ca/ca.key                its private key (PEM, 0600)
    DIR/nodes/nI/config.toml     node config (node.runtime.config)
    DIR/nodes/nI/node.key        node's Ed25519 signing key (hex, 0600; node.runtime.keys)
    DIR/nodes/nI/tls.crt         node TLS certificate, SAN DNS=nI and IP=host
    DIR/nodes/nI/tls.key         its private key (PEM, 0600)
    DIR/nodes/nI/data/           data directory (created by the node)
    DIR/orgs/orgJ/admin.key      orgJ's admin identity key (hex, 0600)
    DIR/orgs/orgJ/app.key        orgJ's app identity key (hex, 0600)

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

from chain import limits, signing
from chain.genesis import Genesis, Identity, Organisation, Validator
from node.runtime.config import NodeConfig, PeerAddress, write_config
from node.runtime.keys import write_private_key, write_secret_file
from node.transport.tlsca import create_ca, issue_node_cert

MANIFEST = "consortium.json"
GENESIS = "genesis.json"
LAYOUT_ENTRIES = (MANIFEST, GENESIS, "ca", "nodes", "orgs")
"""What ``--force`` replaces; nothing else in the directory is ever touched."""

BASE_PORT_DEFAULT = 7700
PEER_PORT_OFFSET = 100
NODES_MAX = PEER_PORT_OFFSET  # more would make RPC and peer port ranges overlap
ORGS_MAX = 100
HOST_DEFAULT = "127.0.0.1"
ORG_IDENTITIES = (("admin", "admin"), ("app", "app"))
"""(name suffix, role) of the identities each organisation starts with."""


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

    @property
    def rpc_url(self) -> str:
        return f"http://{self.rpc_host}:{self.rpc_port}"


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
        (staging / name).rename(directory / name)


def _private_dir(path: Path) -> Path:
    path.mkdir(parents=True, mode=0o700)
    path.chmod(0o700)
    return path


def _build(root: Path, spec: ConsortiumSpec, now: datetime.datetime) -> None:
    orgs = [f"org{j}" for j in range(1, spec.orgs + 1)]
    identities: list[IdentityEntry] = []
    for org_id in orgs:
        org_dir = _private_dir(root / "orgs" / org_id)
        for suffix, role in ORG_IDENTITIES:
            key = signing.generate_private_key()
            path = org_dir / f"{suffix}.key"
            write_private_key(path, key)
            identities.append(
                IdentityEntry(
                    org_id, f"{org_id}-{suffix}", role, signing.public_key_bytes(key), path
                )
            )

    ca = create_ca(f"grantchain consortium CA ({spec.chain_id})", now=now)
    ca_dir = _private_dir(root / "ca")
    (ca_dir / "ca.crt").write_bytes(ca.cert_pem)
    write_secret_file(ca_dir / "ca.key", ca.key_pem)

    node_ids = [f"n{i}" for i in range(1, spec.nodes + 1)]
    peer_port = {nid: spec.base_port + PEER_PORT_OFFSET + i for i, nid in enumerate(node_ids)}
    nodes: list[NodeEntry] = []
    for i, node_id in enumerate(node_ids):
        node_dir = _private_dir(root / "nodes" / node_id)
        key = signing.generate_private_key()
        write_private_key(node_dir / "node.key", key)
        tls = issue_node_cert(ca, node_id, ip=spec.host, now=now)
        (node_dir / "tls.crt").write_bytes(tls.cert_pem)
        write_secret_file(node_dir / "tls.key", tls.key_pem)
        cfg = NodeConfig(
            node_id=node_id,
            data_dir=node_dir / "data",
            genesis=root / GENESIS,
            node_key=node_dir / "node.key",
            tls_cert=node_dir / "tls.crt",
            tls_key=node_dir / "tls.key",
            ca_cert=ca_dir / "ca.crt",
            rpc_host=spec.host,
            rpc_port=spec.base_port + i,
            peer_host=spec.host,
            peer_port=peer_port[node_id],
            peers=tuple(
                PeerAddress(other, spec.host, peer_port[other])
                for other in node_ids
                if other != node_id
            ),
        )
        write_config(cfg, node_dir / "config.toml")
        nodes.append(
            NodeEntry(
                node_id=node_id,
                org_id=orgs[i % len(orgs)],
                public_key=signing.public_key_bytes(key),
                rpc_host=cfg.rpc_host,
                rpc_port=cfg.rpc_port,
                peer_host=cfg.peer_host,
                peer_port=cfg.peer_port,
                config=node_dir / "config.toml",
                data_dir=cfg.data_dir,
                node_key=cfg.node_key,
            )
        )

    genesis = Genesis(
        chain_id=spec.chain_id,
        consensus=spec.consensus,
        timestamp_ms=spec.genesis_time_ms,
        organisations=tuple(Organisation(org_id, org_id) for org_id in orgs),
        identities=tuple(Identity(i.org_id, i.name, i.role, i.public_key) for i in identities),
        validators=tuple(Validator(n.node_id, n.org_id, n.public_key) for n in nodes),
        governance_quorum=len(orgs) // 2 + 1,
    )
    genesis.check()
    (root / GENESIS).write_text(genesis.to_json(), encoding="utf-8")
    manifest = Manifest(
        directory=root,
        chain_id=spec.chain_id,
        consensus=spec.consensus,
        genesis=root / GENESIS,
        genesis_hash=genesis.hash,
        ca_cert=ca_dir / "ca.crt",
        nodes=tuple(nodes),
        identities=tuple(identities),
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
