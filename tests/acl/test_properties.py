"""Properties: determinism of the state root, rejection without side effects, encoders.

- replaying the same blocks gives the same results, writes and state root;
- so does another PYTHONHASHSEED (a fresh interpreter per seed);
- an invalid payload of any kind is rejected (``malformed`` / ``unsupported_version``)
  and writes nothing but the block's meta keys;
- the event-record fast encoder equals ``chain.codec.encode`` byte for byte;
- the overlay reads like the state it would produce.
"""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest
from hypothesis import HealthCheck, assume, given, settings
from hypothesis import strategies as st

from acl import keys as K
from acl import kinds as k
from acl import payloads as pl
from acl import samples
from acl.machine import apply_block, encode_event_record
from acl.results import Result
from acl.schema import SCHEMAS
from acl.state import MemoryState, Overlay
from chain import codec, signing
from chain.tx import Tx
from tests.acl.helpers import LocalChain

ROOT = Path(__file__).resolve().parents[2]


def replay(blocks: tuple[samples.SampleBlock, ...], genesis: Any) -> LocalChain:
    chain = LocalChain(genesis)
    for block in blocks:
        chain.apply(block.txs, block.timestamp_ms)
    return chain


@settings(max_examples=6, deadline=None)
@given(
    seed=st.integers(0, 2**32), mix=st.sampled_from(["access", "mixed"]), size=st.integers(1, 120)
)
def test_replaying_the_same_blocks_gives_the_same_state_root(
    seed: int, mix: str, size: int
) -> None:
    traffic = samples.traffic(
        seed, blocks=3, txs_per_block=size, mix=mix, orgs=3, datasets_per_org=3, apps_per_org=2
    )
    blocks = traffic.setup + traffic.blocks
    first, second = replay(blocks, traffic.genesis), replay(blocks, traffic.genesis)
    assert [o.state_root for o in first.outcomes] == [o.state_root for o in second.outcomes]
    assert [o.writes for o in first.outcomes] == [o.writes for o in second.outcomes]
    assert first.state.items() == second.state.items()
    # The root moves with every block, and the state is what the writes say.
    roots = [o.state_root for o in first.outcomes]
    assert len(set(roots)) == len(roots)


def test_a_different_history_gives_a_different_root() -> None:
    story = samples.story()
    full = replay(story.blocks, story.genesis)
    without_revocation = LocalChain(story.genesis)
    for block in story.blocks[:4]:
        without_revocation.apply(block.txs, block.timestamp_ms)
    without_revocation.apply((), story.blocks[4].timestamp_ms)
    assert without_revocation.apply(story.blocks[5].txs, story.blocks[5].timestamp_ms) == [
        Result.ACCEPTED
    ]
    assert without_revocation.root != full.root


ROOT_SCRIPT = """
import hashlib
from acl import samples
from tests.acl.test_properties import replay
story = samples.story()
traffic = samples.traffic(7, blocks=2, txs_per_block=300, mix="mixed", orgs=4, datasets_per_org=3)
a = replay(story.blocks, story.genesis).root
b = replay(traffic.setup + traffic.blocks, traffic.genesis).root
print((a + b).hex())
"""


def test_the_state_root_does_not_depend_on_the_hash_seed() -> None:
    roots = set()
    for hash_seed in ("0", "1", "4242"):
        env = {**os.environ, "PYTHONHASHSEED": hash_seed, "PYTHONPATH": str(ROOT)}
        out = subprocess.run(
            [sys.executable, "-c", ROOT_SCRIPT],
            cwd=ROOT,
            env=env,
            capture_output=True,
            text=True,
            timeout=120,
            check=True,
        )
        roots.add(out.stdout.strip())
    assert len(roots) == 1, roots


# -- invalid payloads of every kind ---------------------------------------------------------


