"""Who may do what, and the named result of everything else (docs/architecture.md §6, issue 4 §2)."""

from __future__ import annotations

from dataclasses import replace

import pytest

from acl import kinds as k
from acl import payloads as pl
from acl import queries as q
from acl.machine import TX_AGE_MAX_MS, StateError, apply_block
from acl.results import Result, label
from acl.samples import DAY_MS, STORY_START_MS, Signer, derive_key, digest_of
from chain import signing
from chain.genesis import Genesis, Identity, Organisation, Validator
from chain.tx import sign_tx
from tests.acl.helpers import LocalChain, domain_items

T0 = STORY_START_MS
SEED = b"rules"


class World:
    """Three organisations (hospital, lab, clinic); quorum 2. Hospital has a steward and a
    dataset granted to the lab for training; the lab has two apps and an auditor."""

    def __init__(self, consensus: str = "raft") -> None:
        names = ["hospital/admin", "lab/admin", "clinic/admin"]
        self.keys = {n: derive_key(SEED, n) for n in names}
        orgs = (
            Organisation("hospital", "Hospital"),
            Organisation("lab", "Lab"),
            Organisation("clinic", "Clinic"),
        )
        self.genesis = Genesis(
            chain_id="rules",
            consensus=consensus,
            timestamp_ms=T0,
            organisations=orgs,
            identities=tuple(
                Identity(
                    o.org_id,
                    "admin",
                    "admin",
                    signing.public_key_bytes(self.keys[f"{o.org_id}/admin"]),
                )
                for o in orgs
            ),
            validators=tuple(
                Validator(
                    f"{o.org_id}-node",
                    o.org_id,
                    signing.public_key_bytes(derive_key(SEED, f"{o.org_id}/node")),
                )
                for o in orgs
            ),
            governance_quorum=2,
        )
        self.chain = LocalChain(self.genesis)
        self.now = T0 + 1000
        self.s = {n: Signer(key, "rules") for n, key in self.keys.items()}
        for name in ("hospital/steward", "lab/app", "lab/app2", "lab/auditor", "clinic/app"):
            self.s[name] = Signer(derive_key(SEED, name), "rules")
        assert (
            self.apply(
                self.tx(
                    "hospital/admin",
                    k.IDENTITY_REGISTER,
                    pl.identity_register(
                        "steward", "steward", self.s["hospital/steward"].public_key
                    ),
                ),
                self.tx(
                    "lab/admin",
                    k.IDENTITY_REGISTER,
                    pl.identity_register("app", "app", self.s["lab/app"].public_key),
                ),
                self.tx(
                    "lab/admin",
                    k.IDENTITY_REGISTER,
                    pl.identity_register("app2", "app", self.s["lab/app2"].public_key),
                ),
                self.tx(
                    "lab/admin",
                    k.IDENTITY_REGISTER,
                    pl.identity_register("auditor", "auditor", self.s["lab/auditor"].public_key),
                ),
                self.tx(
                    "clinic/admin",
                    k.IDENTITY_REGISTER,
                    pl.identity_register("app", "app", self.s["clinic/app"].public_key),
                ),
            )
            == [Result.ACCEPTED] * 5
        )
        self.grant = self.tx("hospital/steward", k.GRANT_ISSUE, self.grant_payload())
        assert (
            self.apply(
                self.tx(
                    "hospital/steward", k.DATASET_REGISTER, self.dataset_payload("hospital/ds")
                ),
                self.grant,
            )
            == [Result.ACCEPTED] * 2
        )

    def dataset_payload(self, dataset_id: str) -> dict:
        return pl.dataset_register(
            dataset_id,
            content_hash=digest_of(dataset_id),
            location="s3://x",
            sensitivity="restricted",
            licence="CC-BY-4.0",
        )

    def grant_payload(self, **changes) -> dict:
        fields = dict(
            grantee_org="lab",
            purposes=["training"],
            valid_from_ms=T0,
            valid_until_ms=T0 + 30 * DAY_MS,
        )
        fields.update(changes)
        return pl.grant_issue(fields.pop("dataset_id", "hospital/ds"), **fields)

    def tx(self, who: str, kind: str, payload: dict, *, timestamp_ms: int | None = None):
        return self.s[who].tx(kind, payload, self.now if timestamp_ms is None else timestamp_ms)

    def apply(self, *txs, advance_ms: int = 1000) -> list[Result]:
        self.now += advance_ms
        return self.chain.apply(list(txs), self.now)

    def one(self, who: str, kind: str, payload: dict, **kw) -> Result:
        return self.apply(self.tx(who, kind, payload, **kw))[0]


@pytest.fixture
def w() -> World:
    return World()


