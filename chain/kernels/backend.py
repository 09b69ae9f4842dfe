"""Chooses the kernel backend: ``GRANTCHAIN_KERNELS=reference|numba`` (default numba).

Until a numba kernel exists for an operation, the reference twin serves it.
"""

from __future__ import annotations

import os
from collections.abc import Callable, Sequence
from dataclasses import dataclass

from chain.kernels import reference

BACKENDS = ("reference", "numba")


@dataclass(frozen=True, slots=True)
class Backend:
    name: str
    leaf_hashes: Callable[[Sequence[bytes]], list[bytes]]
    merkle_root: Callable[[Sequence[bytes]], bytes]
    verify_batch: Callable[[Sequence[bytes], Sequence[bytes], Sequence[bytes]], list[bool]]
    warmup: Callable[[], None]


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
    # The numba backend lands with the kernels issue; until then the reference serves.
    return REFERENCE
