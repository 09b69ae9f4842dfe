"""A local Mosquitto broker for the demo and the tests: a generated config, a free port.

The settings are the ones a consortium's broker needs for the bridge's guarantees (see
``node.api.mqtt`` and ``deploy/README.md``): persistence on, so queued and in-flight
messages survive a broker restart; no cap on a session's queue (Mosquitto's default of
1,000 drops QoS 1 messages it has already acknowledged to their publisher); no broker
cap on in-flight messages per client (the bridge's Receive Maximum bounds them).

Mosquitto writes its persistence file on shutdown and every ``autosave_interval``
seconds, not per message: a broker killed with SIGKILL loses what came since the last
save. A deployment that needs per-message durability across broker crashes runs a
broker that writes through (or a cluster of brokers); this is documented, not hidden.
"""

from __future__ import annotations

import os
import pwd
import shutil
import signal
import socket
import subprocess
import time
from dataclasses import dataclass
from pathlib import Path

START_TIMEOUT_S = 10.0
PAYLOAD_BYTES_MAX = 2 * 1024 * 1024


class BrokerError(RuntimeError):
    """Mosquitto is not installed, or did not start."""


def mosquitto_binary() -> str:
    """The ``mosquitto`` executable (Debian installs it in /usr/sbin, often not on PATH)."""
    found = shutil.which("mosquitto") or (
        "/usr/sbin/mosquitto" if os.access("/usr/sbin/mosquitto", os.X_OK) else None
    )
    if found is None:
        raise BrokerError(
            "mosquitto is not installed: `make` installs it (apt-get install mosquitto)"
        )
    return found


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port: int = s.getsockname()[1]
        return port


@dataclass(frozen=True, slots=True)
class BrokerAuth:
    """How the broker's listener authenticates clients (``deploy/README.md`` shows the
    same settings for a consortium's broker): TLS with the server certificate
    ``cert_file``/``key_file`` issued by ``ca_file``; client certificates required when
    ``require_certificate`` (their CN is the MQTT username); a Mosquitto password file
    (made with ``mosquitto_passwd``) when ``password_file`` is set. Anonymous clients are
    refused."""

    ca_file: Path | None = None
    cert_file: Path | None = None
    key_file: Path | None = None
    require_certificate: bool = False
    password_file: Path | None = None

    def lines(self) -> list[str]:
        out = ["allow_anonymous false"]
        if self.cert_file is not None:
            out += [f"cafile {self.ca_file}", f"certfile {self.cert_file}"]
            out += [f"keyfile {self.key_file}"]
        if self.require_certificate:
            out += ["require_certificate true", "use_identity_as_username true"]
        if self.password_file is not None:
            out.append(f"password_file {self.password_file}")
        return out


def broker_config(directory: Path, port: int, auth: BrokerAuth | None = None) -> str:
    return "\n".join(
        [
            f"listener {port} 127.0.0.1",
            *(auth.lines() if auth is not None else ["allow_anonymous true"]),
            # Started as root, Mosquitto drops to the user "mosquitto", who cannot write
            # this directory: no log and, worse, no persistence. Stay the user we are.
            f"user {pwd.getpwuid(os.geteuid()).pw_name}",
            "persistence true",
            f"persistence_location {directory}/",
            "autosave_interval 1",
            "max_queued_messages 0",
            "max_inflight_messages 0",
            # Nagle's algorithm against delayed ACKs holds small packets for ~40 ms.
            "set_tcp_nodelay true",
            f"message_size_limit {PAYLOAD_BYTES_MAX}",
            f"log_dest file {directory / 'mosquitto.log'}",
            "log_type error",
            "log_type warning",
            "log_type notice",
            "",
        ]
    )


@dataclass
class Broker:
    directory: Path
    port: int
    auth: BrokerAuth | None = None
    process: subprocess.Popen[bytes] | None = None

    @property
    def host(self) -> str:
        return "127.0.0.1"

    def start(self) -> None:
        self.directory.mkdir(parents=True, exist_ok=True)
        conf = self.directory / "mosquitto.conf"
        conf.write_text(broker_config(self.directory, self.port, self.auth))
        self.process = subprocess.Popen(
            [mosquitto_binary(), "-c", str(conf)],
            stdout=subprocess.DEVNULL,
            stderr=(self.directory / "mosquitto.stderr").open("ab"),
            start_new_session=True,
        )
        deadline = time.monotonic() + START_TIMEOUT_S
        while time.monotonic() < deadline:
            if self.process.poll() is not None:
                raise BrokerError(f"mosquitto exited at start: see {self.directory}")
            try:
                with socket.create_connection((self.host, self.port), timeout=0.5):
                    return
            except OSError:
                time.sleep(0.05)  # polling a port that is not open yet, with a deadline
        self.stop(kill=True)
        raise BrokerError(
            f"mosquitto did not listen on port {self.port} within {START_TIMEOUT_S} s"
        )

    def stop(self, *, kill: bool = False) -> None:
        """SIGTERM (Mosquitto saves its persistence file) or SIGKILL (it does not)."""
        p = self.process
        if p is None or p.poll() is not None:
            return
        p.send_signal(signal.SIGKILL if kill else signal.SIGTERM)
        try:
            p.wait(timeout=10)
        except subprocess.TimeoutExpired:
            p.kill()
            p.wait()


def start_broker(
    directory: Path, port: int | None = None, auth: BrokerAuth | None = None
) -> Broker:
    broker = Broker(directory, port or free_port(), auth)
    broker.start()
    return broker
