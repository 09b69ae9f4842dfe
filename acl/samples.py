"""Sample traffic, deterministic from a seed: the audit story and benchmark workloads.

- ``story(seed)``: the hospital / lab story of the issue as signed txs in blocks, with the
  genesis it runs on and the ids a reader wants to look up (grant, run, model).
- ``traffic(seed, ...)``: a consortium with datasets, grants, apps and models, then blocks of
  access events or of mixed traffic, for the benchmark and the demo.

Keys are derived from the seed (never for production: anyone can derive them). Benchmark
traffic may skip signing (``sign=False``: a zero signature) because ``apply_block`` does not
verify signatures — the node has done that before — and signing would dominate set-up.
"""

from __future__ import annotations

import hashlib
import random
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from acl import kinds as k
from acl import payloads as pl
from chain import limits, signing
from chain.genesis import Genesis, Identity, Organisation, Validator
from chain.tx import Tx, sign_tx

DAY_MS = 24 * 3600 * 1000
STORY_START_MS = 1_767_225_600_000
"""2026-01-01T00:00:00Z."""


def derive_key(seed: bytes, name: str) -> signing.PrivateKey:
    """A deterministic Ed25519 key for samples and tests (never for production)."""
    return signing.private_key_from_bytes(
        hashlib.sha256(b"grantchain/sample-key\x00" + seed + b"\x00" + name.encode()).digest()
    )


def digest_of(text: str) -> bytes:
    """A stand-in content hash for sample data."""
    return hashlib.sha256(text.encode()).digest()


@dataclass(frozen=True, slots=True)
class SampleBlock:
    timestamp_ms: int
    txs: tuple[Tx, ...]


@dataclass(slots=True)
class Signer:
    """Signs txs for one identity with increasing nonces."""

    key: signing.PrivateKey
    chain_id: str
    sign: bool = True
    nonce: int = 0
    public_key: bytes = field(init=False)

    def __post_init__(self) -> None:
        self.public_key = signing.public_key_bytes(self.key)

    def tx(self, kind: str, payload: dict[str, Any], timestamp_ms: int) -> Tx:
        self.nonce += 1
        if self.sign:
            return sign_tx(
                self.key,
                chain_id=self.chain_id,
                kind=kind,
                nonce=self.nonce,
                timestamp_ms=timestamp_ms,
                payload=payload,
            )
        return Tx(
            limits.TX_VERSION,
            self.chain_id,
            kind,
            self.public_key,
            self.nonce,
            timestamp_ms,
            payload,
            bytes(limits.SIGNATURE_BYTES),
        )


@dataclass(frozen=True, slots=True)
class Story:
    """The audit story: who is who, the blocks, and the ids worth looking up."""

    genesis: Genesis
    blocks: tuple[SampleBlock, ...]
    signers: dict[str, Signer]
    dataset_id: str
    grant_id: bytes
    model_name: str
    model_version: int
    first_run_id: str
    second_run_id: str
    revoke_ms: int


def story_genesis(seed: bytes = b"story") -> tuple[Genesis, dict[str, signing.PrivateKey]]:
    """Three organisations — a hospital, an AI lab and a regulator — each with an admin and
    a validator; governance needs two of the three."""
    keys = {
        name: derive_key(seed, name)
        for name in (
            "hospital/admin",
            "lab/admin",
            "regulator/admin",
            "hospital/node",
            "lab/node",
            "regulator/node",
        )
    }
    orgs = (
        Organisation("hospital", "St. Mary's Hospital"),
        Organisation("lab", "Northwind AI Lab"),
        Organisation("regulator", "Health Data Authority"),
    )
    genesis = Genesis(
        chain_id="grantchain-story",
        consensus="raft",
        timestamp_ms=STORY_START_MS,
        organisations=orgs,
        identities=tuple(
            Identity(
                o.org_id, "admin", "admin", signing.public_key_bytes(keys[f"{o.org_id}/admin"])
            )
            for o in orgs
        ),
        validators=tuple(
            Validator(
                f"{o.org_id}-node", o.org_id, signing.public_key_bytes(keys[f"{o.org_id}/node"])
            )
            for o in orgs
        ),
        governance_quorum=2,
    )
    genesis.check()
    return genesis, keys


