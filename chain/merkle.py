"""The RFC 9162 (Certificate Transparency v2) Merkle tree over every tx since genesis.

Stored trees keep the hash of every *perfect* subtree — node ``(level, index)`` covers
leaves ``[index * 2**level, (index + 1) * 2**level)`` — so any root, inclusion proof or
consistency proof needs only O(log n) node reads: each proof has at most one "ragged"
right-edge subtree, and that one folds out of O(log n) perfect ones.

Verification follows RFC 9162 §2.1.3.2 and §2.1.4.2 and the semantics of the
transparency-dev test vectors: a consistency proof from size 0 is an error, every hash
is 32 bytes, and a failure of any kind raises ``ProofError``, never another exception.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from itertools import repeat
from typing import Any

from chain import limits
from chain.hashing import EMPTY_ROOT, node_hash
from chain.kernels import backend
from chain.kernels.hasharray import split_hashes

NodeGetter = Callable[[int, int], bytes]
"""``get_node(level, index)``: the hash of a perfect subtree (level 0 = leaf hash)."""

INDEX_MAX = 2**64 - 1


class ProofError(Exception):
    """A Merkle proof does not verify, or its inputs are malformed."""


def root(leaf_hashes: Sequence[bytes]) -> bytes:
    """RFC 9162 ``MTH`` of the leaf hashes (on the kernel backend)."""
    return backend.active().merkle_root(leaf_hashes)


def _split(n: int) -> int:
    """The largest power of two strictly less than ``n`` (n >= 2)."""
    return 1 << ((n - 1).bit_length() - 1)


def subtree_root(get_node: NodeGetter, start: int, end: int) -> bytes:
    """``MTH(D[start:end])`` where ``start`` is aligned to the subtree's left split."""
    size = end - start
    if size <= 0:
        return EMPTY_ROOT
    if size & (size - 1) == 0 and start % size == 0:
        level = size.bit_length() - 1
        return get_node(level, start >> level)
    k = _split(size)
    level = k.bit_length() - 1
    return node_hash(get_node(level, start >> level), subtree_root(get_node, start + k, end))


def root_at(get_node: NodeGetter, size: int) -> bytes:
    return subtree_root(get_node, 0, size)


def inclusion_proof(get_node: NodeGetter, index: int, size: int) -> list[bytes]:
    """RFC 9162 §2.1.3.1 ``PATH(index, D[0:size])``."""
    if not 0 <= index < size:
        raise ProofError(f"leaf index {index} is not below tree size {size}")
    proof: list[bytes] = []
    start, end = 0, size
    while end - start > 1:
        k = _split(end - start)
        if index - start < k:
            proof.append(subtree_root(get_node, start + k, end))
            end = start + k
        else:
            proof.append(subtree_root(get_node, start, start + k))
            start += k
    proof.reverse()
    return proof


def consistency_proof(get_node: NodeGetter, size1: int, size2: int) -> list[bytes]:
    """RFC 9162 §2.1.4.1 ``PROOF(size1, D[0:size2])``."""
    if not 0 < size1 <= size2:
        raise ProofError(f"no consistency proof from size {size1} to size {size2}")
    proof: list[bytes] = []
    m, start, end, complete = size1, 0, size2, True
    while True:
        n = end - start
        if m == n:
            if not complete:
                proof.append(subtree_root(get_node, start, end))
            break
        k = _split(n)
        if m <= k:
            proof.append(subtree_root(get_node, start + k, end))
            end = start + k
        else:
            proof.append(subtree_root(get_node, start, start + k))
            m, start, complete = m - k, start + k, False
    proof.reverse()
    return proof


def _hash_arg(value: Any, what: str) -> bytes:
    if not isinstance(value, bytes) or len(value) != limits.HASH_BYTES:
        raise ProofError(f"{what} must be {limits.HASH_BYTES} bytes")
    return value


def _size_arg(value: Any, what: str) -> int:
    if not isinstance(value, int) or isinstance(value, bool) or not 0 <= value <= INDEX_MAX:
        raise ProofError(f"{what} must be an integer in [0, 2**64)")
    return value


def _bytes_arg(value: Any, what: str) -> bytes:
    # Roots are only compared, never hashed: like transparency-dev, any length is compared.
    if not isinstance(value, bytes):
        raise ProofError(f"{what} must be bytes")
    return value


def _proof_arg(proof: Any) -> list[bytes]:
    if proof is None:
        return []
    if not isinstance(proof, list | tuple) or len(proof) > limits.PROOF_HASHES_MAX:
        raise ProofError(f"proof must be a list of at most {limits.PROOF_HASHES_MAX} hashes")
    return [_hash_arg(p, "each proof hash") for p in proof]


