"""The ACL state root: a chained commitment to the genesis and every block's writes.

Stored in state under ``META_ROOT`` and carried in each block header::

    root_0 = SHA-256("grantchain/acl-genesis/v1\\0" || genesis.hash || D(writes_0))
    root_h = SHA-256("grantchain/acl-state/v1\\0" || root_{h-1} || u64(h) || u64(ms_h) || D(writes_h))

where ``D`` is SHA-256 over the block's sorted writes (each key and value length-prefixed,
a delete marked), the root key itself excluded: the digest of their change set
(``acl.changeset``). It costs one hash over the block's writes.

It commits to the genesis and to every block's change set, in order: nodes whose roots
agree at h produced the same changes from the same start, so (barring SHA-256
collisions) their states are equal if their stores applied those changes faithfully. A
node whose stored state differs computes different writes as soon as it reads the
differing keys, and its root diverges from then on. It is not recomputed from the stored
content, so it does not itself detect a store damaged after the fact (re-executing the
blocks does). It does NOT support proving one key's value against the root (it is not a
Merkle map): an answer is proven instead by the txs it names (heights and tx ids), whose
receipts carry Merkle inclusion proofs, with ``results_root`` binding each result code.
"""

from __future__ import annotations

import hashlib
from collections.abc import Sequence
from typing import Final

from acl import changeset
from acl import keys as K
from acl.state import Write

STATE_DOMAIN: Final = b"grantchain/acl-state/v1\x00"
GENESIS_DOMAIN: Final = b"grantchain/acl-genesis/v1\x00"


def writes_digest(writes: Sequence[Write]) -> bytes:
    """SHA-256 over sorted writes, each ``len16(key) key (len32(value) value | ffffffff)``:
    the digest of their change set (``acl.changeset``)."""
    return changeset.digest(changeset.encode(writes))


def genesis_root(genesis_hash: bytes, digest: bytes) -> bytes:
    """``root_0``: the genesis (by its hash) and the digest of the writes it makes."""
    return hashlib.sha256(GENESIS_DOMAIN + genesis_hash + digest).digest()


def chain_root(prev_root: bytes, height: int, timestamp_ms: int, digest: bytes) -> bytes:
    """``root_h``: the previous root, the block's height and time, its writes' digest."""
    return hashlib.sha256(
        STATE_DOMAIN + prev_root + K.u64(height) + K.u64(timestamp_ms) + digest
    ).digest()
