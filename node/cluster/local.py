"""A local cluster: the nodes of one consortium directory as background processes.

Each node runs ``grantchain node run`` in its own process session, logging to
``nodes/<id>/node.log``, with its pid in ``nodes/<id>/node.pid``. Everything else —
who leads, heights — is asked of the nodes themselves over RPC.
"""

from __future__ import annotations

import contextlib
import ctypes
import datetime
import os
import random
import signal
import socket
import ssl
import subprocess
import sys
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx

from chain.validator_sets import quorum_of
from node.client import Client, RequestSigner
from node.client.rpc import tls_verify
from node.cluster.consortium import (
    ConsortiumSpec,
    Manifest,
    NodeEntry,
    chain_id_from_name,
    create_consortium,
    load_manifest,
)

ROLES = {
    "leader": "leader",
    "follower": "follower",
    "candidate": "candidate",
    "pre_candidate": "candidate",
}
START_TIMEOUT_S = 120.0
STOP_TIMEOUT_S = 15.0


class ClusterError(RuntimeError):
    """The cluster could not do what was asked; the message says what and where to look."""


@dataclass(frozen=True, slots=True)
class NodeState:
    node_id: str
    pid: int | None
    rpc_url: str
    data_dir: str
    up: bool
    role: str | None
    height: int | None
    head_hash: str | None
    leader: str | None = None
    term: int | None = None

    def to_json(self) -> dict[str, Any]:
        return {
            "id": self.node_id,
            "pid": self.pid,
            "rpc_url": self.rpc_url,
            "role": self.role,
            "height": self.height,
            "head_hash": self.head_hash,
            "data_dir": self.data_dir,
            "up": self.up,
            "leader": self.leader,
            "term": self.term,
        }


def _port_free(port: int) -> bool:
    with socket.socket() as s:
        try:
            s.bind(("127.0.0.1", port))
        except OSError:
            return False
    return True


def bench_consortium(
    directory: Path, nodes: int, chain_id: str, consensus: str = "raft", *, secure: bool = False
) -> Manifest:
    """A fresh local consortium for a benchmark: up to 3 organisations, genesis now,
    free ports; ``secure``: reads for members (``rpc_auth = "members"``) over TLS, else
    plain HTTP and open reads (the baseline the secure one is measured against)."""
    spec = ConsortiumSpec(
        nodes=nodes,
        consensus=consensus,
        orgs=min(nodes, 3),
        chain_id=chain_id,
        genesis_time_ms=time.time_ns() // 1_000_000,
        base_port=free_base_port(nodes, random.Random()),
        rpc_auth="members" if secure else "open",
        rpc_tls=secure,
    )
    return create_consortium(directory, spec, now=datetime.datetime.now(datetime.UTC))


def _ephemeral_ports() -> tuple[int, int]:
    """The range the kernel picks outgoing connections' local ports from (Linux; the
    common default elsewhere)."""
    try:
        low, high = Path("/proc/sys/net/ipv4/ip_local_port_range").read_text().split()
        return int(low), int(high)
    except (OSError, ValueError):
        return 32_768, 60_999


def free_base_port(nodes: int, rng: random.Random) -> int:
    """A base port whose RPC and peer ports (see ``node.cluster.consortium``) are all free
    now, below the kernel's ephemeral range: a port in it can be taken by any outgoing
    connection (the nodes' own peer dials among them) between this check and the node's
    bind, which made a test cluster fail to start ("address already in use")."""
    low, high = 20_000, 40_000
    eph_low, eph_high = _ephemeral_ports()
    if eph_low - 200 - nodes > low and eph_low < high:
        high = eph_low - 200 - nodes  # the peer ports are base + 100 + i
    elif eph_low <= low <= eph_high:
        low, high = eph_high + 1, 65_000 - 200 - nodes
    for _ in range(200):
        base = rng.randrange(low, high)
        if all(_port_free(base + i) and _port_free(base + 100 + i) for i in range(nodes)):
            return base
    raise ClusterError("no free range of ports on 127.0.0.1")


