"""The published vocabulary: kinds, schemas, builders."""

from __future__ import annotations

import json

import pytest

from acl import kinds as k
from acl import payloads as pl
from acl.schema import SCHEMAS, describe, is_id
from chain import limits
from chain.tx import KIND_PATTERN


def test_every_kind_is_a_valid_tx_kind_with_a_description_and_a_schema() -> None:
    assert len(k.KINDS) == 20
    for kind, description in k.KINDS.items():
        assert KIND_PATTERN.match(kind) and len(kind) <= limits.KIND_CHARS_MAX, kind
        assert description.endswith(".") and len(description) < 200
    assert SCHEMAS.keys() == k.KINDS.keys()
    assert sorted(k.KIND_CODES.values()) == list(range(1, len(k.KINDS) + 1))
    assert {kind for kind in k.KINDS if kind.startswith("audit.")} == k.AUDIT_KINDS


def test_the_issue_vocabulary_is_covered() -> None:
    for purpose in ("training", "fine_tuning", "evaluation", "inference"):
        assert purpose in k.PURPOSES
    assert k.ROLES == ("admin", "steward", "app", "auditor")
    assert set(k.RUN_EVENT_TYPES) >= {"START", "COMPLETE", "FAIL"}


def test_describe_is_json_for_the_rpc_and_cli() -> None:
    doc = describe()
    json.dumps(doc)
    access = doc["audit.data_access"]["fields"]
    assert access["purpose"]["required"] and "training" in access["purpose"]["doc"]
    assert not access["on_behalf_of"]["required"]


def test_builders_reject_what_the_machine_would_reject() -> None:
    with pytest.raises(pl.PayloadError, match="missing"):
        pl.build(
            k.GRANT_ISSUE, dataset_id="d", grantee_org="o", purposes=["training"], valid_from_ms=0
        )
    with pytest.raises(pl.PayloadError, match="no field 'colour'"):
        pl.build(k.GRANT_REVOKE, grant_id=bytes(32), colour="red")
    with pytest.raises(pl.PayloadError, match="invalid"):
        pl.data_access("d", purpose="mind_reading")
    with pytest.raises(pl.PayloadError, match="licence or a consent basis"):
        pl.dataset_register("d", content_hash=bytes(32), location="s3://d", sensitivity="public")
    with pytest.raises(pl.PayloadError, match="unknown kind"):
        pl.build("audit.nothing")
    assert pl.data_access("d", purpose="training", run_id=None) == {
        "v": 1,
        "dataset_id": "d",
        "purpose": "training",
    }


def test_ids_are_url_and_log_safe() -> None:
    assert is_id("hospital/chest-xray_2025.v1:a@b+c")
    for bad in ("", " x", "x y", "-x", "x\n", "é", "x" * 129, 5, b"x"):
        assert not is_id(bad), bad
