"""The sample traffic of ``make run``: the audit story, on a live consortium.

org1 holds a dataset and grants org2 ``training`` only; org2's app reads it, trains,
registers a model, deploys it and runs inference batches; it also evaluates on the data,
which the grant does not cover (a violation); org1 revokes the grant; org2's next
training run is recorded as ``no_grant``. Every step waits for its commit, so later
steps see the state earlier ones made.
"""

from __future__ import annotations

import hashlib
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from acl import kinds as k
from acl import payloads as pl
from chain.tx import Tx
from node.client import Client, TxSigner
from node.consortium import Manifest

YEAR_MS = 365 * 24 * 3600 * 1000


def digest(text: str) -> bytes:
    """A stand-in content hash: the chain stores digests, never data."""
    return hashlib.sha256(text.encode()).digest()


@dataclass
class StoryRun:
    """What the story did: each step's tx id, result and receipt, by name."""

    steps: list[tuple[str, dict[str, Any]]] = field(default_factory=list)
    dataset_id: str = ""
    grant_id: str = ""
    model_name: str = ""

    def result(self, name: str) -> dict[str, Any]:
        return next(doc for n, doc in self.steps if n == name)


def signer_for(manifest: Manifest, org_id: str, role: str) -> TxSigner:
    for ident in manifest.identities:
        if ident.org_id == org_id and ident.role == role:
            return TxSigner.from_key_file(ident.key, chain_id=manifest.chain_id)
    raise LookupError(f"no {role} identity for {org_id} in the consortium")


def run_story(manifest: Manifest, client: Client, say: Callable[[str], None] = print) -> StoryRun:
    orgs = sorted({n.org_id for n in manifest.nodes})
    if len(orgs) < 2:
        raise ValueError("the story needs at least two organisations")
    owner, lab = orgs[0], orgs[1]
    steward = signer_for(manifest, owner, "admin")
    app = signer_for(manifest, lab, "app")
    stamp = time.strftime("%Y%m%d-%H%M%S")
    dataset_id = f"{owner}/chest-xray-{stamp}"
    model = f"{lab}/xray-triage-{stamp}"
    run1, run2 = f"{lab}-run-{stamp}-1", f"{lab}-run-{stamp}-2"
    out = StoryRun(dataset_id=dataset_id, model_name=model)
    now = time.time_ns() // 1_000_000

    def submit(name: str, tx: Tx) -> dict[str, Any]:
        doc = client.submit([tx], wait=True)["results"][0]
        if doc.get("status") != "committed":
            raise RuntimeError(f"{name}: not committed: {doc}")
        say(f"  {name:<44} height {doc['height']:>4}  {doc['result']}")
        out.steps.append((name, doc))
        return doc

    submit(
        "dataset registered",
        steward.sign(
            k.DATASET_REGISTER,
            pl.dataset_register(
                dataset_id,
                content_hash=digest(f"{dataset_id} v1"),
                location=f"s3://{owner}-research/chest-xray/",
                sensitivity="special_category",
                consent_basis="GDPR Art. 9(2)(j) research; ethics approval REC-2025-114",
                title="Chest X-rays, de-identified",
                original_purpose="diagnostic care",
            ),
        ),
    )
    grant = submit(
        f"grant: {lab} may use it for training",
        steward.sign(
            k.GRANT_ISSUE,
            pl.grant_issue(
                dataset_id,
                grantee_org=lab,
                purposes=["training"],
                valid_from_ms=now - 60_000,
                valid_until_ms=now + YEAR_MS,
                conditions={"retention": "delete raw images after training"},
            ),
        ),
    )
    out.grant_id = grant["tx_id"]
    inputs = [
        pl.dataset_ref(dataset_id, version=1, context="training", digest=digest(f"{dataset_id} v1"))
    ]
    submit(
        "data access for training",
        app.sign(
            k.AUDIT_DATA_ACCESS,
            pl.data_access(
                dataset_id,
                purpose="training",
                version=1,
                access_type="read",
                record_count=120_000,
                run_id=run1,
            ),
        ),
    )
    submit(
        "training run started",
        app.sign(
            k.AUDIT_TRAINING_RUN,
            pl.build(
                k.AUDIT_TRAINING_RUN,
                run_id=run1,
                event_type="START",
                purpose="training",
                inputs=inputs,
                code_digest=digest("train.py@abc123"),
                config_digest=digest("lr=3e-4"),
                environment_digest=digest("image:pytorch-2.4"),
            ),
        ),
    )
    submit(
        "training run completed",
        app.sign(
            k.AUDIT_TRAINING_RUN,
            pl.build(
                k.AUDIT_TRAINING_RUN,
                run_id=run1,
                event_type="COMPLETE",
                purpose="training",
                model_digest=digest("weights v1"),
            ),
        ),
    )
    submit(
        "model registered",
        app.sign(
            k.AUDIT_MODEL_REGISTRATION,
            pl.build(
                k.AUDIT_MODEL_REGISTRATION,
                model_name=model,
                model_version=1,
                weights_digest=digest("weights v1"),
                training_runs=[run1],
                model_card_digest=digest("model card v1"),
            ),
        ),
    )
    submit(
        "model deployed",
        app.sign(
            k.AUDIT_DEPLOYMENT,
            pl.build(
                k.AUDIT_DEPLOYMENT,
                model_name=model,
                model_version=1,
                action="deploy",
                deployment_id="triage-prod",
                environment="production",
            ),
        ),
    )
    for i, count in enumerate((500, 750), 1):
        submit(
            f"inference batch {i}",
            app.sign(
                k.AUDIT_INFERENCE_BATCH,
                pl.build(
                    k.AUDIT_INFERENCE_BATCH,
                    model_name=model,
                    model_version=1,
                    deployment_id="triage-prod",
                    count=count,
                    input_digest=digest(f"batch {i} in"),
                    output_digest=digest(f"batch {i} out"),
                ),
            ),
        )
    submit(
        "bias evaluation on the data (not granted)",
        app.sign(
            k.AUDIT_EVALUATION,
            pl.build(
                k.AUDIT_EVALUATION,
                model_name=model,
                model_version=1,
                evaluation_type="bias",
                purpose="evaluation",
                inputs=[pl.dataset_ref(dataset_id, version=1, context="evaluation")],
                metrics=["auc", "demographic_parity_difference"],
                result_digest=digest("bias report v1"),
            ),
        ),
    )
    submit(
        "grant revoked",
        steward.sign(
            k.GRANT_REVOKE,
            pl.grant_revoke(bytes.fromhex(out.grant_id), "consent withdrawn by patient panel"),
        ),
    )
    submit(
        "training run 2 after revocation",
        app.sign(
            k.AUDIT_TRAINING_RUN,
            pl.build(
                k.AUDIT_TRAINING_RUN,
                run_id=run2,
                event_type="START",
                purpose="training",
                inputs=inputs,
                code_digest=digest("train.py@def456"),
            ),
        ),
    )
    return out
