"""A node's configuration: one TOML file, read once at start into a frozen ``NodeConfig``.

Every key is checked when the file is read, so a typo or a wrong type stops the node at
start with ``ConfigError`` naming the file, the key and the problem, instead of
surfacing later as a confusing runtime failure. Unknown keys are errors for the same
reason. Paths in the file are relative to the file's own directory, so a consortium
directory written by ``grantchain init`` can be moved or copied as a whole; the loaded
``NodeConfig`` holds absolute paths. Whether the files exist is checked by the code that
opens them (keys, TLS, genesis), which can say more about what is wrong with them.

File layout (``write_config`` writes exactly this shape)::

    node_id = "n1"
    data_dir = "data"
    genesis = "../../genesis.json"
    node_key = "node.key"
    tls_cert = "tls.crt"
    tls_key = "tls.key"
    ca_cert = "../../ca/ca.crt"
    rpc_host = "127.0.0.1"
    rpc_port = 7700
    peer_host = "127.0.0.1"
    peer_port = 7800
    block_txs_max = 4000          # optional, defaults as in NodeConfig
    rpc_auth = "members"          # optional: "members" (default: signed reads) or "open"
    rpc_tls = true                # optional: the RPC over TLS with tls_cert/tls_key
    metrics_port = 9100           # optional: /metrics unauthenticated on metrics_host
    ...
    [mqtt]                         # optional; disabled unless enabled = true
    enabled = false
    host = "127.0.0.1"
    port = 1883
    topic_prefix = "grantchain"
    share_group = "grantchain"     # $share/<group>/<prefix>/tx/+ : one node takes each
    session_expiry_s = 86400       # the broker queues for a bridge that is down this long
    inflight_max = 256             # MQTT v5 Receive Maximum: unacknowledged messages
    username = "..."               # optional, with password_file (first line)
    password_file = "mqtt.pass"
    ca_file = "mqtt-ca.crt"        # optional: TLS to the broker (cert_file/key_file: mTLS)

    [openlineage]                  # optional; POST /api/v1/lineage answers 404 unless enabled
    enabled = true
    app_key = "../../orgs/org1/app.key"   # the app identity that signs the run events
    api_key_file = "openlineage.token"    # optional: clients must send Bearer <first line>

    [[peers]]
    id = "n2"
    host = "127.0.0.1"
    port = 7801
"""

from __future__ import annotations

import os
import re
import tempfile
import tomllib
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from chain import limits

NODE_ID_PATTERN = re.compile(r"[a-z0-9]([a-z0-9-]{0,61}[a-z0-9])?")
"""Node ids are DNS labels: they are the DNS subject alternative name of the node's TLS
certificate, which is how a peer's identity is authenticated."""

FRAME_BYTES_MAX_DEFAULT = limits.BLOCK_BYTES_MAX + 1024 * 1024
"""A frame carries one consensus message, which may hold a whole block plus metadata."""


class ConfigError(ValueError):
    """The configuration file is unreadable or a key in it is wrong."""

    def __init__(self, path: Path | str, key: str, problem: str) -> None:
        super().__init__(f"{path}: {key}: {problem}")
        self.path = str(path)
        self.key = key
        self.problem = problem


@dataclass(frozen=True, slots=True)
class PeerAddress:
    node_id: str
    host: str
    port: int


@dataclass(frozen=True, slots=True)
class MqttConfig:
    """The MQTT bridge (``node.api.mqtt``). Paths are absolute once loaded; ``None`` is
    unset. Memory the bridge may hold is at most ``inflight_max`` messages of at most
    ``node.api.mqtt.PAYLOAD_BYTES_MAX`` each."""

    enabled: bool = False
    host: str = "127.0.0.1"
    port: int = 1883
    topic_prefix: str = "grantchain"
    share_group: str = "grantchain"
    session_expiry_s: int = 86_400
    inflight_max: int = 256
    username: str | None = None
    password_file: Path | None = None
    ca_file: Path | None = None
    cert_file: Path | None = None
    key_file: Path | None = None


