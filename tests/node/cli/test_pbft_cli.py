"""The PBFT commands a user runs (issue 14, item 5): ``grantchain cluster up --consensus
pbft --nodes 4`` starts a consortium whose nodes run PBFT, and ``grantchain demo
--consensus pbft`` tells the audit story on one, ending with a receipt that verifies
against 2f+1 of the 4 validators."""

from __future__ import annotations

import json
import random
import subprocess
from pathlib import Path

from node.cluster.local import free_base_port
from tests.conftest import grantchain


def test_cluster_up_runs_pbft_on_four_nodes(tmp_path: Path) -> None:
    d = tmp_path / "pbft"
    base = free_base_port(4, random.Random(str(tmp_path)))
    try:
        r = grantchain(
            "cluster", "up", str(d), "--consensus", "pbft", "--nodes", "4",
            "--base-port", str(base), "--json",
        )  # fmt: skip
        assert r.returncode == 0, r.stdout + r.stderr
        up = json.loads(r.stdout.splitlines()[-1])
        assert len(up["nodes"]) == 4
        st = grantchain("cluster", "status", str(d), "--json")
        assert st.returncode == 0, st.stdout + st.stderr
        states = json.loads(st.stdout.splitlines()[-1])["nodes"]
        assert [s["up"] for s in states] == [True] * 4, states
        assert {s["leader"] for s in states} == {up["leader"]}
        assert json.loads((d / "genesis.json").read_text())["consensus"] == "pbft"
    finally:
        grantchain("cluster", "down", str(d))


def test_demo_tells_the_story_on_pbft(tmp_path: Path) -> None:
    d = tmp_path / "demo"
    base = free_base_port(4, random.Random(str(tmp_path)))
    r = grantchain(
        "demo", "--consensus", "pbft", "--exit", "--dir", str(d), "--base-port", str(base),
        timeout_s=300,
    )  # fmt: skip
    assert r.returncode == 0, r.stdout + r.stderr
    assert "primary elected: n1 (pbft)" in r.stdout
    assert json.loads((d / "consortium.json").read_text())["consensus"] == "pbft"
    check = grantchain(
        "verify-receipt", str(d / "receipt.json"), "--genesis", str(d / "genesis.json")
    )
    assert check.returncode == 0 and "of 4, quorum 3" in check.stdout, check.stdout
    again = grantchain("demo", "--consensus", "raft", "--exit", "--dir", str(d))
    assert again.returncode != 0 and "holds a pbft consortium" in again.stderr


def test_make_run_shows_pbft_when_asked() -> None:
    """``make run CONSENSUS=pbft`` runs the demo above; plain ``make run`` stays on Raft."""
    root = Path(__file__).resolve().parents[3]
    for extra, want in (
        ((), "demo --consensus raft"),
        (("CONSENSUS=pbft",), "demo --consensus pbft"),
    ):
        r = subprocess.run(
            [
                "make",
                "-n",
                "-s",
                "--no-print-directory",
                "-C",
                str(root),
                "run",
                *extra,
                "STAMP=",
                "BROKER=",
            ],
            capture_output=True,
            text=True,
            check=True,
        )
        assert r.stdout.rstrip().endswith(want), r.stdout
