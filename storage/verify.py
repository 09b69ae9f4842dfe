"""``grantchain verify``'s engine: re-check a data directory from genesis to head."""

from __future__ import annotations

import struct
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass

import lmdb

from chain.block import BlockHeader
from chain.verifier import ChainVerifier, VerifyError
from storage.blockstore import StoreError
from storage.lmdb_store import LmdbBlockStore

_DAMAGED_RECORD = (struct.error, ValueError, TypeError, KeyError, IndexError)
"""What reading a record whose bytes were changed can raise (a fixed-size record of
another length, a value of the wrong type): damage to report, never a traceback. Found
by flipping random bits of a store (``tests/node/cli/test_cli_verify.py``)."""


@dataclass(frozen=True, slots=True)
class VerifyReport:
    ok: bool
    height: int
    """The last good height."""
    head_hash: str
    txs_checked: int
    signatures_checked: int
    bad_height: int | None = None
    problem: str | None = None
    pruned_height: int = 0
    """Blocks up to it were checked from their txs' ids (their bytes were pruned)."""

    def to_json(self) -> dict[str, object]:
        return {
            "ok": self.ok,
            "height": self.height,
            "head_hash": self.head_hash,
            "txs_checked": self.txs_checked,
            "signatures_checked": self.signatures_checked,
            "bad_height": self.bad_height,
            "problem": self.problem,
            "pruned_height": self.pruned_height,
        }


def _fed(
    v: ChainVerifier, store: LmdbBlockStore, start: int
) -> Iterator[tuple[BlockHeader, list[bytes], Sequence[int]]]:
    """(header, tx ids, results) of every block from ``start`` on, each fed to ``v``
    first: with its txs end to end where it only hashes them (``iter_packed``), as
    ``Block`` values where it decodes every tx to check its signature."""
    if v.check_signatures:
        for block in store.iter_blocks(start):
            yield block.header, v.feed(block), block.results
    else:
        for header, txs, lengths, results in store.iter_packed(start):
            yield header, v.feed_packed(header, txs, lengths, results), results


def verify_store(
    store: LmdbBlockStore,
    *,
    check_signatures: bool = False,
    anchor: bytes | None = None,
    on_block: Callable[[int, int], None] | None = None,
) -> VerifyReport:
    """Check every block; ``on_block(height, txs_in_block)`` reports progress."""
    v = ChainVerifier(
        anchor=anchor if anchor is not None else store.anchor(), check_signatures=check_signatures
    )
    bad: tuple[int, str] | None = None
    index = store.index_checker()
    pruned = 0
    try:
        pruned = store.pruned_height
        for header, ids, results in store.iter_pruned():
            v.feed_pruned(header, ids, results)
            wrong = index.feed(header, ids, results)
            if wrong:
                raise VerifyError(*wrong)
            if on_block:
                on_block(header.height, len(ids))
        for header, ids, codes in _fed(v, store, pruned + 1):
            wrong = index.feed(header, ids, codes)
            if wrong:
                raise VerifyError(*wrong)
            if on_block:
                on_block(header.height, len(ids))
        wrong = index.finish(v.height)
        if wrong:
            raise VerifyError(*wrong)
        if v.height != store.height:
            bad = (
                v.height + 1,
                f"the store says its head is {store.height}, blocks end at {v.height}",
            )
        elif store.head() is not None and v.head != store.head():
            bad = (v.height, "the head header differs from the last block")
    except VerifyError as exc:
        bad = (exc.height, exc.reason)
    except StoreError as exc:
        bad = (v.height + 1, str(exc))
    except lmdb.Error as exc:  # a damaged page (MDB_CORRUPTED, MDB_PAGE_NOTFOUND, ...)
        bad = (v.height + 1, f"the store's pages are damaged: {exc}")
    except _DAMAGED_RECORD as exc:  # a record whose bytes no longer parse
        bad = (v.height + 1, f"a damaged record ({type(exc).__name__}: {exc})")
    height, head = v.height, v.head
    if bad is not None and bad[0] <= height:  # a tx index run is checked at its end
        height = bad[0] - 1
        try:
            head = store.header(height) if height else None
        except (StoreError, lmdb.Error, *_DAMAGED_RECORD):
            head = None
    head_hash = head.hash.hex() if head else ""
    return VerifyReport(
        ok=bad is None,
        height=height,
        head_hash=head_hash,
        txs_checked=v.txs_checked,
        signatures_checked=v.signatures_checked,
        bad_height=bad[0] if bad else None,
        problem=bad[1] if bad else None,
        pruned_height=pruned,
    )
