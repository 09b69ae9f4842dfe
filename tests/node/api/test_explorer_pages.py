"""The explorer's cursor pagination (``node.api.explorer``) on an in-memory state: every
entry of a family exactly once, in key order, whatever the page size, and never more
than one page's scan per request."""

from __future__ import annotations

from typing import Any

import pytest

from acl import keys as K
from acl.state import MemoryState
from node.api import explorer


def _family(n: int) -> MemoryState:
    state = MemoryState()
    for i in range(n):
        state.put(K.DATASET + i.to_bytes(32, "big"), b"%d" % i)
    state.put(K.VERSION + b"\x00" * 36, b"other family")  # right after the D keys
    return state


def _walk(state: MemoryState, limit: int, build: Any) -> tuple[list[Any], int]:
    items: list[Any] = []
    cursor = None
    pages = 0
    while True:
        page = explorer._page(state, K.DATASET, 32, cursor, limit, build)
        pages += 1
        assert len(page["items"]) <= limit
        items.extend(page["items"])
        cursor = None if page["next_cursor"] is None else bytes.fromhex(page["next_cursor"])
        if cursor is None:
            return items, pages


@pytest.mark.parametrize(("n", "limit"), [(0, 5), (1, 1), (7, 3), (9, 3), (10, 200)])
def test_pages_cover_a_family_once_in_order(n: int, limit: int) -> None:
    items, pages = _walk(_family(n), limit, lambda k, v: {"v": int(v)})
    assert [i["v"] for i in items] == list(range(n))
    assert pages == max(1, -(-n // limit))  # no empty last page


def test_skipped_entries_still_advance_the_cursor(monkeypatch: pytest.MonkeyPatch) -> None:
    """A page that skips entries (model owner records) stops after SCAN_MAX of them and
    hands back a cursor past them, so a family of skipped entries cannot stall a page."""
    monkeypatch.setattr(explorer, "SCAN_MAX", 4)
    state = _family(11)
    items, pages = _walk(state, 50, lambda k, v: {"v": int(v)} if int(v) % 5 == 0 else None)
    assert [i["v"] for i in items] == [0, 5, 10]
    assert pages == 3


def test_a_models_uses_are_capped_in_its_lineage_scan(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(explorer, "USES_MAX", 3)
    state = MemoryState()
    prefix = K.MODEL_USE + K.model_version_key("m", 1)
    for i in range(5):
        state.put(prefix + K.position(i + 1, 0), b"x")
    state.put(K.DATASET + b"\x01" * 32, b"d")
    capped = explorer._UsesCapped(state)
    assert len(list(capped.range(K.MODEL_USE, None))) == 3 and capped.truncated
    other = explorer._UsesCapped(state)
    assert len(list(other.range(K.DATASET, K.VERSION))) == 1 and not other.truncated