class Examples:
    """The story's state plus an open proposal and a live grant, and one valid payload of
    every kind with the signer that may send it."""

    def __init__(self) -> None:
        story = samples.story()
        self.story = story
        self.chain = replay(story.blocks, story.genesis)
        self.s = story.signers
        self.now = story.blocks[-1].timestamp_ms + 1000
        node_key = signing.public_key_bytes(samples.derive_key(b"x", "node"))
        self.proposal = self.s["hospital/admin"].tx(
            k.GOV_PROPOSE,
            pl.build(
                k.GOV_PROPOSE,
                action="add_validator",
                org_id="hospital",
                node_id="hospital-node-2",
                node_public_key=node_key,
            ),
            self.now,
        )
        self.grant = self.s["hospital/steward"].tx(
            k.GRANT_ISSUE,
            pl.grant_issue(
                story.dataset_id,
                grantee_org="lab",
                purposes=["evaluation", "inference"],
                valid_from_ms=self.now,
                valid_until_ms=self.now + samples.DAY_MS,
            ),
            self.now,
        )
        assert self.chain.apply([self.proposal, self.grant], self.now) == [Result.ACCEPTED] * 2
        self.now += 1000
        ds = story.dataset_id
        model = dict(model_name=story.model_name, model_version=1)
        fresh = signing.public_key_bytes(samples.derive_key(b"x", "fresh"))
        d = samples.digest_of
        self.valid: dict[str, tuple[str, dict[str, Any]]] = {
            k.GOV_PROPOSE: (
                "lab/admin",
                pl.build(
                    k.GOV_PROPOSE,
                    action="remove_validator",
                    org_id="lab",
                    node_id="lab-node",
                    reason="decommissioned",
                ),
            ),
            k.GOV_APPROVE: ("lab/admin", pl.build(k.GOV_APPROVE, proposal_id=self.proposal.tx_id)),
            k.GOV_REJECT: (
                "regulator/admin",
                pl.build(k.GOV_REJECT, proposal_id=self.proposal.tx_id, reason="no"),
            ),
            k.IDENTITY_REGISTER: (
                "lab/admin",
                pl.identity_register("new-app", "app", fresh, "new"),
            ),
            k.IDENTITY_REVOKE: (
                "lab/admin",
                pl.build(k.IDENTITY_REVOKE, name="trainer", reason="left"),
            ),
            k.IDENTITY_ROTATE: (
                "lab/admin",
                pl.build(k.IDENTITY_ROTATE, name="trainer", new_public_key=fresh),
            ),
            k.DATASET_REGISTER: (
                "hospital/steward",
                pl.dataset_register(
                    "hospital/mri",
                    content_hash=d("mri"),
                    location="s3://mri",
                    sensitivity="special_category",
                    consent_basis="consent",
                    title="MRI",
                ),
            ),
            k.DATASET_ADD_VERSION: (
                "hospital/steward",
                pl.build(
                    k.DATASET_ADD_VERSION,
                    dataset_id=ds,
                    content_hash=d("v2"),
                    parent_version=1,
                    change_summary="relabelled",
                ),
            ),
            k.GRANT_ISSUE: (
                "hospital/steward",
                pl.grant_issue(
                    ds,
                    grantee_org="regulator",
                    purposes=["evaluation"],
                    valid_from_ms=0,
                    valid_until_ms=self.now + 10,
                    conditions={"audit": "on site"},
                ),
            ),
            k.GRANT_REVOKE: ("hospital/steward", pl.grant_revoke(self.grant.tx_id, "done")),
            k.AUDIT_DATA_ACCESS: (
                "lab/trainer",
                pl.data_access(
                    ds,
                    purpose="evaluation",
                    version=1,
                    grant_id=self.grant.tx_id,
                    access_type="query",
                    digest=d("rows"),
                    record_count=10,
                    run_id="q1",
                ),
            ),
            k.AUDIT_DATASET_DERIVATION: (
                "hospital/steward",
                pl.build(
                    k.AUDIT_DATASET_DERIVATION,
                    activity="anonymisation",
                    purpose="research",
                    inputs=[pl.dataset_ref(ds, version=1)],
                    output_digest=d("anon"),
                    code_digest=d("anon.py"),
                ),
            ),
            k.AUDIT_TRAINING_RUN: (
                "lab/trainer",
                pl.build(
                    k.AUDIT_TRAINING_RUN,
                    run_id="run-3",
                    event_type="START",
                    purpose="fine_tuning",
                    inputs=[pl.dataset_ref(ds, context="training")],
                    base_model=pl.model_ref(story.model_name, 1),
                    producer="https://example.org/trainer",
                ),
            ),
            k.AUDIT_MODEL_REGISTRATION: (
                "lab/trainer",
                pl.build(
                    k.AUDIT_MODEL_REGISTRATION,
                    model_name=story.model_name,
                    model_version=2,
                    weights_digest=d("w2"),
                    training_runs=[story.first_run_id],
                    parent_models=[pl.model_ref(story.model_name, 1)],
                    model_card_digest=d("card"),
                ),
            ),
            k.AUDIT_EVALUATION: (
                "lab/trainer",
                pl.build(
                    k.AUDIT_EVALUATION,
                    **model,
                    evaluation_type="fairness",
                    purpose="evaluation",
                    inputs=[pl.dataset_ref(ds, context="testing")],
                    metrics=["f1"],
                    result_digest=d("r"),
                ),
            ),
            k.AUDIT_DEPLOYMENT: (
                "lab/trainer",
                pl.build(
                    k.AUDIT_DEPLOYMENT,
                    **model,
                    action="substantial_modification",
                    deployment_id="triage-prod",
                    change_digest=d("c"),
                ),
            ),
            k.AUDIT_INFERENCE_BATCH: (
                "lab/trainer",
                pl.build(
                    k.AUDIT_INFERENCE_BATCH,
                    **model,
                    count=3,
                    input_digest=d("i"),
                    output_digest=d("o"),
                    purpose="inference",
                    inputs=[pl.dataset_ref(ds)],
                    on_behalf_of="hospital",
                ),
            ),
            k.AUDIT_OVERSIGHT_INTERVENTION: (
                "regulator/auditor",
                pl.build(
                    k.AUDIT_OVERSIGHT_INTERVENTION,
                    action="halt",
                    **model,
                    deployment_id="triage-prod",
                    summary="drift",
                ),
            ),
            k.AUDIT_INCIDENT_REPORT: (
                "regulator/auditor",
                pl.build(
                    k.AUDIT_INCIDENT_REPORT,
                    incident_id="inc-9",
                    severity="serious",
                    **model,
                    dataset_id=ds,
                    related_txs=[self.grant.tx_id],
                ),
            ),
            k.AUDIT_FEDERATED_ROUND: (
                "lab/trainer",
                pl.build(
                    k.AUDIT_FEDERATED_ROUND,
                    run_id="fl",
                    round=1,
                    participants=["lab"],
                    update_digests=[d("u")],
                    aggregate_digest=d("a"),
                    model_name=story.model_name,
                ),
            ),
        }
        assert self.valid.keys() == k.KINDS.keys()

    def tx(self, kind: str, payload: Any) -> Tx:
        who, _ = self.valid[kind]
        return self.s[who].tx(kind, payload, self.now)

    def outcome(
        self, kind: str, payload: Any
    ) -> tuple[Result, tuple[tuple[bytes, bytes | None], ...]]:
        out = apply_block(
            self.chain.state,
            genesis=self.story.genesis,
            height=self.chain.height + 1,
            timestamp_ms=self.now,
            txs=[self.tx(kind, payload)],
        )
        return Result(out.results[0]), out.writes