def access(dataset_id: str = "hospital/ds", purpose: str = "training", **kw) -> dict:
    return pl.data_access(dataset_id, purpose=purpose, **kw)


# -- envelope --------------------------------------------------------------------------------


def test_replayed_tx_is_rejected_in_the_same_block_and_later(w: World) -> None:
    tx = w.tx("lab/app", k.AUDIT_DATA_ACCESS, access())
    assert w.apply(tx, tx) == [Result.ACCEPTED, Result.REPLAYED]
    assert w.apply(tx) == [Result.REPLAYED]


def test_envelope_rejections_are_named(w: World) -> None:
    good = w.tx("lab/app", k.AUDIT_DATA_ACCESS, access())
    wrong_chain = sign_tx(
        w.keys["lab/admin"],
        chain_id="other",
        kind=k.AUDIT_DATA_ACCESS,
        nonce=1,
        timestamp_ms=w.now,
        payload=access(),
    )
    unknown_kind = w.tx("lab/app", "audit.telepathy", {"v": 1})
    stranger = sign_tx(
        derive_key(SEED, "stranger"),
        chain_id="rules",
        kind=k.AUDIT_DATA_ACCESS,
        nonce=1,
        timestamp_ms=w.now,
        payload=access(),
    )
    stale = w.tx(
        "lab/app", k.AUDIT_DATA_ACCESS, access(), timestamp_ms=w.now - TX_AGE_MAX_MS - 5000
    )
    future = w.tx("lab/app", k.AUDIT_DATA_ACCESS, access(), timestamp_ms=w.now + DAY_MS)
    newer = w.tx("lab/app", k.AUDIT_DATA_ACCESS, {**access(), "v": 2})
    results = w.apply(good, wrong_chain, unknown_kind, stranger, stale, future, newer)
    assert [r.label for r in results] == [
        "accepted",
        "wrong_chain",
        "unknown_kind",
        "unknown_sender",
        "stale",
        "stale",
        "unsupported_version",
    ]
    assert label(1) == "no_grant" and label(999) == "unknown_999"


def test_result_codes_are_stable() -> None:
    # Stored on chain: these numbers must never change.
    assert [(r.name, r.value) for r in Result][:8] == [
        ("ACCEPTED", 0),
        ("NO_GRANT", 1),
        ("MALFORMED", 2),
        ("UNAUTHORIZED", 3),
        ("UNKNOWN_SENDER", 4),
        ("REPLAYED", 5),
        ("UNKNOWN_KIND", 6),
        ("WRONG_CHAIN", 7),
    ]
    assert len({r.value for r in Result}) == len(Result)


# -- roles and ownership ---------------------------------------------------------------------


def test_only_admins_register_identities_and_only_in_their_org(w: World) -> None:
    newcomer = derive_key(SEED, "newcomer")
    payload = pl.identity_register("newcomer", "app", signing.public_key_bytes(newcomer))
    assert w.one("lab/app", k.IDENTITY_REGISTER, payload) is Result.UNAUTHORIZED
    assert w.one("lab/admin", k.IDENTITY_REGISTER, payload) is Result.ACCEPTED
    assert (
        w.one("hospital/admin", k.IDENTITY_REGISTER, {**payload, "name": "other"})
        is Result.ALREADY_EXISTS
    )  # key taken
    found = q.identity(w.chain.state, signing.public_key_bytes(newcomer))
    assert found is not None and found["org_id"] == "lab" and found["role"] == "app"


def test_only_stewards_and_admins_of_the_owner_manage_datasets_and_grants(w: World) -> None:
    assert w.one("lab/app", k.DATASET_REGISTER, w.dataset_payload("lab/ds")) is Result.UNAUTHORIZED
    assert (
        w.one("hospital/steward", k.DATASET_REGISTER, w.dataset_payload("hospital/ds"))
        is Result.ALREADY_EXISTS
    )
    assert (
        w.one("lab/admin", k.GRANT_ISSUE, w.grant_payload(grantee_org="clinic"))
        is Result.UNAUTHORIZED
    )
    assert w.one("lab/admin", k.GRANT_REVOKE, pl.grant_revoke(w.grant.tx_id)) is Result.UNAUTHORIZED
    assert (
        w.one("hospital/admin", k.GRANT_ISSUE, w.grant_payload(grantee_org="clinic"))
        is Result.ACCEPTED
    )
    version = pl.build(
        k.DATASET_ADD_VERSION,
        dataset_id="hospital/ds",
        content_hash=digest_of("v2"),
        parent_version=1,
    )
    assert w.one("lab/admin", k.DATASET_ADD_VERSION, version) is Result.UNAUTHORIZED
    assert (
        w.one("hospital/steward", k.DATASET_ADD_VERSION, {**version, "parent_version": 7})
        is Result.NOT_FOUND
    )
    assert w.one("hospital/steward", k.DATASET_ADD_VERSION, version) is Result.ACCEPTED
    assert [v["version"] for v in q.dataset(w.chain.state, "hospital/ds").versions] == [1, 2]


