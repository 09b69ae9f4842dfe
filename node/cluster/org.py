"""One organisation's own keys, made on its own host, and the public bundle it shares.

``grantchain org init`` runs ``init_org``: the organisation generates every secret it
will ever use — its admin and app identity keys, its validators' Ed25519 keys, its own
TLS CA and its nodes' TLS certificates — and writes a *bundle* (``bundle.json``) that
holds only public material: public keys, the CA certificate and the nodes' addresses.
The consortium builds its genesis from the members' bundles
(``node.cluster.genesis_build``); no member ever sees another member's private key.

Layout of an organisation directory (0700; keys 0600)::

    ORG/bundle.json              public: what the genesis build needs (``OrgBundle``)
    ORG/tls-ca.crt               the organisation's TLS CA certificate (public; only
                                 for an organisation that runs nodes)
    ORG/tls-ca.key               its private key: keep it offline once certificates exist
    ORG/admin.key, ORG/app.key   identity keys (hex Ed25519, node.runtime.keys)
    ORG/nodes/nI/node.key        node nI's validator key
    ORG/nodes/nI/tls.crt, tls.key    node nI's TLS certificate (SAN DNS=nI, IP=host)

The CA is name-constrained to the organisation's node ids (``node.transport.tlsca``),
so it can vouch for its own nodes only.
"""

from __future__ import annotations

import datetime
import ipaddress
import json
import os
import re
import shutil
import tempfile
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from cryptography import x509
from cryptography.hazmat.primitives import serialization

from chain import limits, signing
from chain.genesis import ROLES
from node.runtime.config import NODE_ID_PATTERN
from node.runtime.keys import (
    KeyFileError,
    check_secret_file_mode,
    write_private_key,
    write_secret_file,
)
from node.transport.tlsca import (
    TrustBundleError,
    create_ca,
    issue_node_cert,
    load_ca,
    permitted_node_ids,
)

BUNDLE = "bundle.json"
TLS_CA_CERT = "tls-ca.crt"
TLS_CA_KEY = "tls-ca.key"
BUNDLE_VERSION = 1
RPC_PORT_DEFAULT = 7700
PEER_PORT_DEFAULT = 7800
ORG_IDENTITIES = (("admin", "admin"), ("app", "app"))
"""(name suffix, role) of the identities each organisation starts with."""
ORG_ID_PATTERN = re.compile(r"[a-z0-9]([a-z0-9-]{0,62}[a-z0-9])?")
_HOSTNAME = re.compile(
    r"(?=.{1,253}$)[A-Za-z0-9]([A-Za-z0-9-]{0,61}[A-Za-z0-9])?(\.[A-Za-z0-9]([A-Za-z0-9-]{0,61}[A-Za-z0-9])?)*"
)
NODES_PER_ORG_MAX = 100


class OrgError(ValueError):
    """An organisation cannot be created, or a bundle is not acceptable; says why."""


@dataclass(frozen=True, slots=True)
class NodeAddress:
    """Where a node is reached: ``host`` (an IP address or a host name), its RPC port and
    its peer port."""

    node_id: str
    host: str
    rpc_port: int = RPC_PORT_DEFAULT
    peer_port: int = PEER_PORT_DEFAULT

    @classmethod
    def parse(cls, text: str) -> NodeAddress:
        """``ID=HOST`` or ``ID=HOST:RPC_PORT:PEER_PORT`` (an IPv6 host in brackets)."""
        node_id, sep, rest = text.partition("=")
        if not sep:
            raise OrgError(f"--node {text!r}: expected ID=HOST[:RPC_PORT:PEER_PORT]")
        if rest.startswith("["):
            host, bracket, ports = rest[1:].partition("]")
            if not bracket:
                raise OrgError(f"--node {text!r}: unclosed '[' in the host")
            ports = ports.removeprefix(":")
        else:
            host, _, ports = rest.partition(":")
        try:
            numbers = [int(p) for p in ports.split(":")] if ports else []
        except ValueError:
            raise OrgError(f"--node {text!r}: ports must be integers") from None
        if len(numbers) not in (0, 2):
            raise OrgError(f"--node {text!r}: give both RPC_PORT and PEER_PORT, or neither")
        address = cls(node_id, host, *numbers)
        address.check()
        return address

    def check(self) -> None:
        if not NODE_ID_PATTERN.fullmatch(self.node_id):
            raise OrgError(
                f"node id must be a DNS label (a-z, 0-9, '-', at most 63 chars), "
                f"got {self.node_id!r}"
            )
        if not (is_ip(self.host) or _HOSTNAME.fullmatch(self.host)):
            raise OrgError(f"node {self.node_id}: host {self.host!r} is not an address or name")
        for name, port in (("rpc", self.rpc_port), ("peer", self.peer_port)):
            if not 1 <= port <= 65535:
                raise OrgError(f"node {self.node_id}: {name} port {port} not in 1..65535")
        if self.rpc_port == self.peer_port:
            raise OrgError(f"node {self.node_id}: RPC and peer ports are both {self.rpc_port}")


