"""A consortium over real addresses (issue 19 §1): one network namespace per node, each
with an address of its own on a bridge, its own organisation directory and a TLS
certificate for that address. A cluster forms, ``grantchain load`` commits through it,
taking the leader's link down moves leadership and, once the link is back, every
acknowledged tx is on every node; a node's certificate used from another address is
refused. The RPC is as ``org configure`` writes it: TLS verified with the trust bundle,
reads signed by a member's key.

Needs root and ``ip netns`` (CI runs as root); skipped, saying why, where namespaces
cannot be made. The test's own process reaches the nodes through a veth of its own on
the bridge; everything it creates is removed at the end.
"""

from __future__ import annotations

import contextlib
import ctypes
import json
import os
import random
import shutil
import signal
import socket
import ssl
import subprocess
import sys
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
import pytest

from node.cluster.consortium import Manifest
from node.cluster.local import rpc_verify
from node.runtime.config import load_config
from node.transport.framer import encode_frame
from node.transport.peer import HELLO
from tests.conftest import grantchain
from tests.deploy.members import member_http, members_consortium, not_committed, write_view

ROOT = Path(__file__).resolve().parents[2]
NODES = ("n1", "n2", "n3")
SETTLE_S = 120.0
LOAD_RATE = 100
LOAD_S = 2


def _ip(*args: str, check: bool = True) -> subprocess.CompletedProcess[str]:
    r = subprocess.run(["ip", *args], capture_output=True, text=True, timeout=30)
    if check and r.returncode != 0:
        raise RuntimeError(f"ip {' '.join(args)}: {r.stderr.strip()}")
    return r


def _namespaces_unavailable() -> str | None:
    if shutil.which("ip") is None:
        return "the ip command (iproute2) is not installed"
    if os.geteuid() != 0:
        return "network namespaces need root (CI runs as root)"
    probe = f"gcprobe{os.getpid()}"
    r = _ip("netns", "add", probe, check=False)
    if r.returncode != 0:
        return f"cannot create a network namespace here: {r.stderr.strip()}"
    _ip("netns", "del", probe, check=False)
    return None


pytestmark = pytest.mark.skipif((why := _namespaces_unavailable()) is not None, reason=str(why))


@dataclass
class Net:
    tag: str
    subnet: str  # "10.213.X."
    namespaces: list[str]
    host_if: str

    def ns(self, node_id: str) -> str:
        return f"{self.tag}-{node_id}"

    def address(self, node_id: str) -> str:
        return f"{self.subnet}{10 + NODES.index(node_id) + 1}"

    @property
    def host_address(self) -> str:
        return f"{self.subnet}254"


@contextlib.contextmanager
def bridged_namespaces() -> Iterator[Net]:
    tag = f"gc{os.getpid() % 100000:05d}"
    subnet = f"10.213.{random.Random().randrange(1, 255)}."
    net = Net(tag, subnet, [], f"{tag}h")
    bridge = f"{tag}-br"
    try:
        _ip("netns", "add", bridge)
        net.namespaces.append(bridge)
        _ip("-n", bridge, "link", "add", "br0", "type", "bridge")
        _ip("-n", bridge, "link", "set", "br0", "up")
        for i, node_id in enumerate(NODES):
            ns, inner, outer = net.ns(node_id), f"{tag}a{i}", f"{tag}b{i}"
            _ip("netns", "add", ns)
            net.namespaces.append(ns)
            _ip("link", "add", inner, "type", "veth", "peer", "name", outer)
            _ip("link", "set", inner, "netns", ns)
            _ip("link", "set", outer, "netns", bridge)
            _ip("-n", ns, "link", "set", inner, "name", "eth0")
            _ip("-n", ns, "addr", "add", f"{net.address(node_id)}/24", "dev", "eth0")
            _ip("-n", ns, "link", "set", "eth0", "up")
            _ip("-n", ns, "link", "set", "lo", "up")
            _ip("-n", bridge, "link", "set", outer, "master", "br0")
            _ip("-n", bridge, "link", "set", outer, "up")
        _ip("link", "add", net.host_if, "type", "veth", "peer", "name", f"{tag}hb")
        _ip("link", "set", f"{tag}hb", "netns", bridge)
        _ip("-n", bridge, "link", "set", f"{tag}hb", "master", "br0")
        _ip("-n", bridge, "link", "set", f"{tag}hb", "up")
        _ip("addr", "add", f"{net.host_address}/24", "dev", net.host_if)
        _ip("link", "set", net.host_if, "up")
        yield net
    finally:
        _ip("link", "del", net.host_if, check=False)
        for ns in reversed(net.namespaces):
            _ip("netns", "del", ns, check=False)