def test_grant_issue_checks_references_and_window(w: World) -> None:
    assert (
        w.one("hospital/steward", k.GRANT_ISSUE, w.grant_payload(dataset_id="hospital/none"))
        is Result.NOT_FOUND
    )
    assert (
        w.one("hospital/steward", k.GRANT_ISSUE, w.grant_payload(grantee_org="nobody"))
        is Result.NOT_FOUND
    )
    assert (
        w.one("hospital/steward", k.GRANT_ISSUE, w.grant_payload(grantee_identity="ghost"))
        is Result.NOT_FOUND
    )
    assert w.one("hospital/steward", k.GRANT_ISSUE, w.grant_payload(version=9)) is Result.NOT_FOUND
    assert (
        w.one(
            "hospital/steward",
            k.GRANT_ISSUE,
            w.grant_payload(valid_from_ms=T0 + 5, valid_until_ms=T0 + 5),
        )
        is Result.INVALID_WINDOW
    )
    assert (
        w.one("hospital/steward", k.GRANT_ISSUE, w.grant_payload(valid_until_ms=T0 + 1))
        is Result.INVALID_WINDOW
    )  # already over
    assert (
        w.one("hospital/steward", k.GRANT_REVOKE, pl.grant_revoke(digest_of("no such grant")))
        is Result.NOT_FOUND
    )
    assert (
        w.one("hospital/steward", k.GRANT_REVOKE, pl.grant_revoke(w.grant.tx_id)) is Result.ACCEPTED
    )
    assert (
        w.one("hospital/steward", k.GRANT_REVOKE, pl.grant_revoke(w.grant.tx_id, "again"))
        is Result.INVALID_STATE
    )


def test_auditors_report_incidents_but_do_not_use_data(w: World) -> None:
    assert w.one("lab/auditor", k.AUDIT_DATA_ACCESS, access()) is Result.UNAUTHORIZED
    report = pl.build(
        k.AUDIT_INCIDENT_REPORT,
        incident_id="inc-1",
        severity="high",
        dataset_id="hospital/ds",
        summary="exported to laptop",
    )
    assert w.one("lab/auditor", k.AUDIT_INCIDENT_REPORT, report) is Result.ACCEPTED
    assert (
        w.one("lab/auditor", k.AUDIT_INCIDENT_REPORT, {**report, "dataset_id": "nope"})
        is Result.NOT_FOUND
    )


# -- matching events against grants ---------------------------------------------------------


def test_an_event_matches_only_a_grant_in_force_for_its_purpose(w: World) -> None:
    assert w.one("lab/app", k.AUDIT_DATA_ACCESS, access()) is Result.ACCEPTED
    assert w.one("lab/app", k.AUDIT_DATA_ACCESS, access(purpose="inference")) is Result.NO_GRANT
    assert w.one("clinic/app", k.AUDIT_DATA_ACCESS, access()) is Result.NO_GRANT  # other org
    assert (
        w.one("hospital/steward", k.AUDIT_DATA_ACCESS, access(purpose="inference"))
        is Result.ACCEPTED
    )  # owner
    assert (
        w.one("lab/app", k.AUDIT_DATA_ACCESS, access(dataset_id="hospital/unknown"))
        is Result.NOT_FOUND
    )
    assert w.one("lab/app", k.AUDIT_DATA_ACCESS, access(version=2)) is Result.NOT_FOUND
    assert w.one("lab/app", k.AUDIT_DATA_ACCESS, access(grant_id=w.grant.tx_id)) is Result.ACCEPTED
    assert (
        w.one("lab/app", k.AUDIT_DATA_ACCESS, access(grant_id=digest_of("other")))
        is Result.NO_GRANT
    )
    # After the window ends the same event is a violation.
    late = T0 + 30 * DAY_MS - w.now
    assert w.apply(
        w.tx("lab/app", k.AUDIT_DATA_ACCESS, access(), timestamp_ms=T0 + 30 * DAY_MS),
        advance_ms=late,
    ) == [Result.NO_GRANT]


