"""A Raft snapshot's data on this chain, and the check a follower makes of a snapshot
from a peer before the core (and so the disk) ever sees it.

The state machine is the block store, so a snapshot is "the chain up to ``height``,
whose header hash is ``hash``": installing it means fetching those blocks from peers
(``ConsensusLoop.restore``). Taken locally the data is ``[height, hash]``. Sent to a
peer it carries the block's certificate as well, ``[height, hash, [[node_id, sig],
...]]``, added from the store at send time (the certificate is usually not complete when
the snapshot is taken), and, once governance has changed the validator set, the
certified changes up to ``height`` as a fourth item (``[[header, [[node_id, sig], ...],
[[node_id, org_id, public_key], ...]], ...]``, ``chain.validator_sets.SetChange``). A
follower takes one only if it decodes to exactly that shape, the changes walk from the
genesis set (``verify_history``), and a quorum of the validators in force at ``height``
signed the header (with the set after it, as validators sign once the set has changed):
a forged snapshot was persisted before, and its restore then failed at every restart of
the node (issue 15 §4); now it is dropped at the door and counted in
``grantchain_bad_peer_messages``.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from chain import codec, limits
from chain.block import BlockError, BlockHeader
from chain.genesis import Genesis, Validator
from chain.validator_sets import (
    VALIDATORS_MAX,
    HeaderSignature,
    SetChange,
    ValidatorSet,
    ValidatorSetError,
    valid_signers_for,
    verify_history,
)

HASH_BYTES = 32


class SnapshotDataError(ValueError):
    """Snapshot data from a peer that this node will not take; the message says why."""


def local_data(height: int, header_hash: bytes) -> bytes:
    return codec.encode([height, header_hash])


def certified_data(
    data: bytes, certificate: list[tuple[str, bytes]], changes: Sequence[SetChange] = ()
) -> bytes:
    """``data`` (as taken locally) with the certificate of its block and the certified
    validator-set changes up to it, to send."""
    height, header_hash = target(data)
    value: list[Any] = [height, header_hash, sorted([n, s] for n, s in certificate)]
    if changes:
        value.append(
            [
                [
                    c.header.to_bytes(),
                    sorted([s.node_id, s.signature] for s in c.certificate),
                    [[v.node_id, v.org_id, v.public_key] for v in c.validators.validators],
                ]
                for c in changes
            ]
        )
    return codec.encode(value)


def target(data: bytes) -> tuple[int, bytes]:
    """The height and header hash a snapshot's data names (local or certified form)."""
    value = _decode(data)
    return value[0], value[1]


def check_certified(data: bytes, genesis: Genesis) -> tuple[int, bytes]:
    """The height and hash of a peer's snapshot, once its certificate holds a quorum of
    the signatures of the validators in force at that height (its validator-set changes
    proven from the genesis); else ``SnapshotDataError``."""
    value = _decode(data)
    if len(value) < 3 or not isinstance(value[2], list):
        raise SnapshotDataError("snapshot data carries no certificate")
    height, header_hash, cert = value[0], value[1], value[2]
    changes = _changes(value[3]) if len(value) == 4 else []
    try:
        history = verify_history(genesis, changes, height)
    except ValidatorSetError as exc:
        raise SnapshotDataError(f"snapshot's {exc}") from None
    in_force = history.in_force(height)
    if len(cert) > len(in_force.validators):
        raise SnapshotDataError(f"certificate of {len(cert)} signatures, more than validators")
    sigs = _signatures(cert)
    signers = valid_signers_for(in_force.keys, history.signing_bytes(height, header_hash), sigs)
    need = in_force.quorum(genesis.consensus)
    if len(signers) < need:
        raise SnapshotDataError(
            f"certificate of block {height} has {len(signers)} valid signatures, quorum is {need}"
        )
    return height, header_hash


def _signatures(cert: list[Any]) -> list[HeaderSignature]:
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
    return sigs


def _changes(value: Any) -> list[SetChange]:
    """The validator-set changes a snapshot carries, decoded (not yet checked)."""
    if not isinstance(value, list) or not value:
        raise SnapshotDataError("snapshot validator-set changes are not a non-empty list")
    out = []
    for item in value:
        if not (
            isinstance(item, list)
            and len(item) == 3
            and isinstance(item[0], bytes)
            and isinstance(item[1], list)
            and isinstance(item[2], list)
            and 0 < len(item[2]) <= VALIDATORS_MAX
            and len(item[1]) <= VALIDATORS_MAX
            and all(
                isinstance(v, list)
                and len(v) == 3
                and isinstance(v[0], str)
                and isinstance(v[1], str)
                and isinstance(v[2], bytes)
                and len(v[2]) == limits.PUBLIC_KEY_BYTES
                for v in item[2]
            )
        ):
            raise SnapshotDataError(
                "a validator-set change is not [header, certificate, [[node id, org id, key]]]"
            )
        try:
            header = BlockHeader.from_bytes(item[0])
        except BlockError as exc:
            raise SnapshotDataError(f"validator-set change header: {exc}") from None
        members = [Validator(v[0], v[1], v[2]) for v in item[2]]
        out.append(
            SetChange(header, tuple(_signatures(item[1])), ValidatorSet.of(header.height, members))
        )
    return out


def _decode(data: bytes) -> list[Any]:
    try:
        value = codec.decode(data, max_bytes=limits.BLOCK_BYTES_MAX)
    except codec.DecodeError as exc:
        raise SnapshotDataError(f"snapshot data is not canonical msgpack: {exc}") from None
    if (
        not isinstance(value, list)
        or len(value) not in (2, 3, 4)
        or not isinstance(value[0], int)
        or isinstance(value[0], bool)
        or not 0 <= value[0] < 2**63
        or not isinstance(value[1], bytes)
        or len(value[1]) != (HASH_BYTES if value[0] else 0)  # height 0: no block, no hash
    ):
        raise SnapshotDataError("snapshot data is not [height, 32-byte header hash, ...]")
    return value