def _die_with_parent() -> None:
    ctypes.CDLL(None, use_errno=True).prctl(1, signal.SIGKILL)  # PR_SET_PDEATHSIG


@dataclass
class Member:
    node_id: str
    org_dir: Path
    config: Path
    rpc_url: str
    proc: subprocess.Popen[bytes] | None = None

    @property
    def log(self) -> Path:
        return self.config.parent / "node.log"


def start(net: Net, m: Member) -> None:
    with m.log.open("ab") as log:
        m.proc = subprocess.Popen(
            ["ip", "netns", "exec", net.ns(m.node_id), sys.executable, "-m", "node.cli",
             "node", "run", "--config", str(m.config)],
            stdout=log, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL, cwd=ROOT,
            env={**os.environ, "GRANTCHAIN_KERNELS": "reference", "PYTHONPATH": str(ROOT)},
            start_new_session=True, preexec_fn=_die_with_parent,
        )  # fmt: skip


def status(m: Member, client: httpx.Client) -> dict[str, Any] | None:
    try:
        r = client.get(m.rpc_url + "/v1/status", timeout=1.0)
    except httpx.HTTPError:
        return None
    doc: dict[str, Any] | None = r.json() if r.status_code == 200 else None
    return doc


def wait_leader(members: list[Member], client: httpx.Client, not_: str | None = None) -> str:
    """The leader every one of ``members`` names, which says it leads (and is not ``not_``)."""
    deadline = time.monotonic() + SETTLE_S
    seen: list[Any] = []
    while time.monotonic() < deadline:
        seen = [status(m, client) for m in members]
        leaders = {s.get("leader") if s else None for s in seen}
        leader = leaders.pop() if len(leaders) == 1 else None
        if leader not in (None, not_) and any(s and s["role"] == "leader" for s in seen):
            return str(leader)
        time.sleep(0.1)
    raise AssertionError(f"no agreed leader: {seen}; logs in {members[0].log.parent.parent}")


def wait_converged(members: list[Member], client: httpx.Client) -> int:
    deadline = time.monotonic() + SETTLE_S
    heads: set[Any] = set()
    while time.monotonic() < deadline:
        seen = [status(m, client) for m in members]
        heads = {(s["height"], s["head_hash"]) if s else None for s in seen}
        if len(heads) == 1 and None not in heads:
            return int(heads.pop()[0])
        time.sleep(0.1)
    raise AssertionError(f"nodes did not converge: {heads}")


def load(view: Path, out: Path) -> set[str]:
    r = grantchain(
        "load", "--cluster", str(view), "--rate", str(LOAD_RATE), "--duration", str(LOAD_S),
        "--out", str(out), "--json", timeout_s=300,
    )  # fmt: skip
    assert r.returncode == 0, r.stderr
    report = json.loads(r.stdout)
    acked = set(out.read_text().split())
    assert report["committed"] == len(acked) > 0, report
    return acked


def committed_everywhere(members: list[Member], view: Manifest, tx_ids: set[str]) -> None:
    for m in members:
        missing = not_committed(view, m.rpc_url, tx_ids)
        assert not missing, f"{m.node_id} lacks {len(missing)} acknowledged txs: {missing[:3]}"


