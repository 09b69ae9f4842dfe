"""The state machine's hot paths against the general code they stand in for (issue 14:
every replica executes every tx, so the access event's path is written out and cached).

- ``VALIDATORS["audit.data_access"]`` gives the answer of the schema's own ``validate``
  on generated payloads, well-formed or not, before and after its id cache is warm;
- ``audit_rules.record_data_access`` (written out, its record's end cached) gives the
  results, writes and state root of the composed version it replaced, kept here as the
  reference, on sample traffic and on generated access events of every outcome, block
  after block with the cache shared between them (a stale cache entry would show);
- ``is_id``'s cache never accepts what the pattern refuses, and empties when full.
"""

from __future__ import annotations

import dataclasses
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from acl import audit_rules, machine, samples, schema
from acl import keys as K
from acl import kinds as k
from acl import payloads as pl
from acl.block_context import BlockContext, Principal
from acl.machine import BlockOutcome, apply_block, genesis_state
from acl.records import encode_event
from acl.results import Result
from acl.schema import SCHEMAS, VALIDATORS, is_id
from acl.state import MemoryState
from chain import limits
from chain.genesis import Genesis
from chain.tx import Tx

ACCESS = k.AUDIT_DATA_ACCESS
_ACCESS_ROLES = k.AUDIT_ROLES[ACCESS]
_ACCESS_CODE = k.KIND_CODES[ACCESS]


def _reference_record_data_access(b: BlockContext, p: Principal, payload: dict[str, Any]) -> Result:
    """``record_data_access`` as it was before it was written out (bf9d6f3 and earlier)."""
    if p.role not in _ACCESS_ROLES:
        return Result.UNAUTHORIZED
    if "on_behalf_of" in payload and b.load(K.ORG + K.org_key(payload["on_behalf_of"])) is None:
        return Result.NOT_FOUND
    dataset_id = payload["dataset_id"]
    dk = K.dataset_key(dataset_id)
    ds = b.load(K.DATASET + dk)
    if ds is None:
        return Result.NOT_FOUND
    version = payload.get("version")
    if version is not None and version > ds["version_count"]:
        return Result.NOT_FOUND
    allowed, gid = b.match_grant(p, ds, dk, version, payload["purpose"], payload.get("grant_id"))
    result = Result.ACCEPTED if allowed else Result.NO_GRANT
    tx_id, ms = b.tx_id, b.ms
    at = K.position(b.height, b.index)
    pos = K.u64(ms) + at
    purpose = payload["purpose"]
    b.tally.append((_ACCESS_CODE, p.org_id, int(result), purpose, (dataset_id,), b.index, tx_id))
    put = b.ov.put_trusted
    put(
        K.LOG + pos,
        encode_event(
            _ACCESS_CODE,
            tx_id,
            p.actor_bytes,
            result,
            purpose,
            ((dataset_id, version, gid),),
            None,
            payload.get("on_behalf_of"),
            payload.get("run_id"),
        ),
    )
    if not allowed:
        put(K.VIOLATION + pos, b"")
    put(K.HISTORY + dk + at, K.MARK.pack(_ACCESS_CODE, result, ms, tx_id))
    return result


def _both(
    state: MemoryState, genesis: Genesis, height: int, ms: int, txs: list[Tx]
) -> BlockOutcome:
    """The block's outcome by the hot path and by the reference; they must be equal."""
    fast = apply_block(state, genesis=genesis, height=height, timestamp_ms=ms, txs=txs)
    with pytest.MonkeyPatch.context() as mp:
        mp.setitem(
            machine._DISPATCH, ACCESS, (SCHEMAS[ACCESS].validate, _reference_record_data_access)
        )
        slow = apply_block(state, genesis=genesis, height=height, timestamp_ms=ms, txs=txs)
    assert fast.results == slow.results
    assert fast.writes == slow.writes
    assert fast.state_root == slow.state_root
    assert fast.change_set == slow.change_set
    return fast


