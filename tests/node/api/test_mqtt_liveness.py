"""``watch_connection``: the bridge's guard against a disconnection aiomqtt never reports
(``node.api.mqtt`` docstring; seen once in ~40 broker restarts of the fault test)."""

from __future__ import annotations

import asyncio

import aiomqtt
import pytest

from node.api.mqtt import topic_org, watch_connection


class Paho:
    """``is_connected`` as paho answers it: yes ``up_for`` times, then no."""

    def __init__(self, up_for: int) -> None:
        self.up_for = up_for
        self.calls = 0

    def is_connected(self) -> bool:
        self.calls += 1
        return self.calls <= self.up_for


def test_a_lost_connection_ends_after_the_given_misses_in_a_row() -> None:
    paho = Paho(up_for=5)
    with pytest.raises(aiomqtt.MqttError, match="without a disconnection event"):
        asyncio.run(watch_connection(paho.is_connected, interval_s=0, misses=3))
    assert paho.calls == 5 + 3


def test_a_single_miss_between_answers_of_yes_does_not_end_the_connection() -> None:
    answers = iter([True, False, True, False, False, True, False, False, False])
    with pytest.raises(aiomqtt.MqttError):
        asyncio.run(watch_connection(lambda: next(answers), interval_s=0, misses=3))
    assert next(answers, "used up") == "used up"  # it took all nine polls, not fewer


def test_topic_org_takes_only_the_tx_topic_shape() -> None:
    assert topic_org("p/tx/org1", "p") == "org1"
    assert topic_org("p/tx/org1/extra", "p") is None
    assert topic_org("p/tx/", "p") is None
    assert topic_org("q/tx/org1", "p") is None
    assert topic_org("p/tx/" + "o" * 65, "p") is None