@dataclass(frozen=True, slots=True)
class OpenLineageConfig:
    """The OpenLineage endpoint (``node.api.lineage_route``, docs/openlineage.md): run
    events are signed with the key in ``app_key`` (an app identity's key file; the
    organisation is the one that identity is registered for on chain). ``api_key_file``,
    if set, holds the bearer token (first line) clients must send. Paths are absolute
    once loaded; ``None`` is unset."""

    enabled: bool = False
    app_key: Path | None = None
    api_key_file: Path | None = None


@dataclass(frozen=True, slots=True)
class NodeConfig:
    """One node's settings. Paths are absolute once loaded; ``*_ms`` are milliseconds,
    ``*_ticks`` are consensus ticks of ``tick_ms`` each; ports 0 mean "any free port"
    (tests only). ``peers`` lists the other validators, never this node."""

    node_id: str
    data_dir: Path
    genesis: Path
    node_key: Path
    tls_cert: Path
    tls_key: Path
    ca_cert: Path
    rpc_host: str
    rpc_port: int
    peer_host: str
    peer_port: int
    peers: tuple[PeerAddress, ...] = ()
    block_txs_max: int = 4000
    """Most txs in one block. Under load, larger blocks spread each block's fixed costs
    (fsyncs, header signatures, messages) thinner: 4,000 committed ~10% more txs/s on
    3 local nodes than 1,000 (benchmarks/RESULTS.md)."""
    block_interval_ms: int = 2
    """Least time between cuts of blocks that are not full (full ones are cut at once)."""
    mempool_txs_max: int = 100_000
    mempool_sender_percent: int = 50
    """Share of ``mempool_txs_max`` one sender key may hold: a member that floods the
    node fills its own share, and the others' txs still find room."""
    block_time_skew_ms_max: int = 10_000
    """How far ahead of this node's clock a leader's block time may be: a follower does
    not take (never acknowledges) a block further ahead, so one leader's clock running
    fast cannot become block time, which would make every later tx stale and end grants
    early (``node.consensus_driver.loop``)."""
    reexecute_blocks: bool = False
    """Re-execute every committed block and compare, rather than apply the change set the
    leader shipped with it after checking it against the header's state root (Raft; see
    ``node.pipeline.ledger``): an auditing replica, at several times the CPU per tx."""
    tick_ms: int = 10
    election_timeout_ticks: int = 100
    heartbeat_ticks: int = 10
    peer_frame_bytes_max: int = FRAME_BYTES_MAX_DEFAULT
    peer_queue_frames_max: int = 4096
    sender_txs_per_s_max: int = 20_000
    """Txs a second one sender key may place in the mempool (0: no limit); past it,
    503 ``sender_rate``. Per node, charged only for txs whose signature verified."""
    rpc_connections_max: int = 1024
    """RPC connections held at once; more are answered 503 and closed."""
    rpc_connections_per_ip_max: int = 256
    """RPC connections one address may hold (the load generator opens up to 256)."""
    rpc_header_timeout_ms: int = 10_000
    """A request head must be in within this of its first byte (slowloris), or 408."""
    rpc_body_timeout_ms: int = 30_000
    """A request body must be in within this of its head, or 408."""
    rpc_keepalive_timeout_ms: int = 75_000
    """An idle keep-alive connection is closed after this."""
    rpc_auth: str = "members"
    """``"members"`` (the default, also for a config without the key: closed unless asked
    to be open): every request but the open ones is signed by a registered key and reads
    under the read policy (``node.api.auth``, ``acl.read_policy``); ``"open"``: anyone who
    reaches the port reads everything (a node for one organisation's tests)."""
    rpc_auth_skew_ms: int = 60_000
    """How far a signed request's time may be from this node's clock."""
    rpc_auth_nonces_max: int = 1_000_000
    """Request nonces remembered at once (~200 bytes each); more in one window: 503."""
    rpc_tls: bool = False
    """Serve the RPC over TLS with the node's certificate (``tls_cert``/``tls_key``);
    clients verify it with the consortium's CA bundle (``ca_cert``)."""
    explorer_reads: str = "auditors"
    """With ``rpc_auth = "members"``: ``"auditors"`` (the explorer's pages are read by
    auditors, signed) or ``"open"`` (the explorer's pages, the commit stream, the audit
    report and tx receipts are read without signing: a local demo's setting)."""
    metrics_host: str = "127.0.0.1"
    metrics_port: int | None = None
    """If set, ``/metrics`` (and ``/health``) are also served on ``metrics_host:port``
    without authentication, for a scraper on a private network; on the RPC port
    ``/metrics`` needs a signed request when ``rpc_auth = "members"``."""
    mqtt: MqttConfig = field(default_factory=MqttConfig)
    openlineage: OpenLineageConfig = field(default_factory=OpenLineageConfig)

    def peer(self, node_id: str) -> PeerAddress:
        for p in self.peers:
            if p.node_id == node_id:
                return p
        raise KeyError(node_id)


