"""Node config: what init writes loads back equal; every wrong key is named precisely."""

from __future__ import annotations

from pathlib import Path

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from node.runtime.config import (
    ConfigError,
    MqttConfig,
    NodeConfig,
    OpenLineageConfig,
    PeerAddress,
    load_config,
    toml_string,
    write_config,
)

MINIMAL = """\
node_id = "n1"
data_dir = "data"
genesis = "../genesis.json"
node_key = "node.key"
tls_cert = "tls.crt"
tls_key = "tls.key"
ca_cert = "ca.crt"
rpc_host = "127.0.0.1"
rpc_port = 7700
peer_host = "127.0.0.1"
peer_port = 7800
"""


def write(tmp_path: Path, text: str) -> Path:
    path = tmp_path / "config.toml"
    path.write_text(text)
    return path


def sample(tmp_path: Path) -> NodeConfig:
    return NodeConfig(
        node_id="n2",
        data_dir=tmp_path / "data",
        genesis=tmp_path.parent / "genesis.json",
        node_key=tmp_path / "node.key",
        tls_cert=tmp_path / "tls.crt",
        tls_key=tmp_path / "tls.key",
        ca_cert=tmp_path / "ca" / "ca.crt",
        rpc_host="127.0.0.1",
        rpc_port=7701,
        peer_host="127.0.0.1",
        peer_port=7801,
        peers=(PeerAddress("n1", "127.0.0.1", 7800), PeerAddress("n3", "localhost", 7802)),
        block_txs_max=500,
        reexecute_blocks=True,
        heartbeat_ticks=5,
        rpc_auth="members",
        rpc_tls=True,
        explorer_reads="open",
        metrics_host="10.0.0.2",
        metrics_port=9100,
        mqtt=MqttConfig(
            enabled=True,
            host="broker",
            port=8883,
            topic_prefix="gc/test",
            share_group="members",
            session_expiry_s=600,
            inflight_max=32,
            username="node2",
            password_file=tmp_path / "mqtt.pass",
            ca_file=tmp_path / "ca" / "broker-ca.crt",
            cert_file=tmp_path / "mqtt.crt",
            key_file=tmp_path / "mqtt.key",
        ),
        openlineage=OpenLineageConfig(
            enabled=True, app_key=tmp_path.parent / "orgs" / "app.key", api_key_file=None
        ),
    )


def test_minimal_config_gets_defaults_and_absolute_paths(tmp_path: Path) -> None:
    cfg = load_config(write(tmp_path, MINIMAL))
    assert cfg.node_id == "n1"
    assert cfg.data_dir == tmp_path.resolve() / "data"
    assert cfg.genesis == tmp_path.resolve().parent / "genesis.json"
    assert (cfg.block_txs_max, cfg.block_interval_ms, cfg.mempool_txs_max) == (4000, 2, 100_000)
    assert (cfg.tick_ms, cfg.election_timeout_ticks, cfg.heartbeat_ticks) == (10, 100, 10)
    assert cfg.peers == ()
    assert cfg.mqtt == MqttConfig(enabled=False)
    assert cfg.reexecute_blocks is False
    # Reads are for members unless a config says otherwise (issue 15 §3).
    assert (cfg.rpc_auth, cfg.rpc_tls, cfg.metrics_port) == ("members", False, None)


def test_write_then_load_round_trips(tmp_path: Path) -> None:
    cfg = sample(tmp_path)
    write_config(cfg, tmp_path / "config.toml")
    loaded = load_config(tmp_path / "config.toml")
    assert loaded.genesis.resolve() == cfg.genesis.resolve()
    norm = {f: getattr(loaded, f) for f in NodeConfig.__dataclass_fields__}
    for f in ("data_dir", "genesis", "node_key", "tls_cert", "tls_key", "ca_cert"):
        norm[f] = Path(norm[f]).resolve()
    assert NodeConfig(**norm) == cfg
    assert loaded.peer("n3").host == "localhost"
    text = (tmp_path / "config.toml").read_text()
    assert 'genesis = "../genesis.json"' in text, "paths are written relative"