def verify_inclusion(leaf_hash: Any, index: Any, tree_size: Any, proof: Any, root: Any) -> None:
    """RFC 9162 §2.1.3.2; returns None or raises ``ProofError``."""
    leaf_hash = _hash_arg(leaf_hash, "leaf hash")
    index = _size_arg(index, "leaf index")
    tree_size = _size_arg(tree_size, "tree size")
    path = _proof_arg(proof)
    root = _bytes_arg(root, "root")
    if index >= tree_size:
        raise ProofError(f"leaf index {index} is not below tree size {tree_size}")
    fn, sn, r = index, tree_size - 1, leaf_hash
    for p in path:
        if sn == 0:
            raise ProofError("inclusion proof is too long")
        if fn & 1 or fn == sn:
            r = node_hash(p, r)
            if not fn & 1:
                while fn and not fn & 1:
                    fn >>= 1
                    sn >>= 1
        else:
            r = node_hash(r, p)
        fn >>= 1
        sn >>= 1
    if sn != 0:
        raise ProofError("inclusion proof is too short")
    if r != root:
        raise ProofError("inclusion proof does not lead to the root")


def verify_consistency(size1: Any, size2: Any, proof: Any, root1: Any, root2: Any) -> None:
    """RFC 9162 §2.1.4.2; returns None or raises ``ProofError``."""
    size1 = _size_arg(size1, "size1")
    size2 = _size_arg(size2, "size2")
    path = _proof_arg(proof)
    root1 = _bytes_arg(root1, "root1")
    root2 = _bytes_arg(root2, "root2")
    if size1 > size2:
        raise ProofError(f"size1 {size1} is greater than size2 {size2}")
    if size1 == 0:
        raise ProofError("a consistency proof from an empty tree proves nothing")
    if size1 == size2:
        if path:
            raise ProofError("sizes are equal but the proof is not empty")
        if root1 != root2:
            raise ProofError("sizes are equal but the roots differ")
        return
    if not path:
        raise ProofError("consistency proof is empty")
    if size1 & (size1 - 1) == 0:
        path = [root1, *path]
    fn, sn = size1 - 1, size2 - 1
    while fn & 1:
        fn >>= 1
        sn >>= 1
    fr = sr = path[0]
    for c in path[1:]:
        if sn == 0:
            raise ProofError("consistency proof is too long")
        if fn & 1 or fn == sn:
            fr = node_hash(c, fr)
            sr = node_hash(c, sr)
            if not fn & 1:
                while fn and not fn & 1:
                    fn >>= 1
                    sn >>= 1
        else:
            sr = node_hash(sr, c)
        fn >>= 1
        sn >>= 1
    if sn != 0:
        raise ProofError("consistency proof is too short")
    if fr != root1:
        raise ProofError("consistency proof does not lead to root1")
    if sr != root2:
        raise ProofError("consistency proof does not lead to root2")