_PATH_KEYS = ("data_dir", "genesis", "node_key", "tls_cert", "tls_key", "ca_cert")
_REQUIRED_KEYS = ("node_id", *_PATH_KEYS, "rpc_host", "rpc_port", "peer_host", "peer_port")
# Tunables: (minimum, maximum). Defaults come from the dataclass.
_INT_RANGES: dict[str, tuple[int, int]] = {
    "block_txs_max": (1, limits.BLOCK_TXS_MAX),
    "block_interval_ms": (1, 60_000),
    "mempool_txs_max": (1, 100_000_000),
    "mempool_sender_percent": (1, 100),
    "block_time_skew_ms_max": (1, 86_400_000),
    "tick_ms": (1, 10_000),
    "election_timeout_ticks": (2, 1_000_000),
    "heartbeat_ticks": (1, 1_000_000),
    "peer_frame_bytes_max": (1024, 2**32 - 1),
    "peer_queue_frames_max": (1, 10_000_000),
    "sender_txs_per_s_max": (0, 100_000_000),
    "rpc_connections_max": (1, 1_000_000),
    "rpc_connections_per_ip_max": (1, 1_000_000),
    "rpc_header_timeout_ms": (100, 3_600_000),
    "rpc_body_timeout_ms": (100, 3_600_000),
    "rpc_keepalive_timeout_ms": (100, 3_600_000),
    "rpc_auth_skew_ms": (1_000, 3_600_000),
    "rpc_auth_nonces_max": (1_000, 100_000_000),
}
_BOOL_KEYS = ("reexecute_blocks", "rpc_tls")
_CHOICE_KEYS: dict[str, tuple[str, ...]] = {
    "rpc_auth": ("open", "members"),
    "explorer_reads": ("auditors", "open"),
}
_TOP_KEYS = {
    *_REQUIRED_KEYS,
    *_INT_RANGES,
    *_BOOL_KEYS,
    *_CHOICE_KEYS,
    "metrics_host",
    "metrics_port",
    "peers",
    "mqtt",
    "openlineage",
}
_MQTT_PATHS = ("password_file", "ca_file", "cert_file", "key_file")
_MQTT_KEYS = {
    "enabled",
    "host",
    "port",
    "topic_prefix",
    "share_group",
    "session_expiry_s",
    "inflight_max",
    "username",
    *_MQTT_PATHS,
}
# Topic levels the bridge builds topics from: no wildcards, no "$" (broker-reserved).
_TOPIC_PREFIX = re.compile(r"[A-Za-z0-9_.-]+(/[A-Za-z0-9_.-]+)*")
_SHARE_GROUP = re.compile(r"[A-Za-z0-9_.-]+")
_PEER_KEYS = {"id", "host", "port"}
_OPENLINEAGE_PATHS = ("app_key", "api_key_file")
_OPENLINEAGE_KEYS = {"enabled", *_OPENLINEAGE_PATHS}


def load_config(path: Path | str) -> NodeConfig:
    """Read and check the TOML file at ``path``; raise ``ConfigError`` on any problem."""
    path = Path(path)
    try:
        with path.open("rb") as f:
            doc = tomllib.load(f)
    except OSError as exc:
        raise ConfigError(path, "(file)", f"cannot read: {exc.strerror or exc}") from None
    except tomllib.TOMLDecodeError as exc:
        raise ConfigError(path, "(file)", f"not valid TOML: {exc}") from None
    return config_from_mapping(doc, path)


