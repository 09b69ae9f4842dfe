"""Builds receipts from a store: the proofs are O(log n) reads plus one block read."""

from __future__ import annotations

from collections.abc import Callable, Sequence

from chain import merkle
from chain.block import result_leaf
from chain.hashing import leaf_hashes
from chain.receipt import HeaderSignature, Receipt
from storage.blockstore import BlockStore, StoreError, TxLocation


def build_receipt(
    store: BlockStore,
    tx_id: bytes,
    certificate: Callable[[int], list[tuple[str, bytes]]] | None = None,
) -> Receipt | None:
    """The receipt of a committed tx; None if the tx is not in the chain. The certificate
    is the stored one unless ``certificate(height)`` supplies it."""
    return build_receipts(store, [tx_id], certificate).get(tx_id)


def build_receipts(
    store: BlockStore,
    tx_ids: Sequence[bytes],
    certificate: Callable[[int], list[tuple[str, bytes]]] | None = None,
) -> dict[bytes, Receipt]:
    """Receipts of many txs, reading each block and building its trees once."""
    by_height: dict[int, list[tuple[bytes, bytes, TxLocation]]] = {}
    for tx_id in tx_ids:
        found = store.tx(tx_id)
        if found is not None:
            raw, loc = found
            by_height.setdefault(loc.height, []).append((tx_id, raw, loc))
    out: dict[bytes, Receipt] = {}
    for height, items in sorted(by_height.items()):
        block = store.block(height)
        if block is None:
            raise StoreError(f"txs are indexed at block {height}, which is missing")
        h = block.header
        ids = leaf_hashes(block.txs)
        tx_tree = merkle.MemoryTree()
        tx_tree.extend(ids)
        result_tree = merkle.MemoryTree()
        result_tree.extend(
            leaf_hashes([result_leaf(t, r) for t, r in zip(ids, block.results, strict=True)])
        )
        cert = tuple(HeaderSignature(n, s) for n, s in (certificate or store.certificate)(height))
        log_proofs = store.inclusion_proofs([loc.log_index for _, _, loc in items], h.log_size)
        for (tx_id, raw, loc), log_proof in zip(items, log_proofs, strict=True):
            out[tx_id] = Receipt(
                tx=raw,
                header=h,
                position=loc.position,
                log_index=loc.log_index,
                result=loc.result,
                tx_proof=tuple(tx_tree.inclusion_proof(loc.position)),
                result_proof=tuple(result_tree.inclusion_proof(loc.position)),
                log_proof=tuple(log_proof),
                certificate=cert,
            )
    return out
