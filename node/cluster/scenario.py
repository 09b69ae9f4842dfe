"""The sample traffic of ``make run``: the audit story of ``acl.samples.story``, told on a
live consortium made by ``grantchain init``.

The first organisation plays the hospital (it holds a dataset and grants the second one
``training`` only), the second the AI lab (it reads the data, trains, registers a model,
deploys it, runs inference batches, and evaluates on the data without a grant), the third
the regulator (its auditor). The hospital then revokes the grant and the lab's next
training run is recorded ``no_grant``. Each step of the story waits for its commit, so
later steps see the state earlier ones made; a tag makes every id new, so the story can
be told again on the same chain.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from acl.samples import story
from chain.genesis import Genesis
from node.client import Client, TxSigner
from node.cluster.consortium import Manifest
from node.runtime.keys import load_private_key

STEP_MS = 1
"""Tx timestamps one ms apart from now: every tx is fresh when it reaches a block."""

# What each tx of the story is, block by block (acl.samples.story's order).
LABELS = (
    (
        "hospital registers its data steward",
        "lab registers its training app",
        "regulator registers its auditor",
    ),
    ("dataset registered", "grant: the lab may use it for training"),
    ("data access for training", "training run started"),
    (
        "training run completed",
        "model registered",
        "model deployed",
        "inference batch 1",
        "inference batch 2",
        "bias evaluation on the data (not granted)",
    ),
    ("grant revoked",),
    ("training run 2 after revocation",),
)


@dataclass
class StoryRun:
    """What the story did: each step's node answer (tx id, result, receipt), by label."""

    steps: list[tuple[str, dict[str, Any]]] = field(default_factory=list)
    dataset_id: str = ""
    grant_id: str = ""
    model_name: str = ""

    def result(self, label: str) -> dict[str, Any]:
        return next(doc for n, doc in self.steps if n == label)


def signer_for(manifest: Manifest, org_id: str, role: str) -> TxSigner:
    for ident in manifest.identities:
        if ident.org_id == org_id and ident.role == role:
            return TxSigner.from_key_file(ident.key, chain_id=manifest.chain_id)
    raise LookupError(f"no {role} identity for {org_id} in the consortium")


def _admin_key_path(manifest: Manifest, org_id: str) -> Any:
    return next(i.key for i in manifest.identities if i.org_id == org_id and i.role == "admin")


def run_story(manifest: Manifest, client: Client, say: Callable[[str], None] = print) -> StoryRun:
    orgs = sorted({n.org_id for n in manifest.nodes})
    if len(orgs) < 2:
        raise ValueError("the story needs at least two organisations")
    roles = {
        "hospital": orgs[0],
        "lab": orgs[1],
        "regulator": orgs[2] if len(orgs) > 2 else orgs[0],
    }
    s = story(
        genesis=Genesis.from_json(manifest.genesis.read_text()),
        admins={
            role: load_private_key(_admin_key_path(manifest, org)) for role, org in roles.items()
        },
        orgs=roles,
        start_ms=time.time_ns() // 1_000_000,
        step_ms=STEP_MS,
        tag=time.strftime("%Y%m%d-%H%M%S"),
    )
    out = StoryRun(dataset_id=s.dataset_id, grant_id=s.grant_id.hex(), model_name=s.model_name)
    for labels, block in zip(LABELS, s.blocks, strict=True):
        docs = client.submit(list(block.txs), wait=True)["results"]
        for label, doc in zip(labels, docs, strict=True):
            if doc.get("status") != "committed":
                raise RuntimeError(f"{label}: not committed: {doc}")
            say(f"  {label:<44} height {doc['height']:>4}  {doc['result']}")
            out.steps.append((label, doc))
    return out