def hello_from(net: Net, target: Member, cert_of: Member) -> bytes:
    """Present ``cert_of``'s genuine certificate from the test's own address (not the one
    the certificate names) to ``target``'s peer port; what the node answers."""
    org = cert_of.org_dir
    ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)
    ctx.load_verify_locations(str(org / "tls-cas.pem"))
    d = org / "nodes" / cert_of.node_id
    ctx.load_cert_chain(str(d / "tls.crt"), str(d / "tls.key"))
    peer = load_config(target.config)
    answer = b""
    with (
        socket.create_connection((peer.peer_host, peer.peer_port), timeout=10) as raw,
        ctx.wrap_socket(raw, server_hostname=target.node_id) as tls,
        contextlib.suppress(OSError),
    ):
        tls.sendall(encode_frame(HELLO))
        while chunk := tls.recv(4096):
            answer += chunk
    return answer


def test_a_consortium_over_real_addresses(tmp_path: Path) -> None:
    with bridged_namespaces() as net:
        view = members_consortium(
            tmp_path, len(NODES), hosts={n: net.address(n) for n in NODES}, chain_id="netns"
        )
        nodes = [Member(n.node_id, n.config.parents[2], n.config, n.rpc_url) for n in view.nodes]
        for m in nodes:
            cfg = load_config(m.config)
            assert cfg.peer_host == net.address(m.node_id)
            assert (cfg.rpc_auth, cfg.rpc_tls) == ("members", True), "as org configure writes"
            assert m.rpc_url == f"https://{net.address(m.node_id)}:{cfg.rpc_port}"
        client = member_http(view, "org1")
        try:
            for m in nodes:
                start(net, m)
            leader = wait_leader(nodes, client)
            acked = load(view.directory, tmp_path / "before.txt")

            # A certificate bound to another address: n2's genuine one, from the test's own.
            target = next(m for m in nodes if m.node_id != "n2")
            assert hello_from(net, target, next(m for m in nodes if m.node_id == "n2")) == b""
            refusal = f"bound to {net.address('n2')}, but the peer is at {net.host_address}"
            deadline = time.monotonic() + 10
            while refusal not in target.log.read_text() and time.monotonic() < deadline:
                time.sleep(0.05)
            assert refusal in target.log.read_text()

            # Partition the leader: the others elect one of themselves and go on.
            _ip("-n", net.ns(leader), "link", "set", "eth0", "down")
            rest = [m for m in nodes if m.node_id != leader]
            new_leader = wait_leader(rest, client, not_=leader)
            partial = write_view(tmp_path / "rest", [m.org_dir for m in rest], "netns")
            acked |= load(partial.directory, tmp_path / "during.txt")

            # Heal: the old leader follows, catches up, and nothing acknowledged is lost.
            _ip("-n", net.ns(leader), "link", "set", "eth0", "up")
            assert wait_leader(nodes, client) in {m.node_id for m in nodes}
            acked |= load(view.directory, tmp_path / "after.txt")
            wait_converged(nodes, client)
            committed_everywhere(nodes, view, acked)
            assert new_leader != leader
            # Reads are for members: unsigned, the node answers 401; its TLS certificate
            # chains to the members' CAs only, not to the system's trust store.
            r = httpx.get(
                f"{nodes[0].rpc_url}/v1/txs/{min(acked)}", verify=rpc_verify(view), timeout=10
            )
            assert r.status_code == 401 and r.json()["reason"] == "missing", r.text
            with pytest.raises(httpx.ConnectError, match="CERTIFICATE_VERIFY_FAILED"):
                httpx.get(f"{nodes[0].rpc_url}/health", timeout=10)
        finally:
            client.close()
            for m in nodes:
                if m.proc is not None:
                    m.proc.kill()
                    m.proc.wait(timeout=30)
