"""Canonical codec: round trips, and every non-canonical or oversize input is rejected
with an error that names the problem."""

from __future__ import annotations

from typing import Any

import msgpack
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from chain import codec, limits

leaf = st.one_of(
    st.none(),
    st.booleans(),
    st.integers(min_value=codec.INT_MIN, max_value=codec.INT_MAX),
    st.text(max_size=40),
    st.binary(max_size=40),
)
values = st.recursive(
    leaf,
    lambda children: st.one_of(
        st.lists(children, max_size=6), st.dictionaries(st.text(max_size=10), children, max_size=6)
    ),
    max_leaves=30,
)


@settings(max_examples=400)
@given(values)
def test_round_trip(value: Any) -> None:
    raw = codec.encode(value)
    assert codec.decode(raw) == value
    assert codec.encode(codec.decode(raw)) == raw


@settings(max_examples=300)
@given(st.dictionaries(st.text(max_size=8), st.integers(0, 9), min_size=2, max_size=8))
def test_map_key_order_does_not_change_the_bytes(d: dict[str, int]) -> None:
    reordered = dict(reversed(list(d.items())))
    assert codec.encode(d) == codec.encode(reordered)


@settings(max_examples=300)
@given(values, st.binary(min_size=1, max_size=8))
def test_trailing_bytes_are_rejected(value: Any, extra: bytes) -> None:
    with pytest.raises(codec.DecodeError, match="trailing"):
        codec.decode(codec.encode(value) + extra)


@settings(max_examples=500)
@given(st.binary(max_size=64))
def test_garbage_never_raises_anything_but_decode_error(data: bytes) -> None:
    try:
        value = codec.decode(data)
    except codec.DecodeError:
        return
    assert codec.encode(value) == data  # accepted only when it is canonical


@pytest.mark.parametrize(
    ("raw", "problem"),
    [
        (msgpack.packb(1.5), "floats"),
        (b"\xcc\x05", "non-canonical"),  # 5 as uint8 instead of a fixint
        (b"\xd9\x01a", "non-canonical"),  # "a" as str8 instead of fixstr
        (b"\x82\xa1b\x01\xa1a\x02", "non-canonical"),  # unsorted keys
        (b"\x82\xa1a\x01\xa1a\x02", "non-canonical"),  # duplicate key
        (b"\x81\x01\x02", "map key"),
        (b"\xd4\x01\x00", "extension"),
        (b"\xa1\xff", "UTF-8"),
        (b"\x92\x01", "malformed"),
        (b"", "empty"),
        (b"\x91" * 20 + b"\x01", "nesting"),
    ],
)
def test_named_rejections(raw: bytes, problem: str) -> None:
    with pytest.raises(codec.DecodeError, match=problem):
        codec.decode(raw)


def test_size_limit() -> None:
    raw = codec.encode(b"x" * 100)
    with pytest.raises(codec.DecodeError, match="over the limit"):
        codec.decode(raw, max_bytes=50)


@pytest.mark.parametrize("bad", [1.0, {1: 2}, {"a": {2.5}}, 2**64, -(2**63) - 1, object()])
def test_values_without_a_canonical_encoding(bad: Any) -> None:
    with pytest.raises(codec.EncodeError):
        codec.encode(bad)


@pytest.mark.parametrize("depth", range(limits.PAYLOAD_DEPTH_MAX - 1, limits.PAYLOAD_DEPTH_MAX + 3))
@pytest.mark.parametrize("leaf", [1, "s", [], {}, [1], {"k": 1}])
@pytest.mark.parametrize("wrap", ["list", "map"])
def test_encode_and_decode_agree_on_the_depth_limit(depth: int, leaf: Any, wrap: str) -> None:
    """A value is decodable exactly when it is encodable, at and around the depth limit."""
    value = leaf
    for _ in range(depth):
        value = [value] if wrap == "list" else {"k": value}
    try:
        raw = codec.encode(value)
    except codec.EncodeError:
        with pytest.raises(codec.DecodeError, match="nesting deeper"):
            codec.decode(msgpack.packb(value, use_bin_type=True))
    else:
        assert codec.decode(raw) == value
