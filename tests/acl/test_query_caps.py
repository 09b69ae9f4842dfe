"""Queries whose cost grows with the chain stop at a cap and say so (issue 15 §4): grants
and history name their truncation; the audit report, counted from the audit counters,
has no cap to stop at (issue 17)."""

from __future__ import annotations

import pytest

from acl import dataset_history as dh
from acl import grant_lists, samples
from acl import queries as q
from tests.acl.helpers import LocalChain


@pytest.fixture(scope="module")
def told() -> tuple[samples.Story, LocalChain]:
    story = samples.story()
    chain = LocalChain(story.genesis)
    for block in story.blocks:
        chain.apply(block.txs, block.timestamp_ms)
    return story, chain


def test_the_report_covers_its_whole_range_in_one_answer(told) -> None:
    """The report counts from the audit counters (``acl.audit_counters``): no event cap,
    so it never stops part way (``complete``, no ``next_from_ms``); a range cut at any
    block time counts what the full scan counts, and the pieces add up to the whole."""
    story, chain = told
    start, end = story.genesis.timestamp_ms, story.revoke_ms + 10 * 3600 * 1000
    whole = q.audit_report(chain.state, start, end)
    doc = whole.to_json()
    assert doc["complete"] is True and doc["next_from_ms"] is None and whole.total == 9
    cuts = sorted({b.timestamp_ms for b in story.blocks})
    for cut in cuts:
        left, right = q.audit_report(chain.state, start, cut), q.audit_report(chain.state, cut, end)
        assert left.to_json() == q.audit_report_scan(chain.state, start, cut).to_json()
        assert right.to_json() == q.audit_report_scan(chain.state, cut, end).to_json()
        assert left.total + right.total == whole.total
        for r, n in whole.by_result.items():
            assert left.by_result.get(r, 0) + right.by_result.get(r, 0) == n
        if left.last is not None and right.first is not None:
            assert left.last < right.first


def test_grant_lists_and_history_name_their_truncation(
    told, monkeypatch: pytest.MonkeyPatch
) -> None:
    story, chain = told
    full = q.grants_by_dataset(chain.state, story.dataset_id)
    history = q.dataset_history(chain.state, story.dataset_id)
    assert not full.truncated and not history.entries_truncated
    assert len(full.grants) >= 1 and len(history.entries) >= 3
    monkeypatch.setattr(grant_lists, "GRANTS_READ_MAX", 0)
    monkeypatch.setattr(dh, "HISTORY_READ_MAX", 2)
    capped = q.grants_by_dataset(chain.state, story.dataset_id)
    assert capped.truncated and capped.grants == () and capped.to_json()["truncated"]
    short = q.dataset_history(chain.state, story.dataset_id)
    assert short.entries_truncated and short.entries == history.entries[:2]
    assert short.to_json()["entries_truncated"] is True
