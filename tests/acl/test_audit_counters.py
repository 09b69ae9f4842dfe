"""The audit counters (``acl.audit_counters``): the report they give equals the report of a
full scan of the range, on generated chains and random ranges (Hypothesis); they are part
of the state and its root; a report costs at most two seeks per label.

Chains: ``samples.traffic``'s mixed traffic (access events with violations, inference
batches, training runs with several inputs, evaluations, grants, versions, models) over a
few organisations and datasets, its blocks re-timed by drawn steps (0 ms included: blocks
that share a time) so that range bounds fall on, between and around block times.
"""

from __future__ import annotations

from collections.abc import Sequence

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from acl import audit_counters as C
from acl import audit_report as R
from acl import keys as K
from acl import kinds as k
from acl import payloads as pl
from acl import queries as q
from acl import samples
from acl.machine import apply_block
from acl.results import Result
from acl.state import Overlay, StateError, prefix_end
from tests.acl.helpers import LocalChain


def build(seed: int, steps: Sequence[int], txs_per_block: int) -> tuple[LocalChain, list[int]]:
    """A chain of the set-up blocks then one block per step, ``step`` ms after the one
    before; the block times."""
    traffic = samples.traffic(
        seed,
        blocks=len(steps),
        txs_per_block=txs_per_block,
        mix="mixed",
        orgs=3,
        datasets_per_org=3,
        apps_per_org=2,
        violation_share_pct=30,
    )
    chain = LocalChain(traffic.genesis)
    times = []
    for block in traffic.setup:
        chain.apply(block.txs, block.timestamp_ms)
        times.append(block.timestamp_ms)
    ms = times[-1]
    for step, block in zip(steps, traffic.blocks, strict=True):
        ms += step
        chain.apply(block.txs, ms)
        times.append(ms)
    return chain, times


def bounds(times: Sequence[int]) -> st.SearchStrategy[int]:
    """Range bounds around a chain: its block times, one ms either side, anywhere near,
    and the far ends."""
    near = sorted({t + d for t in times for d in (-1, 0, 1)})
    return st.one_of(
        st.sampled_from(near),
        st.integers(times[0] - 5_000, times[-1] + 5_000),
        st.sampled_from([0, -7, 2**63 - 1, 2**70]),
    )


def same_report(chain: LocalChain, a: int, b: int) -> None:
    counted = q.audit_report(chain.state, a, b).to_json()
    scanned = q.audit_report_scan(chain.state, a, b).to_json()
    assert counted == scanned, (a, b)
    assert C.violations_count(chain.state, a, b) == scanned["by_result"].get("no_grant", 0)


STEPS = st.lists(st.sampled_from([0, 0, 1, 7, 500, 1_000, 1_999]), min_size=1, max_size=6)


@settings(
    max_examples=12,
    deadline=None,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large],
)
@given(
    seed=st.integers(0, 2**16),
    steps=STEPS,
    size=st.integers(1, 80),
    data=st.data(),
)
def test_the_counted_report_equals_a_full_scan_on_random_ranges(
    seed: int, steps: list[int], size: int, data: st.DataObject
) -> None:
    chain, times = build(seed, steps, size)
    whole = q.audit_report(chain.state, 0, 2**63 - 1)
    assert whole.total > 0 and whole.to_json()["complete"] is True
    same_report(chain, 0, 2**63 - 1)
    for _ in range(12):
        a = data.draw(bounds(times), label="from_ms")
        b = data.draw(bounds(times), label="until_ms")
        same_report(chain, a, b)


