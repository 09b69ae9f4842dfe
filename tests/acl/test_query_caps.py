"""Queries whose cost grows with the chain stop at a cap and say so (issue 15 §4): the
audit report goes on from where it stopped, grants and history name their truncation."""

from __future__ import annotations

import itertools

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


def test_a_capped_report_goes_on_from_where_it_stopped(told) -> None:
    story, chain = told
    start, end = story.genesis.timestamp_ms, story.revoke_ms + 10 * 3600 * 1000
    whole = q.audit_report(chain.state, start, end)
    assert whole.next_from_ms is None and whole.to_json()["complete"] is True
    for cap in (1, 2, 3, 5):
        pages, at = [], start
        while True:
            page = q.audit_report(chain.state, at, end, events_max=cap)
            pages.append(page)
            if page.next_from_ms is None:
                break
            assert page.to_json()["complete"] is False
            assert page.next_from_ms > at  # progress, at a block time
            at = page.next_from_ms
        assert len(pages) > 1
        assert sum(p.total for p in pages) == whole.total
        by_result: dict[str, int] = {}
        for p in pages:
            for r, n in p.by_result.items():
                by_result[r] = by_result.get(r, 0) + n
        assert by_result == whole.by_result
        # a block's events are counted together: no page ends inside a block time
        for a, b in itertools.pairwise(pages):
            assert a.last is not None and b.first is not None
            assert a.last.height < b.first.height


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