@pytest.mark.parametrize(
    ("change", "key", "problem"),
    [
        (MINIMAL.replace('node_id = "n1"\n', ""), "node_id", "missing"),
        (MINIMAL.replace('"n1"', '"N_1"'), "node_id", "DNS label"),
        (MINIMAL.replace("rpc_port = 7700", "rpc_port = 70000"), "rpc_port", "0..65535"),
        (MINIMAL.replace("rpc_port = 7700", 'rpc_port = "7700"'), "rpc_port", "integer"),
        (MINIMAL.replace("rpc_port = 7700", "rpc_port = true"), "rpc_port", "integer"),
        (MINIMAL.replace('data_dir = "data"', "data_dir = 3"), "data_dir", "non-empty string"),
        (MINIMAL + "blok_txs_max = 3\n", "blok_txs_max", "unknown key"),
        (MINIMAL + "block_txs_max = 0\n", "block_txs_max", "1..10000"),
        (MINIMAL + "heartbeat_ticks = 100\n", "heartbeat_ticks", "below election_timeout"),
        (MINIMAL + "reexecute_blocks = 1\n", "reexecute_blocks", "true or false"),
        (MINIMAL + "rpc_auth = 'member'\n", "rpc_auth", "one of 'open', 'members'"),
        (MINIMAL + "rpc_tls = 'yes'\n", "rpc_tls", "true or false"),
        (MINIMAL + "explorer_reads = true\n", "explorer_reads", "one of 'auditors', 'open'"),
        (MINIMAL + "rpc_auth_skew_ms = 10\n", "rpc_auth_skew_ms", "1000..3600000"),
        (MINIMAL + "metrics_port = -1\n", "metrics_port", "0..65535"),
        (MINIMAL + "[mqtt]\nenabled = 1\n", "mqtt.enabled", "true or false"),
        (MINIMAL + "[mqtt]\nbroker = 'x'\n", "mqtt.broker", "unknown key"),
        (MINIMAL + "[mqtt]\ntopic_prefix = 'a/#'\n", "mqtt.topic_prefix", "no wildcards"),
        (MINIMAL + "[mqtt]\ntopic_prefix = '$SYS'\n", "mqtt.topic_prefix", "no '$'"),
        (MINIMAL + "[mqtt]\nshare_group = 'a/b'\n", "mqtt.share_group", "letters"),
        (MINIMAL + "[mqtt]\ninflight_max = 0\n", "mqtt.inflight_max", "1..65535"),
        (MINIMAL + "[mqtt]\nsession_expiry_s = -1\n", "mqtt.session_expiry_s", "0.."),
        (MINIMAL + "[mqtt]\nusername = 'u'\n", "mqtt.password_file", "go together"),
        (MINIMAL + "[mqtt]\ncert_file = 'c'\n", "mqtt.key_file", "go together"),
        (MINIMAL + "[openlineage]\nenabled = true\n", "openlineage.app_key", "required"),
        (MINIMAL + "[openlineage]\nurl = 'x'\n", "openlineage.url", "unknown key"),
        (MINIMAL + "[[peers]]\nid = 'n2'\nhost = 'h'\n", "peers[0].port", "missing"),
        (MINIMAL + "[[peers]]\nid = 'n1'\nhost = 'h'\nport = 1\n", "peers[0].id", "own id"),
        (
            MINIMAL
            + "[[peers]]\nid='n2'\nhost='h'\nport=1\n[[peers]]\nid='n2'\nhost='h'\nport=2\n",
            "peers[1].id",
            "duplicate",
        ),
        (MINIMAL + "peers = 3\n", "peers", "array of tables"),
        ("node_id = \n", "(file)", "not valid TOML"),
    ],
)
def test_errors_name_file_key_and_problem(
    tmp_path: Path, change: str, key: str, problem: str
) -> None:
    path = write(tmp_path, change)
    with pytest.raises(ConfigError) as info:
        load_config(path)
    assert info.value.key == key
    assert problem in info.value.problem
    assert str(path) in str(info.value) and key in str(info.value)


def test_missing_file_is_a_config_error(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match="cannot read"):
        load_config(tmp_path / "nope.toml")


@given(st.text())
@settings(max_examples=200, deadline=None)
def test_toml_strings_round_trip(text: str) -> None:
    import tomllib

    assert tomllib.loads(f"k = {toml_string(text)}")["k"] == text
