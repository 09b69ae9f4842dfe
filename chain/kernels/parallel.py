"""Splitting kernel work over an executor that the caller owns.

Why here and pure: the kernels release the GIL (``nogil=True``), so threads scale them;
but ``chain`` must not create threads, so these functions take any object with
``map(fn, *iterables)`` (a ``concurrent.futures.ThreadPoolExecutor`` in the node and
the benchmarks) and only decide how to cut the work so the answer is unchanged.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Iterator, Sequence
from typing import Any, Protocol

from chain.hashing import node_hash


class Executor(Protocol):
    def map(self, fn: Callable[..., Any], *iterables: Iterable[Any]) -> Iterator[Any]: ...


def _bounds(n: int, parts: int) -> list[tuple[int, int]]:
    parts = max(1, min(parts, n))
    return [(n * i // parts, n * (i + 1) // parts) for i in range(parts)]


def verify_batch(
    executor: Executor,
    verify: Callable[[Sequence[bytes], Sequence[bytes], Sequence[bytes]], list[bool]],
    public_keys: Sequence[bytes],
    messages: Sequence[bytes],
    signatures: Sequence[bytes],
    parts: int,
) -> list[bool]:
    """``verify`` on ``parts`` contiguous chunks at once; verdicts in input order."""
    if not len(public_keys) == len(messages) == len(signatures):
        raise ValueError("verify_batch needs equal lengths")
    bounds = _bounds(len(public_keys), parts)
    chunks = executor.map(
        lambda b: verify(public_keys[b[0] : b[1]], messages[b[0] : b[1]], signatures[b[0] : b[1]]),
        bounds,
    )
    return [v for chunk in chunks for v in chunk]


def leaf_hashes(
    executor: Executor,
    hash_leaves: Callable[[Sequence[bytes]], list[bytes]],
    datas: Sequence[bytes],
    parts: int,
) -> list[bytes]:
    bounds = _bounds(len(datas), parts)
    chunks = executor.map(lambda b: hash_leaves(datas[b[0] : b[1]]), bounds)
    return [h for chunk in chunks for h in chunk]


def _split_rfc9162(start: int, end: int, parts: int) -> list[tuple[int, int]]:
    """Cut [start, end) into at most ``parts`` subtrees along RFC 9162's own splits (the
    largest power of two below the size), so their roots combine into the same tree."""
    if parts <= 1 or end - start < 2:
        return [(start, end)]
    k = 1 << ((end - start - 1).bit_length() - 1)
    left = parts // 2
    return _split_rfc9162(start, start + k, left) + _split_rfc9162(start + k, end, parts - left)


def merkle_root(
    executor: Executor,
    root: Callable[[Sequence[bytes]], bytes],
    leaf_hashes: Sequence[bytes],
    parts: int,
) -> bytes:
    """RFC 9162 root with ``parts`` subtrees hashed at once (a power of two is best)."""
    if len(leaf_hashes) < 2 or parts <= 1:
        return root(leaf_hashes)
    ranges = _split_rfc9162(0, len(leaf_hashes), parts)
    roots = list(executor.map(lambda r: root(leaf_hashes[r[0] : r[1]]), ranges))
    return _combine(ranges, roots, 0, len(leaf_hashes))


def _combine(ranges: list[tuple[int, int]], roots: list[bytes], start: int, end: int) -> bytes:
    for (a, b), h in zip(ranges, roots, strict=True):
        if (a, b) == (start, end):
            return h
    k = 1 << ((end - start - 1).bit_length() - 1)
    return node_hash(
        _combine(ranges, roots, start, start + k), _combine(ranges, roots, start + k, end)
    )
