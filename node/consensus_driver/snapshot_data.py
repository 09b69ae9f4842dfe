"""A Raft snapshot's data on this chain, and the check a follower makes of a snapshot
from a peer before the core (and so the disk) ever sees it.

The state machine is the block store, so a snapshot is "the chain up to ``height``,
whose header hash is ``hash``": installing it means fetching those blocks from peers
(``ConsensusLoop.restore``). Taken locally the data is ``[height, hash]``. Sent to a
peer it carries the block's certificate as well, ``[height, hash, [[node_id, sig],
...]]``, added from the store at send time (the certificate is usually not complete when
the snapshot is taken). A follower takes one only if it decodes to exactly that shape
and a quorum of genesis validators signed the header hash: a forged snapshot was
persisted before, and its restore then failed at every restart of the node (issue 15
§4); now it is dropped at the door and counted in ``grantchain_bad_peer_messages``.
"""

from __future__ import annotations

from typing import Any

from chain import codec, limits
from chain.genesis import Genesis
from chain.receipt import HeaderSignature, quorum, valid_signers_of_hash

HASH_BYTES = 32


class SnapshotDataError(ValueError):
    """Snapshot data from a peer that this node will not take; the message says why."""


def local_data(height: int, header_hash: bytes) -> bytes:
    return codec.encode([height, header_hash])


def certified_data(data: bytes, certificate: list[tuple[str, bytes]]) -> bytes:
    """``data`` (as taken locally) with the certificate of its block, to send."""
    height, header_hash = target(data)
    return codec.encode([height, header_hash, sorted([n, s] for n, s in certificate)])


def target(data: bytes) -> tuple[int, bytes]:
    """The height and header hash a snapshot's data names (local or certified form)."""
    value = _decode(data)
    return value[0], value[1]


def check_certified(data: bytes, genesis: Genesis) -> tuple[int, bytes]:
    """The height and hash of a peer's snapshot, once its certificate holds a quorum of
    genesis validators' signatures over that hash; else ``SnapshotDataError``."""
    value = _decode(data)
    if len(value) != 3 or not isinstance(value[2], list):
        raise SnapshotDataError("snapshot data carries no certificate")
    height, header_hash, cert = value
    if len(cert) > len(genesis.validators):
        raise SnapshotDataError(f"certificate of {len(cert)} signatures, more than validators")
    sigs = []
    for item in cert:
        if not (
            isinstance(item, list)
            and len(item) == 2
            and isinstance(item[0], str)
            and isinstance(item[1], bytes)
        ):
            raise SnapshotDataError("a certificate entry is not [node id, signature]")
        sigs.append(HeaderSignature(item[0], item[1]))
    signers = valid_signers_of_hash(header_hash, sigs, genesis)
    if len(signers) < quorum(genesis):
        raise SnapshotDataError(
            f"certificate of block {height} has {len(signers)} valid signatures, "
            f"quorum is {quorum(genesis)}"
        )
    return height, header_hash


def _decode(data: bytes) -> list[Any]:
    try:
        value = codec.decode(data, max_bytes=limits.BLOCK_BYTES_MAX)
    except codec.DecodeError as exc:
        raise SnapshotDataError(f"snapshot data is not canonical msgpack: {exc}") from None
    if (
        not isinstance(value, list)
        or len(value) not in (2, 3)
        or not isinstance(value[0], int)
        or isinstance(value[0], bool)
        or not 0 <= value[0] < 2**63
        or not isinstance(value[1], bytes)
        or len(value[1]) != (HASH_BYTES if value[0] else 0)  # height 0: no block, no hash
    ):
        raise SnapshotDataError("snapshot data is not [height, 32-byte header hash, ...]")
    return value