def test_identity_and_version_scoped_grants(w: World) -> None:
    v2 = pl.build(
        k.DATASET_ADD_VERSION,
        dataset_id="hospital/ds",
        content_hash=digest_of("v2"),
        parent_version=1,
    )
    assert w.one("hospital/steward", k.DATASET_ADD_VERSION, v2) is Result.ACCEPTED
    scoped = w.grant_payload(
        grantee_org="clinic",
        grantee_identity="app",
        version=2,
        purposes=["evaluation", "inference"],
    )
    assert w.one("hospital/steward", k.GRANT_ISSUE, scoped) is Result.ACCEPTED
    assert (
        w.one("clinic/app", k.AUDIT_DATA_ACCESS, access(purpose="evaluation", version=2))
        is Result.ACCEPTED
    )
    assert (
        w.one("clinic/app", k.AUDIT_DATA_ACCESS, access(purpose="evaluation", version=1))
        is Result.NO_GRANT
    )
    assert (
        w.one("clinic/app", k.AUDIT_DATA_ACCESS, access(purpose="evaluation")) is Result.NO_GRANT
    )  # version unnamed
    assert (
        w.one("clinic/admin", k.AUDIT_DATA_ACCESS, access(purpose="evaluation", version=2))
        is Result.NO_GRANT
    )  # other identity
    decision = q.access_check(
        w.chain.state,
        org_id="clinic",
        identity="app",
        dataset_id="hospital/ds",
        purpose="inference",
        version=2,
        at_ms=w.now,
    )
    assert (
        decision.allowed and decision.grant is not None and decision.grant.grantee_identity == "app"
    )


def test_a_grant_not_yet_valid_does_not_match(w: World) -> None:
    future = w.grant_payload(
        grantee_org="clinic", valid_from_ms=w.now + DAY_MS, valid_until_ms=w.now + 2 * DAY_MS
    )
    assert w.one("hospital/steward", k.GRANT_ISSUE, future) is Result.ACCEPTED
    assert w.one("clinic/app", k.AUDIT_DATA_ACCESS, access()) is Result.NO_GRANT
    assert w.apply(
        w.tx("clinic/app", k.AUDIT_DATA_ACCESS, access(), timestamp_ms=w.now + DAY_MS + 1000),
        advance_ms=DAY_MS,
    ) == [Result.ACCEPTED]


def test_training_run_continuation_is_checked_against_grants_in_force(w: World) -> None:
    start = pl.build(
        k.AUDIT_TRAINING_RUN,
        run_id="r1",
        event_type="START",
        purpose="training",
        inputs=[pl.dataset_ref("hospital/ds", context="training")],
    )
    assert w.one("lab/app", k.AUDIT_TRAINING_RUN, start) is Result.ACCEPTED
    assert w.one("lab/app", k.AUDIT_TRAINING_RUN, start) is Result.ALREADY_EXISTS
    assert (
        w.one("clinic/app", k.AUDIT_TRAINING_RUN, {**start, "event_type": "RUNNING", "inputs": []})
        is Result.UNAUTHORIZED
    )
    assert (
        w.one("hospital/steward", k.GRANT_REVOKE, pl.grant_revoke(w.grant.tx_id)) is Result.ACCEPTED
    )
    complete = pl.build(
        k.AUDIT_TRAINING_RUN,
        run_id="r1",
        event_type="COMPLETE",
        purpose="training",
        model_digest=digest_of("w"),
    )
    assert (
        w.one("lab/app", k.AUDIT_TRAINING_RUN, complete) is Result.NO_GRANT
    )  # finished on data no longer granted
    assert (
        w.one("lab/app", k.AUDIT_TRAINING_RUN, {**complete, "event_type": "FAIL"})
        is Result.INVALID_STATE
    )
    assert (
        w.one("lab/app", k.AUDIT_TRAINING_RUN, {**complete, "run_id": "r404"}) is Result.NOT_FOUND
    )
    assert q.run(w.chain.state, "r1").violation


def test_models_are_owned_by_their_first_registrant(w: World) -> None:
    start = pl.build(
        k.AUDIT_TRAINING_RUN,
        run_id="r1",
        event_type="START",
        purpose="training",
        inputs=[pl.dataset_ref("hospital/ds")],
    )
    reg = pl.build(
        k.AUDIT_MODEL_REGISTRATION,
        model_name="m",
        model_version=1,
        weights_digest=digest_of("w"),
        training_runs=["r1"],
    )
    assert w.one("lab/app", k.AUDIT_MODEL_REGISTRATION, reg) is Result.NOT_FOUND  # run unknown yet
    assert (
        w.apply(
            w.tx("lab/app", k.AUDIT_TRAINING_RUN, start),
            w.tx("lab/app", k.AUDIT_MODEL_REGISTRATION, reg),
        )
        == [Result.ACCEPTED] * 2
    )
    assert w.one("lab/app2", k.AUDIT_MODEL_REGISTRATION, reg) is Result.ALREADY_EXISTS
    assert (
        w.one("clinic/app", k.AUDIT_MODEL_REGISTRATION, {**reg, "model_version": 2})
        is Result.UNAUTHORIZED
    )
    child = pl.build(
        k.AUDIT_MODEL_REGISTRATION,
        model_name="m-child",
        model_version=1,
        weights_digest=digest_of("c"),
        parent_models=[pl.model_ref("m", 1)],
    )
    assert w.one("clinic/app", k.AUDIT_MODEL_REGISTRATION, child) is Result.ACCEPTED
    lineage = q.model_lineage(w.chain.state, "m-child", 1)
    assert [(m.model_name, m.model_version) for m in lineage.models] == [("m-child", 1), ("m", 1)]
    assert [d.dataset_id for d in lineage.datasets] == ["hospital/ds"] and lineage.grants[
        0
    ].grant_id == w.grant.tx_id
    bad_inference = pl.build(
        k.AUDIT_INFERENCE_BATCH,
        model_name="m",
        model_version=3,
        count=1,
        input_digest=digest_of("i"),
        output_digest=digest_of("o"),
    )
    assert w.one("lab/app", k.AUDIT_INFERENCE_BATCH, bad_inference) is Result.NOT_FOUND


