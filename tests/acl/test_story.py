"""The audit story of issue 4, told block by block, then read back the way an auditor would.

A hospital registers a chest X-ray dataset and grants an AI lab ``training`` only. The lab
trains, registers a model, deploys it and runs inference batches; it also tries to use
the data for evaluation, which the grant does not cover. The hospital revokes the grant;
the lab's next training run is recorded as ``no_grant``. The auditor's report and the
model's lineage show all of it, each fact with the tx it rests on.
"""

from __future__ import annotations

import pytest

from acl import queries as q
from acl import samples
from acl.results import Result
from tests.acl.helpers import LocalChain

A, N = Result.ACCEPTED, Result.NO_GRANT


@pytest.fixture(scope="module")
def told() -> tuple[samples.Story, LocalChain, list[list[Result]]]:
    story = samples.story()
    chain = LocalChain(story.genesis)
    results = [chain.apply(block.txs, block.timestamp_ms) for block in story.blocks]
    return story, chain, results


def test_every_step_of_the_story_has_the_result_an_auditor_expects(told) -> None:
    _, _, results = told
    assert (
        results
        == [
            [A, A, A],  # admins register the steward, the training app and the auditor
            [A, A],  # the hospital registers the dataset and grants the lab training only
            [A, A],  # the lab reads the data for training and starts run 1
            [
                A,
                A,
                A,
                A,
                A,
                N,
            ],  # run 1 completes; model registered, deployed, 2 inference batches; evaluation not granted
            [A],  # the hospital revokes the grant
            [N],  # the lab's next training run has no grant
        ]
    )


def test_access_check_answers_before_and_after_the_revocation(told) -> None:
    story, chain, _ = told
    ask = dict(org_id="lab", dataset_id=story.dataset_id, purpose="training")
    before = q.access_check(chain.state, at_ms=story.revoke_ms - 1, **ask)
    assert before.allowed and before.reason == "grant" and before.grant is not None
    assert before.grant.grant_id == story.grant_id
    assert before.grant.conditions == {"retention": "delete raw images after training"}
    after = q.access_check(chain.state, at_ms=story.revoke_ms, **ask)
    assert not after.allowed and after.reason == "grant revoked"
    assert (
        q.access_check(
            chain.state, at_ms=story.revoke_ms - 1, **{**ask, "purpose": "evaluation"}
        ).reason
        == "no grant covers purpose evaluation"
    )
    assert (
        q.access_check(
            chain.state,
            at_ms=story.revoke_ms,
            org_id="regulator",
            dataset_id=story.dataset_id,
            purpose="training",
        ).reason
        == "no grant to this organisation"
    )
    owner = q.access_check(
        chain.state,
        at_ms=story.revoke_ms,
        org_id="hospital",
        dataset_id=story.dataset_id,
        purpose="training",
    )
    assert owner.allowed and owner.reason == "owner"
    # The answer names the grant's issue and revocation txs, so receipts can be attached.
    assert {(r.height, r.index) for r in after.evidence} == {(2, 0), (2, 1), (5, 0)}
    assert story.grant_id in {r.tx_id for r in after.evidence}


def test_grants_by_dataset_and_by_grantee(told) -> None:
    story, chain, _ = told
    by_dataset = q.grants_by_dataset(chain.state, story.dataset_id)
    by_grantee = q.grants_by_grantee(chain.state, "lab")
    assert (
        [g.grant_id for g in by_dataset.grants]
        == [g.grant_id for g in by_grantee.grants]
        == [story.grant_id]
    )
    (g,) = by_dataset.grants
    assert (
        g.purposes == ("training",)
        and g.revoked is not None
        and g.revoke_reason == "consent withdrawn by patient panel"
    )
    assert q.grants_by_grantee(chain.state, "lab", in_force_at_ms=story.revoke_ms).grants == ()
    assert q.grants_by_grantee(chain.state, "regulator").grants == ()


def test_dataset_history_lists_every_use_in_chain_order(told) -> None:
    story, chain, _ = told
    history = q.dataset_history(chain.state, story.dataset_id)
    assert (
        history.dataset.owner_org == "hospital"
        and history.dataset.sensitivity == "special_category"
    )
    assert [(e.kind, e.result) for e in history.entries] == [
        ("dataset.register", A),
        ("grant.issue", A),
        ("audit.data_access", A),
        ("audit.training_run", A),
        ("audit.training_run", A),
        ("audit.evaluation", N),
        ("grant.revoke", A),
        ("audit.training_run", N),
    ]
    assert [e.tx.height for e in history.entries] == [2, 2, 3, 3, 4, 4, 5, 6]
    assert history.evidence == tuple(sorted(e.tx for e in history.entries))


