"""Tx envelope and blocks: signing, strict decoding, ids, header hashing."""

from __future__ import annotations

import dataclasses

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from chain import codec, limits, signing
from chain.block import Block, BlockError, BlockHeader
from chain.hashing import leaf_hash
from chain.tx import Tx, TxError, decode_tx, sign_tx
from tests.factories import KEYS, ChainBuilder


def _tx(**kw: object) -> Tx:
    args: dict[str, object] = {
        "chain_id": "c",
        "kind": "audit.data_access",
        "nonce": 1,
        "timestamp_ms": 2,
        "payload": {"dataset_id": "d"},
    }
    args.update(kw)
    return sign_tx(KEYS[0], **args)  # type: ignore[arg-type]


def test_signed_tx_round_trips_and_verifies() -> None:
    tx = _tx()
    raw = tx.to_bytes()
    assert decode_tx(raw) == tx
    assert tx.tx_id == leaf_hash(raw) and len(tx.tx_id) == 32
    assert tx.verify_signature()
    assert tx.sender == signing.public_key_bytes(KEYS[0])


@settings(max_examples=100)
@given(st.integers(0, 200), st.integers(0, 7))
def test_any_flipped_bit_breaks_decoding_or_the_signature(byte: int, bit: int) -> None:
    raw = bytearray(_tx().to_bytes())
    raw[byte % len(raw)] ^= 1 << bit
    try:
        tx = decode_tx(bytes(raw))
    except TxError:
        return
    assert not tx.verify_signature()


def test_signature_covers_the_domain_and_every_field() -> None:
    tx = _tx()
    for field, value in [
        ("nonce", 2),
        ("kind", "audit.other"),
        ("chain_id", "d"),
        ("timestamp_ms", 3),
    ]:
        forged = dataclasses.replace(tx, **{field: value})
        assert forged.signature == tx.signature
        assert not forged.verify_signature(), field


@pytest.mark.parametrize(
    ("mutate", "problem"),
    [
        (lambda f: f.__setitem__(0, 2), "unknown tx version"),
        (lambda f: f.__setitem__(3, b"short"), "sender"),
        (lambda f: f.__setitem__(2, "Bad Kind"), "kind"),
        (lambda f: f.__setitem__(4, -1), "nonce"),
        (lambda f: f.__setitem__(6, [1]), "payload"),
        (lambda f: f.__setitem__(7, b"x" * 63), "signature"),
        (lambda f: f.append(1), "8 fields"),
    ],
)
def test_malformed_txs_name_the_problem(mutate: object, problem: str) -> None:
    fields = codec.decode(_tx().to_bytes())
    mutate(fields)  # type: ignore[operator]
    with pytest.raises(TxError, match=problem):
        decode_tx(codec.encode(fields))


def test_oversize_tx_is_rejected_before_decoding() -> None:
    with pytest.raises(TxError, match="over the limit"):
        decode_tx(b"\x00" * (limits.TX_BYTES_MAX + 1))


def test_block_round_trip_and_header_hash() -> None:
    b = ChainBuilder()
    blk = b.block(5, results=[0, 1, 0, 2, 0])
    again = Block.from_bytes(blk.to_bytes())
    assert again == blk
    assert again.header.hash == blk.header.hash
    assert BlockHeader.from_bytes(blk.header.to_bytes()) == blk.header
    assert len(blk.check_body()) == 5


def test_block_bytes_are_the_general_encoders_on_every_path() -> None:
    """``to_bytes`` packs the usual block directly; anything else goes through the
    codec, which gives the same bytes or names what cannot be encoded."""
    blk = ChainBuilder().block(4, results=[0, 1, 0, 2])
    fields = blk.header.fields()
    assert blk.to_bytes() == codec.encode([fields, list(blk.txs), list(blk.results)])
    as_bytearray = Block(blk.header, (bytearray(blk.txs[0]), *blk.txs[1:]), blk.results)
    with pytest.raises(codec.EncodeError, match="bytearray"):
        as_bytearray.to_bytes()
    huge = Block(blk.header, blk.txs, (2**64, 0, 0, 0))
    with pytest.raises(codec.EncodeError, match="64-bit"):
        huge.to_bytes()
    with_bool = Block(blk.header, blk.txs, (True, 0, 0, 0))  # true, not 1: not a block
    assert with_bool.to_bytes() == codec.encode([fields, list(blk.txs), [True, 0, 0, 0]])


