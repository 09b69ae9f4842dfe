"""The consortium's genesis, built from the members' public bundles only, and each
member's node configs, written from it.

``grantchain genesis build`` runs ``build_genesis``: it reads the organisations' bundles
(``node.cluster.org``: public keys, TLS CA certificates, node addresses) and the
consortium's parameters, and writes three public files::

    OUT/genesis.json    the genesis (chain.genesis.Genesis)
    OUT/tls-cas.pem     the trust bundle: every member's TLS CA, in organisation order
    OUT/network.json    the nodes' addresses, the genesis hash and the trust bundle's hash

It never opens a private key: it is given bundle files and nothing else. The result does
not depend on the order the bundles are given in (organisations and validators are
sorted), so every member can build the genesis on its own host and compare hashes.

``grantchain org configure`` runs ``configure_org``: a member checks that the genesis
holds its own keys exactly as its bundle says (and nothing else in its name), then
writes one ``config.toml`` per node of its own.
"""

from __future__ import annotations

import hashlib
import json
import re
import shutil
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from chain import limits
from chain.genesis import Genesis, GenesisError, Identity, Organisation, Validator
from node.cluster.org import BUNDLE, OrgBundle, OrgError, load_bundle
from node.runtime.config import NodeConfig, PeerAddress, write_config
from node.transport.tlsca import TrustBundleError, check_trust_bundle

GENESIS = "genesis.json"
TRUST_BUNDLE = "tls-cas.pem"
NETWORK = "network.json"
BUILD_FILES = (GENESIS, TRUST_BUNDLE, NETWORK)
ORGS_MAX = 100
NODES_MAX = 100


class GenesisBuildError(ValueError):
    """The bundles and parameters do not make a consortium; the message says why."""


@dataclass(frozen=True, slots=True)
class GenesisParams:
    chain_id: str
    genesis_time_ms: int
    consensus: str = "raft"
    governance_quorum: int | None = None
    """Organisations that must approve a governance proposal [a majority]."""
    auditor_orgs: tuple[str, ...] = ()
    """Organisations designated as auditing: their ``auditor`` identities read
    everything over the RPC (``acl.read_policy``)."""


@dataclass(frozen=True, slots=True)
class RpcSettings:
    """How an organisation's nodes serve their RPC (the node config's ``rpc_auth``,
    ``rpc_tls`` and ``explorer_reads``; ``node.api.auth``)."""

    rpc_auth: str = "members"
    rpc_tls: bool = True
    explorer_reads: str = "auditors"


MEMBERS_RPC = RpcSettings()
"""TLS, every read signed by a registered key and under the read policy, the explorer's
reads for auditors: what ``org configure`` writes unless told otherwise (a real
consortium's members compete; ``RpcSettings("open", False)`` is the opt-out)."""


@dataclass(frozen=True, slots=True)
class NetworkNode:
    node_id: str
    org_id: str
    host: str
    rpc_port: int
    peer_port: int


@dataclass(frozen=True, slots=True)
class Network:
    """``network.json``: where every validator is, tied to one genesis and trust bundle."""

    chain_id: str
    genesis_hash: bytes
    trust_bundle_sha256: bytes
    nodes: tuple[NetworkNode, ...]

    def to_json(self) -> str:
        doc = {
            "version": 1,
            "chain_id": self.chain_id,
            "genesis_hash": self.genesis_hash.hex(),
            "trust_bundle_sha256": self.trust_bundle_sha256.hex(),
            "nodes": [
                {
                    "node_id": n.node_id,
                    "org_id": n.org_id,
                    "host": n.host,
                    "rpc_port": n.rpc_port,
                    "peer_port": n.peer_port,
                }
                for n in self.nodes
            ],
        }
        return json.dumps(doc, indent=2) + "\n"

    @classmethod
    def from_json(cls, text: str, source: str) -> Network:
        try:
            doc = json.loads(text)
            if doc["version"] != 1:
                raise GenesisBuildError(f"{source}: unsupported version {doc['version']!r}")
            return cls(
                chain_id=str(doc["chain_id"]),
                genesis_hash=bytes.fromhex(doc["genesis_hash"]),
                trust_bundle_sha256=bytes.fromhex(doc["trust_bundle_sha256"]),
                nodes=tuple(
                    NetworkNode(
                        str(n["node_id"]),
                        str(n["org_id"]),
                        str(n["host"]),
                        int(n["rpc_port"]),
                        int(n["peer_port"]),
                    )
                    for n in doc["nodes"]
                ),
            )
        except GenesisBuildError:
            raise
        except (KeyError, TypeError, ValueError, AttributeError) as exc:
            raise GenesisBuildError(f"{source}: malformed: {exc!r}") from None


