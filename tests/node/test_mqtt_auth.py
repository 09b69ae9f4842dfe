"""The bridge against a broker that authenticates, as ``deploy/README.md`` tells a
consortium to run one (issue 16 §1): TLS with the broker's certificate checked against
``[mqtt] ca_file``, and either a username with ``password_file`` or a client certificate
(``cert_file``/``key_file``). A tx published over TLS gets its receipt, and clients
without the right credentials are turned away."""

from __future__ import annotations

import asyncio
import dataclasses
import datetime
import json
import ssl
import subprocess
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import aiomqtt
import msgpack
import pytest

from chain.genesis import Genesis
from chain.receipt import Receipt, verify_receipt
from node.cluster.broker import Broker, BrokerAuth, start_broker
from node.cluster.scenario import signer_for
from node.runtime.config import MqttConfig
from node.transport.tlsca import Issued, create_ca, issue_node_cert
from tests.node.clusters import running_cluster
from tests.node.test_mqtt import PREFIX, WAIT_S, access_event, bridges_connected, tx_id_of

NOW = datetime.datetime.now(datetime.UTC)


@dataclass(frozen=True)
class Pki:
    ca: Path
    broker_cert: Path
    broker_key: Path
    bridge_cert: Path
    bridge_key: Path
    app_cert: Path
    app_key: Path


def _write(issued: Issued, directory: Path, name: str) -> tuple[Path, Path]:
    cert, key = directory / f"{name}.crt", directory / f"{name}.key"
    cert.write_bytes(issued.cert_pem)
    key.write_bytes(issued.key_pem)
    key.chmod(0o600)
    return cert, key


@pytest.fixture(scope="module")
def pki(tmp_path_factory: pytest.TempPathFactory) -> Pki:
    d = tmp_path_factory.mktemp("mqtt-pki")
    ca = create_ca("test mqtt CA", now=NOW)
    ca_path = d / "ca.crt"
    ca_path.write_bytes(ca.cert_pem)
    broker = _write(issue_node_cert(ca, "broker", ip="127.0.0.1", now=NOW), d, "broker")
    bridge = _write(issue_node_cert(ca, "node-bridge", ip="127.0.0.1", now=NOW), d, "bridge")
    app = _write(issue_node_cert(ca, "org1", ip="127.0.0.1", now=NOW), d, "app")
    return Pki(ca_path, *broker, *bridge, *app)


def _passwords(directory: Path, users: dict[str, str]) -> Path:
    path = directory / "mosquitto.passwd"
    for i, (user, password) in enumerate(users.items()):
        create = ["-c"] if i == 0 else []
        subprocess.run(
            ["mosquitto_passwd", *create, "-b", str(path), user, password],
            check=True,
            capture_output=True,
        )
    path.chmod(0o600)
    return path


def _secret(directory: Path, text: str) -> Path:
    path = directory / "mqtt.pass"
    path.write_text(text + "\n")
    path.chmod(0o600)
    return path


@dataclass(frozen=True)
class Setup:
    """A broker in one authentication mode, the bridge's settings for it, and the
    publisher's TLS parameters and credentials."""

    broker: Broker
    bridge: MqttConfig
    app_tls: aiomqtt.TLSParameters
    app_user: str | None
    app_password: str | None


def _setup(mode: str, pki: Pki, directory: Path) -> Setup:
    server: dict[str, Path] = {
        "ca_file": pki.ca,
        "cert_file": pki.broker_cert,
        "key_file": pki.broker_key,
    }
    bridge = MqttConfig(enabled=True, topic_prefix=PREFIX, ca_file=pki.ca)
    app_tls = aiomqtt.TLSParameters(ca_certs=str(pki.ca))
    app_user: str | None = None
    app_password: str | None = None
    if mode == "password":
        users = {"node-bridge": "n0de-pw", "org1": "0rg1-pw"}
        auth = BrokerAuth(**server, password_file=_passwords(directory, users))
        bridge = dataclasses.replace(
            bridge, username="node-bridge", password_file=_secret(directory, "n0de-pw")
        )
        app_user, app_password = "org1", "0rg1-pw"
    else:
        auth = BrokerAuth(**server, require_certificate=True)
        bridge = dataclasses.replace(bridge, cert_file=pki.bridge_cert, key_file=pki.bridge_key)
        app_tls = aiomqtt.TLSParameters(
            ca_certs=str(pki.ca), certfile=str(pki.app_cert), keyfile=str(pki.app_key)
        )
    broker = start_broker(directory / "mosquitto", auth=auth)
    return Setup(
        broker, dataclasses.replace(bridge, port=broker.port), app_tls, app_user, app_password
    )


