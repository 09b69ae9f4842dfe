"""Builds receipts from a store: the proofs are O(log n) reads plus one block read."""

from __future__ import annotations

from chain import merkle
from chain.block import result_leaf
from chain.hashing import leaf_hash, leaf_hashes
from chain.receipt import HeaderSignature, Receipt
from storage.blockstore import BlockStore, StoreError


def build_receipt(store: BlockStore, tx_id: bytes) -> Receipt | None:
    """The receipt of a committed tx, with the certificate stored so far; None if the tx
    is not in the chain."""
    found = store.tx(tx_id)
    if found is None:
        return None
    raw, loc = found
    block = store.block(loc.height)
    if block is None:
        raise StoreError(f"tx {tx_id.hex()} is indexed at block {loc.height}, which is missing")
    h = block.header
    ids = leaf_hashes(block.txs)
    tx_tree = merkle.MemoryTree()
    tx_tree.extend(ids)
    result_tree = merkle.MemoryTree()
    result_tree.extend(
        [leaf_hash(result_leaf(t, r)) for t, r in zip(ids, block.results, strict=True)]
    )
    return Receipt(
        tx=raw,
        header=h,
        position=loc.position,
        log_index=loc.log_index,
        result=loc.result,
        tx_proof=tuple(tx_tree.inclusion_proof(loc.position)),
        result_proof=tuple(result_tree.inclusion_proof(loc.position)),
        log_proof=tuple(store.inclusion_proof(loc.log_index, h.log_size)),
        certificate=tuple(HeaderSignature(n, s) for n, s in store.certificate(loc.height)),
    )
