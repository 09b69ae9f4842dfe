"""Receipts built from a store verify offline against the genesis, and every kind of
tampering is caught with a message naming the failed check."""

from __future__ import annotations

import base64
import dataclasses
import json
from collections.abc import Callable
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from chain import signing
from chain.genesis import Genesis, Organisation, Validator
from chain.hashing import leaf_hash
from chain.receipt import (
    HeaderSignature,
    Receipt,
    ReceiptError,
    header_signing_bytes,
    quorum,
    verify_receipt,
)
from storage.memory_store import MemoryBlockStore
from storage.receipts import build_receipt
from tests.factories import CHAIN_ID, ChainBuilder

NODE_KEYS = [signing.private_key_from_bytes(bytes([50 + i]) * 32) for i in range(3)]


def genesis(consensus: str = "raft") -> Genesis:
    return Genesis(
        chain_id=CHAIN_ID,
        consensus=consensus,
        timestamp_ms=0,
        organisations=(Organisation("o1", "Org 1"),),
        identities=(),
        validators=tuple(
            Validator(f"n{i + 1}", "o1", signing.public_key_bytes(k))
            for i, k in enumerate(NODE_KEYS)
        ),
        governance_quorum=1,
    )


def certify(store: MemoryBlockStore, height: int, signers: range) -> None:
    header = store.header(height)
    assert header is not None
    msg = header_signing_bytes(header.hash)
    store.put_certificate(height, [(f"n{i + 1}", signing.sign(NODE_KEYS[i], msg)) for i in signers])


@pytest.fixture
def receipt() -> Receipt:
    store = MemoryBlockStore()
    b = ChainBuilder()
    for n in (3, 5, 2):
        store.append(b.block(n, results=[i % 3 for i in range(n)]))
    for h in (1, 2, 3):
        certify(store, h, range(2))
    block = store.block(2)
    assert block is not None
    r = build_receipt(store, leaf_hash(block.txs[3]))
    assert r is not None
    return r


def test_a_receipt_verifies_and_survives_json(receipt: Receipt) -> None:
    check = verify_receipt(receipt, genesis())
    assert check.height == 2 and check.result == 0 and check.signers == ("n1", "n2")
    again = Receipt.from_json(json.loads(json.dumps(receipt.to_json())))
    assert again == receipt
    assert verify_receipt(again, genesis()) == check


def _flip(b: bytes) -> bytes:
    return bytes([b[0] ^ 1]) + b[1:]


TAMPERS: list[tuple[str, Callable[[Receipt], Receipt], str]] = [
    ("result", lambda r: dataclasses.replace(r, result=1), "results_root"),
    ("position", lambda r: dataclasses.replace(r, position=2), "tx_root"),
    ("log index", lambda r: dataclasses.replace(r, log_index=r.log_index + 1), "log_root"),
    (
        "tx proof",
        lambda r: dataclasses.replace(r, tx_proof=(_flip(r.tx_proof[0]), *r.tx_proof[1:])),
        "tx_root",
    ),
    ("log proof", lambda r: dataclasses.replace(r, log_proof=r.log_proof[:-1]), "log_root"),
    (
        "header",
        lambda r: dataclasses.replace(
            r, header=dataclasses.replace(r.header, state_root=b"\x01" * 32)
        ),
        "certificate",
    ),
    ("certificate", lambda r: dataclasses.replace(r, certificate=r.certificate[:1]), "certificate"),
    (
        "duplicate signer",
        lambda r: dataclasses.replace(r, certificate=(r.certificate[0], r.certificate[0])),
        "certificate",
    ),
    (
        "unknown signer",
        lambda r: dataclasses.replace(
            r, certificate=(r.certificate[0], HeaderSignature("n9", r.certificate[1].signature))
        ),
        "certificate",
    ),
    (
        "tx signature",
        lambda r: dataclasses.replace(r, tx=r.tx[:-1] + bytes([r.tx[-1] ^ 1])),
        "signature",
    ),
]


