"""The per-identity token bucket (issue 15 §4), on a clock the test drives."""

from __future__ import annotations

import pytest

from node.pipeline import sender_rate
from node.pipeline.sender_rate import SenderRates

A, B = b"a" * 32, b"b" * 32


def test_a_burst_of_one_second_then_the_rate() -> None:
    rates = SenderRates(10)
    assert [rates.take(A, 0.0) for _ in range(12)] == [True] * 10 + [False] * 2
    assert rates.take(B, 0.0)  # another key has its own bucket
    assert not rates.take(A, 0.05)  # half a token
    assert rates.take(A, 0.1) and not rates.take(A, 0.1)
    assert sum(rates.take(A, 5.0) for _ in range(20)) == 10  # refills to one second's worth


def test_a_refused_tx_costs_nothing() -> None:
    rates = SenderRates(2)
    assert rates.take(A, 0.0) and rates.take(A, 0.0)
    for _ in range(100):
        assert not rates.take(A, 0.0)
    assert rates.take(A, 0.5)  # the refusals did not push the refill back


def test_zero_is_no_limit() -> None:
    rates = SenderRates(0)
    assert all(rates.take(A, 0.0) for _ in range(10_000))
    assert len(rates) == 0
    with pytest.raises(ValueError):
        SenderRates(-1)


def test_the_table_stays_bounded(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(sender_rate, "BUCKETS_MAX", 4)
    rates = SenderRates(10)
    for i in range(4):
        assert rates.take(bytes([i]) * 32, 0.0)
    # At 10 s every bucket is full again: all are forgotten to make room.
    assert rates.take(b"z" * 32, 10.0) and len(rates) == 1
    for i in range(3):
        assert rates.take(bytes([i]) * 32, 10.0)
    # All four busy at once: the oldest goes.
    assert rates.take(b"y" * 32, 10.0) and len(rates) == 4