class Frontier:
    """The right edge of a growing tree: the perfect subtrees whose sizes are the set bits
    of ``size``, largest first. Appending a leaf returns the perfect nodes it completes,
    which is what a store must persist to answer proofs later."""

    __slots__ = ("_nodes", "size")

    def __init__(self, size: int = 0, nodes: Sequence[bytes] = ()) -> None:
        if len(nodes) != bin(size).count("1"):
            raise ValueError(f"a frontier of size {size} has {bin(size).count('1')} nodes")
        self.size = size
        self._nodes = list(nodes)

    @classmethod
    def load(cls, get_node: NodeGetter, size: int) -> Frontier:
        nodes = []
        start = 0
        for level in range(size.bit_length() - 1, -1, -1):
            if size >> level & 1:
                nodes.append(get_node(level, start >> level))
                start += 1 << level
        return cls(size, nodes)

    def append(self, leaf: bytes) -> list[tuple[int, int, bytes]]:
        """Add one leaf; return the completed nodes ``(level, index, hash)``, leaf first."""
        index = self.size
        made = [(0, index, leaf)]
        h, level, idx = leaf, 0, index
        while idx & 1:
            h = node_hash(self._nodes.pop(), h)
            level += 1
            idx >>= 1
            made.append((level, idx, h))
        self._nodes.append(h)
        self.size += 1
        return made

    def extend(self, leaves: Sequence[bytes]) -> list[tuple[int, int, bytes]]:
        """Add many leaves; return every completed node, level by level. Same nodes and
        root as ``append`` in a loop, with one list pass per level instead of per leaf."""
        made: list[tuple[int, int, bytes]] = []
        for level, start, hashes in self.extend_levels(leaves):  # tuples built in C
            made.extend(zip(repeat(level), range(start, start + len(hashes)), hashes))
        return made

    def extend_levels(
        self, leaves: Sequence[bytes], *, joined: bytes | None = None
    ) -> list[tuple[int, int, list[bytes]]]:
        """``extend``, with the completed nodes grouped by level: ``(level, index of the
        first, hashes)``, level 0 (the leaves) first. Where the kernel backend has
        ``log_extend``, every level is hashed in one call that frees the GIL; else each
        level's pairs are hashed in one call to the backend's ``node_hashes``.

        ``joined``: the leaves end to end, every one 32 bytes, where the caller has them
        (``chain.assemble``: the ids as its kernel gave them), so they are neither
        measured nor joined again here."""
        made: list[tuple[int, int, list[bytes]]] = []
        new_low: list[bytes] = []  # new frontier nodes, lowest level first
        items = list(leaves)
        start = self.size  # index of items[0] within its level
        level = 0
        kernel = backend.active().log_extend
        if joined is not None:
            if len(joined) != limits.HASH_BYTES * len(items):
                raise ValueError(f"{len(joined)} joined bytes for {len(items)} leaf hashes")
            if kernel is not None and items and start + len(items) < 1 << 62:
                return self._extend_in_one_call(kernel, items, joined)
        # Leaves of other sizes (never a tx id) are hashed pair by pair, as ``append`` does.
        by_level = not items or set(map(len, items)) == {limits.HASH_BYTES}
        if kernel is not None and by_level and items and start + len(items) < 1 << 62:
            return self._extend_in_one_call(kernel, items, b"".join(items))
        node_hashes = backend.active().node_hashes
        while items:
            made.append((level, start, items))
            if start & 1:  # items[0] is a right child; its left sibling is on the frontier
                items = [self._nodes.pop(), *items]
                start -= 1
            if len(items) & 1:  # the last one has no sibling yet: it joins the frontier
                new_low.append(items[-1])
                items = items[:-1]
            if by_level:
                items = split_hashes(node_hashes(b"".join(items)))
            else:
                items = [node_hash(items[i], items[i + 1]) for i in range(0, len(items), 2)]
            start >>= 1
            level += 1
        self._nodes.extend(reversed(new_low))
        self.size += len(leaves)
        return made

    def _extend_in_one_call(
        self,
        kernel: Callable[[bytes, int, bytes], tuple[bytes, list[int], bytes]],
        items: list[bytes],
        joined: bytes,
    ) -> list[tuple[int, int, list[bytes]]]:
        """``extend_levels`` of the 32-byte ``items`` (at least one; ``joined`` end to end)
        by ``kernel`` (``Backend.log_extend``): every level hashed in one call that frees
        the GIL, the completed nodes split into ``bytes`` once, each level a slice of them."""
        start = self.size
        nodes, ends, after = kernel(b"".join(self._nodes), start, joined)
        hashes = split_hashes(nodes)
        made = [(0, start, items)]
        made.extend(
            (level, start >> level, hashes[ends[level - 1] : ends[level]])
            for level in range(1, len(ends))
        )
        self._nodes = split_hashes(after)
        self.size = start + len(items)
        return made

    def root(self) -> bytes:
        if not self._nodes:
            return EMPTY_ROOT
        h = self._nodes[-1]
        for left in reversed(self._nodes[:-1]):
            h = node_hash(left, h)
        return h

    def copy(self) -> Frontier:
        return Frontier(self.size, self._nodes)

    def set_to(self, other: Frontier) -> None:
        """Make this frontier equal to ``other`` (which is left as it is)."""
        self.size = other.size
        self._nodes = list(other._nodes)

    def __eq__(self, other: object) -> bool:
        if not isinstance(other, Frontier):
            return NotImplemented
        return self.size == other.size and self._nodes == other._nodes

    __hash__ = None  # type: ignore[assignment]  # mutable


class MemoryTree:
    """Every perfect node in memory: proofs for tests, the in-memory store and receipts."""

    def __init__(self) -> None:
        self._levels: list[list[bytes]] = [[]]
        self._frontier = Frontier()

    @property
    def size(self) -> int:
        return self._frontier.size

    def append(self, leaf: bytes) -> None:
        for level, _, h in self._frontier.append(leaf):
            if level == len(self._levels):
                self._levels.append([])
            self._levels[level].append(h)

    def extend(self, leaves: Sequence[bytes]) -> None:
        for leaf in leaves:
            self.append(leaf)

    def get_node(self, level: int, index: int) -> bytes:
        return self._levels[level][index]

    def root(self, size: int | None = None) -> bytes:
        if size is None or size == self.size:
            return self._frontier.root()
        return root_at(self.get_node, size)

    def inclusion_proof(self, index: int, size: int | None = None) -> list[bytes]:
        return inclusion_proof(self.get_node, index, self.size if size is None else size)

    def consistency_proof(self, size1: int, size2: int | None = None) -> list[bytes]:
        return consistency_proof(self.get_node, size1, self.size if size2 is None else size2)
