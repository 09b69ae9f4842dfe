"""Chooses the kernel backend: ``GRANTCHAIN_KERNELS=reference|numba`` (default numba).

The numba backend is imported lazily: importing it compiles its kernels (or loads them
from numba's cache), which a process that forces the reference should not pay for.
"""

from __future__ import annotations

import os
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any

from chain.kernels import reference

BACKENDS = ("reference", "numba")


@dataclass(frozen=True, slots=True)
class Backend:
    name: str
    leaf_hashes: Callable[[Sequence[bytes]], list[bytes]]
    merkle_root: Callable[[Sequence[bytes]], bytes]
    verify_batch: Callable[[Sequence[bytes], Sequence[bytes], Sequence[bytes]], list[bool]]
    warmup: Callable[[], None]
    register_keys: Callable[[Sequence[bytes]], None] = reference.register_keys
    """Keys about to sign (registered signers, validators): the numba backend builds
    their verification tables now rather than on first use. Verdicts never depend on it."""
    node_hashes: Callable[[bytes], bytes] = reference.node_hashes
    """RFC 9162 node hashes of many (left, right) pairs of 32-byte hashes laid end to end
    (``Frontier.extend`` hashes a level at a time with it)."""
    fixed_leaves_root: Callable[[bytes, int], bytes] = reference.fixed_leaves_root
    """RFC 9162 root over the leaf hashes of fixed-size records laid end to end (a block's
    results tree: ``tx_id || result`` leaves of 34 bytes)."""
    canonical_msgpack: Callable[[Sequence[bytes]], list[bool]] | None = None
    """Screens a batch for ``chain.batch_decode.decode_many`` (verdicts of
    ``reference.canonical_msgpack``); None: decode each input in full instead."""
    body_roots: (
        Callable[[Sequence[bytes], Sequence[int]], tuple[bytes, bytes, bytes, Any] | None] | None
    ) = None
    """A block's (joined tx ids, tx root, results root, ``blockroots.BodyArrays``) in one
    call that frees the GIL, or None where it does not apply (``blockroots.body_roots``);
    None: ``chain.assemble`` hashes step by step."""
    packed_roots: (
        Callable[[bytes, Any, Sequence[int]], tuple[bytes, bytes, bytes] | None] | None
    ) = None
    """``body_roots``' first three of txs given end to end with their lengths
    (``blockroots.packed_roots``: ``verify`` reads them so); None: the verifier splits
    the txs and checks the block as ``Block.check_body`` does."""
    log_extend: Callable[[bytes, int, bytes], tuple[bytes, list[int], bytes]] | None = None
    """``(frontier nodes joined, size, leaves joined)`` to ``(completed nodes of level 1 and
    up joined, per-level end offsets, new frontier joined)`` in one call that frees the GIL
    (``logextend.extend``); None: ``Frontier.extend_levels`` hashes a level at a time."""
    sorted_run: Callable[[bytes, bytes, int], Any] | None = None
    """A tx index run's sorted entries from joined ids and locations (``txrun``, byte for
    byte ``storage.txruns.entries``); None: the store sorts them in numpy."""
    sorted_rows: Callable[[Any], Any] | None = None
    """Entry rows sorted (``txrun``; ``storage.txruns.merge`` of their parts); None: numpy."""
    has_repeat: Callable[[bytes], bool] | None = None
    """Whether 32-byte ids laid end to end hold one twice (``txrun``); None: a set of them."""
    run_filter_bits: Callable[[bytes, int], bytes] | None = None
    """A run's filter bits (``txrun``; ``storage.txfilter.TxFilter.bits_of_joined``)."""
    filter_candidates: Callable[[bytes, Any, int, int], tuple[Any, Any]] | None = None
    """The (id position, column) pairs a run filter table may hold (``txrun``; the pairs
    of ``storage.txfilter.TxFilter.candidate_pairs``); None: numpy."""
    pack_txs: Callable[..., tuple[bytes, list[int], list[int]] | None] | None = None
    """A block's txs packed into the store's page-sized values (``txpack.pack(txs, room,
    joined=None, lengths=None)``, byte for byte ``storage.lmdb_store._txs_items_py``);
    None: the store packs them in Python."""
    unpack_txs: Callable[[Sequence[Any], int], tuple[bytes, Any] | None] | None = None
    """A block's store values read back as its txs end to end and their lengths
    (``txpack.unpack``); None: the store splits them into ``bytes`` in Python."""
    id_keys: Callable[[], Any] | None = None
    """A new ``txrun.IdKeys``: the store's in-memory duplicate check without the GIL;
    None: the store probes its dicts alone."""


REFERENCE = Backend(
    name="reference",
    leaf_hashes=reference.leaf_hashes,
    merkle_root=reference.merkle_root,
    verify_batch=reference.verify_batch,
    warmup=reference.warmup,
)


def requested_name() -> str:
    name = os.environ.get("GRANTCHAIN_KERNELS", "numba").strip().lower() or "numba"
    if name not in BACKENDS:
        raise ValueError(f"GRANTCHAIN_KERNELS={name!r}: expected one of {', '.join(BACKENDS)}")
    return name


_active: Backend | None = None


def active() -> Backend:
    """The backend in use (chosen once per process from the environment)."""
    global _active
    if _active is None:
        _active = load(requested_name())
    return _active


def load(name: str) -> Backend:
    if name == "reference":
        return REFERENCE
    if name == "numba":
        from chain.kernels import blockroots, logextend, numba_backend, txpack, txrun

        return Backend(
            name="numba",
            leaf_hashes=numba_backend.leaf_hashes,
            merkle_root=numba_backend.merkle_root,
            verify_batch=numba_backend.verify_batch,
            warmup=numba_backend.warmup,
            register_keys=numba_backend.register_keys,
            canonical_msgpack=numba_backend.canonical_msgpack,
            node_hashes=numba_backend.node_hashes,
            fixed_leaves_root=numba_backend.fixed_leaves_root,
            body_roots=blockroots.body_roots,
            packed_roots=blockroots.packed_roots,
            log_extend=logextend.extend,
            sorted_run=txrun.sorted_entries,
            sorted_rows=txrun.sorted_rows,
            has_repeat=txrun.has_repeat,
            run_filter_bits=txrun.filter_bits,
            filter_candidates=txrun.filter_candidates,
            id_keys=txrun.IdKeys,
            pack_txs=txpack.pack,
            unpack_txs=txpack.unpack,
        )
    raise ValueError(f"unknown kernel backend {name!r}: expected one of {', '.join(BACKENDS)}")
