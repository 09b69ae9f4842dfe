"""Governance changes the validator set everywhere (issue 15 §2), on a real Raft cluster:
a 4th node is added by governance (its peer address in the proposal: the others dial
it), then one of the original three is removed, with txs committed throughout; a receipt
from before and after each change verifies with ``grantchain verify-receipt``, and the
removed node no longer votes: with it and one more node down, the two left (of the three
voters) still commit and certify, also after the added node restarts."""

from __future__ import annotations

import dataclasses
import datetime
import json
import random
import time
from pathlib import Path
from typing import Any

import httpx

from acl import kinds as k
from acl import payloads as pl
from chain import signing
from chain.genesis import Genesis
from node.client import Client
from node.cluster.consortium import ConsortiumSpec, Manifest, NodeEntry, create_consortium
from node.cluster.local import free_base_port, read_pid, stop_node, wait_for_leader
from node.cluster.scenario import signer_for
from node.runtime.config import load_config, write_config
from node.runtime.keys import write_private_key
from tests.conftest import grantchain
from tests.node.clusters import start_test_node

TIMEOUT_S = 90.0


def _consortium(root: Path) -> tuple[Manifest, Genesis]:
    """Four nodes made as a consortium would make them; the genesis names the first three
    as validators, and their configs do not know the fourth (governance will say where
    it is)."""
    spec = ConsortiumSpec(
        nodes=4,
        consensus="raft",
        orgs=3,
        chain_id="test-gov-validators",
        genesis_time_ms=1_767_225_600_000,
        base_port=free_base_port(4, random.Random(str(root))),
        rpc_auth="open",
        rpc_tls=False,
        explorer_reads="auditors",
    )
    manifest = create_consortium(root, spec, now=datetime.datetime.now(datetime.UTC))
    new = manifest.nodes[3]
    genesis = Genesis.from_json(manifest.genesis.read_text())
    genesis = dataclasses.replace(
        genesis, validators=tuple(v for v in genesis.validators if v.node_id != new.node_id)
    )
    manifest.genesis.write_text(genesis.to_json())
    for n in manifest.nodes[:3]:
        cfg = load_config(n.config)
        peers = tuple(p for p in cfg.peers if p.node_id != new.node_id)
        write_config(dataclasses.replace(cfg, peers=peers), n.config)
    return manifest, genesis


def _commit(client: Client, manifest: Manifest, org: str, name: str) -> str:
    admin = signer_for(manifest, org, "admin")
    key = signing.public_key_bytes(signing.private_key_from_bytes(name.encode().ljust(32, b"-")))
    tx = admin.sign(k.IDENTITY_REGISTER, pl.identity_register(name, "app", key))
    doc = client.submit([tx], wait=True)["results"][0]
    assert doc["status"] == "committed" and doc["result"] == "accepted", doc
    return str(doc["tx_id"])


def _govern(client: Client, manifest: Manifest, genesis: Genesis, **fields: Any) -> None:
    """Propose as the first organisation's admin, approve with others to the quorum."""
    orgs = sorted(o.org_id for o in genesis.organisations)
    proposer = signer_for(manifest, orgs[0], "admin")
    propose = proposer.sign(k.GOV_PROPOSE, pl.build(k.GOV_PROPOSE, **fields))
    doc = client.submit([propose], wait=True)["results"][0]
    assert doc["status"] == "committed" and doc["result"] == "accepted", doc
    for org in orgs[1 : genesis.governance_quorum]:
        vote = signer_for(manifest, org, "admin").sign(
            k.GOV_APPROVE, pl.build(k.GOV_APPROVE, proposal_id=bytes.fromhex(doc["tx_id"]))
        )
        got = client.submit([vote], wait=True)["results"][0]
        assert got["status"] == "committed" and got["result"] == "accepted", got


