"""PBFT follows governance (issue 15 §2), on a real cluster: four replicas (f = 1) in
the genesis; a fifth, outside it, started with a config naming the others, is added by
governance (its peer address in the proposal), catches up and votes from the checkpoint
after the window; then one of the originals is removed and stops voting. Txs commit
throughout, and receipts from before and after each change verify with
``grantchain verify-receipt``. That the added replica votes is shown by commits needing
it (one original down: 4 of 5 left, the quorum); that the removed one no longer counts,
by commits with it and one more down (3 of the 4 left, the quorum), also after the
added replica restarts."""

from __future__ import annotations

import dataclasses
import datetime
import random
import re
import time
from pathlib import Path

import httpx

from chain.genesis import Genesis
from node.client import Client
from node.cluster.consortium import ConsortiumSpec, Manifest, NodeEntry, create_consortium
from node.cluster.local import free_base_port, stop_node, wait_for_leader
from node.runtime.config import load_config, write_config
from tests.node.clusters import start_test_node
from tests.node.test_governance_validators import _commit, _govern, _verified, _wait_height

TIMEOUT_S = 120.0


def _consortium(root: Path) -> tuple[Manifest, Genesis]:
    """Five nodes made as a consortium would make them; the genesis names the first four,
    whose configs do not know the fifth."""
    spec = ConsortiumSpec(
        nodes=5,
        consensus="pbft",
        orgs=3,
        chain_id="test-pbft-gov",
        genesis_time_ms=1_767_225_600_000,
        base_port=free_base_port(5, random.Random(str(root))),
        rpc_auth="open",
        rpc_tls=False,
        explorer_reads="auditors",
    )
    manifest = create_consortium(root, spec, now=datetime.datetime.now(datetime.UTC))
    new = manifest.nodes[4]
    genesis = Genesis.from_json(manifest.genesis.read_text())
    genesis = dataclasses.replace(
        genesis, validators=tuple(v for v in genesis.validators if v.node_id != new.node_id)
    )
    manifest.genesis.write_text(genesis.to_json())
    for n in manifest.nodes[:4]:
        cfg = load_config(n.config)
        peers = tuple(p for p in cfg.peers if p.node_id != new.node_id)
        write_config(dataclasses.replace(cfg, peers=peers), n.config)
    return manifest, genesis


def _metric(node: NodeEntry, name: str) -> float | None:
    try:
        text = httpx.get(node.rpc_url + "/metrics", timeout=10).text
    except httpx.HTTPError:
        return None
    found = re.findall(rf"^{re.escape(name)} (\S+)$", text, re.M)
    return float(found[0]) if found else None


def _metric_once_up(node: NodeEntry, name: str) -> float:
    """``_metric`` once the node answers with it: a node just started may not listen yet
    (under load its start took longer than the commit before the first look)."""
    deadline = time.monotonic() + TIMEOUT_S
    while (value := _metric(node, name)) is None:
        assert time.monotonic() < deadline, f"{node.node_id}: no {name} within {TIMEOUT_S} s"
        time.sleep(0.1)
    return value


def _commit_until(
    client: Client,
    manifest: Manifest,
    org: str,
    name: str,
    done: list[tuple[NodeEntry, str, float]],
) -> list[str]:
    """Commit txs one block at a time until every (node, metric, value) holds: the
    epoch that the last change starts lies a window of sequence numbers ahead."""
    ids: list[str] = []
    deadline = time.monotonic() + TIMEOUT_S
    while not all(_metric(n, m) == v for n, m, v in done):
        assert time.monotonic() < deadline, [(n.node_id, m, _metric(n, m)) for n, m, _ in done]
        ids.append(_commit(client, manifest, org, f"{name}-{len(ids)}"))
    return ids


def test_pbft_follows_governance_adding_then_removing_a_replica(tmp_path: Path) -> None:
    manifest, genesis = _consortium(tmp_path / "c")
    originals, new = list(manifest.nodes[:4]), manifest.nodes[4]
    started: list[NodeEntry] = []
    try:
        for n in originals:
            start_test_node(n)
            started.append(n)
        wait_for_leader(manifest, originals)
        start_test_node(new)  # outside the genesis: it waits to be added
        started.append(new)
        client = Client([n.rpc_url for n in originals])
        url = originals[0].rpc_url
        orgs = sorted(o.org_id for o in genesis.organisations)

        before_add = _commit(client, manifest, orgs[0], "app-before-add")
        first = _verified(url, before_add, manifest.genesis, tmp_path)
        assert first["validator_set_changes"] == 0 and first["quorum"] == 3
        assert _metric_once_up(new, "grantchain_pbft_member") == 0

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
        assert new.node_id in added["validators"] and added["quorum"] == 3  # 2f+1, n = 5
        # The new replica catches up and, from the epoch's checkpoint on, votes.
        five = [(n, "grantchain_pbft_replicas", 5.0) for n in [*originals, new]]
        _commit_until(
            client, manifest, orgs[0], "app-to-5", [*five, (new, "grantchain_pbft_member", 1.0)]
        )
        _wait_height(new, added["height"])

        # One original down: the four left are exactly the quorum of five, the new one
        # among them. Commits go on, so the new replica votes.
        primary = wait_for_leader(manifest, [*originals, new])
        down = next(n for n in originals if n.node_id != primary)
        assert stop_node(down, kill=True)
        up = [n for n in [*originals, new] if n is not down]
        client = Client([n.rpc_url for n in up])
        needs_new = _commit(client, manifest, orgs[0], "app-needs-the-new-one")
        needed = _verified(up[0].rpc_url, needs_new, manifest.genesis, tmp_path)
        start_test_node(down)
        _wait_height(down, needed["height"])  # back, from its epochs file, and caught up

        primary = wait_for_leader(manifest, [*originals, new])
        removed = next(n for n in originals if n.node_id not in (primary, down.node_id))
        client = Client([n.rpc_url for n in [*originals, new]])
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
        assert removed.node_id not in gone["validators"] and gone["quorum"] == 3  # n = 4
        four = [(n, "grantchain_pbft_replicas", 4.0) for n in survivors]
        _commit_until(
            client, manifest, orgs[0], "app-to-4", [*four, (removed, "grantchain_pbft_member", 0.0)]
        )
        # Receipts from before each change still verify, as served now.
        assert _verified(url, before_add, manifest.genesis, tmp_path)["height"] == first["height"]
        assert _verified(url, after_add, manifest.genesis, tmp_path)["height"] == added["height"]

        # The removed replica no longer counts: with it and one more down, three of the
        # four replicas are left, the quorum (of five, it would not be).
        primary = wait_for_leader(manifest, survivors)
        other = next(n for n in survivors if n.node_id not in (primary, new.node_id))
        for n in (removed, other):
            assert stop_node(n, kill=True)
        left = [n for n in survivors if n is not other]
        client = Client([n.rpc_url for n in left])
        last = _commit(client, manifest, orgs[0], "app-three-left")
        final = _verified(left[0].rpc_url, last, manifest.genesis, tmp_path)
        assert set(final["signers"]) <= {n.node_id for n in left}
        assert removed.node_id not in final["signers"]
        # The added replica restarts (SIGKILL): it takes its epochs back from its data
        # directory (the genesis does not name it), and the three commit again, which
        # needs its vote.
        assert stop_node(new, kill=True)
        start_test_node(new)
        again = _commit(client, manifest, orgs[0], "app-after-restart")
        assert _verified(new.rpc_url, again, manifest.genesis, tmp_path)["quorum"] == 3
        assert _metric(new, "grantchain_pbft_member") == 1
    finally:
        for n in started:
            stop_node(n, kill=True)
