"""Mempool: bounded, deduplicated, FIFO, and nothing lost when a block is not committed."""

from __future__ import annotations

from hypothesis import given, settings
from hypothesis import strategies as st

from chain.tx import Tx
from node.pipeline.mempool import AddOutcome, Mempool


def _id(i: int) -> bytes:
    return i.to_bytes(32, "big")


def test_dedup_and_bounds() -> None:
    m = Mempool(txs_max=3, bytes_max=100)
    assert m.add(_id(1), b"x" * 10) is AddOutcome.ADDED
    assert m.add(_id(1), b"x" * 10) is AddOutcome.DUPLICATE
    assert m.add(_id(2), b"x" * 10) is AddOutcome.ADDED
    assert m.add(_id(3), b"x" * 81) is AddOutcome.FULL  # bytes
    assert m.add(_id(3), b"x" * 10) is AddOutcome.ADDED
    assert m.add(_id(4), b"x") is AddOutcome.FULL  # count
    assert len(m) == 3 and m.size_bytes == 30


def test_take_release_remove() -> None:
    m = Mempool(txs_max=10, bytes_max=1000)
    for i in range(6):
        m.add(_id(i), bytes([i]) * 10)
    first = m.take(txs_max=4, bytes_max=35)
    assert [t for t, _ in first] == [_id(0), _id(1), _id(2)]  # 35 bytes stops at three
    assert [t for t, _ in m.take(txs_max=2, bytes_max=1000)] == [_id(3), _id(4)]
    m.release()  # that block was never committed
    m.remove([_id(0), _id(1)])  # this one was
    assert [t for t, _ in m.take(txs_max=10, bytes_max=1000)] == [_id(2), _id(3), _id(4), _id(5)]
    assert len(m) == 4 and m.pending() == 0


@settings(max_examples=200)
@given(
    st.lists(
        st.tuples(st.sampled_from(["add", "take", "release", "remove"]), st.integers(0, 30)),
        max_size=60,
    )
)
def test_accounting_never_drifts(ops: list[tuple[str, int]]) -> None:
    m = Mempool(txs_max=20, bytes_max=400)
    model: dict[bytes, bytes] = {}
    for op, n in ops:
        if op == "add":
            outcome = m.add(_id(n), b"y" * (n + 1))
            if outcome is AddOutcome.ADDED:
                model[_id(n)] = b"y" * (n + 1)
        elif op == "take":
            m.take(txs_max=n % 5 + 1, bytes_max=100)
        elif op == "release":
            m.release()
        else:
            m.remove([_id(n)])
            model.pop(_id(n), None)
        assert len(m) == len(model) <= 20
        assert m.size_bytes == sum(map(len, model.values())) <= 400
        assert 0 <= m.pending() <= len(m)


def test_decoded_txs_ride_along_and_leave_with_their_tx() -> None:
    from chain.tx import decode_tx
    from tests.factories import txs

    raw = txs(1)[0]
    tx = decode_tx(raw)
    m = Mempool(txs_max=10, bytes_max=10_000)
    assert m.add(_id(1), raw, tx) is AddOutcome.ADDED
    assert m.add(_id(2), raw) is AddOutcome.ADDED
    assert m.decoded(_id(1)) == tx and m.decoded(_id(2)) is None
    m.remove([_id(1)])
    assert m.decoded(_id(1)) is None


def test_one_sender_holds_at_most_its_share() -> None:
    """Issue 15 §4: a member that floods the node fills its own share; others still
    get in, and the share frees up as its txs leave in blocks."""

    def tx(sender: int) -> Tx:
        return Tx(1, "c", "k", bytes([sender]) * 32, 0, 0, {}, b"s" * 64)

    m = Mempool(txs_max=10, bytes_max=1000, sender_txs_max=3)
    assert [m.add(_id(i), b"x", tx(1)) for i in range(4)] == [AddOutcome.ADDED] * 3 + [
        AddOutcome.SENDER_FULL
    ]
    assert m.add(_id(10), b"x", tx(2)) is AddOutcome.ADDED  # another member: room
    assert m.held_by(bytes([1]) * 32) == 3 and len(m) == 4
    m.remove([_id(0)])
    assert m.held_by(bytes([1]) * 32) == 2
    assert m.add(_id(3), b"x", tx(1)) is AddOutcome.ADDED
    m.remove([_id(i) for i in (1, 2, 3)])
    assert m.held_by(bytes([1]) * 32) == 0