def test_derivation_lineage_reaches_the_source_dataset(w: World) -> None:
    assert (
        w.one(
            "lab/admin",
            k.IDENTITY_REGISTER,
            pl.identity_register(
                "curator", "steward", signing.public_key_bytes(derive_key(SEED, "curator"))
            ),
        )
        is Result.ACCEPTED
    )
    w.s["lab/curator"] = Signer(derive_key(SEED, "curator"), "rules")
    assert (
        w.one("lab/curator", k.DATASET_REGISTER, w.dataset_payload("lab/clean")) is Result.ACCEPTED
    )
    derive = pl.build(
        k.AUDIT_DATASET_DERIVATION,
        activity="cleaning",
        purpose="training",
        inputs=[pl.dataset_ref("hospital/ds")],
        output_digest=digest_of("clean"),
        output_dataset_id="lab/clean",
        code_digest=digest_of("clean.py"),
    )
    assert w.one("lab/curator", k.AUDIT_DATASET_DERIVATION, derive) is Result.ACCEPTED
    assert (
        w.one(
            "lab/curator",
            k.AUDIT_DATASET_DERIVATION,
            {**derive, "output_dataset_id": "hospital/ds"},
        )
        is Result.UNAUTHORIZED
    )
    start = pl.build(
        k.AUDIT_TRAINING_RUN,
        run_id="r-clean",
        event_type="START",
        purpose="training",
        inputs=[pl.dataset_ref("lab/clean")],
    )
    reg = pl.build(
        k.AUDIT_MODEL_REGISTRATION,
        model_name="m-clean",
        model_version=1,
        weights_digest=digest_of("w"),
        training_runs=["r-clean"],
    )
    assert (
        w.apply(
            w.tx("lab/app", k.AUDIT_TRAINING_RUN, start),
            w.tx("lab/app", k.AUDIT_MODEL_REGISTRATION, reg),
        )
        == [Result.ACCEPTED] * 2
    )
    lineage = q.model_lineage(w.chain.state, "m-clean", 1)
    assert [d.dataset_id for d in lineage.datasets] == ["lab/clean", "hospital/ds"]
    assert [g.grant_id for g in lineage.grants] == [w.grant.tx_id]
    assert lineage.derivations[0]["activity"] == "cleaning" and lineage.clean
    history = q.dataset_history(w.chain.state, "lab/clean")
    assert history.derived_from[0]["inputs"][0]["dataset_id"] == "hospital/ds"


def test_federated_round_checks_each_input(w: World) -> None:
    fl = pl.build(
        k.AUDIT_FEDERATED_ROUND,
        run_id="fl-1",
        round=1,
        participants=["lab", "clinic"],
        update_digests=[digest_of("u1"), digest_of("u2")],
        aggregate_digest=digest_of("agg"),
        purpose="training",
        inputs=[pl.dataset_ref("hospital/ds")],
    )
    assert w.one("lab/app", k.AUDIT_FEDERATED_ROUND, fl) is Result.ACCEPTED
    assert (
        w.one("clinic/app", k.AUDIT_FEDERATED_ROUND, {**fl, "round": 2}) is Result.UNAUTHORIZED
    )  # another org's run
    assert (
        w.one(
            "lab/app", k.AUDIT_FEDERATED_ROUND, {**fl, "round": 2, "participants": ["lab", "mars"]}
        )
        is Result.NOT_FOUND
    )
    assert (
        w.one("lab/app", k.AUDIT_FEDERATED_ROUND, {**fl, "round": 2, "purpose": "inference"})
        is Result.NO_GRANT
    )
    assert [e[0] for e in q.run(w.chain.state, "fl-1").events] == ["ROUND", "ROUND"]


