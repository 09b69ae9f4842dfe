"""Block headers and blocks.

A header commits to: the previous header (hash chain), the block's txs (``tx_root``),
their result codes (``results_root``: an RFC 9162 tree over ``tx_id || result``, so a
receipt can prove a tx's result with the same proof machinery), the whole log of txs since genesis (``log_root``
and ``log_size``, RFC 9162), and the state after the block (``state_root``).

Wire form of a block: ``[header_fields, [tx_bytes, ...], [result, ...]]``; the header
hash is SHA-256 of the canonical header array (its first byte is an msgpack array
marker, so it can never collide with a 0x00 leaf or 0x01 node preimage).
"""

from __future__ import annotations

import contextlib
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

import msgpack
import numpy as np

from chain import codec, limits, merkle
from chain.hashing import leaf_hashes, sha256
from chain.kernels import backend

ZERO_HASH = b"\x00" * 32
_SCALARS = (int, str, bytes)


class BlockError(ValueError):
    """A block or header is malformed or inconsistent; the message says what."""


@dataclass(frozen=True, slots=True)
class BlockHeader:
    version: int
    chain_id: str
    height: int
    prev_hash: bytes
    tx_root: bytes
    tx_count: int
    log_root: bytes
    log_size: int
    results_root: bytes
    state_root: bytes
    timestamp_ms: int
    proposer: str
    round: int
    """Consensus metadata: the Raft term or the PBFT view the block was proposed in."""
    _encoded: bytes | None = field(default=None, init=False, repr=False, compare=False)
    """``to_bytes``, kept once computed (a header never changes): its hash and its
    encoding are asked for again and again (receipts, certificates, the stream)."""

    def fields(self) -> list[Any]:
        return [
            self.version,
            self.chain_id,
            self.height,
            self.prev_hash,
            self.tx_root,
            self.tx_count,
            self.log_root,
            self.log_size,
            self.results_root,
            self.state_root,
            self.timestamp_ms,
            self.proposer,
            self.round,
        ]

    def to_bytes(self) -> bytes:
        raw = self._encoded
        if raw is None:
            raw = codec.encode(self.fields())
            object.__setattr__(self, "_encoded", raw)
        return raw

    @property
    def hash(self) -> bytes:
        return sha256(self.to_bytes())

    @classmethod
    def from_fields(cls, fields: Any) -> BlockHeader:
        if not isinstance(fields, list) or len(fields) != 13:
            raise BlockError("a header is an array of 13 fields")
        h = cls(*fields)
        h.check()
        return h

    @classmethod
    def from_bytes(cls, raw: bytes) -> BlockHeader:
        try:
            return cls.from_fields(codec.decode(raw, max_bytes=4096))
        except codec.DecodeError as exc:
            raise BlockError(f"header encoding: {exc}") from None

    def check(self) -> None:
        if self.version != limits.HEADER_VERSION:
            raise BlockError(f"unknown header version {self.version!r}")
        for name in ("height", "tx_count", "log_size", "timestamp_ms", "round"):
            v = getattr(self, name)
            if not isinstance(v, int) or isinstance(v, bool) or not 0 <= v < 2**63:
                raise BlockError(f"header {name} must be a non-negative integer")
        for name in ("prev_hash", "tx_root", "log_root", "results_root", "state_root"):
            v = getattr(self, name)
            if not isinstance(v, bytes) or len(v) != limits.HASH_BYTES:
                raise BlockError(f"header {name} must be {limits.HASH_BYTES} bytes")
        if not isinstance(self.chain_id, str) or not self.chain_id:
            raise BlockError("header chain_id must be a non-empty str")
        if not isinstance(self.proposer, str) or len(self.proposer) > limits.NODE_ID_CHARS_MAX:
            raise BlockError("header proposer must be a node id str")
        if self.tx_count > limits.BLOCK_TXS_MAX:
            raise BlockError(f"tx_count {self.tx_count} is over {limits.BLOCK_TXS_MAX}")


def result_leaf(tx_id: bytes, result: int) -> bytes:
    """The results tree's leaf data: ``tx_id || result`` (a 2-byte big-endian code)."""
    if not isinstance(result, int) or isinstance(result, bool) or not 0 <= result < 2**16:
        raise BlockError(f"result code {result!r} is not in [0, 65536)")
    return bytes(tx_id) + result.to_bytes(2, "big")


_CODES = [r.to_bytes(2, "big") for r in range(64)]
"""The 2-byte forms of the result codes in use, so a block's leaves are one concatenation
each (a hot path: it runs when a block is built and again when it is checked)."""


_RESULT_LEAF_BYTES = limits.HASH_BYTES + 2


def results_root(tx_ids: Sequence[bytes], results: Sequence[int]) -> bytes:
    n = len(tx_ids)
    if (
        n
        and len(results) == n
        and set(map(type, results)) == {int}  # no bool, no float (a C-speed pass)
        and set(map(len, tx_ids)) == {limits.HASH_BYTES}
    ):
        # The leaves laid end to end by numpy and hashed where they lie (a hot path: it
        # runs when a block is built and again when it is checked).
        with contextlib.suppress(OverflowError):  # a code past 2**63: refused below
            values = np.fromiter(results, dtype=np.int64, count=n)
            if int(values.min()) >= 0 and int(values.max()) < 2**16:
                rows = np.empty((n, _RESULT_LEAF_BYTES), dtype=np.uint8)
                rows[:, : limits.HASH_BYTES] = np.frombuffer(
                    b"".join(tx_ids), dtype=np.uint8
                ).reshape(n, limits.HASH_BYTES)
                rows[:, limits.HASH_BYTES :] = values.astype(">u2").view(np.uint8).reshape(n, 2)
                return backend.active().fixed_leaves_root(rows.tobytes(), _RESULT_LEAF_BYTES)
    codes = _CODES
    leaves = [
        t + codes[r] if type(r) is int and 0 <= r < 64 else result_leaf(t, r)
        for t, r in zip(tx_ids, results, strict=True)
    ]
    return merkle.root(leaf_hashes(leaves))