def test_block_body_must_match_its_header() -> None:
    blk = ChainBuilder().block(3, results=[0, 0, 1])
    with pytest.raises(BlockError, match="results_root"):
        Block(blk.header, blk.txs, (0, 0, 0)).check_body()
    with pytest.raises(BlockError, match="tx_root"):
        Block(blk.header, (blk.txs[1], blk.txs[0], blk.txs[2]), blk.results).check_body()
    with pytest.raises(BlockError, match="header says 3 txs"):
        Block(blk.header, blk.txs[:2], blk.results[:2]).check_body()


@settings(max_examples=100)
@given(
    st.dictionaries(
        st.text(max_size=5), st.integers(-(2**63), 2**64 - 1) | st.text(max_size=20), max_size=6
    ),
    st.integers(0, 2**63 - 1),
)
def test_signing_bytes_from_raw_equal_the_encoded_ones(
    payload: dict[str, object], nonce: int
) -> None:
    from chain.tx import signing_bytes_of

    tx = _tx(payload=payload, nonce=nonce)
    assert signing_bytes_of(tx.to_bytes()) == tx.signing_bytes()


def test_check_body_checks_once_and_a_changed_copy_again(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """A block is immutable, so a passed check is kept (a follower's ledger and store
    both ask); a copy with other txs is a new block, checked anew."""
    block = Block.from_bytes(ChainBuilder().block(3).to_bytes())  # as a follower gets it
    calls = []
    real = Block.tx_ids
    monkeypatch.setattr(Block, "tx_ids", lambda self: calls.append(1) or real(self))
    ids = block.check_body()
    ids.append(b"caller's own list")
    assert block.check_body() == ids[:-1] and len(calls) == 1
    forged = dataclasses.replace(block, txs=(b"x", *block.txs[1:]))
    with pytest.raises(BlockError, match="tx_root"):
        forged.check_body()
    with pytest.raises(BlockError, match="tx_root"):
        forged.check_body()  # a failed check is not kept
    assert len(calls) == 3


def test_an_assembled_block_is_checked_only_if_assemble_hashed_its_txs(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """``assemble_block`` computed the ids its roots commit to: its block needs no second
    hashing. Ids its caller gave are not trusted: that block is hashed when checked."""
    from chain.assemble import assemble_block
    from chain.hashing import leaf_hashes
    from chain.merkle import Frontier

    raws = [b"tx %d" % i for i in range(5)]
    calls: list[int] = []
    real = Block.tx_ids

    def counted(self: Block) -> list[bytes]:
        calls.append(1)
        return real(self)

    monkeypatch.setattr(Block, "tx_ids", counted)
    common = dict(
        chain_id="c",
        prev=None,
        anchor=b"\x11" * 32,
        frontier=Frontier(),
        txs=raws,
        results=[0] * 5,
        state_root=bytes(32),
        timestamp_ms=1,
        proposer="p",
        round=1,
    )
    own, after = assemble_block(**common)  # type: ignore[arg-type]
    assert own.check_body() == leaf_hashes(raws) and calls == []
    levels, known_after = own.log_extension(Frontier()) or ([], Frontier())
    assert known_after == after and levels[0] == (0, 0, leaf_hashes(raws))
    assert own.log_extension(after) is None  # another frontier: nothing known
    given, _ = assemble_block(**common, tx_ids=leaf_hashes(raws))  # type: ignore[arg-type]
    assert given.check_body() == leaf_hashes(raws) and calls == [1]
    wrong, _ = assemble_block(**common, tx_ids=leaf_hashes(raws[::-1]))  # type: ignore[arg-type]
    with pytest.raises(BlockError, match="tx_root"):
        wrong.check_body()