@pytest.mark.parametrize("mix", ["access", "mixed"])
def test_sample_traffic_gives_what_the_reference_gives(mix: str) -> None:
    traffic = samples.traffic(7, blocks=4, txs_per_block=250, mix=mix, violation_share_pct=20)
    state = MemoryState()
    state.apply(genesis_state(traffic.genesis).writes)
    for height, block in enumerate((*traffic.setup, *traffic.blocks), start=1):
        out = _both(state, traffic.genesis, height, block.timestamp_ms, list(block.txs))
        state.apply(out.writes)
    assert Result.NO_GRANT in out.results and Result.ACCEPTED in out.results


# -- generated access events ------------------------------------------------------------

_WORLD = samples.traffic(3, blocks=1, txs_per_block=1, orgs=3, datasets_per_org=2)
_SEED = b"3"
_ORGS = sorted(o.org_id for o in _WORLD.genesis.organisations)
_CID = _WORLD.genesis.chain_id


def _world_state() -> tuple[MemoryState, int, int]:
    state = MemoryState()
    state.apply(genesis_state(_WORLD.genesis).writes)
    height = 0
    ms = _WORLD.genesis.timestamp_ms
    for block in _WORLD.setup:
        height += 1
        out = apply_block(
            state,
            genesis=_WORLD.genesis,
            height=height,
            timestamp_ms=block.timestamp_ms,
            txs=list(block.txs),
        )
        state.apply(out.writes)
        ms = block.timestamp_ms
    return state, height, ms


_SENDERS = [
    samples.Signer(samples.derive_key(_SEED, f"{o}/{who}"), _CID, sign=False)
    for o in _ORGS
    for who in ("app0", "app1", "steward", "admin")
] + [samples.Signer(samples.derive_key(b"nobody", "x"), _CID, sign=False)]
_DATASETS = [f"{o}/ds{d:03d}" for o in _ORGS for d in range(2)] + ["nowhere/ds", "a b"]
_ISSUED = [tx.tx_id for block in _WORLD.setup for tx in block.txs if tx.kind == k.GRANT_ISSUE]
_GRANT_IDS = [*_ISSUED[:3], bytes(32)]

_access_payload = st.fixed_dictionaries(
    {
        "v": st.sampled_from([1, 1, 1, 2]),
        "dataset_id": st.sampled_from(_DATASETS),
        "purpose": st.sampled_from([*k.PURPOSES[:4], "research", "nope"]),
    },
    optional={
        "version": st.sampled_from([1, 2, 0, 2**32]),
        "grant_id": st.sampled_from(_GRANT_IDS),
        "access_type": st.sampled_from([*k.ACCESS_TYPES, "peek"]),
        "record_count": st.sampled_from([0, 5, -1, 2**63]),
        "run_id": st.sampled_from(["run-1", "run-2", "-bad"]),
        "on_behalf_of": st.sampled_from([*_ORGS, "org99"]),
        "digest": st.sampled_from([bytes(32), b"short"]),
        "event_time_ms": st.sampled_from([1, -1]),
        "producer": st.sampled_from(["https://x", ""]),
    },
)


@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(
    st.lists(
        st.lists(
            st.tuples(st.integers(0, len(_SENDERS) - 1), _access_payload), min_size=1, max_size=12
        ),
        min_size=1,
        max_size=3,
    )
)
def test_generated_access_events_give_what_the_reference_gives(
    blocks: list[list[tuple[int, dict[str, Any]]]],
) -> None:
    state, height, ms = _world_state()
    for block in blocks:
        ms += 1000
        height += 1
        txs = [
            _SENDERS[who].tx(ACCESS, {key: payload[key] for key in sorted(payload)}, ms)
            for who, payload in block
        ]
        txs += txs[:1]  # a replay in the same block
        out = _both(state, _WORLD.genesis, height, ms, txs)
        state.apply(out.writes)