@pytest.mark.parametrize(("name", "tamper", "check"), TAMPERS, ids=[t[0] for t in TAMPERS])
def test_tampering_is_caught(
    receipt: Receipt, name: str, tamper: Callable[[Receipt], Receipt], check: str
) -> None:
    with pytest.raises(ReceiptError, match=check):
        verify_receipt(tamper(receipt), genesis())


def test_wrong_genesis_and_pbft_quorum(receipt: Receipt) -> None:
    other = dataclasses.replace(genesis(), chain_id="other-chain")
    with pytest.raises(ReceiptError, match="chain"):
        verify_receipt(receipt, other)
    assert quorum(genesis("raft")) == 2
    four = dataclasses.replace(
        genesis("pbft"), validators=(*genesis().validators, Validator("n4", "o1", b"\x07" * 32))
    )
    assert quorum(four) == 3


@pytest.mark.parametrize("doc", [{}, {"version": 2}, {"version": 1, "tx": "!!"}, []])
def test_malformed_receipt_json(doc: Any) -> None:
    with pytest.raises(ReceiptError):
        Receipt.from_json(doc)


def test_unknown_tx_has_no_receipt() -> None:
    assert build_receipt(MemoryBlockStore(), b"\x00" * 32) is None


def _mutate(doc: Any, path: list[Any], value: Any) -> Any:
    """``doc`` with the value at ``path`` (keys and indexes) replaced."""
    if not path:
        return value
    head, rest = path[0], path[1:]
    if isinstance(doc, dict):
        return {**doc, head: _mutate(doc[head], rest, value)}
    out = list(doc)
    out[head] = _mutate(out[head], rest, value)
    return out


def _paths(doc: Any, prefix: list[Any]) -> list[list[Any]]:
    found = [prefix]
    if isinstance(doc, dict):
        for k in sorted(doc):
            found += _paths(doc[k], [*prefix, k])
    elif isinstance(doc, list):
        for i, v in enumerate(doc):
            found += _paths(v, [*prefix, i])
    return found


JSON_VALUES = st.recursive(
    st.none() | st.booleans() | st.integers(min_value=-(2**70), max_value=2**70) | st.text(),
    lambda inner: st.lists(inner, max_size=4) | st.dictionaries(st.text(), inner, max_size=4),
    max_leaves=8,
)


@settings(
    max_examples=400, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)
@given(data=st.data())
def test_any_change_to_a_receipt_document_is_refused_by_name(receipt: Receipt, data: Any) -> None:
    """Issue 15 §6: the receipt verifier takes any JSON a stranger hands it. Replacing
    any one value of a valid receipt's document (a field, a proof hash, a signature, a
    whole object) gives a ReceiptError or a receipt that still verifies (the value was
    equal), never another exception."""
    doc = receipt.to_json()
    path = data.draw(st.sampled_from(_paths(doc, [])))
    value = data.draw(
        JSON_VALUES
        | st.binary(max_size=40).map(lambda b: b.hex())
        | st.binary(max_size=80).map(lambda b: base64.b64encode(b).decode())
    )
    changed = json.loads(json.dumps(_mutate(doc, path, value)))
    try:
        verify_receipt(Receipt.from_json(changed), genesis())
    except ReceiptError as exc:
        assert str(exc)
    else:
        assert Receipt.from_json(changed) == receipt


HOSTILE = [
    None,
    True,
    0,
    -1,
    2**16,
    2**64,
    2**70,
    "",
    "zz",
    "00" * 32,
    "AAAA",
    [],
    {},
    [1],
    {"a": 1},
]


def test_every_field_replaced_by_each_hostile_value_is_refused_by_name(receipt: Receipt) -> None:
    """The same promise, exhaustively over every path of the document and a fixed list
    of values that once got through (a result code of 2**70 raised a BlockError)."""
    doc = receipt.to_json()
    for path in _paths(doc, []):
        for value in HOSTILE:
            changed = json.loads(json.dumps(_mutate(doc, path, value)))
            try:
                verify_receipt(Receipt.from_json(changed), genesis())
            except ReceiptError:
                continue
            assert Receipt.from_json(changed) == receipt, (path, value)
