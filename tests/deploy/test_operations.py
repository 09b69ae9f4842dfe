"""The operations guide (deploy/README.md), command by command on a real 3-node cluster:
a stopped node's data directory backed up with tar and checked with ``grantchain verify``;
the node wiped and restored from the backup catches up with nothing acknowledged lost; a
node whose store has a schema this version does not read refuses to start, and the
upgrade procedure (move the data aside, start empty) brings it back in sync; every
metric the Grafana dashboard graphs is one a node exports. The nodes serve their RPC as
``org configure`` writes it (TLS, reads signed by a member), so the test reads as a
member does.
"""

from __future__ import annotations

import json
import re
import shlex
import subprocess
import time
from collections.abc import Iterator
from pathlib import Path

import lmdb
import pytest

from node.cluster.consortium import Manifest, NodeEntry
from node.cluster.local import read_pid, stop_node, wait_for_leader
from tests.conftest import grantchain
from tests.deploy.members import member_http, members_consortium, not_committed
from tests.node.clusters import start_test_node, wait_converged

ROOT = Path(__file__).resolve().parents[2]
DASHBOARD = ROOT / "deploy" / "grafana" / "grantchain-dashboard.json"
GUIDE = ROOT / "deploy" / "README.md"
EXIT_TIMEOUT_S = 60.0
# The guide's commands, for an organisation directory at /etc/grantchain and node n3.
BACKUP = "tar -C /etc/grantchain/nodes/n3 -czf n3-data.tar.gz data"
RESTORE = (
    "rm -rf /etc/grantchain/nodes/n3/data && tar -C /etc/grantchain/nodes/n3 -xzf n3-data.tar.gz"
)
UPGRADE = "mv /etc/grantchain/nodes/n3/data /etc/grantchain/nodes/n3/data.schema-old"


def in_guide(command: str) -> str:
    """``command`` as the guide prints it (so the guide and this test cannot drift)."""
    assert command in GUIDE.read_text(), f"deploy/README.md no longer says: {command}"
    return command


def sh(command: str, node: NodeEntry, cwd: Path) -> None:
    local = command.replace("/etc/grantchain/nodes/n3", str(node.config.parent))
    r = subprocess.run(["sh", "-c", local], cwd=cwd, capture_output=True, text=True, timeout=120)
    assert r.returncode == 0, f"{local}: {r.stderr}"


def load(manifest: Manifest, out: Path) -> set[str]:
    r = grantchain(
        "load", "--cluster", str(manifest.directory), "--rate", "100", "--duration", "2",
        "--out", str(out), "--json", timeout_s=300,
    )  # fmt: skip
    assert r.returncode == 0, r.stderr
    acked = set(out.read_text().split())
    assert json.loads(r.stdout)["committed"] == len(acked) > 0
    return acked


def committed_on(manifest: Manifest, node: NodeEntry, tx_ids: set[str]) -> None:
    missing = not_committed(manifest, node.rpc_url, tx_ids)
    assert not missing, f"{node.node_id} lacks {len(missing)} acknowledged txs"


def wait_exit(node: NodeEntry) -> None:
    deadline = time.monotonic() + EXIT_TIMEOUT_S
    while read_pid(node) is not None:
        assert time.monotonic() < deadline, f"{node.node_id} did not stop"
        time.sleep(0.1)


@pytest.fixture(scope="module")
def cluster(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Manifest]:
    """Three organisations' nodes, each set up as deploy/README.md says."""
    manifest = members_consortium(tmp_path_factory.mktemp("ops") / "c")
    try:
        for n in manifest.nodes:
            start_test_node(n)
        wait_for_leader(manifest)
        yield manifest
    finally:
        for n in manifest.nodes:
            stop_node(n, kill=True)


def test_backup_then_restore_a_node_that_catches_up(
    cluster: Manifest, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("GRANTCHAIN_KERNELS", "reference")  # verify: no numba compile here
    leader = wait_for_leader(cluster)
    n3 = next(n for n in cluster.nodes if n.node_id != leader)
    before = load(cluster, tmp_path / "before.txt")
    wait_converged(cluster)
    assert stop_node(n3)  # SIGTERM, as systemctl stop sends
    sh(in_guide(BACKUP), n3, tmp_path)
    check = tmp_path / "check"
    check.mkdir()
    subprocess.run(["tar", "-C", str(check), "-xzf", str(tmp_path / "n3-data.tar.gz")], check=True)
    r = grantchain("verify", "--data-dir", str(check / "data"), "--genesis", str(cluster.genesis))
    assert r.returncode == 0, r.stdout + r.stderr
    start_test_node(n3)
    after = load(cluster, tmp_path / "after.txt")
    # The disk is lost: restore the backup, which lacks everything since it was taken.
    assert stop_node(n3, kill=True)
    sh(in_guide(RESTORE), n3, tmp_path)
    start_test_node(n3)
    wait_converged(cluster)
    committed_on(cluster, n3, before | after)


def test_a_store_of_another_schema_is_refused_and_the_upgrade_resyncs(
    cluster: Manifest, tmp_path: Path
) -> None:
    leader = wait_for_leader(cluster)
    n3 = next(n for n in cluster.nodes if n.node_id != leader)
    acked = load(cluster, tmp_path / "acked.txt")
    assert stop_node(n3)
    with lmdb.open(str(n3.data_dir), max_dbs=64, subdir=True) as env:
        meta = env.open_db(b"meta", create=False)
        with env.begin(write=True) as txn:  # as an older version would have left it
            txn.put(b"schema", b"grantchain-store/1", db=meta)
    start_test_node(n3)
    wait_exit(n3)
    log = (n3.config.parent / "node.log").read_text()
    assert re.search(r"schema b'grantchain-store/1', this version reads", log), log[-2000:]
    sh(in_guide(UPGRADE), n3, tmp_path)
    start_test_node(n3)
    wait_converged(cluster)
    committed_on(cluster, n3, acked)


def test_every_metric_the_dashboard_graphs_is_exported(cluster: Manifest) -> None:
    dashboard = json.loads(DASHBOARD.read_text())
    exprs = [t["expr"] for p in dashboard["panels"] for t in p.get("targets", [])]
    wanted = {m for e in exprs for m in re.findall(r"grantchain_[a-z_]+", e)}
    assert len(wanted) >= 15
    leader = cluster.node(wait_for_leader(cluster))
    assert leader.rpc_url.startswith("https://")
    with member_http(cluster, "org1") as client:  # /metrics on the RPC port: signed
        r = client.get(leader.rpc_url + "/metrics")
    assert r.status_code == 200, r.text
    text = r.text
    exported = {line.split("{")[0].split(" ")[0] for line in text.splitlines() if line[:1] != "#"}
    suffixes = {"counter": ("_total",), "histogram": ("_bucket", "_sum", "_count"), "gauge": ("",)}
    for family, kind in re.findall(r"^# TYPE (\S+) (\S+)$", text, re.MULTILINE):
        # A labelled metric has no sample until its first label value is seen.
        exported |= {family} | {family + suffix for suffix in suffixes.get(kind, ("",))}
    assert not sorted(wanted - exported), "graphed but not exported"
    titles = {p["title"] for p in dashboard["panels"] if p["type"] == "row"}
    assert titles == {"Throughput", "Latency", "Consensus", "Storage"}


def test_guide_commands_are_shell_words() -> None:
    for command in (BACKUP, RESTORE, UPGRADE):
        assert shlex.split(in_guide(command))
