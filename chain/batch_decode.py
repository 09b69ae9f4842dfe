"""Decoding a batch of canonical values, screened by the active kernel backend.

Apart from ``chain.codec`` because it sits above the kernels: the reference backend's
screen is ``codec.decode`` itself, so ``codec`` cannot import the backends.
"""

from __future__ import annotations

from collections.abc import Sequence

import msgpack

from chain import codec
from chain.kernels import backend


def decode_many(datas: Sequence[bytes], *, max_bytes: int) -> list[codec.Value | codec.DecodeError]:
    """``codec.decode`` of each input, with the ``DecodeError`` in the place of one that fails.

    On the numba backend a kernel first screens the whole batch
    (``chain.kernels.msgpack_canon``, the same verdicts as ``decode``); an input it finds
    canonical is only unpacked, skipping the general checks and the re-encoding, which
    cost more than the unpacking itself. Every other input goes through ``codec.decode``."""
    screen = backend.active().canonical_msgpack
    fast = screen(datas) if screen is not None and datas else [False] * len(datas)
    out: list[codec.Value | codec.DecodeError] = []
    for data, ok in zip(datas, fast, strict=True):
        if ok and len(data) <= max_bytes:
            try:
                out.append(codec.unpack(data))
                continue
            except (ValueError, TypeError, msgpack.UnpackException):  # never expected:
                pass  # the kernel said canonical; let the reference say what is wrong
        try:
            out.append(codec.decode(data, max_bytes=max_bytes))
        except codec.DecodeError as exc:
            out.append(exc)
    return out