def story(
    seed: bytes = b"story",
    *,
    genesis: Genesis | None = None,
    admins: Mapping[str, signing.PrivateKey] | None = None,
    orgs: Mapping[str, str] | None = None,
    start_ms: int | None = None,
    step_ms: int = 3600 * 1000,
    tag: str = "",
) -> Story:
    """The issue's audit story, one step per block, ``step_ms`` apart from ``start_ms``
    (default: an hour apart from the genesis time):

    1. the admins register people and apps: the hospital's data steward, the lab's
       training app, the regulator's auditor;
    2. the hospital registers a chest X-ray dataset and grants the lab ``training`` only;
    3. the lab reads the data for training and starts training run 1;
    4. run 1 completes, the lab registers the model, deploys it and runs two inference
       batches; it also tries to use the data for ``evaluation``, which the grant does not
       allow (``no_grant``);
    5. the hospital revokes the grant;
    6. the lab starts training run 2 on the same data: ``no_grant``.

    By default it runs on ``story_genesis(seed)``. To tell it on another consortium (the
    demo's), pass its ``genesis``, the ``admins``' private keys by role (``hospital``,
    ``lab``, ``regulator``) and, if their org ids differ from the roles, ``orgs`` (role ->
    org id). Submitted all at once in this order, the txs give the same results: pass
    ``start_ms`` = now and a small ``step_ms`` so they are fresh (see ``TX_AGE_MAX_MS``).
    A ``tag`` makes every id and derived key of the story distinct, so it can be told
    again on the same chain.
    """
    sfx = f"-{tag}" if tag else ""
    roles = ("hospital", "lab", "regulator")
    if genesis is None:
        genesis, keys = story_genesis(seed)
        admin_keys = {role: keys[f"{role}/admin"] for role in roles}
    elif admins is None or set(admins) != set(roles):
        raise ValueError(f"a custom genesis needs the admin keys of {roles}")
    else:
        admin_keys = dict(admins)
    org = {role: (orgs or {}).get(role, role) for role in roles}
    cid = genesis.chain_id
    signers = {f"{role}/admin": Signer(admin_keys[role], cid) for role in roles}
    for name in ("hospital/steward", "lab/trainer", "regulator/auditor"):
        signers[name] = Signer(derive_key(seed + tag.encode(), name), cid)
    start = genesis.timestamp_ms if start_ms is None else start_ms
    t = [start + (i + 1) * step_ms for i in range(6)]
    blocks: list[SampleBlock] = []

    def block(ts: int, *txs: Tx) -> None:
        blocks.append(SampleBlock(ts, txs))

    block(
        t[0],
        signers["hospital/admin"].tx(
            k.IDENTITY_REGISTER,
            pl.identity_register(
                f"steward{sfx}",
                "steward",
                signers["hospital/steward"].public_key,
                "Records office data steward",
            ),
            t[0],
        ),
        signers["lab/admin"].tx(
            k.IDENTITY_REGISTER,
            pl.identity_register(
                f"trainer{sfx}", "app", signers["lab/trainer"].public_key, "Training pipeline"
            ),
            t[0],
        ),
        signers["regulator/admin"].tx(
            k.IDENTITY_REGISTER,
            pl.identity_register(
                f"auditor{sfx}", "auditor", signers["regulator/auditor"].public_key
            ),
            t[0],
        ),
    )
    dataset_id = f"{org['hospital']}/chest-xray-2025{sfx}"
    steward = signers["hospital/steward"]
    grant_tx = steward.tx(
        k.GRANT_ISSUE,
        pl.grant_issue(
            dataset_id,
            grantee_org=org["lab"],
            purposes=["training"],
            valid_from_ms=t[1],
            valid_until_ms=t[1] + 365 * DAY_MS,
            conditions={"retention": "delete raw images after training"},
        ),
        t[1],
    )
    block(
        t[1],
        steward.tx(
            k.DATASET_REGISTER,
            pl.dataset_register(
                dataset_id,
                content_hash=digest_of("chest-xray-2025 v1"),
                location="s3://st-marys-research/chest-xray-2025/",
                sensitivity="special_category",
                consent_basis="GDPR Art. 9(2)(j) research; ethics approval REC-2025-114",
                title="Chest X-rays 2025, de-identified",
                original_purpose="diagnostic care",
            ),
            t[1],
        ),
        grant_tx,
    )
    grant_id = grant_tx.tx_id
    trainer = signers["lab/trainer"]
    run1, run2, model = f"lab-run-0001{sfx}", f"lab-run-0002{sfx}", f"{org['lab']}/xray-triage{sfx}"
    inputs = [
        pl.dataset_ref(
            dataset_id, version=1, context="training", digest=digest_of("chest-xray-2025 v1")
        )
    ]
    block(
        t[2],
        trainer.tx(
            k.AUDIT_DATA_ACCESS,
            pl.data_access(
                dataset_id,
                purpose="training",
                version=1,
                access_type="read",
                record_count=120_000,
                run_id=run1,
            ),
            t[2],
        ),
        trainer.tx(
            k.AUDIT_TRAINING_RUN,
            pl.build(
                k.AUDIT_TRAINING_RUN,
                run_id=run1,
                event_type="START",
                purpose="training",
                inputs=inputs,
                code_digest=digest_of("train.py@abc123"),
                config_digest=digest_of("lr=3e-4"),
                environment_digest=digest_of("image:pytorch-2.4"),
            ),
            t[2],
        ),
    )
    block(
        t[3],
        trainer.tx(
            k.AUDIT_TRAINING_RUN,
            pl.build(
                k.AUDIT_TRAINING_RUN,
                run_id=run1,
                event_type="COMPLETE",
                purpose="training",
                model_digest=digest_of("weights v1"),
            ),
            t[3],
        ),
        trainer.tx(
            k.AUDIT_MODEL_REGISTRATION,
            pl.build(
                k.AUDIT_MODEL_REGISTRATION,
                model_name=model,
                model_version=1,
                weights_digest=digest_of("weights v1"),
                training_runs=[run1],
                model_card_digest=digest_of("model card v1"),
            ),
            t[3],
        ),
        trainer.tx(
            k.AUDIT_DEPLOYMENT,
            pl.build(
                k.AUDIT_DEPLOYMENT,
                model_name=model,
                model_version=1,
                action="deploy",
                deployment_id="triage-prod",
                environment="production",
            ),
            t[3],
        ),
        *(
            trainer.tx(
                k.AUDIT_INFERENCE_BATCH,
                pl.build(
                    k.AUDIT_INFERENCE_BATCH,
                    model_name=model,
                    model_version=1,
                    deployment_id="triage-prod",
                    count=count,
                    input_digest=digest_of(f"batch {i} in"),
                    output_digest=digest_of(f"batch {i} out"),
                ),
                t[3],
            )
            for i, count in ((1, 500), (2, 750))
        ),
        trainer.tx(
            k.AUDIT_EVALUATION,
            pl.build(
                k.AUDIT_EVALUATION,
                model_name=model,
                model_version=1,
                evaluation_type="bias",
                purpose="evaluation",
                inputs=[pl.dataset_ref(dataset_id, version=1, context="evaluation")],
                metrics=["auc", "demographic_parity_difference"],
                result_digest=digest_of("bias report v1"),
            ),
            t[3],
        ),
    )
    block(
        t[4],
        steward.tx(
            k.GRANT_REVOKE, pl.grant_revoke(grant_id, "consent withdrawn by patient panel"), t[4]
        ),
    )
    block(
        t[5],
        trainer.tx(
            k.AUDIT_TRAINING_RUN,
            pl.build(
                k.AUDIT_TRAINING_RUN,
                run_id=run2,
                event_type="START",
                purpose="training",
                inputs=inputs,
                code_digest=digest_of("train.py@def456"),
            ),
            t[5],
        ),
    )
    return Story(genesis, tuple(blocks), signers, dataset_id, grant_id, model, 1, run1, run2, t[4])


