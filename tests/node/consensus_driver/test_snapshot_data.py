"""Raft snapshots from peers (issue 15 §4): only data naming a block that a quorum of
genesis validators certified reaches the core, and so the disk. Seen before: one forged
InstallSnapshot was persisted, and the node failed to restore it at every restart."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from chain import codec, signing
from chain.receipt import header_signing_bytes
from consensus.types import InstallSnapshot, Snapshot, SnapshotMeta
from node.consensus_driver import snapshot_data as sd
from node.consensus_driver.loop import ConsensusLoop
from tests.node.consensus_driver.story_loop import GENESIS, KEYS, VOTERS, story_loop

HASH = b"\x5a" * 32


def _sig(node: str, header_hash: bytes = HASH) -> list[object]:
    key = KEYS[node.removesuffix("-node") + "/node"]
    return [node, signing.sign(key, header_signing_bytes(header_hash))]


def _data(*cert: list[object], height: int = 40, header_hash: bytes = HASH) -> bytes:
    return codec.encode([height, header_hash, sorted(cert)])  # type: ignore[type-var]


def test_a_quorum_certificate_is_taken() -> None:
    assert sd.check_certified(_data(_sig("lab-node"), _sig("regulator-node")), GENESIS) == (
        40,
        HASH,
    )
    local = sd.local_data(40, HASH)
    assert sd.target(local) == (40, HASH)
    cert = [("lab-node", _sig("lab-node")[1]), ("hospital-node", _sig("hospital-node")[1])]
    assert sd.check_certified(sd.certified_data(local, cert), GENESIS) == (40, HASH)  # type: ignore[arg-type]


@pytest.mark.parametrize(
    ("data", "needle"),
    [
        (b"\xc1", "not canonical msgpack"),
        (codec.encode([40]), "is not [height"),
        (codec.encode([40, b"short"]), "is not [height"),
        (codec.encode([-1, HASH, []]), "is not [height"),
        (codec.encode([True, HASH, []]), "is not [height"),
        (codec.encode(["40", HASH, []]), "is not [height"),
        (codec.encode([40, HASH]), "carries no certificate"),
        (codec.encode([40, HASH, [["lab-node"]]]), "not [node id, signature]"),
        (_data(_sig("lab-node")), "1 valid signatures, quorum is 2"),
        (_data(_sig("lab-node"), ["lab-node", _sig("lab-node")[1]]), "quorum is 2"),  # twice
        (_data(_sig("lab-node"), _sig("regulator-node", b"\x00" * 32)), "quorum is 2"),
        (_data(_sig("lab-node"), ["intruder", b"\x00" * 64]), "quorum is 2"),
        (_data(*[_sig("lab-node")] * 4), "more than validators"),
    ],
)
def test_forged_snapshot_data_is_refused_with_a_reason(data: bytes, needle: str) -> None:
    with pytest.raises(sd.SnapshotDataError, match=needle.replace("[", r"\[")):
        sd.check_certified(data, GENESIS)


@pytest.fixture
def loop(tmp_path: Path) -> Iterator[ConsensusLoop]:
    with story_loop(tmp_path) as made:
        yield made


def _install(data: bytes) -> InstallSnapshot:
    return InstallSnapshot(
        "lab-node", "hospital-node", 3, Snapshot(SnapshotMeta(90, 3, VOTERS), data)
    )


def test_a_forged_snapshot_never_reaches_the_core(loop: ConsensusLoop) -> None:
    for data in (codec.encode([10**12, HASH]), _data(_sig("lab-node")), b"\x00garbage"):
        loop._handle(_install(data))
        assert not loop.core.has_ready() or loop.core.ready().snapshot is None
    assert loop.metrics.bad_peer_messages._value.get() == 3


def test_a_certified_snapshot_goes_to_the_core_to_be_persisted(loop: ConsensusLoop) -> None:
    loop._handle(_install(_data(_sig("lab-node"), _sig("regulator-node"))))
    rd = loop.core.ready()
    assert rd.snapshot is not None and sd.target(rd.snapshot.data) == (40, HASH)
