"""The layout of the ACL state: fixed-width binary keys under one-byte prefixes.

Ids chosen by users (organisation, dataset, model, run ids) enter keys as 32-byte
domain-separated SHA-256 digests, so every key of a family has one width, prefix scans
are exact, and key order never depends on string lengths. The records themselves keep the
readable ids. Big-endian integers order numerically.

==========  =======================================  ===========================================
prefix      rest of the key                          value
==========  =======================================  ===========================================
``\\x00``   meta name (``root``, ``height``, ...)    chain commitment, last height/time, quorum
``O``       org                                      organisation record
``I``       identity (org, name)                     identity record
``K``       public key (32 bytes)                    [identity key, key epoch]: sender lookup
``V``       node id                                  validator record
``P``       proposal id (= its tx id)                proposal record
``D``       dataset                                  dataset record (latest version number)
``E``       dataset, version u32                     version record: content hash, parent
``G``       grant id (= its tx id)                   grant record
``A``       dataset, grantee org                     grants not revoked for the pair (hot path)
``B``       dataset, grantee org, grant id           empty: every grant by dataset
``C``       grantee org, dataset, grant id           empty: every grant by grantee
``T``       tx ms u64, tx id                         height, index, result, block ms
``L``       block ms u64, height u64, index u32      audit event record (the audit log by time)
``X``       block ms u64, height u64, index u32      empty: violations (``no_grant``) by time
``H``       dataset, height u64, index u32           kind, result, block ms, tx id: history
``R``       run                                      training or federated run record
``S``       run, height u64, index u32               run event: type, result, block ms, tx id
``M``       model (name), version u32 (0: owner)     model record
``N``       model (name), version u32, height, index kind, result, block ms, tx id: uses
``W``       output dataset, height u64, index u32    derivation: input datasets (lineage)
``Y``       label (``acl.audit_counters``)           the label's audit events so far, first and
                                                     last block ms, its name
``Z``       label, block ms u64, height u64          the label's audit events in the blocks
                                                     before this one (prefix sums)
==========  =======================================  ===========================================
"""

from __future__ import annotations

import hashlib
import struct
from functools import lru_cache
from typing import Final

META: Final = b"\x00"
ORG: Final = b"O"
IDENTITY: Final = b"I"
KEY: Final = b"K"
VALIDATOR: Final = b"V"
PROPOSAL: Final = b"P"
DATASET: Final = b"D"
VERSION: Final = b"E"
GRANT: Final = b"G"
ACTIVE: Final = b"A"
BY_DATASET: Final = b"B"
BY_GRANTEE: Final = b"C"
TX: Final = b"T"
LOG: Final = b"L"
VIOLATION: Final = b"X"
HISTORY: Final = b"H"
RUN: Final = b"R"
RUN_EVENT: Final = b"S"
MODEL: Final = b"M"
MODEL_USE: Final = b"N"
DERIVATION: Final = b"W"
COUNT: Final = b"Y"
COUNT_AT: Final = b"Z"

META_ROOT: Final = META + b"root"
META_HEIGHT: Final = META + b"height"
META_TIMESTAMP: Final = META + b"timestamp_ms"
META_QUORUM: Final = META + b"governance_quorum"
META_CHAIN: Final = META + b"chain_id"
META_LAYOUT: Final = META + b"layout"

LAYOUT_VERSION: Final = 2
"""The version of this key layout and of the records under it, stored at genesis and
checked on every block: state written by another layout is refused, never misread.
2: the audit counters (``Y``, ``Z``: ``acl.audit_counters``). A state of layout 1 lacks
them, and a block applied on it is refused: re-create the state from genesis (re-apply
the chain's blocks), since the counters are part of every state root from block 1."""

_U64 = struct.Struct(">Q")
_POS = struct.Struct(">QI")
_TIME_POS = struct.Struct(">QQI")
U64: Final = _U64
"""``u64``'s struct, for hot paths that pack without the call."""
POSITION: Final = _POS
"""``position``'s struct, for hot paths that pack without the call."""
TX_RECORD: Final = struct.Struct(">QIHQ")
"""Value of a ``T`` key: height, index in block, result code, block timestamp in ms."""
MARK: Final = struct.Struct(">BHQ32s")
"""Value of ``H`` and ``N`` keys: kind code, result code, block timestamp in ms, tx id."""


@lru_cache(maxsize=1 << 16)
def digest(domain: bytes, text: str) -> bytes:
    """SHA-256 of a domain tag and an id (memoised: ids repeat on the hot path)."""
    return hashlib.sha256(domain + b"\x00" + text.encode()).digest()


def org_key(org_id: str) -> bytes:
    return digest(b"org", org_id)


def identity_key(org_id: str, name: str) -> bytes:
    # Length-prefixed: no (org, name) pair can collide with another, whatever they hold.
    return digest(b"identity", f"{len(org_id)}:{org_id}{name}")


def dataset_key(dataset_id: str) -> bytes:
    return digest(b"dataset", dataset_id)


def model_key(model_name: str) -> bytes:
    return digest(b"model", model_name)


def run_key(run_id: str) -> bytes:
    return digest(b"run", run_id)


def node_key(node_id: str) -> bytes:
    return digest(b"node", node_id)


def u64(n: int) -> bytes:
    return _U64.pack(n)


def position(height: int, index: int) -> bytes:
    return _POS.pack(height, index)


def time_position(timestamp_ms: int, height: int, index: int) -> bytes:
    return _TIME_POS.pack(timestamp_ms, height, index)


def parse_time_position(raw: bytes) -> tuple[int, int, int]:
    """(block ms, height, index) from the 20 bytes after an ``L`` or ``X`` prefix."""
    ts, height, index = _TIME_POS.unpack(raw)
    return ts, height, index


def parse_position(raw: bytes) -> tuple[int, int]:
    height, index = _POS.unpack(raw)
    return height, index


def tx_key(tx_timestamp_ms: int, tx_id: bytes) -> bytes:
    """The replay marker of an applied tx. Led by the tx's own timestamp (which its id
    covers, so a replay finds the same key): txs of a block land on a few adjacent B-tree
    pages instead of one random page each, and markers older than the freshness window
    form one prefix range that can be pruned."""
    return TX + _U64.pack(tx_timestamp_ms) + tx_id


def version_key(dataset_id: str, version: int) -> bytes:
    return VERSION + dataset_key(dataset_id) + struct.pack(">I", version)


def model_version_key(model_name: str, version: int) -> bytes:
    return model_key(model_name) + struct.pack(">I", version)