def is_ip(host: str) -> bool:
    try:
        ipaddress.ip_address(host)
    except ValueError:
        return False
    return True


@dataclass(frozen=True, slots=True)
class OrgSpec:
    org_id: str
    nodes: tuple[NodeAddress, ...]
    name: str = ""
    """Display name in the genesis [the org id]."""

    def check(self) -> None:
        if not ORG_ID_PATTERN.fullmatch(self.org_id):
            raise OrgError(
                f"--org must be lowercase letters, digits and '-' (1..64), got {self.org_id!r}"
            )
        if len(self.name) > 128:
            raise OrgError("--name must be at most 128 characters")
        if len(self.nodes) > NODES_PER_ORG_MAX:
            raise OrgError(f"an organisation runs at most {NODES_PER_ORG_MAX} nodes (--node)")
        ids = [n.node_id for n in self.nodes]
        if len(set(ids)) != len(ids):
            raise OrgError(f"node ids must be unique, got {ids}")
        for n in self.nodes:
            n.check()


@dataclass(frozen=True, slots=True)
class BundleIdentity:
    name: str
    role: str
    public_key: bytes


@dataclass(frozen=True, slots=True)
class BundleNode:
    node_id: str
    public_key: bytes
    host: str
    rpc_port: int
    peer_port: int


@dataclass(frozen=True, slots=True)
class OrgBundle:
    """What an organisation shares with the consortium: public material only."""

    org_id: str
    name: str
    identities: tuple[BundleIdentity, ...]
    nodes: tuple[BundleNode, ...]
    tls_ca_pem: bytes | None
    """The organisation's TLS CA; ``None`` for a member that runs no node."""

    def to_json(self) -> str:
        doc = {
            "version": BUNDLE_VERSION,
            "org_id": self.org_id,
            "name": self.name,
            "identities": [
                {"name": i.name, "role": i.role, "public_key": i.public_key.hex()}
                for i in self.identities
            ],
            "nodes": [
                {
                    "node_id": n.node_id,
                    "public_key": n.public_key.hex(),
                    "host": n.host,
                    "rpc_port": n.rpc_port,
                    "peer_port": n.peer_port,
                }
                for n in self.nodes
            ],
            "tls_ca": self.tls_ca_pem.decode("ascii") if self.tls_ca_pem is not None else None,
        }
        return json.dumps(doc, indent=2) + "\n"

    @classmethod
    def from_json(cls, text: str, *, source: str = "bundle") -> OrgBundle:
        """Parse and check a bundle strictly: unknown fields are refused, so a bundle
        cannot smuggle anything (a private key included) into the genesis build."""
        try:
            doc = json.loads(text)
        except ValueError as exc:
            raise OrgError(f"{source}: not JSON: {exc}") from None
        c = _Fields(source)
        c.keys(doc, {"version", "org_id", "name", "identities", "nodes", "tls_ca"}, "bundle")
        if doc["version"] != BUNDLE_VERSION:
            raise OrgError(f"{source}: unsupported bundle version {doc['version']!r}")
        bundle = cls(
            org_id=c.string(doc["org_id"], "org_id", 64),
            name=c.string(doc["name"], "name", 128),
            identities=tuple(
                BundleIdentity(
                    c.string(i["name"], "identities[].name", 128),
                    c.string(i["role"], "identities[].role", 16),
                    c.key(i["public_key"], "identities[].public_key"),
                )
                for i in c.items(doc["identities"], {"name", "role", "public_key"}, "identities")
            ),
            nodes=tuple(
                BundleNode(
                    c.string(n["node_id"], "nodes[].node_id", 63),
                    c.key(n["public_key"], "nodes[].public_key"),
                    c.string(n["host"], "nodes[].host", 253),
                    c.integer(n["rpc_port"], "nodes[].rpc_port"),
                    c.integer(n["peer_port"], "nodes[].peer_port"),
                )
                for n in c.items(
                    doc["nodes"],
                    {"node_id", "public_key", "host", "rpc_port", "peer_port"},
                    "nodes",
                )
            ),
            tls_ca_pem=(
                c.string(doc["tls_ca"], "tls_ca", 16_384).encode("ascii")
                if doc["tls_ca"] is not None
                else None
            ),
        )
        bundle.check(source)
        return bundle

    def check(self, source: str = "bundle") -> None:
        """The bundle is well-formed on its own: ids, roles, addresses, distinct keys, and
        a TLS CA constrained to exactly this organisation's node ids."""
        try:
            OrgSpec(
                self.org_id,
                tuple(NodeAddress(n.node_id, n.host, n.rpc_port, n.peer_port) for n in self.nodes),
                self.name,
            ).check()
        except OrgError as exc:
            raise OrgError(f"{source}: {exc}") from None
        for i in self.identities:
            if i.role not in ROLES:
                raise OrgError(f"{source}: identity {i.name!r}: role must be one of {ROLES}")
        names = [i.name for i in self.identities]
        if not names or len(set(names)) != len(names):
            raise OrgError(f"{source}: identities must be non-empty with unique names")
        keys = [i.public_key for i in self.identities] + [n.public_key for n in self.nodes]
        if len(set(keys)) != len(keys):
            raise OrgError(f"{source}: a public key appears twice")
        if self.tls_ca_pem is None:
            if self.nodes:
                raise OrgError(f"{source}: an organisation that runs nodes needs a tls_ca")
            return
        try:
            certs = x509.load_pem_x509_certificates(self.tls_ca_pem)
        except ValueError as exc:
            raise OrgError(f"{source}: tls_ca is not a PEM certificate: {exc}") from None
        if len(certs) != 1:
            raise OrgError(f"{source}: tls_ca must hold exactly one certificate")
        try:
            permitted = permitted_node_ids(certs[0])
        except TrustBundleError as exc:
            raise OrgError(f"{source}: tls_ca: {exc}") from None
        if sorted(permitted) != sorted(n.node_id for n in self.nodes):
            raise OrgError(
                f"{source}: the TLS CA must be name-constrained to exactly the organisation's "
                f"node ids {sorted(n.node_id for n in self.nodes)}, it permits {sorted(permitted)}"
            )


