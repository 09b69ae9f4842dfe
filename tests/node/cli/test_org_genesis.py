"""Nobody holds another member's secrets (issue 15 §1): each organisation makes its own
keys and TLS CA (``grantchain org init``), the genesis is built from public bundles only
(``grantchain genesis build``, which opens no private key), each member checks the
genesis against its own bundle (``grantchain org configure``), and a node trusts every
member's CA while refusing a certificate a member issued for another member's node, or
one from a CA that is not in the consortium's trust bundle.
"""

from __future__ import annotations

import dataclasses
import datetime
import json
import random
import shutil
import socket
import ssl
import sys
import threading
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from chain.genesis import Genesis
from node.cluster.consortium import Manifest, NodeEntry
from node.cluster.genesis_build import (
    GenesisBuildError,
    GenesisParams,
    build_from_files,
    build_genesis,
    configure_org,
)
from node.cluster.local import free_base_port, stop_node, wait_for_leader
from node.cluster.org import NodeAddress, OrgBundle, OrgError, load_bundle, renew_node_cert
from node.runtime.config import load_config
from node.runtime.keys import check_secret_file_mode, write_secret_file
from node.transport.tls import (
    PeerIdentityError,
    check_peer_address,
    client_context,
    peer_identity,
    server_context,
)
from node.transport.tlsca import (
    TrustBundleError,
    check_trust_bundle,
    create_ca,
    issue_node_cert,
    load_ca,
)
from tests.conftest import grantchain
from tests.node.clusters import start_test_node

NOW = datetime.datetime.now(datetime.UTC)
GENESIS_MS = 1_767_225_600_000
HANDSHAKE_S = 10.0
# org1 runs n1 and n4, org2 n2, org3 n3 (as `grantchain init --nodes 4` lays them out).
MEMBERS = {"org1": ("n1", "n4"), "org2": ("n2",), "org3": ("n3",)}
GUIDE = Path(__file__).resolve().parents[3] / "deploy" / "README.md"
OPEN_RPC_COMMAND = (
    "grantchain org configure /etc/grantchain --genesis-dir genesis/ --rpc-auth open --no-rpc-tls"
)
"""deploy/README.md's opt-out, for an organisation directory at /etc/grantchain."""


def _ports(base: int) -> dict[str, str]:
    ids = ["n1", "n2", "n3", "n4"]
    return {nid: f"{nid}=127.0.0.1:{base + i}:{base + 100 + i}" for i, nid in enumerate(ids)}