def config_from_mapping(doc: dict[str, Any], path: Path) -> NodeConfig:
    """Check a parsed document; relative paths are taken from ``path``'s directory."""
    v = _Checker(path)
    unknown = sorted(set(doc) - _TOP_KEYS)
    if unknown:
        raise ConfigError(path, unknown[0], "unknown key")
    missing = [key for key in _REQUIRED_KEYS if key not in doc]
    if missing:
        raise ConfigError(path, missing[0], "missing (required)")
    base = path.resolve().parent
    node_id = v.node_id(doc["node_id"], "node_id")
    paths = {key: Path(os.path.normpath(base / v.string(doc[key], key))) for key in _PATH_KEYS}
    p = paths.__getitem__
    tunables: dict[str, Any] = {
        key: v.integer(doc[key], key, lo, hi) for key, (lo, hi) in _INT_RANGES.items() if key in doc
    }
    flags: dict[str, Any] = {key: v.boolean(doc[key], key) for key in _BOOL_KEYS if key in doc}
    choices: dict[str, Any] = {
        key: v.choice(doc[key], key, _CHOICE_KEYS[key]) for key in _CHOICE_KEYS if key in doc
    }
    if "metrics_host" in doc:
        choices["metrics_host"] = v.string(doc["metrics_host"], "metrics_host")
    if "metrics_port" in doc:
        choices["metrics_port"] = v.integer(doc["metrics_port"], "metrics_port", 0, 65535)
    cfg = NodeConfig(
        node_id=node_id,
        rpc_host=v.string(doc["rpc_host"], "rpc_host"),
        rpc_port=v.integer(doc["rpc_port"], "rpc_port", 0, 65535),
        peer_host=v.string(doc["peer_host"], "peer_host"),
        peer_port=v.integer(doc["peer_port"], "peer_port", 0, 65535),
        peers=v.peers(doc.get("peers", []), node_id),
        mqtt=v.mqtt(doc.get("mqtt", {}), base),
        openlineage=v.openlineage(doc.get("openlineage", {}), base),
        data_dir=p("data_dir"),
        genesis=p("genesis"),
        node_key=p("node_key"),
        tls_cert=p("tls_cert"),
        tls_key=p("tls_key"),
        ca_cert=p("ca_cert"),
        **tunables,
        **flags,
        **choices,
    )
    if cfg.heartbeat_ticks >= cfg.election_timeout_ticks:
        raise ConfigError(
            path,
            "heartbeat_ticks",
            f"must be below election_timeout_ticks ({cfg.election_timeout_ticks}), "
            f"got {cfg.heartbeat_ticks}",
        )
    return cfg


