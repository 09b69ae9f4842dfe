"""A tx's decoded fields become a ``Tx`` on a direct path when every field is exactly of
its type and in range (every replica decodes every tx: issue 14); the checked path
gives the verdict otherwise. The two agree on generated field lists, well-formed or not,
with the kind cache cold and warm, and the cache stays bounded."""

from __future__ import annotations

from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from chain import limits
from chain import tx as T
from chain.tx import Tx, TxError, decode_txs

_GOOD: list[Any] = [
    1,
    "chain-1",
    "audit.data_access",
    bytes(32),
    5,
    1_700_000_000_000,
    {"v": 1},
    bytes(64),
]

_any = st.one_of(
    st.none(),
    st.booleans(),
    st.integers(-1, 2),
    st.sampled_from([limits.NONCE_MAX, limits.NONCE_MAX + 1, 2**64 - 1]),
    st.sampled_from(["", "c", "x" * 64, "x" * 65, "a.b", "A.b", "a..b", "a.b\n", "k" * 49]),
    st.binary(min_size=31, max_size=33),
    st.binary(min_size=63, max_size=65),
    st.sampled_from([{}, {"v": 1}, [], [1]]),
)


def _outcome(f: Any, fields: Any) -> Any:
    try:
        tx = f(fields)
    except TxError as exc:
        return ("error", str(exc))
    assert type(tx) is Tx
    return ("tx", tx.unsigned_fields(), tx.signature)


@settings(max_examples=500, deadline=None)
@given(st.lists(st.integers(0, 7), max_size=3, unique=True), st.data())
def test_the_direct_path_agrees_with_the_checked_one(
    replaced: list[int], data: st.DataObject
) -> None:
    fields: Any = list(_GOOD)
    for i in replaced:
        fields[i] = data.draw(_any)
    if data.draw(st.booleans()):
        fields = data.draw(st.sampled_from([fields[:7], [*fields, 1], tuple(fields), None]))
    want = _outcome(T._from_fields_checked, fields)
    T._KINDS_SEEN.clear()
    assert _outcome(T._from_fields, fields) == want  # kind not seen yet
    assert _outcome(T._from_fields, fields) == want  # seen, if it was good


def test_a_tx_built_directly_is_a_whole_frozen_tx() -> None:
    raw = Tx(*_GOOD).to_bytes()
    T._KINDS_SEEN.clear()
    first, second = decode_txs([raw, raw])
    assert first == second == Tx(*_GOOD)
    assert isinstance(second, Tx) and second.to_bytes() == raw
    with pytest.raises(AttributeError):
        second.nonce = 6  # type: ignore[misc]


def test_the_kind_cache_is_bounded(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(T, "_KINDS_SEEN", {})
    for i in range(T._KINDS_SEEN_MAX + 10):
        T._from_fields([*_GOOD[:2], f"k{i}", *_GOOD[3:]])
    assert len(T._KINDS_SEEN) == T._KINDS_SEEN_MAX