def ensure_consortium(directory: Path, *, nodes: int, consensus: str, base_port: int) -> Manifest:
    if (directory / "consortium.json").exists():
        return load_manifest(directory)
    spec = ConsortiumSpec(
        nodes=nodes,
        orgs=min(nodes, 3),
        chain_id=chain_id_from_name(directory.absolute().name),
        genesis_time_ms=time.time_ns() // 1_000_000,
        consensus=consensus,
        base_port=base_port,
    )
    return create_consortium(directory, spec, now=datetime.datetime.now(datetime.UTC))


def warm_kernels(say: Callable[[str], None]) -> None:
    """Compile (or load) the kernels once here, before the nodes start: they then load
    them from numba's cache in a fraction of a second instead of each compiling them at
    once on a fresh machine."""
    from chain.kernels import backend

    t0 = time.perf_counter()
    b = backend.active()
    b.warmup()
    took = time.perf_counter() - t0
    if took > 2:
        say(f"kernels ({b.name}) compiled in {took:.0f} s (cached from now on)")


def _pid_file(node: NodeEntry) -> Path:
    return node.config.parent / "node.pid"


def _log_file(node: NodeEntry) -> Path:
    return node.config.parent / "node.log"


def read_pid(node: NodeEntry) -> int | None:
    try:
        pid = int(_pid_file(node).read_text().strip())
    except (OSError, ValueError):
        return None
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return None
    except PermissionError:
        return pid
    return pid if _is_node_process(pid) else None


def _is_node_process(pid: int) -> bool:
    try:
        cmdline = Path(f"/proc/{pid}/cmdline").read_bytes()
    except OSError:
        return True  # no /proc: trust the pid file
    if b"node" not in cmdline:
        return False
    # A zombie child of this process still answers kill(0): reap it if it is ours.
    with contextlib.suppress(ChildProcessError):
        done, _ = os.waitpid(pid, os.WNOHANG)
        if done == pid:
            return False
    return True


_PR_SET_PDEATHSIG = 1  # <linux/prctl.h>


def _die_with_parent(parent_pid: int) -> Callable[[], None]:
    """A ``preexec_fn`` that has Linux SIGKILL the child when the thread that started it
    ends (``prctl(PR_SET_PDEATHSIG)``), or at once if that parent is already gone."""

    def arm() -> None:
        ctypes.CDLL(None, use_errno=True).prctl(_PR_SET_PDEATHSIG, signal.SIGKILL)
        if os.getppid() != parent_pid:
            os.kill(os.getpid(), signal.SIGKILL)

    return arm


def start_node(
    node: NodeEntry, *, extra_env: dict[str, str] | None = None, die_with_parent: bool = False
) -> int:
    """Start one node in the background; its pid. A node normally outlives the command
    that started it (``cluster up``); with ``die_with_parent`` (tests, benchmarks) it is
    killed when the calling thread's process dies, even by SIGKILL, so an interrupted run
    leaves no nodes behind. Call it from the main thread then: the kernel ties the signal
    to the thread that forked."""
    running = read_pid(node)
    if running is not None:
        return running
    log = _log_file(node).open("ab")
    proc = subprocess.Popen(
        [sys.executable, "-m", "node.cli", "node", "run", "--config", str(node.config)],
        stdout=log,
        stderr=subprocess.STDOUT,
        stdin=subprocess.DEVNULL,
        start_new_session=True,
        env={**os.environ, **(extra_env or {})},
        preexec_fn=_die_with_parent(os.getpid()) if die_with_parent else None,
    )
    log.close()
    _pid_file(node).write_text(f"{proc.pid}\n")
    return proc.pid


def stop_node(node: NodeEntry, *, kill: bool = False, timeout_s: float = STOP_TIMEOUT_S) -> bool:
    """SIGTERM (or SIGKILL) one node and wait for it to exit; False if it was not running."""
    pid = read_pid(node)
    if pid is None:
        return False
    os.kill(pid, signal.SIGKILL if kill else signal.SIGTERM)
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        if read_pid(node) is None:
            break
        time.sleep(0.02)
    else:
        os.kill(pid, signal.SIGKILL)
    with contextlib.suppress(OSError):
        _pid_file(node).unlink()
    return True