class _Checker:
    """Field checks that raise ``ConfigError`` with the file and key in the message."""

    def __init__(self, path: Path) -> None:
        self.path = path

    def fail(self, key: str, problem: str) -> ConfigError:
        return ConfigError(self.path, key, problem)

    def string(self, value: Any, key: str) -> str:
        if not isinstance(value, str) or not value:
            raise self.fail(key, f"must be a non-empty string, got {value!r}")
        return value

    def integer(self, value: Any, key: str, lo: int, hi: int) -> int:
        # bool is an int subclass in Python; `port = true` is a mistake, not 1.
        if not isinstance(value, int) or isinstance(value, bool):
            raise self.fail(key, f"must be an integer, got {value!r}")
        if not lo <= value <= hi:
            raise self.fail(key, f"must be in {lo}..{hi}, got {value}")
        return value

    def boolean(self, value: Any, key: str) -> bool:
        if not isinstance(value, bool):
            raise self.fail(key, f"must be true or false, got {value!r}")
        return value

    def choice(self, value: Any, key: str, allowed: tuple[str, ...]) -> str:
        if value not in allowed:
            raise self.fail(key, f"must be one of {', '.join(map(repr, allowed))}, got {value!r}")
        return str(value)

    def node_id(self, value: Any, key: str) -> str:
        text = self.string(value, key)
        if not NODE_ID_PATTERN.fullmatch(text):
            raise self.fail(
                key,
                f"must be a DNS label (a-z, 0-9 and '-', at most 63 chars), got {text!r}",
            )
        return text

    def peers(self, value: Any, own_id: str) -> tuple[PeerAddress, ...]:
        if not isinstance(value, list):
            raise self.fail("peers", "must be an array of tables ([[peers]])")
        out: list[PeerAddress] = []
        for i, entry in enumerate(value):
            where = f"peers[{i}]"
            if not isinstance(entry, dict):
                raise self.fail(where, "must be a table with id, host and port")
            unknown = sorted(set(entry) - _PEER_KEYS)
            if unknown:
                raise self.fail(f"{where}.{unknown[0]}", "unknown key")
            missing = sorted(_PEER_KEYS - set(entry))
            if missing:
                raise self.fail(f"{where}.{missing[0]}", "missing (required)")
            peer = PeerAddress(
                node_id=self.node_id(entry["id"], f"{where}.id"),
                host=self.string(entry["host"], f"{where}.host"),
                port=self.integer(entry["port"], f"{where}.port", 1, 65535),
            )
            if peer.node_id == own_id:
                raise self.fail(f"{where}.id", f"is this node's own id {own_id!r}")
            if any(p.node_id == peer.node_id for p in out):
                raise self.fail(f"{where}.id", f"duplicate peer {peer.node_id!r}")
            out.append(peer)
        return tuple(out)

    def pattern(self, value: Any, key: str, pattern: re.Pattern[str], what: str) -> str:
        text = self.string(value, key)
        if not pattern.fullmatch(text):
            raise self.fail(key, f"must be {what}, got {text!r}")
        return text

    def paths(
        self, value: dict[str, Any], keys: tuple[str, ...], section: str, base: Path
    ) -> dict[str, Path]:
        """The path keys of a table that are set, made absolute against ``base``."""
        return {
            key: Path(os.path.normpath(base / self.string(value[key], f"{section}.{key}")))
            for key in keys
            if key in value
        }

    def mqtt(self, value: Any, base: Path) -> MqttConfig:
        if not isinstance(value, dict):
            raise self.fail("mqtt", "must be a table ([mqtt])")
        unknown = sorted(set(value) - _MQTT_KEYS)
        if unknown:
            raise self.fail(f"mqtt.{unknown[0]}", "unknown key")
        d = MqttConfig()
        paths = self.paths(value, _MQTT_PATHS, "mqtt", base)
        cfg = MqttConfig(
            enabled=self.boolean(value.get("enabled", d.enabled), "mqtt.enabled"),
            host=self.string(value.get("host", d.host), "mqtt.host"),
            port=self.integer(value.get("port", d.port), "mqtt.port", 1, 65535),
            topic_prefix=self.pattern(
                value.get("topic_prefix", d.topic_prefix),
                "mqtt.topic_prefix",
                _TOPIC_PREFIX,
                "topic levels of letters, digits, '_', '.' and '-' (no wildcards, no '$')",
            ),
            share_group=self.pattern(
                value.get("share_group", d.share_group),
                "mqtt.share_group",
                _SHARE_GROUP,
                "letters, digits, '_', '.' and '-'",
            ),
            session_expiry_s=self.integer(
                value.get("session_expiry_s", d.session_expiry_s),
                "mqtt.session_expiry_s",
                0,
                2**32 - 1,
            ),
            inflight_max=self.integer(
                value.get("inflight_max", d.inflight_max), "mqtt.inflight_max", 1, 65535
            ),
            username=self.string(value["username"], "mqtt.username")
            if "username" in value
            else None,
            **paths,
        )
        if (cfg.password_file is None) != (cfg.username is None):
            raise self.fail("mqtt.password_file", "username and password_file go together")
        if (cfg.cert_file is None) != (cfg.key_file is None):
            raise self.fail("mqtt.key_file", "cert_file and key_file go together")
        return cfg

    def openlineage(self, value: Any, base: Path) -> OpenLineageConfig:
        if not isinstance(value, dict):
            raise self.fail("openlineage", "must be a table ([openlineage])")
        unknown = sorted(set(value) - _OPENLINEAGE_KEYS)
        if unknown:
            raise self.fail(f"openlineage.{unknown[0]}", "unknown key")
        paths = self.paths(value, _OPENLINEAGE_PATHS, "openlineage", base)
        cfg = OpenLineageConfig(
            enabled=self.boolean(value.get("enabled", False), "openlineage.enabled"), **paths
        )
        if cfg.enabled and cfg.app_key is None:
            raise self.fail(
                "openlineage.app_key", "required when enabled (the app identity's key file)"
            )
        return cfg