# -- identities ------------------------------------------------------------------------------


def test_revoked_identities_and_rotated_keys_stop_working(w: World) -> None:
    new_key = derive_key(SEED, "lab/app-new")
    rotate = pl.build(
        k.IDENTITY_ROTATE, name="app", new_public_key=signing.public_key_bytes(new_key)
    )
    assert (
        w.one("lab/app2", k.IDENTITY_ROTATE, rotate) is Result.UNAUTHORIZED
    )  # not itself, not admin
    assert w.one("lab/app", k.IDENTITY_ROTATE, rotate) is Result.ACCEPTED  # self-rotation
    assert w.one("lab/app", k.AUDIT_DATA_ACCESS, access()) is Result.KEY_ROTATED
    w.s["lab/app"] = Signer(new_key, "rules", nonce=100)
    signed_with_new_key = w.tx("lab/app", k.AUDIT_DATA_ACCESS, access())
    assert w.apply(signed_with_new_key) == [Result.ACCEPTED]
    event = q.event(w.chain.state, signed_with_new_key.tx_id, signed_with_new_key.timestamp_ms)
    assert event is not None and event.identity == "app" and event.key_epoch == 1
    assert (
        w.one("lab/admin", k.IDENTITY_REVOKE, pl.build(k.IDENTITY_REVOKE, name="app"))
        is Result.ACCEPTED
    )
    assert w.one("lab/app", k.AUDIT_DATA_ACCESS, access()) is Result.SENDER_REVOKED
    assert (
        w.one("lab/admin", k.IDENTITY_REVOKE, pl.build(k.IDENTITY_REVOKE, name="app"))
        is Result.INVALID_STATE
    )
    assert (
        w.one("lab/admin", k.IDENTITY_REVOKE, pl.build(k.IDENTITY_REVOKE, name="nobody"))
        is Result.NOT_FOUND
    )


# -- governance ------------------------------------------------------------------------------


def test_adding_an_organisation_takes_a_quorum_of_two(w: World) -> None:
    newcomer = derive_key(SEED, "pharma/admin")
    propose = pl.build(
        k.GOV_PROPOSE,
        action="add_org",
        org_id="pharma",
        org_name="Pharma",
        admin_name="admin",
        admin_public_key=signing.public_key_bytes(newcomer),
    )
    assert w.one("lab/app", k.GOV_PROPOSE, propose) is Result.UNAUTHORIZED
    proposal_tx = w.tx("lab/admin", k.GOV_PROPOSE, propose)
    assert w.apply(proposal_tx) == [Result.ACCEPTED]
    pid = proposal_tx.tx_id
    assert q.proposal(w.chain.state, pid)["status"] == "open"
    w.s["pharma/admin"] = Signer(newcomer, "rules")
    assert (
        w.one("pharma/admin", k.DATASET_REGISTER, w.dataset_payload("pharma/ds"))
        is Result.UNKNOWN_SENDER
    )
    assert (
        w.one("lab/admin", k.GOV_APPROVE, pl.build(k.GOV_APPROVE, proposal_id=pid))
        is Result.DUPLICATE_VOTE
    )
    assert (
        w.one("hospital/admin", k.GOV_APPROVE, pl.build(k.GOV_APPROVE, proposal_id=pid))
        is Result.ACCEPTED
    )
    assert q.proposal(w.chain.state, pid)["status"] == "approved"
    assert (
        w.one("clinic/admin", k.GOV_REJECT, pl.build(k.GOV_REJECT, proposal_id=pid))
        is Result.INVALID_STATE
    )
    assert (
        w.one("pharma/admin", k.DATASET_REGISTER, w.dataset_payload("pharma/ds")) is Result.ACCEPTED
    )
    assert [o["org_id"] for o in q.organisations(w.chain.state)] == [
        "clinic",
        "hospital",
        "lab",
        "pharma",
    ]
    assert w.one("hospital/admin", k.GOV_PROPOSE, propose) is Result.ALREADY_EXISTS