@pytest.fixture(scope="module")
def orgs(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    """Three organisations, each made by ``grantchain org init`` in its own directory."""
    root = tmp_path_factory.mktemp("members")
    spec = _ports(free_base_port(4, random.Random()))
    out = {}
    for org_id, node_ids in MEMBERS.items():
        args = [a for nid in node_ids for a in ("--node", spec[nid])]
        r = grantchain("org", "init", str(root / org_id), "--org", org_id, *args, "--json")
        assert r.returncode == 0, r.stderr
        assert json.loads(r.stdout)["nodes"] == list(node_ids)
        out[org_id] = root / org_id
    return out


@pytest.fixture(scope="module")
def public(orgs: dict[str, Path], tmp_path_factory: pytest.TempPathFactory) -> Path:
    """What the members sent to whoever builds the genesis: the bundles, nothing else."""
    d = tmp_path_factory.mktemp("public")
    for org_id, org_dir in orgs.items():
        shutil.copyfile(org_dir / "bundle.json", d / f"{org_id}.json")
    return d


def _build_cli(public: Path, out: Path, *bundles: str) -> dict[str, Any]:
    r = grantchain(
        "genesis", "build", "--out", str(out), *(str(public / b) for b in bundles),
        "--chain-id", "members", "--genesis-time-ms", str(GENESIS_MS), "--json",
    )  # fmt: skip
    assert r.returncode == 0, r.stderr
    result: dict[str, Any] = json.loads(r.stdout)
    return result


@pytest.fixture(scope="module")
def build(public: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    out = tmp_path_factory.mktemp("build")
    summary = _build_cli(public, out, "org1.json", "org2.json", "org3.json")
    assert summary["validators"] == ["n1", "n2", "n3", "n4"]
    assert summary["organisations"] == ["org1", "org2", "org3"]
    return out


@pytest.fixture(scope="module")
def configured(orgs: dict[str, Path], build: Path) -> dict[str, Path]:
    for org_dir in orgs.values():
        r = grantchain("org", "configure", str(org_dir), "--genesis-dir", str(build))
        assert r.returncode == 0, r.stderr
    return orgs


# -- org init ---------------------------------------------------------------------------


def test_an_org_keeps_its_keys_and_its_bundle_is_public_only(orgs: dict[str, Path]) -> None:
    org1 = orgs["org1"]
    for rel in ("admin.key", "app.key", "tls-ca.key", "nodes/n1/node.key", "nodes/n4/tls.key"):
        assert (org1 / rel).stat().st_mode & 0o077 == 0, rel
    text = (org1 / "bundle.json").read_text()
    secrets = [p.read_text().strip() for p in org1.rglob("*.key")]
    assert len(secrets) == 7
    for secret in secrets:  # hex keys, and the PEM bodies of the TLS keys
        body = "".join(line for line in secret.splitlines() if not line.startswith("-----"))
        assert body not in text
    bundle = load_bundle(org1 / "bundle.json")
    assert [n.node_id for n in bundle.nodes] == ["n1", "n4"]
    assert {i.role for i in bundle.identities} == {"admin", "app"}
    assert bundle.tls_ca_pem is not None
    (ca,) = check_trust_bundle(bundle.tls_ca_pem)
    assert ca.node_ids == ("n1", "n4"), "org1's CA may vouch for org1's nodes only"


def test_org_init_refuses_bad_input_and_an_existing_org(
    orgs: dict[str, Path], tmp_path: Path
) -> None:
    r = grantchain("org", "init", str(orgs["org1"]), "--org", "org1", "--node", "n1=127.0.0.1")
    assert r.returncode == 2 and "never replaced" in r.stderr
    for node, message in (
        ("n1", "expected ID=HOST"),
        ("N1=127.0.0.1", "DNS label"),
        ("n1=127.0.0.1:7700", "give both"),
        ("n1=127.0.0.1:7700:7700", "both 7700"),
        ("n1=bad_host!", "not an address"),
    ):
        r = grantchain("org", "init", str(tmp_path / "x"), "--org", "x", "--node", node)
        assert r.returncode == 2 and message in r.stderr, (node, r.stderr)
    assert not (tmp_path / "x").exists()
    assert NodeAddress.parse("n5=[::1]:1:2") == NodeAddress("n5", "::1", 1, 2)
    assert NodeAddress.parse("n5=node5.example.org") == NodeAddress("n5", "node5.example.org")


# -- genesis build ------------------------------------------------------------------------


@pytest.fixture
def opened() -> Iterator[list[str]]:
    """Every file path this process opens while the test runs (a PEP 578 audit hook)."""
    paths: list[str] = []
    active = [True]

    def hook(event: str, args: tuple[Any, ...]) -> None:
        if active[0] and event == "open" and isinstance(args[0], (str, Path)):
            paths.append(str(args[0]))

    sys.addaudithook(hook)  # hooks cannot be removed; this one goes quiet after the test
    try:
        yield paths
    finally:
        active[0] = False


def test_genesis_build_opens_bundles_only_never_a_private_key(
    orgs: dict[str, Path], public: Path, tmp_path: Path, opened: list[str]
) -> None:
    out = tmp_path / "out"
    params = GenesisParams("members", GENESIS_MS)
    bundles = sorted(public.iterdir())
    built = build_from_files(bundles, params, out)
    assert not [p for p in opened if p.endswith(".key")]
    assert not [p for p in opened if any(p.startswith(f"{d}/") for d in orgs.values())]
    assert {Path(p) for p in opened if p.startswith(f"{public}/")} == set(bundles)
    assert {Path(p).parent for p in opened if p.startswith(f"{tmp_path}/")} == {out}
    assert sorted(p.name for p in out.iterdir()) == ["genesis.json", "network.json", "tls-cas.pem"]
    assert Genesis.from_json((out / "genesis.json").read_text()).hash == built.genesis.hash


def test_every_member_builds_the_same_genesis_whatever_the_order(
    public: Path, build: Path, tmp_path: Path
) -> None:
    again = _build_cli(public, tmp_path, "org3.json", "org1.json", "org2.json")
    g = Genesis.from_json((build / "genesis.json").read_text())
    assert again["genesis_hash"] == g.hash.hex()
    assert (tmp_path / "tls-cas.pem").read_bytes() == (build / "tls-cas.pem").read_bytes()
    assert g.governance_quorum == 2
    assert [(v.node_id, v.org_id) for v in g.validators] == [
        ("n1", "org1"), ("n2", "org2"), ("n3", "org3"), ("n4", "org1"),
    ]  # fmt: skip


def _bundle_doc(public: Path, org_id: str) -> dict[str, Any]:
    doc: dict[str, Any] = json.loads((public / f"{org_id}.json").read_text())
    return doc


def _build_docs(docs: list[dict[str, Any]]) -> None:
    bundles = [OrgBundle.from_json(json.dumps(d), source=f"bundle {i}") for i, d in enumerate(docs)]
    build_genesis(bundles, GenesisParams("members", GENESIS_MS))


def test_genesis_build_refuses_what_would_let_one_member_act_for_another(
    public: Path, orgs: dict[str, Path]
) -> None:
    org1, org2, org3 = (_bundle_doc(public, o) for o in ("org1", "org2", "org3"))
    with pytest.raises(OrgError, match="unknown field 'private_key'"):
        _build_docs([{**org1, "private_key": "00" * 32}, org2])
    with pytest.raises(GenesisBuildError, match="organisation id 'org1'"):
        _build_docs([org1, {**org2, "org_id": "org1"}])
    # org2 claims org1's node n1 in its bundle (and its CA for it): refused.
    stolen = {**org2, "nodes": [*org2["nodes"], {**org1["nodes"][0], "public_key": "ab" * 32}]}
    with pytest.raises(OrgError, match="exactly the organisation's node ids"):
        _build_docs([org1, stolen])
    # A CA that is not constrained to its org's nodes could vouch for anyone's.
    free_ca = create_ca("an unconstrained CA", now=NOW)
    with pytest.raises(OrgError, match="name-constrained to exactly"):
        _build_docs([org1, {**org3, "tls_ca": free_ca.cert_pem.decode()}])
    # A CA constrained to another org's node id too.
    greedy = create_ca("greedy", now=NOW, node_ids=["n3", "n2"])
    with pytest.raises(OrgError, match=r"permits \['n2', 'n3'\]"):
        _build_docs([org1, org2, {**org3, "tls_ca": greedy.cert_pem.decode()}])
    with pytest.raises(GenesisBuildError, match="public key"):
        reused = {**org3["identities"][0], "public_key": org1["nodes"][0]["public_key"]}
        dup = {**org3, "identities": [reused, org3["identities"][1]]}
        _build_docs([org1, org2, dup])
    with pytest.raises(GenesisBuildError, match="peer address"):
        taken = org2["nodes"][0]["peer_port"]
        moved = {**org3, "nodes": [{**org3["nodes"][0], "peer_port": taken}]}
        _build_docs([org1, org2, moved])


def test_a_member_without_a_node_has_no_tls_ca(public: Path, tmp_path: Path) -> None:
    r = grantchain("org", "init", str(tmp_path / "org9"), "--org", "org9", "--json")
    assert r.returncode == 0, r.stderr
    assert not (tmp_path / "org9" / "tls-ca.key").exists()
    shutil.copyfile(tmp_path / "org9" / "bundle.json", public / "org9.json")
    try:
        summary = _build_cli(public, tmp_path / "out", "org9.json", "org1.json", "org2.json")
    finally:
        (public / "org9.json").unlink()
    assert summary["organisations"] == ["org1", "org2", "org9"]
    assert len(check_trust_bundle((tmp_path / "out" / "tls-cas.pem").read_bytes())) == 2
    r = grantchain(
        "genesis", "build", "--out", str(tmp_path / "o2"),
        str(tmp_path / "org9" / "bundle.json"), "--chain-id", "c",
    )  # fmt: skip
    assert r.returncode == 2 and "no organisation runs a node" in r.stderr


def test_genesis_build_designates_auditing_organisations(public: Path, tmp_path: Path) -> None:
    """Issue 15 §3: which organisations' auditors read everything is the consortium's
    decision, in the genesis; an unknown one is refused, and a genesis without any keeps
    the hash it had before the field existed."""
    bundles = [str(public / f"{o}.json") for o in ("org1", "org2")]
    r = grantchain(
        "genesis", "build", "--out", str(tmp_path / "a"), *bundles, "--chain-id", "c",
        "--genesis-time-ms", "1", "--auditor-org", "org2", "--json",
    )  # fmt: skip
    assert r.returncode == 0, r.stderr
    assert json.loads(r.stdout)["auditor_orgs"] == ["org2"]
    g = Genesis.from_json((tmp_path / "a" / "genesis.json").read_text())
    assert g.auditor_orgs == ("org2",)
    plain = dataclasses.replace(g, auditor_orgs=())
    assert plain.hash != g.hash
    assert len(plain.to_value()) == 8  # the layout before auditor_orgs: same hash as then
    r = grantchain(
        "genesis", "build", "--out", str(tmp_path / "b"), *bundles, "--chain-id", "c",
        "--auditor-org", "org7",
    )  # fmt: skip
    assert r.returncode == 2 and "auditor_orgs: unknown organisation 'org7'" in r.stderr


def test_genesis_build_cli_errors(public: Path, tmp_path: Path, build: Path) -> None:
    (tmp_path / "bad.json").write_text("{")
    r = grantchain(
        "genesis", "build", "--out", str(tmp_path / "o"), str(tmp_path / "bad.json"),
        "--chain-id", "c",
    )  # fmt: skip
    assert r.returncode == 2 and "not JSON" in r.stderr
    r = grantchain(
        "genesis", "build", "--out", str(build), str(public / "org1.json"), "--chain-id", "c"
    )
    assert r.returncode == 2 and "use --force" in r.stderr


# -- org configure ------------------------------------------------------------------------


def test_configure_writes_each_orgs_own_node_configs(configured: dict[str, Path]) -> None:
    cfg = load_config(configured["org1"] / "nodes/n4/config.toml")
    assert cfg.genesis == (configured["org1"] / "genesis.json").resolve()
    assert cfg.ca_cert == (configured["org1"] / "tls-cas.pem").resolve()
    assert cfg.node_key == (configured["org1"] / "nodes/n4/node.key").resolve()
    assert [p.node_id for p in cfg.peers] == ["n1", "n2", "n3"]
    assert not (configured["org2"] / "nodes/n1").exists(), "org2 has no files of org1's nodes"
    # reads for members over TLS unless told otherwise (issue 15 §3, deploy/README.md)
    assert (cfg.rpc_auth, cfg.rpc_tls, cfg.explorer_reads) == ("members", True, "auditors")


def test_configure_can_open_the_rpc_when_told(configured: dict[str, Path]) -> None:
    org2 = configured["org2"]
    assert OPEN_RPC_COMMAND in GUIDE.read_text(), "the guide's command, as this test runs it"
    argv = OPEN_RPC_COMMAND.replace("genesis/", str(org2)).replace("/etc/grantchain", str(org2))
    r = grantchain(*argv.split()[1:])
    try:
        assert r.returncode == 0, r.stderr
        cfg = load_config(org2 / "nodes/n2/config.toml")
        assert (cfg.rpc_auth, cfg.rpc_tls) == ("open", False)
    finally:  # the module's later tests start these nodes as configured at first
        grantchain("org", "configure", str(org2), "--genesis-dir", str(org2))


def test_configure_refuses_a_genesis_that_misstates_the_org(
    orgs: dict[str, Path], public: Path, tmp_path: Path
) -> None:
    """A builder who swapped in a key of its own for org2's validator is caught by org2."""
    org2 = _bundle_doc(public, "org2")
    forged = {**org2, "nodes": [{**org2["nodes"][0], "public_key": "cd" * 32}]}
    (tmp_path / "forged.json").write_text(json.dumps(forged))
    shutil.copyfile(public / "org1.json", tmp_path / "org1.json")
    _build_cli(tmp_path, tmp_path / "out", "org1.json", "forged.json")
    with pytest.raises(GenesisBuildError, match="validators of org2 are not those of its bundle"):
        configure_org(orgs["org2"], tmp_path / "out")
    with pytest.raises(GenesisBuildError, match="no organisation 'org3'"):
        configure_org(orgs["org3"], tmp_path / "out")
    (tmp_path / "out" / "tls-cas.pem").write_bytes(b"")
    r = grantchain("org", "configure", str(orgs["org1"]), "--genesis-dir", str(tmp_path / "out"))
    assert r.returncode == 2 and "not the trust bundle" in r.stderr


# -- the transport: every member's CA, each for its own nodes only -----------------------


def _handshake(
    server: tuple[Path, Path, Path], client: tuple[Path, Path, Path], dial: str
) -> tuple[Any, Any]:
    """One TLS handshake with the node's own contexts: (what the server saw, what the
    client saw): a peer id, or the exception."""
    srv = server_context(ca_cert=server[0], cert=server[1], key=server[2])
    cli = client_context(ca_cert=client[0], cert=client[1], key=client[2])
    listener = socket.create_server(("127.0.0.1", 0))
    listener.settimeout(HANDSHAKE_S)
    seen: dict[str, Any] = {}

    def serve() -> None:
        try:
            conn, _ = listener.accept()
            conn.settimeout(HANDSHAKE_S)
            with srv.wrap_socket(conn, server_side=True) as tls:
                seen["server"] = peer_identity(tls.getpeercert())
                tls.sendall(b"ok")
        except (OSError, ValueError) as exc:
            seen["server"] = exc

    t = threading.Thread(target=serve)
    t.start()
    try:
        with (
            socket.create_connection(listener.getsockname(), timeout=HANDSHAKE_S) as raw,
            cli.wrap_socket(raw, server_hostname=dial) as tls,
        ):
            tls.recv(2)
            seen["client"] = peer_identity(tls.getpeercert())
    except (OSError, ValueError) as exc:
        seen["client"] = exc
    finally:
        t.join(HANDSHAKE_S)
        listener.close()
    return seen["server"], seen["client"]


def _node_files(org_dir: Path, node_id: str) -> tuple[Path, Path, Path]:
    d = org_dir / "nodes" / node_id
    return org_dir / "tls-cas.pem", d / "tls.crt", d / "tls.key"


def _forge(
    directory: Path, ca_dir: Path | None, node_id: str, trust: Path
) -> tuple[Path, Path, Path]:
    """A certificate for ``node_id`` from org ``ca_dir``'s CA (a member's, misused), or
    from a fresh CA outside the consortium when ``ca_dir`` is None."""
    if ca_dir is None:
        ca = create_ca("outsider", now=NOW, node_ids=[node_id])
    else:
        ca = load_ca((ca_dir / "tls-ca.crt").read_bytes(), (ca_dir / "tls-ca.key").read_bytes())
    issued = issue_node_cert(ca, node_id, ip="127.0.0.1", now=NOW)
    directory.mkdir()
    (directory / "tls.crt").write_bytes(issued.cert_pem)
    write_secret_file(directory / "tls.key", issued.key_pem)
    return trust, directory / "tls.crt", directory / "tls.key"


def test_members_nodes_authenticate_across_orgs(configured: dict[str, Path]) -> None:
    n1 = _node_files(configured["org1"], "n1")
    n2 = _node_files(configured["org2"], "n2")
    assert _handshake(n1, n2, dial="n1") == ("n2", "n1")
    assert _handshake(n2, _node_files(configured["org1"], "n4"), dial="n2") == ("n4", "n2")


def test_a_member_ca_cannot_vouch_for_another_members_node(
    configured: dict[str, Path], tmp_path: Path
) -> None:
    n1 = _node_files(configured["org1"], "n1")
    # org1 (a member, with its own CA key) makes a certificate naming org2's node n2.
    evil = _forge(tmp_path / "evil", configured["org1"], "n2", n1[0])
    server_saw, _ = _handshake(n1, evil, dial="n1")
    assert isinstance(server_saw, ssl.SSLCertVerificationError)
    assert "permitted subtree violation" in str(server_saw)
    # ... and n3 dialling "n2" reaches org1's impostor: the dialler refuses it too.
    _, client_saw = _handshake(evil, _node_files(configured["org3"], "n3"), dial="n2")
    assert isinstance(client_saw, ssl.SSLCertVerificationError)
    assert "permitted subtree violation" in str(client_saw)


def test_a_valid_certificate_for_another_node_id_is_refused_by_the_dialler(
    configured: dict[str, Path],
) -> None:
    n3 = _node_files(configured["org3"], "n3")  # a genuine certificate, but for n3
    _, client_saw = _handshake(n3, _node_files(configured["org1"], "n1"), dial="n2")
    assert isinstance(client_saw, ssl.SSLCertVerificationError)
    assert "Hostname mismatch" in str(client_saw) or "hostname" in str(client_saw).lower()


def test_a_ca_not_in_the_genesis_is_refused(configured: dict[str, Path], tmp_path: Path) -> None:
    n1 = _node_files(configured["org1"], "n1")
    outsider = _forge(tmp_path / "outsider", None, "n2", n1[0])
    server_saw, _ = _handshake(n1, outsider, dial="n1")
    assert isinstance(server_saw, ssl.SSLCertVerificationError)
    assert "unable to get local issuer certificate" in str(server_saw)


def test_a_node_refuses_a_trust_bundle_that_lets_a_ca_vouch_for_anyone(
    configured: dict[str, Path], tmp_path: Path
) -> None:
    ca_file, cert, key = _node_files(configured["org1"], "n1")
    loose = tmp_path / "loose.pem"
    loose.write_bytes(ca_file.read_bytes() + create_ca("anyone", now=NOW).cert_pem)
    with pytest.raises(TrustBundleError, match="not name-constrained"):
        server_context(ca_cert=loose, cert=cert, key=key)
    overlap = tmp_path / "overlap.pem"
    overlap.write_bytes(ca_file.read_bytes() + create_ca("x", now=NOW, node_ids=["n2"]).cert_pem)
    with pytest.raises(TrustBundleError, match="'n2' is permitted by two CAs"):
        client_context(ca_cert=overlap, cert=cert, key=key)


# -- and the real thing: nodes of three organisations form a cluster ------------------------


def test_nodes_configured_by_each_org_form_a_cluster(configured: dict[str, Path]) -> None:
    nodes = []
    for org_id, node_ids in MEMBERS.items():
        for nid in node_ids:
            cfg = load_config(configured[org_id] / "nodes" / nid / "config.toml")
            nodes.append(
                NodeEntry(
                    nid,
                    org_id,
                    b"",
                    cfg.rpc_host,
                    cfg.rpc_port,
                    cfg.peer_host,
                    cfg.peer_port,
                    configured[org_id] / "nodes" / nid / "config.toml",
                    cfg.data_dir,
                    cfg.node_key,
                    rpc_tls=cfg.rpc_tls,
                )
            )
    trust = configured["org1"] / "tls-cas.pem"  # every node's RPC certificate chains to it
    manifest = Manifest(
        configured["org1"].parent, "members", "raft", Path(), b"", trust, tuple(nodes), ()
    )
    try:
        for n in nodes:
            start_test_node(n)
        assert wait_for_leader(manifest) in {"n1", "n2", "n3", "n4"}
    finally:
        for n in nodes:
            stop_node(n, kill=True)


def test_a_certificate_naming_addresses_is_good_only_at_them() -> None:
    """The check both ends of a peer connection make (tests/deploy/test_netns.py runs it
    over real addresses)."""
    cert = {"subjectAltName": (("DNS", "n1"), ("IP Address", "10.0.0.1"))}
    check_peer_address(cert, "10.0.0.1")
    check_peer_address(cert, "::ffff:10.0.0.1")  # an IPv4 peer on a dual-stack socket
    with pytest.raises(
        PeerIdentityError, match=r"bound to 10\.0\.0\.1, but the peer is at 10\.0\.0\.2"
    ):
        check_peer_address(cert, "10.0.0.2")
    check_peer_address(cert, "n1.example.org")  # dialled by name: the node id decides
    check_peer_address({"subjectAltName": (("DNS", "n1"),)}, "10.0.0.2")  # no address named
    v6 = {"subjectAltName": (("DNS", "n1"), ("IP Address", "FD00:0:0:0:0:0:0:1\n"))}
    check_peer_address(v6, "fd00::1")


def test_an_org_renews_its_nodes_certificate_alone(
    configured: dict[str, Path], tmp_path: Path
) -> None:
    org1 = tmp_path / "org1"
    shutil.copytree(configured["org1"], org1)  # modes kept: keys stay 0600
    before = (org1 / "nodes/n4/tls.crt").read_bytes()
    trust = (org1 / "tls-cas.pem").read_bytes()
    r = grantchain("org", "renew-tls", str(org1), "--node", "n4")  # deploy/README's command
    assert r.returncode == 0 and "restart the node" in r.stdout, r.stderr
    cert = org1 / "nodes/n4/tls.crt"
    assert cert.read_bytes() != before and (org1 / "tls-cas.pem").read_bytes() == trust
    check_secret_file_mode(org1 / "nodes/n4/tls.key")
    assert not list((org1 / "nodes/n4").glob(".*.new"))
    renewed = _node_files(org1, "n4")
    assert _handshake(_node_files(configured["org2"], "n2"), renewed, dial="n2") == ("n4", "n2")
    r = grantchain("org", "renew-tls", str(org1), "--node", "n2")
    assert r.returncode == 2 and "org1 runs no node 'n2'" in r.stderr
    (org1 / "tls-ca.key").chmod(0o644)
    with pytest.raises(OrgError, match="too open"):
        renew_node_cert(org1, "n4", now=NOW)