def write_config(cfg: NodeConfig, path: Path | str) -> None:
    """Write ``cfg`` as TOML to ``path`` atomically; paths are stored relative to the
    file's directory where they can be, so the directory stays relocatable."""
    path = Path(path)
    base = path.resolve().parent
    lines = [
        "# grantchain node configuration; paths are relative to this file's directory.",
        f"node_id = {toml_string(cfg.node_id)}",
    ]
    for key in _PATH_KEYS:
        lines.append(f"{key} = {toml_string(_relative(getattr(cfg, key), base))}")
    lines += [
        f"rpc_host = {toml_string(cfg.rpc_host)}",
        f"rpc_port = {cfg.rpc_port}",
        f"peer_host = {toml_string(cfg.peer_host)}",
        f"peer_port = {cfg.peer_port}",
    ]
    lines += [f"{key} = {getattr(cfg, key)}" for key in _INT_RANGES]
    lines += [f"{key} = {'true' if getattr(cfg, key) else 'false'}" for key in _BOOL_KEYS]
    lines += [f"{key} = {toml_string(getattr(cfg, key))}" for key in _CHOICE_KEYS]
    lines.append(f"metrics_host = {toml_string(cfg.metrics_host)}")
    if cfg.metrics_port is not None:
        lines.append(f"metrics_port = {cfg.metrics_port}")
    m = cfg.mqtt
    lines += [
        "",
        "[mqtt]",
        f"enabled = {'true' if m.enabled else 'false'}",
        f"host = {toml_string(m.host)}",
        f"port = {m.port}",
        f"topic_prefix = {toml_string(m.topic_prefix)}",
        f"share_group = {toml_string(m.share_group)}",
        f"session_expiry_s = {m.session_expiry_s}",
        f"inflight_max = {m.inflight_max}",
    ]
    if m.username is not None:
        lines.append(f"username = {toml_string(m.username)}")
    for key in _MQTT_PATHS:
        if getattr(m, key) is not None:
            lines.append(f"{key} = {toml_string(_relative(getattr(m, key), base))}")
    ol = cfg.openlineage
    lines += ["", "[openlineage]", f"enabled = {'true' if ol.enabled else 'false'}"]
    for key in _OPENLINEAGE_PATHS:
        if getattr(ol, key) is not None:
            lines.append(f"{key} = {toml_string(_relative(getattr(ol, key), base))}")
    for p in cfg.peers:
        lines += [
            "",
            "[[peers]]",
            f"id = {toml_string(p.node_id)}",
            f"host = {toml_string(p.host)}",
            f"port = {p.port}",
        ]
    text = "\n".join(lines) + "\n"
    fd, tmp = tempfile.mkstemp(dir=base, prefix=f".{path.name}.", suffix=".tmp")
    try:
        with os.fdopen(fd, "w", encoding="utf-8") as f:
            f.write(text)
            f.flush()
            os.fsync(f.fileno())
        os.chmod(tmp, 0o644)
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise


def toml_string(text: str) -> str:
    """A TOML basic string. TOML forbids raw control characters and DEL in basic strings
    and only allows escapes of Unicode scalar values, so JSON's escaping (which emits
    surrogate pairs) is not a safe shortcut."""
    out = ['"']
    for ch in text:
        code = ord(ch)
        if ch == '"':
            out.append('\\"')
        elif ch == "\\":
            out.append("\\\\")
        elif code < 0x20 or code == 0x7F:
            out.append(f"\\u{code:04X}")
        else:
            out.append(ch)
    out.append('"')
    return "".join(out)


def _relative(target: Path, base: Path) -> str:
    try:
        return os.path.relpath(Path(target).resolve(), base)
    except ValueError:  # a different drive on Windows
        return str(Path(target).resolve())