def test_rejections_close_a_proposal_and_removal_disables_an_org(w: World) -> None:
    remove_lab = pl.build(k.GOV_PROPOSE, action="remove_org", org_id="lab", reason="breach")
    first = w.tx("hospital/admin", k.GOV_PROPOSE, remove_lab)
    assert w.apply(first) == [Result.ACCEPTED]
    assert (
        w.one("lab/admin", k.GOV_REJECT, pl.build(k.GOV_REJECT, proposal_id=first.tx_id))
        is Result.ACCEPTED
    )
    assert (
        w.one("clinic/admin", k.GOV_REJECT, pl.build(k.GOV_REJECT, proposal_id=first.tx_id))
        is Result.ACCEPTED
    )
    assert q.proposal(w.chain.state, first.tx_id)["status"] == "rejected"
    second = w.tx("hospital/admin", k.GOV_PROPOSE, {**remove_lab, "reason": "breach, again"})
    assert (
        w.apply(
            second,
            w.tx("clinic/admin", k.GOV_APPROVE, pl.build(k.GOV_APPROVE, proposal_id=second.tx_id)),
        )
        == [Result.ACCEPTED] * 2
    )
    assert w.one("lab/app", k.AUDIT_DATA_ACCESS, access()) is Result.ORG_INACTIVE
    nodes = {v["node_id"]: v["status"] for v in q.validators(w.chain.state)}
    assert nodes == {"clinic-node": "active", "hospital-node": "active", "lab-node": "removed"}
    assert (
        w.one("hospital/steward", k.GRANT_ISSUE, w.grant_payload(grantee_org="lab"))
        is Result.ORG_INACTIVE
    )


def test_a_pbft_chain_changes_its_validators_by_governance_too() -> None:
    """Issue 15 §2: PBFT follows governance (it refused validator changes before)."""
    w = World("pbft")
    node_key = signing.public_key_bytes(derive_key(SEED, "clinic-node-2"))
    add = pl.build(
        k.GOV_PROPOSE,
        action="add_validator",
        org_id="clinic",
        node_id="clinic-node-2",
        node_public_key=node_key,
    )
    p1 = w.tx("clinic/admin", k.GOV_PROPOSE, add)
    approve = w.tx("lab/admin", k.GOV_APPROVE, pl.build(k.GOV_APPROVE, proposal_id=p1.tx_id))
    assert w.apply(p1, approve) == [Result.ACCEPTED] * 2
    remove = pl.build(k.GOV_PROPOSE, action="remove_validator", org_id="lab", node_id="lab-node")
    p2 = w.tx("clinic/admin", k.GOV_PROPOSE, remove)
    approve = w.tx("hospital/admin", k.GOV_APPROVE, pl.build(k.GOV_APPROVE, proposal_id=p2.tx_id))
    assert w.apply(p2, approve) == [Result.ACCEPTED] * 2
    active = {v["node_id"] for v in q.validators(w.chain.state) if v["status"] == "active"}
    assert active == {"hospital-node", "clinic-node", "clinic-node-2"}


def test_validators_are_added_and_removed_by_quorum(w: World) -> None:
    node_key = signing.public_key_bytes(derive_key(SEED, "clinic-node-2"))
    add = pl.build(
        k.GOV_PROPOSE,
        action="add_validator",
        org_id="clinic",
        node_id="clinic-node-2",
        node_public_key=node_key,
    )
    p1 = w.tx("clinic/admin", k.GOV_PROPOSE, add)
    assert (
        w.apply(p1, w.tx("lab/admin", k.GOV_APPROVE, pl.build(k.GOV_APPROVE, proposal_id=p1.tx_id)))
        == [Result.ACCEPTED] * 2
    )
    assert "clinic-node-2" in {
        v["node_id"] for v in q.validators(w.chain.state) if v["status"] == "active"
    }
    remove = pl.build(
        k.GOV_PROPOSE, action="remove_validator", org_id="lab", node_id="clinic-node-2"
    )
    assert w.one("clinic/admin", k.GOV_PROPOSE, remove) is Result.NOT_FOUND  # wrong org named
    malformed = {**add, "action": "remove_validator"}
    assert w.one("clinic/admin", k.GOV_PROPOSE, malformed) is Result.MALFORMED


# -- invariants ------------------------------------------------------------------------------


def test_blocks_must_follow_each_other(w: World) -> None:
    state, g = w.chain.state, w.genesis
    with pytest.raises(StateError, match="applied on state at height"):
        apply_block(state, genesis=g, height=w.chain.height + 2, timestamp_ms=w.now + 1, txs=[])
    with pytest.raises(StateError, match="before the previous"):
        apply_block(state, genesis=g, height=w.chain.height + 1, timestamp_ms=w.now - 1, txs=[])
    with pytest.raises(StateError, match="belongs to chain"):
        apply_block(
            state,
            genesis=replace(g, chain_id="another"),
            height=w.chain.height + 1,
            timestamp_ms=w.now,
            txs=[],
        )


def test_rejections_leave_the_state_untouched(w: World) -> None:
    before = domain_items(w.chain.state)
    results = w.apply(
        w.tx("lab/app", k.DATASET_REGISTER, w.dataset_payload("lab/x")),
        w.tx("hospital/steward", k.GRANT_ISSUE, w.grant_payload(grantee_org="nobody")),
        w.tx("lab/auditor", k.AUDIT_DATA_ACCESS, access()),
    )
    assert Result.ACCEPTED not in results
    assert domain_items(w.chain.state) == before


