"""Real local clusters for tests: processes on loopback with free ports."""

from __future__ import annotations

import dataclasses
import datetime
import random
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import httpx

from acl import kinds as k
from acl import payloads as pl
from node.client import Client
from node.cluster.consortium import ConsortiumSpec, Manifest, NodeEntry, create_consortium
from node.cluster.local import (
    cluster_status,
    free_base_port,
    start_node,
    stop_node,
    wait_for_leader,
)
from node.cluster.scenario import signer_for
from node.runtime.config import load_config, write_config

SETTLE_TIMEOUT_S = 60.0


@contextmanager
def running_cluster(
    directory: Path,
    nodes: int = 3,
    seed: int = 0,
    node_config: dict[str, dict[str, Any]] | None = None,
    consensus: str = "raft",
    auditor_orgs: tuple[str, ...] = (),
    rpc_tls: bool = False,
    **config: Any,
) -> Iterator[Manifest]:
    """A started cluster; ``config`` overrides fields of every node's config, and
    ``node_config`` (by node id) of one node's. Its RPC is plain HTTP with open reads
    unless a test asks (``rpc_tls``, ``rpc_auth="members"``): most tests are about other
    things (the RPC's security: tests/node/test_rpc_members.py)."""
    spec = ConsortiumSpec(
        nodes=nodes,
        consensus=consensus,
        orgs=min(nodes, 3),
        chain_id="test-" + directory.name[-20:].lower().replace("_", "-").strip("-"),
        genesis_time_ms=1_767_225_600_000,
        base_port=free_base_port(nodes, random.Random(f"{directory}/{seed}")),
        auditor_orgs=auditor_orgs,
        rpc_auth="open",
        rpc_tls=rpc_tls,
        explorer_reads="auditors",
    )
    manifest = create_consortium(directory, spec, now=datetime.datetime.now(datetime.UTC))
    for n in manifest.nodes:
        own = {**config, **(node_config or {}).get(n.node_id, {})}
        if own:  # the tests' own knobs, e.g. a tiny mempool
            write_config(dataclasses.replace(load_config(n.config), **own), n.config)
    try:
        for n in manifest.nodes:
            start_test_node(n)
        wait_for_leader(manifest)
        wait_all_up(manifest)
        yield manifest
    finally:
        for n in manifest.nodes:
            stop_node(n, kill=True)


def start_test_node(node: NodeEntry) -> int:
    """Start (or restart) a node of a test cluster: reference kernels (no numba compile
    per process), and killed with the test run however it ends, so an interrupted run
    leaves no node processes behind."""
    return start_node(node, extra_env={"GRANTCHAIN_KERNELS": "reference"}, die_with_parent=True)


def wait_all_up(manifest: Manifest, timeout_s: float = SETTLE_TIMEOUT_S) -> None:
    """Wait until every node of the cluster answers its RPC (``wait_for_leader`` needs
    only a quorum; tests mostly want every node)."""
    deadline = time.monotonic() + timeout_s
    while down := [s.node_id for s in cluster_status(manifest) if not s.up]:
        if time.monotonic() > deadline:
            raise AssertionError(f"nodes not up: {down}")
        time.sleep(0.1)


def wait_converged(manifest: Manifest, timeout_s: float = SETTLE_TIMEOUT_S) -> str:
    """Wait until every node reports the same height and head hash; return the hash."""
    deadline = time.monotonic() + timeout_s
    last = None
    while time.monotonic() < deadline:
        states = cluster_status(manifest)
        last = [(s.node_id, s.height, s.head_hash) for s in states]
        heads = {(s.height, s.head_hash) for s in states}
        if all(s.up for s in states) and len(heads) == 1:
            return str(states[0].head_hash)
        time.sleep(0.1)
    raise AssertionError(f"nodes did not converge: {last}")


def wait_certified(client: Client, tx_id: str, timeout_s: float = 30.0) -> dict[str, Any]:
    """``GET /v1/txs/{tx_id}`` once the tx's block is certified (or the timeout: the
    caller's assertions then say what was missing)."""
    deadline = time.monotonic() + timeout_s
    while True:
        doc = client.tx(tx_id)
        if doc["certified"] or time.monotonic() > deadline:
            return doc
        time.sleep(0.05)


def leader_url(manifest: Manifest) -> str:
    leader = wait_for_leader(manifest)
    return manifest.node(leader).rpc_url


def get(url: str, **params: object) -> httpx.Response:
    return httpx.get(url, params=params, timeout=10)  # type: ignore[arg-type]


def register_dataset(client: Client, manifest: Manifest, org: str, name: str) -> dict[str, Any]:
    """Have ``org``'s admin register a dataset, waiting for the commit; the node's answer."""
    admin = signer_for(manifest, org, "admin")
    tx = admin.sign(
        k.DATASET_REGISTER,
        pl.dataset_register(
            f"{org}/{name}",
            content_hash=b"\x02" * 32,
            location="x",
            sensitivity="internal",
            licence="CC0",
        ),
    )
    doc: dict[str, Any] = client.submit([tx], wait=True)["results"][0]
    return doc