@pytest.fixture(scope="module")
def examples() -> Examples:
    return Examples()


@pytest.mark.parametrize("kind", list(k.KINDS))
def test_the_valid_example_of_every_kind_applies(examples: Examples, kind: str) -> None:
    result, writes = examples.outcome(kind, examples.valid[kind][1])
    assert result.applied, (kind, result)
    assert any(not key.startswith(K.META) for key, _ in writes)


WRONG_VALUES = [
    None,
    -1,
    2**64 - 1,
    True,
    "",
    "x" * 5000,
    "has space",
    b"",
    b"\x00" * 31,
    b"\x00" * 33,
    [],
    {},
    {"a": 1},
    ["x"],
    [b"\x00" * 32] * 2,
    "training ",
]


@st.composite
def invalid_payloads(
    draw: st.DrawFn, valid: dict[str, tuple[str, dict[str, Any]]]
) -> tuple[str, Any]:
    kind = draw(st.sampled_from(sorted(valid)))
    payload = dict(valid[kind][1])
    schema = SCHEMAS[kind]
    how = draw(st.sampled_from(["drop", "add", "retype", "version", "not_a_map"]))
    if how == "drop":
        required = sorted(n for n, f in schema.fields.items() if f.required)
        del payload[draw(st.sampled_from(required))]
    elif how == "add":
        name = draw(st.sampled_from(["extra", "actor", "V", "purpose_", "grantId"]))
        payload[name] = draw(st.sampled_from(WRONG_VALUES[:6]))
    elif how == "retype":
        name = draw(st.sampled_from(sorted(n for n in payload if n != "v")))
        value = draw(st.sampled_from(WRONG_VALUES))
        assume(not schema.fields[name].check(value))
        payload[name] = value
    elif how == "version":
        payload["v"] = draw(st.sampled_from([0, 2, 99, "1", None, b"\x01"]))
    else:
        return kind, draw(st.sampled_from([[], "v1", 1, None]))
    return kind, payload


