"""Local clusters' node processes: a node started for a test or a benchmark dies with
the process that started it, even when that process is SIGKILLed (an interrupted test
run once left clusters running for hours); one started by ``cluster up`` does not. And
``wait_for_leader`` returns only once a quorum of the nodes answer."""

from __future__ import annotations

import datetime
import os
import random
import signal
import subprocess
import sys
import textwrap
import time
from pathlib import Path

import pytest

from node.cluster import local
from node.cluster.consortium import ConsortiumSpec, Manifest, create_consortium
from node.cluster.local import (
    ClusterError,
    cluster_status,
    free_base_port,
    read_pid,
    stop_node,
    wait_for_leader,
)
from tests.node.clusters import start_test_node

DEATH_TIMEOUT_S = 30.0


@pytest.fixture
def manifest(tmp_path: Path) -> Manifest:
    spec = ConsortiumSpec(
        nodes=1,
        orgs=1,
        chain_id="local-test",
        genesis_time_ms=0,
        base_port=free_base_port(1, random.Random(str(tmp_path))),
    )
    return create_consortium(tmp_path / "c", spec, now=datetime.datetime.now(datetime.UTC))


def _starter(manifest: Manifest, die_with_parent: bool) -> subprocess.Popen[str]:
    """A Python process that starts the node, prints its pid, and waits to be killed."""
    code = textwrap.dedent(
        f"""
        import sys, time
        from node.cluster.consortium import load_manifest
        from node.cluster.local import start_node
        node = load_manifest({str(manifest.directory)!r}).nodes[0]
        print(start_node(node, extra_env={{"GRANTCHAIN_KERNELS": "reference"}},
                         die_with_parent={die_with_parent}), flush=True)
        time.sleep(600)
        """
    )
    return subprocess.Popen([sys.executable, "-c", code], stdout=subprocess.PIPE, text=True)


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    with open(f"/proc/{pid}/stat") as f:  # a zombie is dead, waiting for its parent
        return f.read().rsplit(")", 1)[1].split()[0] != "Z"


@pytest.mark.parametrize("die_with_parent", [True, False])
def test_a_node_dies_with_its_starter_only_when_asked(
    manifest: Manifest, die_with_parent: bool
) -> None:
    starter = _starter(manifest, die_with_parent)
    try:
        assert starter.stdout is not None
        pid = int(starter.stdout.readline())
        assert read_pid(manifest.nodes[0]) == pid
        starter.send_signal(signal.SIGKILL)
        starter.wait()
        deadline = time.monotonic() + DEATH_TIMEOUT_S
        if die_with_parent:
            while _alive(pid) and time.monotonic() < deadline:
                time.sleep(0.05)  # polling another process's state, with a deadline
            assert not _alive(pid)
        else:  # it lives on: it comes up and answers, its starter long dead
            assert wait_for_leader(manifest, timeout_s=DEATH_TIMEOUT_S) == "n1"
            assert _alive(pid)
    finally:
        starter.kill()
        stop_node(manifest.nodes[0], kill=True)


@pytest.mark.parametrize(
    ("ephemeral", "below"), [((32_768, 60_999), True), ((10_000, 45_000), False)]
)
def test_free_base_ports_are_outside_the_ephemeral_range(
    monkeypatch: pytest.MonkeyPatch, ephemeral: tuple[int, int], below: bool
) -> None:
    """A node's ports never lie where the kernel picks outgoing connections' ports: one
    taken by a peer dial between the check and the bind stopped a test cluster."""
    monkeypatch.setattr(local, "_ephemeral_ports", lambda: ephemeral)
    for seed in range(50):
        base = free_base_port(5, random.Random(seed))
        ports = [base + i for i in range(5)] + [base + 100 + i for i in range(5)]
        if below:
            assert max(ports) < ephemeral[0]
        else:
            assert min(ports) > ephemeral[1]


def test_a_pbft_primary_alone_is_no_leader_until_a_quorum_answers(tmp_path: Path) -> None:
    """The primary of view 0 says it leads as soon as it starts; ``wait_for_leader``
    must still wait for 2f+1 of the 4 nodes (a test sent its first txs to three backups
    not yet listening, when it returned on the primary alone)."""
    spec = ConsortiumSpec(
        nodes=4,
        orgs=2,
        consensus="pbft",
        chain_id="local-pbft",
        genesis_time_ms=0,
        base_port=free_base_port(4, random.Random(str(tmp_path))),
    )
    manifest = create_consortium(tmp_path / "c", spec, now=datetime.datetime.now(datetime.UTC))
    n1, n2, n3, _ = manifest.nodes
    try:
        start_test_node(n1)
        deadline = time.monotonic() + DEATH_TIMEOUT_S
        while not cluster_status(manifest)[0].up and time.monotonic() < deadline:
            time.sleep(0.05)  # polling another process's RPC, with a deadline
        first = cluster_status(manifest)[0]
        assert first.up and first.role == "leader", first
        with pytest.raises(ClusterError, match="no leader"):
            wait_for_leader(manifest, timeout_s=1.0)
        start_test_node(n2)
        start_test_node(n3)
        assert wait_for_leader(manifest, timeout_s=DEATH_TIMEOUT_S) == "n1"
        assert sum(s.up for s in cluster_status(manifest)) >= 3
    finally:
        for n in manifest.nodes:
            stop_node(n, kill=True)