@pytest.fixture(params=["password", "certificate"])
def setup(request: pytest.FixtureRequest, pki: Pki, tmp_path: Path) -> Iterator[Setup]:
    s = _setup(request.param, pki, tmp_path)
    try:
        yield s
    finally:
        s.broker.stop()


async def _publish_for_receipt(s: Setup, raw: bytes) -> bytes:
    async with aiomqtt.Client(
        s.broker.host,
        s.broker.port,
        username=s.app_user,
        password=s.app_password,
        tls_params=s.app_tls,
        protocol=aiomqtt.ProtocolVersion.V5,
    ) as client:
        await client.subscribe(f"{PREFIX}/receipts/{tx_id_of(raw)}", qos=1)
        await client.publish(f"{PREFIX}/tx/org1", msgpack.packb(raw), qos=1)
        async with asyncio.timeout(WAIT_S):
            async for msg in client.messages:
                assert isinstance(msg.payload, bytes)
                return msg.payload
    raise AssertionError("unreachable")


def test_a_tx_published_over_tls_gets_its_receipt(setup: Setup, tmp_path: Path) -> None:
    with running_cluster(tmp_path / "c", nodes=1, mqtt=setup.bridge) as manifest:
        bridges_connected(manifest, 1)
        raw = access_event(signer_for(manifest, "org1", "app"), 0)
        doc = json.loads(asyncio.run(_publish_for_receipt(setup, raw)))
        assert doc["tx_id"] == tx_id_of(raw) and doc["status"] == "committed"
        genesis = Genesis.from_json(Path(manifest.genesis).read_text())
        assert verify_receipt(Receipt.from_json(doc["receipt"]), genesis).tx_id == doc["tx_id"]


async def _connect(
    s: Setup,
    tls_params: aiomqtt.TLSParameters | None = None,
    username: str | None = None,
    password: str | None = None,
) -> None:
    async with aiomqtt.Client(
        s.broker.host,
        s.broker.port,
        username=username,
        password=password,
        tls_params=tls_params,
        protocol=aiomqtt.ProtocolVersion.V5,
        timeout=5,
    ):
        pass


def test_clients_without_the_right_credentials_are_refused(pki: Pki, tmp_path: Path) -> None:
    """Anonymous, plain TCP, a wrong password, and a server certificate from another CA
    (the bridge checks the broker as the broker checks it)."""
    s = _setup("password", pki, tmp_path)
    try:
        tls = aiomqtt.TLSParameters(ca_certs=str(pki.ca))
        with pytest.raises(aiomqtt.MqttError):
            asyncio.run(_connect(s))  # plain TCP to a TLS listener
        with pytest.raises(aiomqtt.MqttError):
            asyncio.run(_connect(s, tls_params=tls))  # anonymous
        with pytest.raises(aiomqtt.MqttError):
            asyncio.run(_connect(s, tls_params=tls, username="org1", password="wrong"))
        other = tmp_path / "other-ca.crt"
        other.write_bytes(create_ca("another CA", now=NOW).cert_pem)
        with pytest.raises((aiomqtt.MqttError, ssl.SSLError)):
            asyncio.run(
                _connect(
                    s,
                    tls_params=aiomqtt.TLSParameters(ca_certs=str(other)),
                    username="org1",
                    password="0rg1-pw",
                )
            )
        asyncio.run(_connect(s, tls_params=tls, username="org1", password="0rg1-pw"))
    finally:
        s.broker.stop()
