"""The canonical-msgpack screening kernel against its reference, ``chain.codec.decode``:
the same verdict on every input, generated, mutated and crafted (``selfcheck``'s
boundary cases); and ``batch_decode.decode_many``/``tx.decode_txs`` on both backends."""

from __future__ import annotations

import msgpack
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from chain import batch_decode, codec, limits
from chain.kernels import backend, msgpack_canon, reference, selfcheck
from chain.tx import TxError, decode_tx, decode_txs
from tests.factories import txs

scalars = (
    st.none()
    | st.booleans()
    | st.integers(-(2**63), 2**64 - 1)
    | st.text(max_size=40)
    | st.binary(max_size=40)
)
values = st.recursive(
    scalars,
    lambda inner: (
        st.lists(inner, max_size=5) | st.dictionaries(st.text(max_size=6), inner, max_size=5)
    ),
    max_leaves=30,
)


def _agree(datas: list[bytes]) -> None:
    assert msgpack_canon.canonical(datas) == reference.canonical_msgpack(datas)


def test_the_boundary_cases_agree_and_hold_both_verdicts() -> None:
    cases = selfcheck.msgpack_cases()
    want = reference.canonical_msgpack(cases)
    assert 50 < sum(want) < len(cases) - 50
    _agree(cases)


@settings(max_examples=300, deadline=None)
@given(st.lists(values, min_size=1, max_size=8))
def test_canonical_encodings_agree(vals: list[object]) -> None:
    datas = []
    for v in vals:
        try:
            datas.append(codec.encode(v))
        except codec.EncodeError:  # nested past the limit
            datas.append(msgpack.packb(v, use_bin_type=True))
    _agree(datas)


@st.composite
def mutated(draw: st.DrawFn) -> bytes:
    """An encoding (canonical or, with floats, unsorted keys and str-as-bin, not) with
    bytes replaced, inserted or cut."""
    v = draw(
        values
        | st.floats(allow_nan=False, width=32)
        | st.dictionaries(st.text(max_size=3), scalars)
    )
    data = bytearray(
        msgpack.packb(v, use_bin_type=draw(st.booleans()), use_single_float=draw(st.booleans()))
    )
    for _ in range(draw(st.integers(0, 3))):
        at = draw(st.integers(0, len(data)))
        op = draw(st.sampled_from(["set", "insert", "cut"]))
        if op == "set" and at < len(data):
            data[at] = draw(st.integers(0, 255))
        elif op == "insert":
            data.insert(at, draw(st.integers(0, 255)))
        else:
            del data[at:]
    return bytes(data)


@settings(max_examples=1500, deadline=None)
@given(st.lists(mutated() | st.binary(max_size=30), min_size=1, max_size=8))
def test_mutated_and_random_bytes_agree(datas: list[bytes]) -> None:
    _agree(datas)


@pytest.mark.parametrize("name", backend.BACKENDS)
def test_decode_many_is_decode_for_each_input(name: str, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(backend, "_active", backend.load(name))
    cases = [*selfcheck.msgpack_cases(), codec.encode({"a": [1, 2]}), b"\xc4\x03abc"]
    got = batch_decode.decode_many(cases, max_bytes=1000)
    for data, result in zip(cases, got, strict=True):
        if len(data) > 1000:
            assert isinstance(result, codec.DecodeError) and "over the limit" in str(result)
            continue
        try:
            want = codec.decode(data, max_bytes=1000)
        except codec.DecodeError as exc:
            assert isinstance(result, codec.DecodeError) and str(result) == str(exc)
        else:
            assert result == want and type(result) is type(want)


@pytest.mark.parametrize("name", backend.BACKENDS)
def test_decode_txs_is_decode_tx_for_each(name: str, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(backend, "_active", backend.load(name))
    good = txs(3)
    fields = codec.decode(good[0])
    raws = [
        *good,
        b"\x00" * (limits.TX_BYTES_MAX + 1),
        good[1][:-1],
        codec.encode(fields[:7]),
        codec.encode([2, *fields[1:]]),
        good[2] + b"\x00",
        codec.encode([*fields[:6], {"b": 1, "a": 2}, fields[7]]).replace(b"\xa1a", b"\xa1c"),
    ]
    for raw, result in zip(raws, decode_txs(raws), strict=True):
        try:
            want = decode_tx(raw)
        except TxError as exc:
            assert isinstance(result, TxError) and str(result) == str(exc)
        else:
            assert result == want
    assert [isinstance(r, TxError) for r in decode_txs(raws)] == [False] * 3 + [True] * 6


def test_self_check_catches_a_wrong_canonical_verdict() -> None:
    def lenient(datas: object) -> list[bool]:
        return [True] * len(datas)  # type: ignore[arg-type]

    with pytest.raises(selfcheck.KernelMismatch, match="canonical msgpack"):
        selfcheck.run(reference.leaf_hashes, reference.merkle_root, reference.verify_batch, lenient)