@dataclass(frozen=True, slots=True)
class Built:
    genesis: Genesis
    trust_bundle: bytes
    network: Network


def natural_key(text: str) -> tuple[Any, ...]:
    """``n2`` before ``n10``: digits compare as numbers."""
    return tuple(int(p) if p.isdigit() else p for p in re.split(r"(\d+)", text))


def build_genesis(bundles: Sequence[OrgBundle], params: GenesisParams) -> Built:
    """The genesis, trust bundle and network description from the bundles (pure: reads
    nothing, writes nothing)."""
    if not bundles:
        raise GenesisBuildError("no organisation bundles given")
    if len(bundles) > ORGS_MAX:
        raise GenesisBuildError(f"at most {ORGS_MAX} organisations, got {len(bundles)}")
    if params.consensus not in ("raft", "pbft"):
        raise GenesisBuildError(f"--consensus must be raft or pbft, got {params.consensus!r}")
    if not 0 < len(params.chain_id) <= limits.CHAIN_ID_CHARS_MAX:
        raise GenesisBuildError(f"chain id must be 1..{limits.CHAIN_ID_CHARS_MAX} chars")
    if not 0 <= params.genesis_time_ms <= limits.TIMESTAMP_MS_MAX:
        raise GenesisBuildError(f"genesis time must be >= 0 ms, got {params.genesis_time_ms}")
    orgs = sorted(bundles, key=lambda b: natural_key(b.org_id))
    for b in orgs:
        b.check(f"bundle of {b.org_id}")
    _unique([b.org_id for b in orgs], "organisation id")
    nodes = sorted(
        ((n, b.org_id) for b in orgs for n in b.nodes), key=lambda p: natural_key(p[0].node_id)
    )
    if len(nodes) > NODES_MAX:
        raise GenesisBuildError(f"at most {NODES_MAX} validators, got {len(nodes)}")
    _unique([n.node_id for n, _ in nodes], "node id")
    _unique([f"{n.host}:{n.peer_port}" for n, _ in nodes], "peer address")
    _unique([f"{n.host}:{n.rpc_port}" for n, _ in nodes], "RPC address")
    _unique(
        [i.public_key.hex() for b in orgs for i in b.identities]
        + [n.public_key.hex() for n, _ in nodes],
        "public key",
    )
    _unique([i.name for b in orgs for i in b.identities], "identity name")
    trust_bundle = b"".join(b.tls_ca_pem for b in orgs if b.tls_ca_pem is not None)
    if not trust_bundle:
        raise GenesisBuildError("no organisation runs a node")
    try:
        check_trust_bundle(trust_bundle)
    except TrustBundleError as exc:
        raise GenesisBuildError(f"the members' TLS CAs cannot be trusted together: {exc}") from None
    quorum = params.governance_quorum
    genesis = Genesis(
        chain_id=params.chain_id,
        consensus=params.consensus,
        timestamp_ms=params.genesis_time_ms,
        organisations=tuple(Organisation(b.org_id, b.name) for b in orgs),
        identities=tuple(
            Identity(b.org_id, i.name, i.role, i.public_key) for b in orgs for i in b.identities
        ),
        validators=tuple(Validator(n.node_id, org_id, n.public_key) for n, org_id in nodes),
        governance_quorum=quorum if quorum is not None else len(orgs) // 2 + 1,
        auditor_orgs=tuple(sorted(set(params.auditor_orgs))),
    )
    try:
        genesis.check()
    except GenesisError as exc:
        raise GenesisBuildError(str(exc)) from None
    network = Network(
        chain_id=params.chain_id,
        genesis_hash=genesis.hash,
        trust_bundle_sha256=hashlib.sha256(trust_bundle).digest(),
        nodes=tuple(
            NetworkNode(n.node_id, org_id, n.host, n.rpc_port, n.peer_port) for n, org_id in nodes
        ),
    )
    return Built(genesis, trust_bundle, network)