def node_state(node: NodeEntry, client: httpx.Client) -> NodeState:
    pid = read_pid(node)
    doc: dict[str, Any] | None = None
    if pid is not None:
        with contextlib.suppress(httpx.HTTPError, ValueError):
            r = client.get(node.rpc_url + "/v1/status", timeout=2.0)
            if r.status_code == 200:
                doc = r.json()
    return NodeState(
        node_id=node.node_id,
        pid=pid,
        rpc_url=node.rpc_url,
        data_dir=str(node.data_dir),
        up=doc is not None,
        role=ROLES.get(doc["role"], doc["role"]) if doc else None,
        height=doc["height"] if doc else None,
        head_hash=doc["head_hash"] if doc else None,
        leader=doc.get("leader") if doc else None,
        term=doc.get("term") if doc else None,
    )


def rpc_verify(manifest: Manifest) -> ssl.SSLContext | bool:
    """What a client verifies the consortium's nodes with: its CA bundle where they serve
    TLS (``rpc_tls``)."""
    return tls_verify(manifest.ca_cert) if any(n.rpc_tls for n in manifest.nodes) else True


def member_client(
    manifest: Manifest,
    org_id: str | None = None,
    role: str = "admin",
    *,
    urls: Sequence[str] | None = None,
    **kw: Any,
) -> Client:
    """A ``Client`` for the consortium's nodes (or ``urls``) that signs its requests as
    the ``role`` identity of ``org_id`` (default: the first organisation) and verifies
    TLS with the consortium's CA bundle: what tools that read use."""
    org_id = org_id or sorted(n.org_id for n in manifest.nodes)[0]
    ident = next((i for i in manifest.identities if i.org_id == org_id and i.role == role), None)
    if ident is None:
        raise ClusterError(f"no {role} identity of {org_id} in {manifest.directory}")
    signer = RequestSigner.from_key_file(ident.key, chain_id=manifest.chain_id)
    ca_cert = manifest.ca_cert if any(n.rpc_tls for n in manifest.nodes) else None
    targets = list(urls) if urls is not None else [n.rpc_url for n in manifest.nodes]
    return Client(targets, signer=signer, ca_cert=ca_cert, **kw)


def cluster_status(manifest: Manifest) -> list[NodeState]:
    with httpx.Client(verify=rpc_verify(manifest)) as client:
        return [node_state(n, client) for n in manifest.nodes]


def wait_for_leader(
    manifest: Manifest, nodes: Sequence[NodeEntry] | None = None, timeout_s: float = START_TIMEOUT_S
) -> str:
    """Block until a quorum of the consortium's nodes (or every one of ``nodes``, the
    ones the caller knows to be running, if they are fewer) answer and agree on one
    leader that says it leads: then the cluster can commit. A quorum, not any one node:
    a PBFT primary leads its view from the moment it starts, before any backup is up,
    and one node agreeing with itself is no cluster (a test once sent its first txs to
    three backups whose RPC was not listening yet)."""
    nodes = list(nodes or manifest.nodes)
    quorum = min(len(nodes), quorum_of(manifest.consensus, len(manifest.nodes)))
    deadline = time.monotonic() + timeout_s
    with httpx.Client(verify=rpc_verify(manifest)) as client:
        while time.monotonic() < deadline:
            states = [node_state(n, client) for n in nodes]
            dead = [s.node_id for s in states if s.pid is None]
            if dead and len(dead) == len(states):
                raise ClusterError(f"no node is running; see {_log_file(nodes[0])}")
            up = [s for s in states if s.up]
            leaders = {s.leader for s in up}
            if len(up) >= quorum and len(leaders) == 1 and None not in leaders:
                leader = leaders.pop()
                if any(s.node_id == leader and s.role == "leader" for s in states):
                    return str(leader)
            time.sleep(0.05)
    raise ClusterError(
        f"no leader within {timeout_s:.0f} s; see the node logs under {manifest.directory / 'nodes'}"
    )