class _Fields:
    def __init__(self, source: str) -> None:
        self.source = source

    def fail(self, what: str) -> OrgError:
        return OrgError(f"{self.source}: {what}")

    def keys(self, doc: Any, allowed: set[str], where: str) -> None:
        if not isinstance(doc, dict):
            raise self.fail(f"{where} must be an object")
        unknown = sorted(set(doc) - allowed)
        if unknown:
            raise self.fail(f"{where}: unknown field {unknown[0]!r} (a bundle is public keys only)")
        missing = sorted(allowed - set(doc))
        if missing:
            raise self.fail(f"{where}: missing field {missing[0]!r}")

    def items(self, value: Any, allowed: set[str], where: str) -> list[dict[str, Any]]:
        if not isinstance(value, list) or len(value) > NODES_PER_ORG_MAX:
            raise self.fail(f"{where} must be an array of at most {NODES_PER_ORG_MAX}")
        for item in value:
            self.keys(item, allowed, f"{where}[]")
        return value

    def string(self, value: Any, name: str, chars_max: int) -> str:
        if not isinstance(value, str) or not 0 < len(value) <= chars_max:
            raise self.fail(f"{name} must be a string of 1..{chars_max} chars")
        return value

    def integer(self, value: Any, name: str) -> int:
        if not isinstance(value, int) or isinstance(value, bool):
            raise self.fail(f"{name} must be an integer")
        return value

    def key(self, value: Any, name: str) -> bytes:
        try:
            raw = bytes.fromhex(value)
        except (TypeError, ValueError):
            raise self.fail(f"{name} must be hex") from None
        if len(raw) != limits.PUBLIC_KEY_BYTES:
            raise self.fail(f"{name} must be {limits.PUBLIC_KEY_BYTES} bytes")
        return raw


def load_bundle(path: Path | str) -> OrgBundle:
    path = Path(path)
    try:
        text = path.read_text(encoding="utf-8")
    except OSError as exc:
        raise OrgError(f"{path}: cannot read: {exc.strerror or exc}") from None
    except UnicodeDecodeError:
        raise OrgError(f"{path}: not UTF-8 text") from None
    return OrgBundle.from_json(text, source=str(path))


def private_dir(path: Path) -> Path:
    path.mkdir(parents=True, mode=0o700, exist_ok=True)
    path.chmod(0o700)
    return path