@dataclass(frozen=True, slots=True)
class Block:
    header: BlockHeader
    txs: tuple[bytes, ...]
    results: tuple[int, ...]
    _checked_ids: tuple[bytes, ...] | None = field(
        default=None, init=False, repr=False, compare=False
    )
    """The ids ``check_body`` found, once it has passed: the block is immutable, so a
    follower's ledger and its store check the body once between them."""
    _log_extension: (
        tuple[merkle.Frontier, list[tuple[int, int, list[bytes]]], merkle.Frontier] | None
    ) = field(default=None, init=False, repr=False, compare=False)
    """(frontier before, ``extend_levels`` of the ids, frontier after), as
    ``chain.assemble`` computed them: a store appending the block on the same frontier
    takes them instead of hashing the log's new nodes again (``log_extension``)."""
    _body_arrays: Any = field(default=None, init=False, repr=False, compare=False)
    """``chain.kernels.blockroots.BodyArrays`` of this block's txs and results, where
    ``chain.assemble`` read them so (``body_arrays``)."""

    def to_bytes(self) -> bytes:
        fields, txs, results = self.header.fields(), list(self.txs), list(self.results)
        if (
            all(type(v) in _SCALARS for v in fields)
            and all(type(t) is bytes for t in txs)
            and all(type(r) is int for r in results)
        ):
            # The common case, without the general encoder's walk of thousands of items:
            # a byte string, a str and an int in range have one encoding, the packer's.
            with contextlib.suppress(OverflowError):  # an int out of range: say so below
                packed: bytes = msgpack.packb([fields, txs, results], use_bin_type=True)
                return packed
        return codec.encode([fields, txs, results])

    @classmethod
    def from_bytes(cls, raw: bytes) -> Block:
        try:
            value = codec.decode(raw, max_bytes=limits.BLOCK_BYTES_MAX)
        except codec.DecodeError as exc:
            raise BlockError(f"block encoding: {exc}") from None
        if not isinstance(value, list) or len(value) != 3:
            raise BlockError("a block is [header, txs, results]")
        header = BlockHeader.from_fields(value[0])
        txs, results = value[1], value[2]
        if not isinstance(txs, list) or not all(isinstance(t, bytes) for t in txs):
            raise BlockError("block txs must be a list of byte strings")
        if not isinstance(results, list) or not all(
            isinstance(r, int) and not isinstance(r, bool) and 0 <= r < 2**16 for r in results
        ):
            raise BlockError("block results must be a list of result codes")
        return cls(header, tuple(txs), tuple(results))

    def _remember_assembly(
        self,
        checked_ids: Sequence[bytes] | None,
        before: merkle.Frontier,
        levels: list[tuple[int, int, list[bytes]]],
        after: merkle.Frontier,
        arrays: Any = None,
    ) -> None:
        """For ``chain.assemble`` only, which built this block's header from these values:
        ``checked_ids`` (the leaf hashes it computed itself; None if its caller gave them,
        so ``check_body`` still derives them), the log's extension by them, and the body's
        arrays its kernel read (``body_arrays``)."""
        if checked_ids is not None:
            object.__setattr__(self, "_checked_ids", tuple(checked_ids))
        object.__setattr__(self, "_log_extension", (before.copy(), levels, after.copy()))
        object.__setattr__(self, "_body_arrays", arrays)

    def body_arrays(self) -> Any:
        """``chain.kernels.blockroots.BodyArrays`` of exactly this block's txs and results
        (the txs end to end, their lengths, the result codes) where ``chain.assemble``
        built it with the kernel, else None. The block is immutable, so they stay its."""
        return self._body_arrays

    def log_extension(
        self, frontier: merkle.Frontier
    ) -> tuple[list[tuple[int, int, list[bytes]]], merkle.Frontier] | None:
        """``(frontier.extend_levels(ids), the frontier after)`` for this block's ids if
        ``chain.assemble`` built this block on a frontier equal to ``frontier``, else None.
        Sound only once ``check_body`` has passed: the ids are then the ones the header
        commits to (``tx_root``), and the extension is a function of the ids alone."""
        known = self._log_extension
        if known is None or known[0] != frontier:
            return None
        return known[1], known[2].copy()

    def tx_ids(self) -> list[bytes]:
        return leaf_hashes(self.txs)

    def check_body(self) -> list[bytes]:
        """Check the body against the header; return the tx ids (leaf hashes)."""
        h = self.header
        if not len(self.txs) == len(self.results) == h.tx_count:
            raise BlockError(
                f"header says {h.tx_count} txs, body has {len(self.txs)} txs "
                f"and {len(self.results)} results"
            )
        if self._checked_ids is not None:
            return list(self._checked_ids)
        ids = self.tx_ids()
        if merkle.root(ids) != h.tx_root:
            raise BlockError("tx_root does not match the block's txs")
        if results_root(ids, self.results) != h.results_root:
            raise BlockError("results_root does not match the block's results")
        object.__setattr__(self, "_checked_ids", tuple(ids))
        return ids
