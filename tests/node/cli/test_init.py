"""``grantchain init``: a complete, loadable consortium with owner-only keys, refusing
to overwrite one unless forced; made by the same steps a real consortium takes (each
organisation's own keys and TLS CA, a genesis from public bundles)."""

from __future__ import annotations

import datetime
import json
import stat
from pathlib import Path

import pytest
from cryptography import x509
from cryptography.hazmat.primitives.asymmetric import ec

from chain import signing
from chain.genesis import Genesis
from node.cluster.consortium import (
    ConsortiumError,
    ConsortiumSpec,
    chain_id_from_name,
    create_consortium,
    load_manifest,
)
from node.runtime.config import load_config
from node.runtime.keys import KeyFileError, load_private_key
from tests.conftest import grantchain

NOW = datetime.datetime(2026, 1, 1, tzinfo=datetime.UTC)
GENESIS_MS = 1_767_225_600_000


def mode(path: Path) -> int:
    return stat.S_IMODE(path.stat().st_mode)


@pytest.fixture(scope="module")
def consortium(tmp_path_factory: pytest.TempPathFactory) -> Path:
    directory = tmp_path_factory.mktemp("init") / "my consortium"
    r = grantchain(
        "init", str(directory), "--nodes", "4", "--base-port", "9100",
        "--genesis-time-ms", str(GENESIS_MS), "--json",
    )  # fmt: skip
    assert r.returncode == 0, r.stderr
    summary = json.loads(r.stdout)
    assert summary["chain_id"] == "my-consortium"
    assert [n["node_id"] for n in summary["nodes"]] == ["n1", "n2", "n3", "n4"]
    return directory


def test_writes_the_whole_layout(consortium: Path) -> None:
    for rel in ("genesis.json", "consortium.json", "tls-cas.pem", "network.json"):
        assert (consortium / rel).is_file(), rel
    assert not (consortium / "ca").exists(), "no consortium-wide CA any more"
    for i in range(1, 5):
        for name in ("node.key", "tls.key", "tls.crt", "config.toml"):
            assert (consortium / f"nodes/n{i}/{name}").is_file()
    for j in range(1, 4):
        for name in ("admin.key", "app.key", "tls-ca.key", "tls-ca.crt", "bundle.json"):
            assert (consortium / f"orgs/org{j}/{name}").is_file()
    assert not (consortium / "orgs/org4").exists()


def test_every_private_key_is_0600(consortium: Path) -> None:
    keys = sorted(consortium.rglob("*.key"))
    assert len(keys) == 4 * 2 + 3 * 3  # node + TLS per node; admin, app, TLS CA per org
    assert {str(k.relative_to(consortium)): mode(k) for k in keys} == {
        str(k.relative_to(consortium)): 0o600 for k in keys
    }
    for d in ("nodes/n1", "orgs/org1"):
        assert mode(consortium / d) == 0o700


def test_genesis_matches_keys_and_round_robin(consortium: Path) -> None:
    g = Genesis.from_json((consortium / "genesis.json").read_text())
    assert g.chain_id == "my-consortium" and g.consensus == "raft"
    assert g.timestamp_ms == GENESIS_MS
    assert [o.org_id for o in g.organisations] == ["org1", "org2", "org3"]
    assert g.governance_quorum == 2
    assert [(v.node_id, v.org_id) for v in g.validators] == [
        ("n1", "org1"), ("n2", "org2"), ("n3", "org3"), ("n4", "org1"),
    ]  # fmt: skip
    for v in g.validators:
        key = load_private_key(consortium / "nodes" / v.node_id / "node.key")
        assert signing.public_key_bytes(key) == v.public_key
    roles = {(i.org_id, i.name): i.role for i in g.identities}
    assert roles[("org2", "org2-admin")] == "admin" and roles[("org2", "org2-app")] == "app"
    for i in g.identities:
        suffix = i.name.split("-")[-1]
        key = load_private_key(consortium / "orgs" / i.org_id / f"{suffix}.key")
        assert signing.public_key_bytes(key) == i.public_key