@dataclass(frozen=True, slots=True)
class Traffic:
    """A benchmark workload: the genesis, set-up blocks, then the measured blocks."""

    genesis: Genesis
    setup: tuple[SampleBlock, ...]
    blocks: tuple[SampleBlock, ...]


def traffic(
    seed: int,
    *,
    blocks: int,
    txs_per_block: int = 1000,
    mix: str = "access",
    orgs: int = 8,
    datasets_per_org: int = 16,
    apps_per_org: int = 4,
    sign: bool = False,
    violation_share_pct: int = 5,
) -> Traffic:
    """``mix="access"``: only ``audit.data_access`` events, ~``violation_share_pct``% of them
    without a grant. ``mix="mixed"``: about 60% access, 15% inference batches, 10% training
    run events, 5% evaluations, 5% grant issues and revocations, 3% dataset versions, 2%
    model registrations."""
    if mix not in ("access", "mixed"):
        raise ValueError(f"mix must be 'access' or 'mixed', not {mix!r}")
    rng = random.Random(seed)
    seed_bytes = str(seed).encode()
    org_ids = [f"org{i:02d}" for i in range(orgs)]
    admin_keys = {o: derive_key(seed_bytes, f"{o}/admin") for o in org_ids}
    genesis = Genesis(
        chain_id="grantchain-bench",
        consensus="raft",
        timestamp_ms=STORY_START_MS,
        organisations=tuple(Organisation(o, f"Organisation {o}") for o in org_ids),
        identities=tuple(
            Identity(o, "admin", "admin", signing.public_key_bytes(admin_keys[o])) for o in org_ids
        ),
        validators=tuple(
            Validator(f"{o}-node", o, signing.public_key_bytes(derive_key(seed_bytes, f"{o}/node")))
            for o in org_ids
        ),
        governance_quorum=max(1, orgs // 2 + 1),
    )
    cid = genesis.chain_id
    admins = {o: Signer(admin_keys[o], cid, sign) for o in org_ids}
    stewards = {o: Signer(derive_key(seed_bytes, f"{o}/steward"), cid, sign) for o in org_ids}
    apps = {
        o: [Signer(derive_key(seed_bytes, f"{o}/app{j}"), cid, sign) for j in range(apps_per_org)]
        for o in org_ids
    }
    ms = STORY_START_MS + 1000
    setup: list[SampleBlock] = []
    reg: list[Tx] = []
    for o in org_ids:
        reg.append(
            admins[o].tx(
                k.IDENTITY_REGISTER,
                pl.identity_register("steward", "steward", stewards[o].public_key),
                ms,
            )
        )
        for j, app in enumerate(apps[o]):
            reg.append(
                admins[o].tx(
                    k.IDENTITY_REGISTER, pl.identity_register(f"app{j}", "app", app.public_key), ms
                )
            )
    setup.append(SampleBlock(ms, tuple(reg)))
    ms += 1000
    datasets = {o: [f"{o}/ds{d:03d}" for d in range(datasets_per_org)] for o in org_ids}
    regs = [
        stewards[o].tx(
            k.DATASET_REGISTER,
            pl.dataset_register(
                ds,
                content_hash=digest_of(ds),
                location=f"s3://{o}/{ds}",
                sensitivity="confidential",
                licence="LicenseRef-consortium",
            ),
            ms,
        )
        for o in org_ids
        for ds in datasets[o]
    ]
    setup.append(SampleBlock(ms, tuple(regs)))
    ms += 1000
    # Each dataset is granted to two other organisations for two purposes.
    granted: list[tuple[str, str, str]] = []
    grants: list[Tx] = []
    for o in org_ids:
        for ds in datasets[o]:
            for grantee in rng.sample([x for x in org_ids if x != o], min(2, orgs - 1)):
                purposes = sorted(rng.sample(list(k.PURPOSES[:4]), 2))
                grants.append(
                    stewards[o].tx(
                        k.GRANT_ISSUE,
                        pl.grant_issue(
                            ds,
                            grantee_org=grantee,
                            purposes=purposes,
                            valid_from_ms=ms,
                            valid_until_ms=ms + 3650 * DAY_MS,
                        ),
                        ms,
                    )
                )
                granted.extend((ds, grantee, p) for p in purposes)
    setup.append(SampleBlock(ms, tuple(grants)))
    ms += 1000
    models: list[tuple[Signer, str]] = []
    seeding: list[Tx] = []
    for o in org_ids:
        app = apps[o][0]
        ds, grantee, purpose = next(g for g in granted if g[1] == o)
        run_id = f"{o}-seed-run"
        seeding.append(
            app.tx(
                k.AUDIT_TRAINING_RUN,
                pl.build(
                    k.AUDIT_TRAINING_RUN,
                    run_id=run_id,
                    event_type="START",
                    purpose=purpose,
                    inputs=[pl.dataset_ref(ds)],
                ),
                ms,
            )
        )
        seeding.append(
            app.tx(
                k.AUDIT_MODEL_REGISTRATION,
                pl.build(
                    k.AUDIT_MODEL_REGISTRATION,
                    model_name=f"{o}/model",
                    model_version=1,
                    weights_digest=digest_of(o),
                    training_runs=[run_id],
                ),
                ms,
            )
        )
        models.append((app, f"{o}/model"))
    setup.append(SampleBlock(ms, tuple(seeding)))
    all_datasets = [ds for o in org_ids for ds in datasets[o]]
    measured: list[SampleBlock] = []
    counter = 0
    model_versions = {name: 1 for _, name in models}
    for _ in range(blocks):
        ms += 1000
        txs: list[Tx] = []
        for _ in range(txs_per_block):
            counter += 1
            roll = rng.randrange(100) if mix == "mixed" else 0
            if roll < 60:
                if rng.randrange(100) < violation_share_pct:
                    org = rng.choice(org_ids)
                    ds, purpose = rng.choice(all_datasets), "research"
                else:
                    ds, org, purpose = rng.choice(granted)
                app = rng.choice(apps[org])
                txs.append(
                    app.tx(
                        k.AUDIT_DATA_ACCESS,
                        pl.data_access(
                            ds, purpose=purpose, access_type="read", digest=digest_of(str(counter))
                        ),
                        ms,
                    )
                )
            elif roll < 75:
                app, name = rng.choice(models)
                txs.append(
                    app.tx(
                        k.AUDIT_INFERENCE_BATCH,
                        pl.build(
                            k.AUDIT_INFERENCE_BATCH,
                            model_name=name,
                            model_version=1,
                            count=rng.randrange(1, 10_000),
                            input_digest=digest_of(f"in{counter}"),
                            output_digest=digest_of(f"out{counter}"),
                        ),
                        ms,
                    )
                )
            elif roll < 85:
                ds, org, purpose = rng.choice(granted)
                app = apps[org][0]
                txs.append(
                    app.tx(
                        k.AUDIT_TRAINING_RUN,
                        pl.build(
                            k.AUDIT_TRAINING_RUN,
                            run_id=f"run{counter}",
                            event_type="START",
                            purpose=purpose,
                            inputs=[pl.dataset_ref(ds, context="training")],
                            code_digest=digest_of("code"),
                        ),
                        ms,
                    )
                )
            elif roll < 90:
                app, name = rng.choice(models)
                ds = rng.choice(all_datasets)
                txs.append(
                    app.tx(
                        k.AUDIT_EVALUATION,
                        pl.build(
                            k.AUDIT_EVALUATION,
                            model_name=name,
                            model_version=1,
                            evaluation_type="bias",
                            purpose="evaluation",
                            inputs=[pl.dataset_ref(ds, context="evaluation")],
                            metrics=["auc"],
                            result_digest=digest_of(f"eval{counter}"),
                        ),
                        ms,
                    )
                )
            elif roll < 95:
                o = rng.choice(org_ids)
                grantee = rng.choice([x for x in org_ids if x != o])
                txs.append(
                    stewards[o].tx(
                        k.GRANT_ISSUE,
                        pl.grant_issue(
                            rng.choice(datasets[o]),
                            grantee_org=grantee,
                            purposes=["analytics"],
                            valid_from_ms=ms,
                            valid_until_ms=ms + DAY_MS,
                        ),
                        ms,
                    )
                )
            elif roll < 98:
                o = rng.choice(org_ids)
                txs.append(
                    stewards[o].tx(
                        k.DATASET_ADD_VERSION,
                        pl.build(
                            k.DATASET_ADD_VERSION,
                            dataset_id=rng.choice(datasets[o]),
                            content_hash=digest_of(f"v{counter}"),
                            parent_version=1,
                        ),
                        ms,
                    )
                )
            else:
                app, name = rng.choice(models)
                model_versions[name] += 1
                txs.append(
                    app.tx(
                        k.AUDIT_MODEL_REGISTRATION,
                        pl.build(
                            k.AUDIT_MODEL_REGISTRATION,
                            model_name=name,
                            model_version=model_versions[name],
                            weights_digest=digest_of(f"w{counter}"),
                            parent_models=[pl.model_ref(name, 1)],
                        ),
                        ms,
                    )
                )
        measured.append(SampleBlock(ms, tuple(txs)))
    return Traffic(genesis, tuple(setup), tuple(measured))