def _verified(url: str, tx_id: str, genesis_file: Path, tmp: Path) -> dict[str, Any]:
    """The tx's certified receipt from ``url``, checked by ``grantchain verify-receipt``."""
    deadline = time.monotonic() + TIMEOUT_S
    while True:
        doc = httpx.get(f"{url}/v1/txs/{tx_id}", timeout=10).json()
        if doc.get("certified") or time.monotonic() > deadline:
            break
        time.sleep(0.1)
    assert doc.get("certified"), doc
    path = tmp / f"{tx_id}.json"
    path.write_text(json.dumps(doc["receipt"]))
    out = grantchain("verify-receipt", str(path), "--genesis", str(genesis_file), "--json")
    assert out.returncode == 0, out.stdout + out.stderr
    result: dict[str, Any] = json.loads(out.stdout.splitlines()[-1])
    assert result["valid"]
    return result


def _wait_height(node: NodeEntry, height: int) -> None:
    deadline = time.monotonic() + TIMEOUT_S
    got = -1
    while time.monotonic() < deadline:
        try:
            got = httpx.get(f"{node.rpc_url}/v1/status", timeout=5).json()["height"]
        except httpx.HTTPError:
            got = -1
        if got >= height:
            return
        time.sleep(0.1)
    raise AssertionError(f"{node.node_id} stayed at height {got}, not {height}")


def test_a_validator_added_then_one_removed_by_governance(tmp_path: Path) -> None:
    manifest, genesis = _consortium(tmp_path / "c")
    originals, new = list(manifest.nodes[:3]), manifest.nodes[3]
    started: list[NodeEntry] = []
    try:
        for n in originals:
            start_test_node(n)
            started.append(n)
        wait_for_leader(manifest, originals)
        start_test_node(new)  # not a validator yet: it waits to be added
        started.append(new)
        client = Client([n.rpc_url for n in originals])
        url = originals[0].rpc_url
        orgs = sorted(o.org_id for o in genesis.organisations)

        before_add = _commit(client, manifest, orgs[0], "app-before-add")
        first = _verified(url, before_add, manifest.genesis, tmp_path)
        assert first["validator_set_changes"] == 0

        _govern(
            client,
            manifest,
            genesis,
            action="add_validator",
            org_id=new.org_id,
            node_id=new.node_id,
            node_public_key=new.public_key,
            node_address=f"{new.peer_host}:{new.peer_port}",
        )
        after_add = _commit(client, manifest, orgs[0], "app-after-add")
        added = _verified(url, after_add, manifest.genesis, tmp_path)
        assert added["validator_set_changes"] == 1
        assert new.node_id in added["validators"] and added["quorum"] == 3
        # The new node was dialled, added to Raft and brought up to date.
        _wait_height(new, added["height"])

        leader = wait_for_leader(manifest, [*originals, new])
        removed = next(n for n in originals if n.node_id != leader)
        _govern(
            client,
            manifest,
            genesis,
            action="remove_validator",
            org_id=removed.org_id,
            node_id=removed.node_id,
        )
        survivors = [n for n in [*originals, new] if n is not removed]
        client = Client([n.rpc_url for n in survivors])
        after_remove = _commit(client, manifest, orgs[0], "app-after-remove")
        gone = _verified(survivors[0].rpc_url, after_remove, manifest.genesis, tmp_path)
        assert gone["validator_set_changes"] == 2
        assert removed.node_id not in gone["validators"] and gone["quorum"] == 2
        # Receipts from before each change still verify, as served now.
        assert _verified(url, before_add, manifest.genesis, tmp_path)["height"] == first["height"]
        assert _verified(url, after_add, manifest.genesis, tmp_path)["height"] == added["height"]

        # The removed node no longer votes: with it and one more node down, two of the
        # three voters are left, a Raft quorum (of four, it would not be).
        leader = wait_for_leader(manifest, survivors)
        other = next(n for n in survivors if n.node_id not in (leader, new.node_id))
        for n in (removed, other):
            assert stop_node(n, kill=True)
        left = [n for n in survivors if n is not other]
        wait_for_leader(manifest, left)
        client = Client([n.rpc_url for n in left])
        last = _commit(client, manifest, orgs[0], "app-two-left")
        final = _verified(left[0].rpc_url, last, manifest.genesis, tmp_path)
        assert set(final["signers"]) == {n.node_id for n in left}
        assert removed.node_id not in final["signers"]
        # The added node restarts (SIGKILL): it rebuilds the history from its state, and
        # the two voters commit and certify again.
        assert stop_node(new, kill=True)
        start_test_node(new)
        wait_for_leader(manifest, left)
        again = _commit(client, manifest, orgs[0], "app-after-restart")
        assert (
            _verified(new.rpc_url, again, manifest.genesis, tmp_path)["validator_set_changes"] == 2
        )
    finally:
        for n in started:
            stop_node(n, kill=True)