def test_configs_load_and_point_at_the_files(consortium: Path) -> None:
    for i in range(1, 5):
        cfg = load_config(consortium / f"nodes/n{i}/config.toml")
        assert cfg.node_id == f"n{i}"
        assert (cfg.rpc_port, cfg.peer_port) == (9100 + i - 1, 9200 + i - 1)
        assert cfg.rpc_host == cfg.peer_host == "127.0.0.1"
        assert cfg.data_dir == (consortium / f"nodes/n{i}/data").resolve()
        for path in (cfg.genesis, cfg.node_key, cfg.tls_cert, cfg.tls_key, cfg.ca_cert):
            assert path.is_file(), path
        assert [(p.node_id, p.port) for p in cfg.peers] == [
            (f"n{j}", 9200 + j - 1) for j in range(1, 5) if j != i
        ]


def test_tls_certs_chain_to_their_orgs_ca_and_name_the_node(consortium: Path) -> None:
    bundle = x509.load_pem_x509_certificates((consortium / "tls-cas.pem").read_bytes())
    cas = {
        j: x509.load_pem_x509_certificate((consortium / f"orgs/org{j}/tls-ca.crt").read_bytes())
        for j in (1, 2, 3)
    }
    assert bundle == [cas[1], cas[2], cas[3]], "the trust bundle is every org's CA"
    for ca in cas.values():
        assert isinstance(ca.public_key(), ec.EllipticCurvePublicKey)
    for i, org in ((1, 1), (2, 2), (3, 3), (4, 1)):
        cert = x509.load_pem_x509_certificate((consortium / f"nodes/n{i}/tls.crt").read_bytes())
        cert.verify_directly_issued_by(cas[org])
        with pytest.raises(ValueError):
            cert.verify_directly_issued_by(cas[org % 3 + 1])
        san = cert.extensions.get_extension_for_class(x509.SubjectAlternativeName).value
        assert san.get_values_for_type(x509.DNSName) == [f"n{i}"]
        assert [str(ip) for ip in san.get_values_for_type(x509.IPAddress)] == ["127.0.0.1"]


def test_manifest_describes_nodes_and_identities(consortium: Path) -> None:
    m = load_manifest(consortium)
    g = Genesis.from_json(m.genesis.read_text())
    assert m.genesis_hash == g.hash
    # a local consortium's nodes serve TLS and keep reads for members (issue 15 §3)
    assert [n.rpc_url for n in m.nodes] == [f"https://127.0.0.1:{9100 + i}" for i in range(4)]
    assert m.node("n3").config == (consortium / "nodes/n3/config.toml").resolve()
    cfg = load_config(m.node("n3").config)
    assert (cfg.rpc_auth, cfg.rpc_tls, cfg.explorer_reads) == ("members", True, "open")
    assert {(i.org_id, i.role) for i in m.identities} == {
        (f"org{j}", r) for j in (1, 2, 3) for r in ("admin", "app")
    }
    for ident in m.identities:
        assert signing.public_key_bytes(load_private_key(ident.key)) == ident.public_key
    doc = json.loads((consortium / "consortium.json").read_text())
    assert not doc["nodes"][0]["config"].startswith("/"), "paths are relative"


def test_refuses_to_overwrite_without_force(consortium: Path) -> None:
    before = (consortium / "genesis.json").read_bytes()
    r = grantchain("init", str(consortium), "--nodes", "1")
    assert r.returncode == 2
    assert "use --force" in r.stderr
    assert (consortium / "genesis.json").read_bytes() == before


def test_force_replaces_only_the_layout(tmp_path: Path) -> None:
    spec = ConsortiumSpec(nodes=3, orgs=2, chain_id="c", genesis_time_ms=GENESIS_MS)
    first = create_consortium(tmp_path / "c", spec, now=NOW)
    (tmp_path / "c" / "notes.txt").write_text("mine")
    (first.node("n3").data_dir).mkdir()
    with pytest.raises(ConsortiumError, match="not empty"):
        create_consortium(tmp_path / "c", spec, now=NOW)
    second = create_consortium(
        tmp_path / "c", ConsortiumSpec(nodes=1, orgs=1, chain_id="c", genesis_time_ms=1),
        now=NOW, force=True,
    )  # fmt: skip
    assert [n.node_id for n in second.nodes] == ["n1"]
    assert not (tmp_path / "c" / "nodes" / "n3").exists()
    assert (tmp_path / "c" / "notes.txt").read_text() == "mine"
    assert [p.name for p in tmp_path.iterdir()] == ["c"], "no staging directory left behind"