@settings(max_examples=6, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(seed=st.integers(0, 2**16), steps=STEPS, data=st.data())
def test_capped_lists_match_the_scan_too(seed: int, steps: list[int], data: st.DataObject) -> None:
    """With small caps the violations and evidence are the first ones of the range, the
    flags and the violations cursor say more exist, as the full scan says."""
    chain, times = build(seed, steps, 120)
    with pytest.MonkeyPatch.context() as mp:
        mp.setattr(R, "REPORT_VIOLATIONS_MAX", 3)
        mp.setattr(R, "REPORT_EVIDENCE_MAX", 5)
        whole = q.audit_report(chain.state, 0, 2**63 - 1)
        assert whole.truncated == (whole.total > 5)
        assert whole.violations_truncated == (whole.by_result.get("no_grant", 0) > 3)
        doc = whole.to_json()
        assert len(doc["violations"]) == min(3, whole.by_result.get("no_grant", 0))
        assert len(doc["evidence"]) == min(5, whole.total)
        if whole.violations_truncated:
            last = whole.violations[-1]
            assert doc["violations_next_cursor"] == (
                K.time_position(last.timestamp_ms, last.tx.height, last.tx.index).hex()
            )
        else:
            assert doc["violations_next_cursor"] is None
        # the evidence cursor is the fifth event's place in the log
        if whole.truncated:
            fifth = list(chain.state.range(K.LOG, prefix_end(K.LOG)))[4][0]
            assert doc["evidence_next_cursor"] == fifth[1:].hex()
        same_report(chain, 0, 2**63 - 1)
        for _ in range(8):
            same_report(
                chain, data.draw(bounds(times), label="a"), data.draw(bounds(times), label="b")
            )


def test_a_report_costs_at_most_two_seeks_per_label() -> None:
    chain, times = build(3, [1_000] * 6, 120)
    every = C.range_counts(chain.state, 0, 2**63 - 1)
    assert every.seeks == 0  # every label lies wholly inside: its total
    labels = sum(1 for _ in chain.state.range(K.COUNT, K.COUNT_AT))
    assert labels == len(every.labels) + 1  # + ALL
    middle = C.range_counts(chain.state, times[-4], times[-2])
    assert 0 < middle.seeks <= 2 * labels
    assert middle.total == q.audit_report_scan(chain.state, times[-4], times[-2]).total > 0


def test_the_counters_are_in_the_state_root_and_replay_from_the_change_set() -> None:
    """A block with events writes its counters in its change set (the ``LocalChain``
    helper replays every block from it and compares states); dropping them changes the
    root."""
    chain, _ = build(5, [1_000, 0, 1_000], 40)
    outcome = chain.outcomes[-1]
    counter_writes = [k for k, _ in outcome.writes if k[:1] in (K.COUNT, K.COUNT_AT)]
    assert any(k.startswith(K.COUNT + C.ALL) for k in counter_writes)
    assert any(k.startswith(K.COUNT_AT + C.ALL) for k in counter_writes)
    from acl.state_root import chain_root, writes_digest

    kept = [w for w in outcome.writes if w[0] != K.META_ROOT]
    without = [w for w in kept if w[0][:1] not in (K.COUNT, K.COUNT_AT)]
    prev = chain.outcomes[-2].state_root
    assert chain_root(prev, chain.height, chain.timestamp_ms, writes_digest(kept)) == (
        outcome.state_root
    )
    assert chain_root(prev, chain.height, chain.timestamp_ms, writes_digest(without)) != (
        outcome.state_root
    )


def test_a_block_without_events_writes_no_counters() -> None:
    chain, _ = build(9, [1_000], 10)
    before = [kv for kv in chain.state.items() if kv[0][:1] in (K.COUNT, K.COUNT_AT)]
    chain.apply((), chain.timestamp_ms + 1_000)
    after = [kv for kv in chain.state.items() if kv[0][:1] in (K.COUNT, K.COUNT_AT)]
    assert after == before


def test_a_state_of_layout_1_is_refused() -> None:
    chain, _ = build(1, [1_000], 5)
    old = Overlay(chain.state)
    old.put(K.META_LAYOUT, K.u64(1))
    with pytest.raises(StateError, match="layout 1"):
        apply_block(
            old,
            genesis=chain.genesis,
            height=chain.height + 1,
            timestamp_ms=chain.timestamp_ms,
            txs=[],
        )


def test_an_event_counts_once_per_dataset_and_without_a_purpose_under_none() -> None:
    """A run naming one dataset twice (two contexts) counts once for it; events without a
    purpose (the story's model registration, deployment, ...) count under ``"none"``: as
    the scan counts."""
    story = samples.story()
    chain = LocalChain(story.genesis)
    for block in story.blocks[:4]:  # the grant (training, to the lab) is in force
        chain.apply(block.txs, block.timestamp_ms)
    at = chain.timestamp_ms + 1_000
    twice = [
        pl.dataset_ref(story.dataset_id, context="training"),
        pl.dataset_ref(story.dataset_id, context="validation"),
    ]
    trainer = story.signers["lab/trainer"]
    runs = [
        trainer.tx(
            k.AUDIT_TRAINING_RUN,
            pl.build(
                k.AUDIT_TRAINING_RUN,
                run_id=run_id,
                event_type="START",
                purpose=purpose,
                inputs=twice,
            ),
            at,
        )
        for run_id, purpose in (("twice", "training"), ("twice-research", "research"))
    ]
    assert chain.apply(runs, at) == [Result.ACCEPTED, Result.NO_GRANT]
    one = q.audit_report(chain.state, at, at + 1)
    assert one.total == 2
    assert one.by_dataset == {story.dataset_id: 2}
    assert one.by_dataset_result == {story.dataset_id: {"accepted": 1, "no_grant": 1}}
    assert one.by_purpose == {"research": 1, "training": 1}
    assert C.violations_count(chain.state, at, at + 1) == 1
    assert C.violations_count(chain.state, 0, at) == 1  # the story's evaluation
    assert one.to_json() == q.audit_report_scan(chain.state, at, at + 1).to_json()
    whole = q.audit_report(chain.state, 0, 2**63 - 1)
    assert whole.by_purpose["none"] > 0
    assert whole.to_json() == q.audit_report_scan(chain.state, 0, 2**63 - 1).to_json()