def _exits_saying(node: NodeEntry, text: str) -> None:
    """The node process refuses to start, and its log says why."""
    deadline = time.monotonic() + TIMEOUT_S
    while read_pid(node) is not None:
        assert time.monotonic() < deadline, f"{node.node_id} did not stop"
        time.sleep(0.1)
    log = (node.config.parent / "node.log").read_text()
    assert text in log, log[-2000:]


def test_a_validator_key_rotated_by_governance(tmp_path: Path) -> None:
    """Issue 15 §1: a validator's key is rotated by governance (remove the validator, add
    it back with the new key); the node restarts with the new key once it has applied
    the change, and its signatures under that key certify blocks. Started early with
    the new key, it refuses, naming why."""
    manifest, genesis = _consortium(tmp_path / "c")
    nodes = list(manifest.nodes[:3])
    try:
        for n in nodes:
            start_test_node(n)
        leader = wait_for_leader(manifest, nodes)
        client = Client([n.rpc_url for n in nodes])
        orgs = sorted(o.org_id for o in genesis.organisations)
        target = next(n for n in nodes if n.node_id != leader)
        old_key = target.node_key.read_bytes()
        new_key = signing.generate_private_key()
        new_public = signing.public_key_bytes(new_key)

        # The new key before governance names it: refused.
        assert stop_node(target)
        target.node_key.unlink()  # as an operator replaces the file
        write_private_key(target.node_key, new_key)
        start_test_node(target)
        _exits_saying(target, f"not the key the genesis names for {target.node_id}")
        target.node_key.write_bytes(old_key)
        start_test_node(target)

        _govern(
            client,
            manifest,
            genesis,
            action="remove_validator",
            org_id=target.org_id,
            node_id=target.node_id,
        )
        _govern(
            client,
            manifest,
            genesis,
            action="add_validator",
            org_id=target.org_id,
            node_id=target.node_id,
            node_public_key=new_public,
            node_address=f"{target.peer_host}:{target.peer_port}",
        )
        rotated = _verified(
            next(n for n in nodes if n is not target).rpc_url,
            _commit(client, manifest, orgs[0], "app-after-rotation"),
            manifest.genesis,
            tmp_path,
        )
        assert rotated["validator_set_changes"] == 2 and target.node_id in rotated["validators"]
        _wait_height(target, rotated["height"])  # it applied the change with its old key

        assert stop_node(target)
        target.node_key.unlink()  # as an operator replaces the file
        write_private_key(target.node_key, new_key)
        start_test_node(target)
        # With one other validator down, a certificate needs the rotated node's signature.
        leader = wait_for_leader(manifest, nodes)
        other = next(n for n in nodes if n.node_id not in (leader, target.node_id))
        assert stop_node(other, kill=True)
        left = [n for n in nodes if n is not other]
        leader_url = manifest.node(wait_for_leader(manifest, left)).rpc_url
        client = Client([n.rpc_url for n in left])
        final = _verified(
            leader_url,
            _commit(client, manifest, orgs[0], "app-new-key"),
            manifest.genesis,
            tmp_path,
        )
        assert target.node_id in final["signers"]
    finally:
        for n in manifest.nodes:
            stop_node(n, kill=True)
