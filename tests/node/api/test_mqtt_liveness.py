"""``watch_connection``: the bridge's guard against a disconnection aiomqtt never reports
(``node.api.mqtt`` docstring; seen once in ~40 broker restarts of the fault test)."""

from __future__ import annotations

import asyncio
import socket
import struct

import aiomqtt
import pytest

from node.api.mqtt import paho_alive, peer_closed, topic_org, watch_connection


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


class SocketPaho:
    """paho whose state says connected, over a real socket."""

    def __init__(self, sock: socket.socket | None) -> None:
        self.sock = sock

    def is_connected(self) -> bool:
        return True

    def socket(self) -> socket.socket | None:
        return self.sock


def test_a_socket_whose_peer_closed_is_not_alive_whatever_paho_says() -> None:
    """The uvloop case (``node.api.mqtt`` docstring): paho still says connected, nothing
    read the end of the connection, but the kernel knows."""
    here, there = socket.socketpair()
    try:
        assert paho_alive(SocketPaho(here))
        there.sendall(b"unread bytes do not make it look closed")
        assert not peer_closed(here) and paho_alive(SocketPaho(here))
        there.close()
        assert peer_closed(here)
        assert not paho_alive(SocketPaho(here))
        with pytest.raises(aiomqtt.MqttError, match="without a disconnection event"):
            asyncio.run(
                watch_connection(lambda: paho_alive(SocketPaho(here)), interval_s=0, misses=3)
            )
    finally:
        here.close()
    assert peer_closed(here)  # closed here: fileno -1


def test_a_tcp_connection_reset_by_its_peer_is_not_alive() -> None:
    server = socket.create_server(("127.0.0.1", 0))
    client = socket.create_connection(server.getsockname())
    accepted, _ = server.accept()
    try:
        assert not peer_closed(client)
        accepted.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
        accepted.close()  # an RST, as a broker's host sends when the broker is killed
        assert peer_closed(client)
        assert not paho_alive(SocketPaho(None))
    finally:
        client.close()
        server.close()