def test_pbft_and_single_org(tmp_path: Path) -> None:
    spec = ConsortiumSpec(nodes=4, orgs=1, chain_id="p", genesis_time_ms=0, consensus="pbft")
    m = create_consortium(tmp_path / "p", spec, now=NOW)
    g = Genesis.from_json(m.genesis.read_text())
    assert g.consensus == "pbft" and g.governance_quorum == 1
    assert {v.org_id for v in g.validators} == {"org1"}


def test_init_designates_auditing_organisations_and_can_keep_the_rpc_open(tmp_path: Path) -> None:
    r = grantchain(
        "init", str(tmp_path / "a"), "--nodes", "2", "--auditor-org", "org2",
        "--rpc-auth", "open", "--no-rpc-tls",
    )  # fmt: skip
    assert r.returncode == 0, r.stderr
    m = load_manifest(tmp_path / "a")
    assert Genesis.from_json(m.genesis.read_text()).auditor_orgs == ("org2",)
    assert [n.rpc_url[:7] for n in m.nodes] == ["http://"] * 2
    assert load_config(m.nodes[0].config).rpc_auth == "open"


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["--nodes", "0"], "--nodes must be in 1..100"),
        (["--nodes", "2", "--orgs", "0"], "--orgs must be in"),
        (["--nodes", "3", "--base-port", "65500"], "--base-port 65500"),
        (["--nodes", "2", "--consensus", "paxos"], "paxos"),
        (
            ["--nodes", "2", "--auditor-org", "org3"],
            "--auditor-org 'org3' is not one of org1..org2",
        ),
    ],
)
def test_bad_arguments_are_refused(tmp_path: Path, args: list[str], message: str) -> None:
    r = grantchain("init", str(tmp_path / "x"), *args)
    assert r.returncode == 2
    assert message in r.stderr
    assert not (tmp_path / "x").exists()


def test_same_genesis_time_gives_same_shape_but_fresh_keys(tmp_path: Path) -> None:
    spec = ConsortiumSpec(nodes=2, orgs=2, chain_id="same", genesis_time_ms=GENESIS_MS)
    a = create_consortium(tmp_path / "a", spec, now=NOW)
    b = create_consortium(tmp_path / "b", spec, now=NOW)
    assert a.genesis_hash != b.genesis_hash, "keys are fresh randomness each time"
    assert [n.node_id for n in a.nodes] == [n.node_id for n in b.nodes]


def test_key_loader_refuses_open_permissions_and_garbage(tmp_path: Path) -> None:
    spec = ConsortiumSpec(nodes=1, orgs=1, chain_id="k", genesis_time_ms=0)
    m = create_consortium(tmp_path / "k", spec, now=NOW)
    key = m.node("n1").node_key
    key.chmod(0o644)
    with pytest.raises(KeyFileError, match="too open"):
        load_private_key(key)
    key.chmod(0o600)
    key.write_text("zz" * 32)
    with pytest.raises(KeyFileError, match="not hex"):
        load_private_key(key)
    key.write_text("ab")
    with pytest.raises(KeyFileError, match="64 hex digits"):
        load_private_key(key)
    with pytest.raises(KeyFileError, match="cannot read"):
        load_private_key(tmp_path / "missing.key")


@pytest.mark.parametrize(
    ("name", "chain_id"),
    [("My Consortium!", "my-consortium"), ("___", "grantchain"), ("a" * 100, "a" * 64)],
)
def test_chain_id_from_directory_name(name: str, chain_id: str) -> None:
    assert chain_id_from_name(name) == chain_id


def test_cli_force_replaces_and_the_directory_is_relocatable(tmp_path: Path) -> None:
    target = tmp_path / "c"
    assert grantchain("init", str(target), "--nodes", "2", "--chain-id", "one").returncode == 0
    r = grantchain("init", str(target), "--nodes", "1", "--chain-id", "two", "--force")
    assert r.returncode == 0, r.stderr
    assert "consortium 'two'" in r.stdout
    moved = tmp_path / "elsewhere"
    target.rename(moved)
    cfg = load_config(moved / "nodes/n1/config.toml")
    assert cfg.genesis == (moved / "genesis.json").resolve()
    assert Genesis.from_json(cfg.genesis.read_text()).chain_id == "two"
    assert load_manifest(moved).node("n1").node_key == (moved / "nodes/n1/node.key").resolve()