def _unique(values: list[str], what: str) -> None:
    seen: set[str] = set()
    for v in values:
        if v in seen:
            raise GenesisBuildError(f"{what} {v!r} appears in more than one place")
        seen.add(v)


def write_built(out_dir: Path, built: Built) -> None:
    """Write the three public files into ``out_dir`` (created if missing)."""
    out_dir.mkdir(parents=True, exist_ok=True)
    (out_dir / GENESIS).write_text(built.genesis.to_json(), encoding="utf-8")
    (out_dir / TRUST_BUNDLE).write_bytes(built.trust_bundle)
    (out_dir / NETWORK).write_text(built.network.to_json(), encoding="utf-8")


def build_from_files(
    bundle_paths: Sequence[Path], params: GenesisParams, out_dir: Path, *, force: bool = False
) -> Built:
    """``grantchain genesis build``: read the bundle files, build, write ``out_dir``."""
    present = [name for name in BUILD_FILES if (out_dir / name).exists()]
    if present and not force:
        raise GenesisBuildError(f"{out_dir} already holds {', '.join(present)}; use --force")
    try:
        bundles = [load_bundle(p) for p in bundle_paths]
    except OrgError as exc:
        raise GenesisBuildError(str(exc)) from None
    built = build_genesis(bundles, params)
    write_built(out_dir, built)
    return built


@dataclass(frozen=True, slots=True)
class Published:
    """What a member reads back from a genesis build: checked against each other."""

    genesis: Genesis
    trust_bundle: bytes
    network: Network


def load_published(genesis: Path, trust_bundle: Path, network: Path) -> Published:
    try:
        g = Genesis.from_json(genesis.read_text(encoding="utf-8"))
        tb = trust_bundle.read_bytes()
        net = Network.from_json(network.read_text(encoding="utf-8"), str(network))
    except OSError as exc:
        raise GenesisBuildError(f"cannot read {exc.filename}: {exc.strerror or exc}") from None
    except GenesisError as exc:
        raise GenesisBuildError(f"{genesis}: {exc}") from None
    if net.genesis_hash != g.hash:
        raise GenesisBuildError(f"{network} belongs to another genesis than {genesis}")
    if net.trust_bundle_sha256 != hashlib.sha256(tb).digest():
        raise GenesisBuildError(f"{trust_bundle} is not the trust bundle {network} names")
    try:
        check_trust_bundle(tb)
    except TrustBundleError as exc:
        raise GenesisBuildError(f"{trust_bundle}: {exc}") from None
    if sorted(n.node_id for n in net.nodes) != sorted(v.node_id for v in g.validators):
        raise GenesisBuildError(f"{network} does not list the genesis' validators")
    return Published(g, tb, net)