def test_fine_tuned_models_trace_back_to_their_base_model(w: World) -> None:
    start = pl.build(
        k.AUDIT_TRAINING_RUN,
        run_id="base-run",
        event_type="START",
        purpose="training",
        inputs=[pl.dataset_ref("hospital/ds")],
    )
    base = pl.build(
        k.AUDIT_MODEL_REGISTRATION,
        model_name="base",
        model_version=1,
        weights_digest=digest_of("b"),
        training_runs=["base-run"],
    )
    tune = pl.build(
        k.AUDIT_TRAINING_RUN,
        run_id="ft-run",
        event_type="START",
        purpose="fine_tuning",
        inputs=[pl.dataset_ref("hospital/ds")],
        base_model=pl.model_ref("base", 1),
    )
    tuned = pl.build(
        k.AUDIT_MODEL_REGISTRATION,
        model_name="tuned",
        model_version=1,
        weights_digest=digest_of("t"),
        training_runs=["ft-run"],
    )
    assert w.apply(
        w.tx("lab/app", k.AUDIT_TRAINING_RUN, start),
        w.tx("lab/app", k.AUDIT_MODEL_REGISTRATION, base),
        w.tx("lab/app", k.AUDIT_TRAINING_RUN, tune),
        w.tx("lab/app", k.AUDIT_MODEL_REGISTRATION, tuned),
    ) == [
        Result.ACCEPTED,
        Result.ACCEPTED,
        Result.NO_GRANT,
        Result.ACCEPTED,
    ]  # granted training, not fine_tuning
    lineage = q.model_lineage(w.chain.state, "tuned", 1)
    assert [(m.model_name, m.model_version) for m in lineage.models] == [("tuned", 1), ("base", 1)]
    assert [r.run_id for r in lineage.runs] == ["ft-run", "base-run"]
    assert [g.grant_id for g in lineage.grants] == [w.grant.tx_id]  # only the base run had a grant
    assert not lineage.clean and len(lineage.violations) == 1


def test_expired_grants_leave_the_hot_index(w: World) -> None:
    from acl import keys as K
    from acl.machine import ACTIVE_GRANTS_PER_PAIR_MAX

    short = w.grant_payload(grantee_org="clinic", valid_from_ms=T0, valid_until_ms=w.now + 1500)
    assert w.one("hospital/steward", k.GRANT_ISSUE, short) is Result.ACCEPTED
    assert (
        w.one(
            "hospital/steward",
            k.GRANT_ISSUE,
            w.grant_payload(grantee_org="clinic", purposes=["evaluation"]),
        )
        is Result.ACCEPTED
    )
    pair = K.ACTIVE + K.dataset_key("hospital/ds") + K.org_key("clinic")
    from chain import codec

    assert len(codec.decode(w.chain.state.get(pair))) == 1  # the expired one was dropped
    assert len(q.grants_by_grantee(w.chain.state, "clinic").grants) == 2  # history keeps both
    assert ACTIVE_GRANTS_PER_PAIR_MAX >= 16


def test_proposals_expire(w: World) -> None:
    from acl.machine import PROPOSAL_TTL_MS

    add = pl.build(
        k.GOV_PROPOSE,
        action="add_validator",
        org_id="lab",
        node_id="lab-node-2",
        node_public_key=signing.public_key_bytes(derive_key(SEED, "n2")),
    )
    proposal = w.tx("lab/admin", k.GOV_PROPOSE, add)
    assert w.apply(proposal) == [Result.ACCEPTED]
    late = w.now + PROPOSAL_TTL_MS
    vote = w.tx(
        "hospital/admin",
        k.GOV_APPROVE,
        pl.build(k.GOV_APPROVE, proposal_id=proposal.tx_id),
        timestamp_ms=late,
    )
    assert w.apply(vote, advance_ms=PROPOSAL_TTL_MS) == [Result.INVALID_STATE]
    assert q.proposal(w.chain.state, proposal.tx_id, at_ms=late)["status"] == "expired"
    same_key = {
        **add,
        "node_id": "lab-node-3",
        "node_public_key": signing.public_key_bytes(derive_key(SEED, "lab/node")),
    }
    assert w.one("lab/admin", k.GOV_PROPOSE, same_key) is Result.ALREADY_EXISTS  # a validator's key


def test_state_of_another_layout_is_refused(w: World) -> None:
    from acl import keys as K
    from acl.state import Overlay

    old = Overlay(w.chain.state)
    old.delete(K.META_LAYOUT)
    with pytest.raises(StateError, match="layout"):
        apply_block(old, genesis=w.genesis, height=w.chain.height + 1, timestamp_ms=w.now, txs=[])
