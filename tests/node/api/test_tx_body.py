"""The request bodies every front door takes (HTTP, MQTT): what they decode to, and that
no body unpacks into more memory than the txs it carries (issue 15 §4)."""

from __future__ import annotations

import base64
import json
import struct
import tracemalloc

import msgpack
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from chain import limits
from node.api.tx_body import BATCH_TXS_MAX, MSGPACK_TYPE, TxBodyError, parse_txs

TXS = st.lists(st.binary(min_size=1, max_size=300), min_size=1, max_size=40)


@given(TXS)
def test_msgpack_and_json_bodies_give_back_their_txs(txs: list[bytes]) -> None:
    assert parse_txs(msgpack.packb(txs), MSGPACK_TYPE) == txs
    assert parse_txs(msgpack.packb(txs[0]), MSGPACK_TYPE) == txs[:1]
    doc = {"txs": [base64.b64encode(t).decode() for t in txs]}
    assert parse_txs(json.dumps(doc).encode(), "application/json") == txs
    one = {"tx": base64.b64encode(txs[0]).decode()}
    assert parse_txs(json.dumps(one).encode(), "application/json") == txs[:1]


@settings(max_examples=300)
@given(st.binary(min_size=1, max_size=200), st.sampled_from([MSGPACK_TYPE, "application/json"]))
def test_any_body_decodes_or_gets_a_tx_body_error(body: bytes, content_type: str) -> None:
    try:
        txs = parse_txs(body, content_type)
    except TxBodyError as exc:
        assert str(exc) and exc.status in (400, 413, 415)
    else:
        assert txs and all(isinstance(t, bytes) for t in txs)


def _peak_bytes(body: bytes, content_type: str) -> int:
    tracemalloc.start()
    try:
        with pytest.raises(TxBodyError):
            parse_txs(body, content_type)
        return tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()


def test_nested_empty_arrays_are_refused_before_they_are_built() -> None:
    """Seen: 3.6 MiB of msgpack (an array of 10,000 arrays of 380 empty arrays, each
    container under the length limit) unpacked into ~230 MiB before the type check."""
    inner = msgpack.packb([[]] * 380)
    body = b"\xdc" + struct.pack(">H", BATCH_TXS_MAX) + inner * BATCH_TXS_MAX
    assert len(body) > 3_500_000
    assert _peak_bytes(body, MSGPACK_TYPE) < 2 * len(body)  # the unpacker's copy, no more


def test_a_json_body_of_nested_arrays_is_refused_before_it_is_parsed() -> None:
    body = b'{"txs": [' + b"[]," * 2_000_000 + b"[]]}"
    assert _peak_bytes(body, "application/json") < 1_000_000


@pytest.mark.parametrize(
    ("body", "needle"),
    [
        (msgpack.packb([b"a", "b"]), "element 1 is not a bin"),
        (msgpack.packb("text"), "is not msgpack txs"),
        (msgpack.packb(7), "is not msgpack txs"),
        (msgpack.packb([b"a"]) + b"\x00", "1 bytes after the txs"),
        (msgpack.packb([b"a", b"b"])[:-3], "ends before tx 1"),
        (msgpack.packb([b"a", b"bc"])[:-1], "ends inside tx 1"),
        (b"\xdc" + struct.pack(">H", BATCH_TXS_MAX + 1), "10001 txs in one request"),
        (msgpack.packb(b"x" * (limits.TX_BYTES_MAX + 1)), "is not msgpack txs"),
        (msgpack.packb([]), "no txs in the request"),
    ],
)
def test_malformed_msgpack_bodies_name_their_fault(body: bytes, needle: str) -> None:
    with pytest.raises(TxBodyError, match=needle):
        parse_txs(body, MSGPACK_TYPE)


@pytest.mark.parametrize(
    ("doc", "needle"),
    [
        ({"txs": [["a"]]}, "must be"),
        ({"txs": [{"a": 1}]}, "must be"),
        ({"tx": "AA==", "txs": ["AA=="]}, "exactly one"),
        ({"txs": ["not base64!"]}, "not valid base64"),
        ({"txs": [1]}, "list of base64 strings"),
    ],
)
def test_malformed_json_bodies_name_their_fault(doc: object, needle: str) -> None:
    with pytest.raises(TxBodyError, match=needle):
        parse_txs(json.dumps(doc).encode(), "application/json")
