"""Receipts that prove their validator set: each receipt gets the certified validator-set
changes from genesis to its height (``chain.validator_sets.SetChange``), read from the
store: the header of each block that changed the set and its certificate."""

from __future__ import annotations

import dataclasses
from collections.abc import Callable

from chain.receipt import Receipt
from chain.validator_sets import HeaderSignature, SetChange, ValidatorHistory
from storage.blockstore import BlockStore, StoreError

Certificate = Callable[[int], list[tuple[str, bytes]]]


def set_changes(
    store: BlockStore, history: ValidatorHistory, certificate: Certificate, to_height: int
) -> list[SetChange]:
    """The certified changes of ``history`` up to ``to_height``."""
    out = []
    for s in history.changes(to_height):
        header = store.header(s.since_height)
        if header is None:
            raise StoreError(f"block {s.since_height} changed the validator set: not stored")
        cert = tuple(HeaderSignature(n, sig) for n, sig in certificate(s.since_height))
        out.append(SetChange(header, cert, s))
    return out


def with_validator_sets(
    store: BlockStore,
    receipts: dict[bytes, Receipt],
    history: ValidatorHistory,
    certificate: Certificate,
) -> dict[bytes, Receipt]:
    """``receipts``, each carrying the changes up to its height (read once for all)."""
    if not receipts or not history.changes():
        return receipts
    top = max(r.header.height for r in receipts.values())
    changes = set_changes(store, history, certificate, top)
    out = {}
    for tx_id, r in receipts.items():
        mine = tuple(c for c in changes if c.header.height <= r.header.height)
        out[tx_id] = dataclasses.replace(r, validator_sets=mine) if mine else r
    return out