def test_a_cached_record_end_is_never_another_event_s() -> None:
    """Two events alike but for the tx id, and then for the result, get the records
    ``encode_event`` gives each."""
    state, height, ms = _world_state()
    app = _SENDERS[0]
    owner_ds = _DATASETS[0]  # the app's own organisation's: always allowed
    foreign = _DATASETS[-3]
    payloads = [
        pl.data_access(owner_ds, purpose="training", run_id="r"),
        pl.data_access(owner_ds, purpose="training", run_id="r"),
        pl.data_access(foreign, purpose="research", run_id="r"),
        pl.data_access(foreign, purpose="research", run_id="r"),
    ]
    txs = [app.tx(ACCESS, p, ms + 1000) for p in payloads]
    out = apply_block(
        state, genesis=_WORLD.genesis, height=height + 1, timestamp_ms=ms + 1000, txs=txs
    )
    logs = [v for key, v in out.writes if key.startswith(K.LOG) and v is not None]
    assert len(logs) == 4 and len(set(logs)) == 4
    for tx, raw in zip(txs, logs, strict=True):
        assert raw[4:36] == tx.tx_id
        assert raw == audit_rules._ACCESS_HEAD + tx.tx_id + raw[audit_rules._ACCESS_TAIL_AT :]
    assert out.results[2] == Result.NO_GRANT and out.results[0] == Result.ACCEPTED


# -- the schema's written-out check -------------------------------------------------------

_value = st.one_of(
    st.none(),
    st.booleans(),
    st.integers(-2, 3),
    st.sampled_from([2**32 - 1, 2**32, limits.TIMESTAMP_MS_MAX, limits.TIMESTAMP_MS_MAX + 1]),
    st.sampled_from(["ds-1", "org/ds", "", "-x", "a b", "x" * 129, "x" * 128, *k.PURPOSES]),
    st.sampled_from([*k.ACCESS_TYPES, "run-7", "https://p"]),
    st.binary(min_size=30, max_size=33),
    st.lists(st.integers(0, 2), max_size=2),
)
_field_names = st.sampled_from([*SCHEMAS[ACCESS].fields, "extra", "inputs"])


@settings(max_examples=400, deadline=None)
@given(
    st.dictionaries(_field_names, _value, max_size=8),
    st.booleans(),
    st.data(),
)
def test_the_written_out_access_check_answers_as_the_schema(
    fields: dict[str, Any], well_formed_core: bool, data: st.DataObject
) -> None:
    payload = dict(fields)
    if well_formed_core:
        payload.update(
            v=1,
            dataset_id=data.draw(st.sampled_from(["ds-1", "org/ds", "-x"])),
            purpose=data.draw(st.sampled_from([*k.PURPOSES, "nope"])),
        )
    check = VALIDATORS[ACCESS]
    want = SCHEMAS[ACCESS].validate(payload)
    schema._IDS_SEEN.clear()
    assert check(payload) == want  # cold: ids not seen yet
    assert check(payload) == want  # warm
    assert schema.validate(_tx(payload)) == want


def test_non_dict_payloads_are_malformed_both_ways() -> None:
    payloads: tuple[Any, ...] = (None, [], "x", 1)
    for payload in payloads:
        assert VALIDATORS[ACCESS](payload) == SCHEMAS[ACCESS].validate(payload)


def _tx(payload: Any) -> Tx:
    return Tx(1, "c", ACCESS, bytes(32), 1, 1, payload, bytes(64))


def test_every_other_kind_keeps_its_schema_check() -> None:
    for kind, check in VALIDATORS.items():
        if kind != ACCESS:
            assert check == SCHEMAS[kind].validate


def test_the_id_cache_never_widens_the_pattern_and_stays_bounded(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setattr(schema, "_IDS_SEEN", {})
    monkeypatch.setattr(schema, "_IDS_SEEN_MAX", 4)
    for bad in ("", "-x", "a b", "x" * 129, b"ds", 7):
        assert not is_id(bad) and not is_id(bad)
    for i in range(10):
        assert is_id(f"id{i}") and is_id(f"id{i}")
        assert len(schema._IDS_SEEN) <= 4
    assert "a b" not in schema._IDS_SEEN


def test_principal_is_unchanged_for_the_hot_path() -> None:
    """The written-out path reads these fields of a ``Principal``; a rename must fail here
    rather than at run time."""
    names = {f.name for f in dataclasses.fields(Principal)}
    assert {"org_id", "role", "actor_bytes", "org_key", "name"} <= names