def check_own_entries(published: Published, bundle: OrgBundle) -> None:
    """The genesis holds this organisation exactly as its own bundle says: its
    identities and validators with its public keys, nothing more in its name, and its
    own TLS CA in the trust bundle. A member runs this before trusting a genesis that
    someone else built."""
    g = published.genesis
    who = bundle.org_id
    if who not in [o.org_id for o in g.organisations]:
        raise GenesisBuildError(f"the genesis has no organisation {who!r}")
    want_ids = sorted((i.name, i.role, i.public_key) for i in bundle.identities)
    got_ids = sorted((i.name, i.role, i.public_key) for i in g.identities if i.org_id == who)
    if want_ids != got_ids:
        raise GenesisBuildError(f"the genesis' identities of {who} are not those of its bundle")
    want_vals = sorted((n.node_id, n.public_key) for n in bundle.nodes)
    got_vals = sorted((v.node_id, v.public_key) for v in g.validators if v.org_id == who)
    if want_vals != got_vals:
        raise GenesisBuildError(f"the genesis' validators of {who} are not those of its bundle")
    if bundle.tls_ca_pem is not None and bundle.tls_ca_pem not in published.trust_bundle:
        raise GenesisBuildError(f"the trust bundle does not hold {who}'s TLS CA")
    addresses = {n.node_id: (n.host, n.rpc_port, n.peer_port) for n in published.network.nodes}
    for n in bundle.nodes:
        if addresses.get(n.node_id) != (n.host, n.rpc_port, n.peer_port):
            raise GenesisBuildError(f"network.json gives {n.node_id} another address")


def write_node_configs(
    bundle: OrgBundle,
    published: Published,
    *,
    nodes_dir: Path,
    genesis: Path,
    trust_bundle: Path,
    listen_host: str | None = None,
    rpc: RpcSettings = MEMBERS_RPC,
) -> dict[str, Path]:
    """One ``config.toml`` per node of ``bundle``'s organisation in ``nodes_dir/<id>/``,
    pointing at its own keys there and at ``genesis`` and ``trust_bundle``; peers from
    the network description. Nodes listen on their own host unless ``listen_host``
    (``0.0.0.0`` in a container), and serve the RPC as ``rpc`` says. Returns node id ->
    config path."""
    check_own_entries(published, bundle)
    out: dict[str, Path] = {}
    for n in bundle.nodes:
        node_dir = nodes_dir / n.node_id
        host = listen_host if listen_host is not None else n.host
        cfg = NodeConfig(
            node_id=n.node_id,
            data_dir=node_dir / "data",
            genesis=genesis,
            node_key=node_dir / "node.key",
            tls_cert=node_dir / "tls.crt",
            tls_key=node_dir / "tls.key",
            ca_cert=trust_bundle,
            rpc_host=host,
            rpc_port=n.rpc_port,
            peer_host=host,
            peer_port=n.peer_port,
            rpc_auth=rpc.rpc_auth,
            rpc_tls=rpc.rpc_tls,
            explorer_reads=rpc.explorer_reads,
            peers=tuple(
                PeerAddress(p.node_id, p.host, p.peer_port)
                for p in published.network.nodes
                if p.node_id != n.node_id
            ),
        )
        path = node_dir / "config.toml"
        write_config(cfg, path)
        out[n.node_id] = path
    return out


def configure_org(
    org_dir: Path,
    build_dir: Path,
    *,
    listen_host: str | None = None,
    rpc: RpcSettings = MEMBERS_RPC,
) -> dict[str, Path]:
    """``grantchain org configure``: copy the build's public files into ``org_dir``,
    check them against the organisation's own bundle, write its nodes' configs."""
    bundle = load_bundle(org_dir / BUNDLE)
    for name in BUILD_FILES:
        if not (build_dir / name).is_file():
            raise GenesisBuildError(
                f"{build_dir / name}: missing (run grantchain genesis build first)"
            )
    check_own_entries(
        load_published(build_dir / GENESIS, build_dir / TRUST_BUNDLE, build_dir / NETWORK),
        bundle,
    )
    for name in BUILD_FILES:
        if (build_dir / name).resolve() != (org_dir / name).resolve():
            shutil.copyfile(build_dir / name, org_dir / name)
    return write_node_configs(
        bundle,
        load_published(org_dir / GENESIS, org_dir / TRUST_BUNDLE, org_dir / NETWORK),
        nodes_dir=org_dir / "nodes",
        genesis=org_dir / GENESIS,
        trust_bundle=org_dir / TRUST_BUNDLE,
        listen_host=listen_host,
        rpc=rpc,
    )