def test_model_lineage_reaches_the_dataset_and_the_grant_that_allowed_it(told) -> None:
    story, chain, _ = told
    lineage = q.model_lineage(chain.state, story.model_name, story.model_version)
    assert lineage.model.org_id == "lab" and lineage.model.training_runs == (story.first_run_id,)
    (run,) = lineage.runs
    assert run.run_id == story.first_run_id and run.status == "COMPLETE" and not run.violation
    assert [e[0] for e in run.events] == ["START", "COMPLETE"]
    assert [d.dataset_id for d in lineage.datasets] == [story.dataset_id]
    assert [g.grant_id for g in lineage.grants] == [story.grant_id]
    assert lineage.grants[0].revoked is not None  # the lineage shows the grant was later revoked
    assert [u.kind for u in lineage.uses] == [
        "audit.model_registration",
        "audit.deployment",
        "audit.inference_batch",
        "audit.inference_batch",
        "audit.evaluation",
    ]
    # The evaluation on data not granted for evaluation is a violation in the model's life.
    assert not lineage.clean and [v.height for v in lineage.violations] == [4]
    assert {r.height for r in lineage.evidence} == {2, 3, 4, 5}


def test_the_second_run_is_recorded_as_a_violation(told) -> None:
    story, chain, _ = told
    second = q.run(chain.state, story.second_run_id)
    assert second.violation and second.events[0][3] == N
    assert second.inputs[0][2] is None and second.inputs[0][4] is False  # no grant relied on


def test_the_auditors_report_counts_everything(told) -> None:
    story, chain, _ = told
    report = q.audit_report(
        chain.state, story.genesis.timestamp_ms, story.revoke_ms + 10 * 3600 * 1000
    )
    assert report.total == 9
    assert report.by_org == {"lab": 9}
    assert report.by_result == {"accepted": 7, "no_grant": 2}
    assert report.by_dataset == {story.dataset_id: 5}
    assert report.by_dataset_result == {story.dataset_id: {"accepted": 3, "no_grant": 2}}
    assert report.by_purpose == {"evaluation": 1, "none": 4, "training": 4}
    assert report.by_kind["audit.inference_batch"] == 2
    assert [(v.kind, v.tx.height) for v in report.violations] == [
        ("audit.evaluation", 4),
        ("audit.training_run", 6),
    ]
    assert (
        report.first is not None
        and report.first.height == 3
        and report.last is not None
        and report.last.height == 6
    )
    violations = q.violations(chain.state, story.revoke_ms, story.revoke_ms + 10 * 3600 * 1000)
    assert [(v.kind, v.org_id, v.identity) for v in violations.events] == [
        ("audit.training_run", "lab", "trainer")
    ]
    assert q.violations(chain.state, 0, story.revoke_ms).to_json()["count"] == 1
    # Everything a user sees is JSON-ready.
    import json

    json.dumps(report.to_json())
    json.dumps(q.model_lineage(chain.state, story.model_name, 1).to_json())
    json.dumps(q.dataset_history(chain.state, story.dataset_id).to_json())


def test_each_event_can_be_found_by_its_tx_id(told) -> None:
    story, chain, _ = told
    last_tx = story.blocks[-1].txs[0]
    event = q.event(chain.state, last_tx.tx_id, last_tx.timestamp_ms)
    assert event is not None and event.result == N and event.tx.height == 6
    found = q.tx_result(chain.state, story.grant_id, story.blocks[1].timestamp_ms)
    assert found is not None and found[1] == A and found[0].height == 2


def test_the_story_can_be_told_on_another_consortium_in_one_block() -> None:
    from chain import signing
    from chain.genesis import Genesis, Identity, Organisation, Validator

    keys = {role: samples.derive_key(b"demo", role) for role in ("hospital", "lab", "regulator")}
    ids = {"hospital": "st-marys", "lab": "northwind", "regulator": "hda"}
    genesis = Genesis(
        chain_id="demo",
        consensus="pbft",
        timestamp_ms=samples.STORY_START_MS,
        organisations=tuple(Organisation(ids[r], r) for r in ids),
        identities=tuple(
            Identity(ids[r], "root", "admin", signing.public_key_bytes(keys[r])) for r in ids
        ),
        validators=(
            Validator(
                "n1", "st-marys", signing.public_key_bytes(samples.derive_key(b"demo", "n1"))
            ),
        ),
        governance_quorum=2,
    )
    now = samples.STORY_START_MS + 5 * samples.DAY_MS
    story = samples.story(genesis=genesis, admins=keys, orgs=ids, start_ms=now, step_ms=0)
    chain = LocalChain(genesis)
    txs = [tx for block in story.blocks for tx in block.txs]
    assert chain.apply(txs, now) == [A, A, A, A, A, A, A, A, A, A, A, A, N, A, N]
    assert story.dataset_id == "st-marys/chest-xray-2025"
    assert q.model_lineage(chain.state, story.model_name, 1).grants[0].grantee_org == "northwind"


def test_time_ranges_accept_any_integers(told) -> None:
    _, chain, _ = told
    assert q.audit_report(chain.state, -5, 2**70).total == 9
    assert q.violations(chain.state, 2**70, -1).events == ()