def test_invalid_payloads_of_every_kind_are_rejected_without_changing_state(
    examples: Examples,
) -> None:
    @settings(
        max_examples=300,
        deadline=None,
        suppress_health_check=[HealthCheck.too_slow, HealthCheck.filter_too_much],
    )
    @given(invalid_payloads(examples.valid))
    def check(case: tuple[str, Any]) -> None:
        kind, payload = case
        tx = examples.tx(kind, {"v": 1})
        tx = Tx(
            tx.version,
            tx.chain_id,
            tx.kind,
            tx.sender,
            tx.nonce,
            tx.timestamp_ms,
            payload,
            tx.signature,
        )
        out = apply_block(
            examples.chain.state,
            genesis=examples.story.genesis,
            height=examples.chain.height + 1,
            timestamp_ms=examples.now,
            txs=[tx],
            tx_ids=[samples.digest_of(repr(payload))],
        )
        assert Result(out.results[0]) in (Result.MALFORMED, Result.UNSUPPORTED_VERSION), (
            kind,
            payload,
        )
        assert all(key.startswith(K.META) for key, _ in out.writes), (kind, payload)

    check()


# -- encoders and the overlay ---------------------------------------------------------------

scalars = st.one_of(st.none(), st.integers(0, 2**63 - 1), st.text(max_size=40))
digests = st.binary(min_size=32, max_size=32)


@settings(max_examples=200, deadline=None)
@given(
    code=st.integers(1, 255),
    tx_id=digests,
    org=st.text(min_size=1, max_size=70),
    ident=st.text(min_size=1, max_size=70),
    epoch=st.integers(0, 2**32),
    result=st.integers(0, 2**16 - 1),
    purpose=st.none() | st.text(max_size=20),
    uses=st.lists(
        st.tuples(
            st.text(min_size=1, max_size=140),
            st.none() | st.integers(1, 2**32 - 1),
            st.none() | digests,
        ),
        max_size=20,
    ),
    subject=st.none() | st.lists(scalars, max_size=3),
    behalf=st.none() | st.text(max_size=10),
    run_id=st.none() | st.text(max_size=300),
)
def test_the_event_record_encoder_is_canonical(
    code, tx_id, org, ident, epoch, result, purpose, uses, subject, behalf, run_id
) -> None:  # type: ignore[no-untyped-def]
    fast = encode_event_record(
        code, tx_id, org, ident, epoch, result, purpose, uses, subject, behalf, run_id
    )
    slow = codec.encode(
        [
            code,
            tx_id,
            org,
            ident,
            epoch,
            result,
            purpose,
            [list(u) for u in uses],
            subject,
            behalf,
            run_id,
        ]
    )
    assert fast == slow
    assert codec.decode(fast)[7] == [list(u) for u in uses]


keys_ = st.binary(min_size=1, max_size=3)


@settings(max_examples=150, deadline=None)
@given(
    base=st.dictionaries(keys_, st.binary(max_size=3), max_size=12),
    ops=st.lists(st.tuples(keys_, st.none() | st.binary(max_size=3)), max_size=20),
    lo=keys_,
    hi=st.none() | keys_,
)
def test_the_overlay_reads_like_the_state_it_writes(
    base: dict[bytes, bytes], ops: list[tuple[bytes, bytes | None]], lo: bytes, hi: bytes | None
) -> None:
    ov = Overlay(MemoryState(base.items()))
    model = dict(base)
    for key, value in ops:
        if value is None:
            ov.delete(key)
            model.pop(key, None)
        else:
            ov.put(key, value)
            model[key] = value
    want = sorted((key, v) for key, v in model.items() if key >= lo and (hi is None or key < hi))
    assert list(ov.range(lo, hi)) == want
    after = MemoryState(base.items())
    after.apply(ov.writes())
    assert after.items() == sorted(model.items())


def test_a_block_can_be_applied_on_top_of_uncommitted_writes() -> None:
    # What a pipelining node does: execute block h+1 while block h is still being synced.
    story = samples.story()
    sequential = replay(story.blocks, story.genesis)
    committed = LocalChain(story.genesis)
    pending = Overlay(committed.state)
    for height, block in enumerate(story.blocks, 1):
        outcome = apply_block(
            pending,
            genesis=story.genesis,
            height=height,
            timestamp_ms=block.timestamp_ms,
            txs=block.txs,
        )
        for key, value in outcome.writes:
            if value is None:
                pending.delete(key)
            else:
                pending.put(key, value)
    assert outcome.state_root == sequential.root
    committed.state.apply(pending.writes())
    assert committed.state.items() == sequential.state.items()