def create_org(
    directory: Path,
    spec: OrgSpec,
    *,
    now: datetime.datetime,
    nodes_dir: Path | None = None,
) -> OrgBundle:
    """Generate the organisation's keys into ``directory`` (node files under
    ``nodes_dir``, default ``directory/nodes``) and write its bundle; the directories
    must not hold these files yet (keys are never overwritten). ``now`` dates the TLS
    certificates."""
    spec.check()
    org_dir = private_dir(directory)
    nodes_root = nodes_dir if nodes_dir is not None else org_dir / "nodes"
    identities: list[BundleIdentity] = []
    for suffix, role in ORG_IDENTITIES:
        key = signing.generate_private_key()
        write_private_key(org_dir / f"{suffix}.key", key)
        identities.append(
            BundleIdentity(f"{spec.org_id}-{suffix}", role, signing.public_key_bytes(key))
        )
    nodes: list[BundleNode] = []
    if not spec.nodes:  # a member without a validator needs no TLS authority
        bundle = OrgBundle(spec.org_id, spec.name or spec.org_id, tuple(identities), (), None)
        (org_dir / BUNDLE).write_text(bundle.to_json(), encoding="utf-8")
        return bundle
    ca = create_ca(
        f"grantchain TLS CA of {spec.org_id}",
        now=now,
        node_ids=[n.node_id for n in spec.nodes],
        org_id=spec.org_id,
    )
    (org_dir / TLS_CA_CERT).write_bytes(ca.cert_pem)
    write_secret_file(org_dir / TLS_CA_KEY, ca.key_pem)
    for address in spec.nodes:
        node_dir = private_dir(nodes_root / address.node_id)
        key = signing.generate_private_key()
        write_private_key(node_dir / "node.key", key)
        tls = issue_node_cert(
            ca, address.node_id, ip=address.host if is_ip(address.host) else None, now=now
        )
        (node_dir / "tls.crt").write_bytes(tls.cert_pem)
        write_secret_file(node_dir / "tls.key", tls.key_pem)
        nodes.append(
            BundleNode(
                address.node_id,
                signing.public_key_bytes(key),
                address.host,
                address.rpc_port,
                address.peer_port,
            )
        )
    bundle = OrgBundle(
        spec.org_id, spec.name or spec.org_id, tuple(identities), tuple(nodes), ca.cert_pem
    )
    bundle.check()
    (org_dir / BUNDLE).write_text(bundle.to_json(), encoding="utf-8")
    return bundle


def init_org(directory: Path | str, spec: OrgSpec, *, now: datetime.datetime) -> OrgBundle:
    """``grantchain org init``: ``create_org`` into a new (or empty) directory, built in a
    staging sibling and moved into place, so a failure leaves nothing half-written."""
    spec.check()
    directory = Path(directory).absolute()
    if directory.exists() and (not directory.is_dir() or any(directory.iterdir())):
        raise OrgError(
            f"{directory} exists and is not empty; an organisation's keys are never replaced"
        )
    directory.parent.mkdir(parents=True, exist_ok=True)
    staging = Path(tempfile.mkdtemp(dir=directory.parent, prefix=f".{directory.name}.org-"))
    try:
        bundle = create_org(staging, spec, now=now)
        if directory.exists():
            directory.rmdir()
        os.rename(staging, directory)
    finally:
        shutil.rmtree(staging, ignore_errors=True)
    return bundle


def renew_node_cert(directory: Path | str, node_id: str, *, now: datetime.datetime) -> Path:
    """A new TLS key and certificate for one of the organisation's nodes, from its own
    CA (same node id and address; no other member need do anything), replacing
    ``nodes/<id>/tls.crt`` and ``tls.key``; the node uses them from its next start.
    Returns the certificate's path."""
    org_dir = Path(directory)
    bundle = load_bundle(org_dir / BUNDLE)
    node = next((n for n in bundle.nodes if n.node_id == node_id), None)
    if node is None:
        raise OrgError(f"{bundle.org_id} runs no node {node_id!r}")
    try:
        check_secret_file_mode(org_dir / TLS_CA_KEY)
        ca = load_ca((org_dir / TLS_CA_CERT).read_bytes(), (org_dir / TLS_CA_KEY).read_bytes())
    except (OSError, KeyFileError, ValueError) as exc:
        raise OrgError(f"{org_dir}: the organisation's TLS CA cannot be used: {exc}") from None
    if ca.cert.public_bytes(serialization.Encoding.PEM) != bundle.tls_ca_pem:
        raise OrgError(f"{org_dir / TLS_CA_CERT} is not the CA in {org_dir / BUNDLE}")
    issued = issue_node_cert(ca, node_id, ip=node.host if is_ip(node.host) else None, now=now)
    node_dir = org_dir / "nodes" / node_id
    for name, data in (("tls.key", issued.key_pem), ("tls.crt", issued.cert_pem)):
        fresh = node_dir / f".{name}.new"
        fresh.unlink(missing_ok=True)
        write_secret_file(fresh, data)
        os.replace(fresh, node_dir / name)
    return node_dir / "tls.crt"
