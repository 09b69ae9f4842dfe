"""The read policy (``acl.read_policy``) on the documents the RPC builds: who sees a
dataset and its location, which grants and events a member is party to, and that the
auditor role opens everything only in an organisation the consortium designated."""

from __future__ import annotations

from typing import Any

from acl import read_policy as rp

OWNER = rp.reader_for("org1", "org1-app", "app", ())
GRANTEE = rp.reader_for("org2", "org2-app", "app", ())
OTHER = rp.reader_for("org3", "org3-app", "app", ())
AUDITOR = rp.reader_for("org4", "org4-auditor", "auditor", ("org4",))
SELF_MADE_AUDITOR = rp.reader_for("org3", "org3-auditor", "auditor", ("org4",))

DATASET = {"dataset_id": "org1/ds", "owner_org": "org1", "location": "s3://org1/ds"}


def _ref(n: int) -> dict[str, Any]:
    return {"height": n, "index": 0, "tx_id": f"{n:064x}"}


def _grant(owner: str, grantee: str, n: int) -> dict[str, Any]:
    return {"owner_org": owner, "grantee_org": grantee, "issued": _ref(n), "revoked": None}


def test_only_an_auditor_of_a_designated_organisation_sees_everything() -> None:
    assert AUDITOR.sees_all and rp.sees_everything(AUDITOR)
    assert not SELF_MADE_AUDITOR.sees_all, "the role alone opens nothing"
    assert not rp.reader_for("org4", "org4-app", "app", ("org4",)).sees_all
    assert not OWNER.sees_all


def test_a_dataset_is_seen_by_owner_and_grantees_its_location_by_current_ones() -> None:
    assert rp.dataset_doc(OWNER, DATASET, (), ()) == DATASET
    assert rp.dataset_doc(GRANTEE, DATASET, ("org2",), ("org2",)) == DATASET
    past = rp.dataset_doc(GRANTEE, DATASET, ("org2",), ())
    assert past is not None and past["location"] is None and past["dataset_id"] == "org1/ds"
    assert rp.dataset_doc(OTHER, DATASET, ("org2",), ("org2",)) is None
    assert rp.dataset_doc(SELF_MADE_AUDITOR, DATASET, ("org2",), ("org2",)) is None
    assert rp.dataset_doc(AUDITOR, DATASET, (), ()) == DATASET


def test_grant_lists_keep_the_grants_a_member_is_party_to_and_their_evidence() -> None:
    doc = {
        "subject": "org1/ds",
        "grants": [_grant("org1", "org2", 1), _grant("org1", "org3", 2)],
        "evidence": [_ref(1), _ref(2)],
    }
    assert rp.grant_list_doc(OWNER, doc) is doc
    mine = rp.grant_list_doc(GRANTEE, doc)
    assert [g["grantee_org"] for g in mine["grants"]] == ["org2"]
    assert mine["evidence"] == [_ref(1)]
    assert rp.grant_list_doc(rp.reader_for("org9", "x", "app", ()), doc)["grants"] == []
    assert rp.grant_list_doc(AUDITOR, doc) is doc


def test_events_are_seen_by_their_sender_and_the_owners_of_the_data_they_use() -> None:
    def event(org: str, n: int, uses: list[str]) -> dict[str, Any]:
        return {
            "tx": _ref(n),
            "actor": {"org_id": org},
            "on_behalf_of": None,
            "uses": [{"dataset_id": d} for d in uses],
        }

    owners = {"org1/ds": "org1", "org3/ds": "org3"}.get
    doc = {
        "count": 3,
        "events": [event("org2", 1, ["org1/ds"]), event("org2", 2, []), event("org3", 3, [])],
        "evidence": [_ref(1), _ref(2), _ref(3)],
    }
    assert [e["tx"] for e in rp.events_doc(OWNER, doc, owners)["events"]] == [_ref(1)]
    grantee = rp.events_doc(GRANTEE, doc, owners)
    assert grantee["count"] == 2 and grantee["evidence"] == [_ref(1), _ref(2)]
    assert rp.events_doc(SELF_MADE_AUDITOR, doc, owners)["evidence"] == [_ref(3)]
    assert rp.events_doc(AUDITOR, doc, owners) is doc


def test_txs_access_checks_and_models() -> None:
    assert rp.sees_sender(OWNER, "org1") and not rp.sees_sender(OWNER, "org2")
    assert not rp.sees_sender(OWNER, None) and rp.sees_sender(AUDITOR, None)
    assert rp.sees_access_check(GRANTEE, "org2", "org1")  # about itself
    assert rp.sees_access_check(OWNER, "org2", "org1")  # about its dataset
    assert not rp.sees_access_check(OTHER, "org2", "org1")
    assert rp.sees_model(OWNER, "org1") and not rp.sees_model(OTHER, "org1")
