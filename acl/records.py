"""The records the machine stores: how they are built, encoded and decoded.

Records are ``chain.codec`` values (canonical msgpack: no floats, sorted maps). Here are
the organisation, identity and validator records that genesis, governance and identity
txs all write; the audit event record, assembled from memoised canonical parts because
it is written once per event (``encode_event_record``); the entries of the hot grant
index (``ActiveGrant``); and decoding memoised by the raw bytes.
"""

from __future__ import annotations

from collections.abc import Sequence
from functools import lru_cache
from typing import Any

from chain import codec

decode_record = lru_cache(maxsize=1 << 14)(codec.decode)
"""Decoding memoised by the raw bytes: content-addressed, so always coherent with the
state whatever was committed or discarded. The decoded values are shared: never mutate
one (handlers build changed copies)."""

_encode_scalar = lru_cache(maxsize=1 << 16, typed=True)(codec.encode)
"""Canonical bytes of a hashable scalar (str, int, None); ``typed`` keeps True and 1 apart."""

_NIL = codec.encode(None)
_BIN32 = codec.encode(bytes(32))[:2]


def _bin32(value: bytes) -> bytes:
    """Canonical bytes of a 32-byte string (msgpack bin 8 header + the bytes)."""
    return _BIN32 + value


def event_tx_id(raw: bytes) -> bytes:
    """The tx id of an audit event record (``encode_event``) without decoding the rest:
    after the array header and a kind code under 128, the id is at a fixed place."""
    if raw[0] == 0x9B and raw[1] < 0x80 and raw[2:4] == _BIN32:
        return raw[4:36]
    tx_id: bytes = codec.decode(raw)[1]
    return tx_id


def array_header(n: int) -> bytes:
    """The canonical msgpack array header for ``n`` items: an array's canonical encoding is
    this header followed by the canonical encodings of its items, so records can be built
    from cached, already-canonical parts."""
    if n < 16:
        return bytes((0x90 | n,))
    if n < 1 << 16:
        return b"\xdc" + n.to_bytes(2, "big")
    return b"\xdd" + n.to_bytes(4, "big")


def encode_event_record(
    kind_code: int,
    tx_id: bytes,
    org_id: str,
    identity: str,
    key_epoch: int,
    result: int,
    purpose: str | None,
    uses: Sequence[Sequence[Any]],
    subject: list[Any] | None,
    on_behalf_of: str | None,
    run_id: str | None,
) -> bytes:
    """``codec.encode([kind_code, tx_id, org_id, identity, key_epoch, result, purpose,
    [[dataset_id, version, grant_id], ...], subject, on_behalf_of, run_id])``, byte for byte,
    assembled from memoised parts because it runs once per audit event."""
    enc = _encode_scalar
    actor = enc(org_id) + enc(identity) + enc(key_epoch)
    return encode_event(
        kind_code, tx_id, actor, result, purpose, uses, subject, on_behalf_of, run_id
    )


def encode_event(
    kind_code: int,
    tx_id: bytes,
    actor: bytes,
    result: int,
    purpose: str | None,
    uses: Sequence[Sequence[Any]],
    subject: list[Any] | None,
    on_behalf_of: str | None,
    run_id: str | None,
) -> bytes:
    """``encode_event_record`` with the actor (org id, identity, key epoch) given already
    encoded, as a sender's ``Principal.actor_bytes`` holds it for the whole block."""
    enc = _encode_scalar
    parts = [
        b"\x9b",
        enc(kind_code),
        _bin32(tx_id),
        actor,
        enc(result),
        enc(purpose),
        array_header(len(uses)),
    ]
    for dataset_id, version, grant_id in uses:
        parts.append(b"\x93")
        parts.append(enc(dataset_id))
        parts.append(enc(version))
        parts.append(_NIL if grant_id is None else _bin32(grant_id))
    if subject is None:
        parts.append(_NIL)
    else:
        parts.append(array_header(len(subject)))
        for item in subject:
            kind = type(item)
            if kind is str or kind is int or item is None:
                parts.append(enc(item))
            else:
                parts.append(codec.encode(item))
    parts.append(enc(on_behalf_of))
    parts.append(enc(run_id))
    return b"".join(parts)


def decode_u64(raw: bytes | None) -> int | None:
    """A big-endian u64 meta value, or None when it is absent or not 8 bytes."""
    return None if raw is None or len(raw) != 8 else int.from_bytes(raw, "big")


def org_record(org_id: str, name: str, height: int) -> dict[str, Any]:
    return {"org_id": org_id, "name": name, "status": "active", "joined_height": height}


def identity_record(
    org_id: str, name: str, role: str, public_key: bytes, height: int
) -> dict[str, Any]:
    return {
        "org_id": org_id,
        "name": name,
        "role": role,
        "status": "active",
        "key_epoch": 0,
        "public_key": public_key,
        "registered_height": height,
    }


def validator_record(node_id: str, org_id: str, public_key: bytes, height: int) -> dict[str, Any]:
    return {
        "node_id": node_id,
        "org_id": org_id,
        "public_key": public_key,
        "status": "active",
        "added_height": height,
    }


ActiveGrant = tuple[bytes, int | None, str | None, frozenset[str], int, int]
"""A grant in the hot index: (grant id, version or None, identity name or None, purposes,
valid_from_ms, valid_until_ms)."""


@lru_cache(maxsize=1 << 14)
def decode_active(raw: bytes) -> tuple[ActiveGrant, ...]:
    """The grants of one hot-index entry, memoised by its bytes like ``decode_record``."""
    return tuple(
        (gid, version, identity, frozenset(purposes), start, until)
        for gid, version, identity, purposes, start, until in codec.decode(raw)
    )
