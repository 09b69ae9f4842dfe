"""``grantchain bench <name>``: each benchmark lives in ``benchmarks/<name>.py`` as a click
command named ``command``."""

from __future__ import annotations

import click

from node.cli.lazy_group import LazyGroup

BENCHES: dict[str, tuple[str, str]] = {
    "storage": ("benchmarks.storage", "Durable append, verify rate and proof latency (LMDB)."),
    "crypto": ("benchmarks.crypto", "numba kernels vs OpenSSL/hashlib: Ed25519 and Merkle."),
    "acl": ("benchmarks.acl", "Grant/audit state machine apply rate."),
    "e2e": ("benchmarks.e2e", "Committed signed txs/s and latency on a local cluster."),
    "explorer": (
        "benchmarks.explorer",
        "Each audit explorer page's wait with 1M txs in the chain.",
    ),
    "mqtt": (
        "benchmarks.mqtt",
        "MQTT ingest vs the HTTP batch path, and publish-to-answer latency.",
    ),
}


@click.group("bench", cls=LazyGroup, lazy=BENCHES)
def command() -> None:
    """Benchmarks; each prints ratios against a baseline measured in the same run."""
