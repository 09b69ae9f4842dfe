"""Which inputs are exactly one canonical msgpack value (``chain.codec``'s rule), for a
batch at a time: the byte-level twin of ``codec.decode``'s re-encode-and-compare.

Canonical, as the packer writes it: every int, str, bin, array and map length in its
shortest form (a non-negative int never in a signed form), no float, no extension type,
no 0xc1, map keys only str and in strictly ascending byte order (UTF-8 keeps code-point
order, so this is Python's ``sorted``; equal keys, which a dict would merge, are out), no
container with items deeper than ``limits.PAYLOAD_DEPTH_MAX``, every str well-formed UTF-8
(as Python's strict decoder: no overlong form, no surrogate, nothing above U+10FFFF),
nothing after the value. Sizes are the caller's to check.

``batch_decode.decode_many`` runs this first and unpacks the inputs it accepts without the
general checks; an input it refuses takes the reference path, which names the problem.
So a wrong "no" would cost only time; a wrong "yes" would let a non-canonical encoding
in, which the tests rule out against the reference on generated and mutated inputs.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
from numba import njit

from chain import limits
from chain.kernels import cachekey  # noqa: F401  (before any cached kernel is defined)

_ARRAY = 1
_MAP = 2


@njit(cache=True, inline="always")
def _be(buf: np.ndarray, pos: np.int64, n: np.int64 | int) -> np.int64:
    """An ``n``-byte big-endian unsigned number at ``pos`` (n <= 4; 8 goes in halves)."""
    v = np.int64(0)
    for i in range(n):
        v = (v << 8) | np.int64(buf[pos + i])
    return v


@njit(cache=True, inline="always")
def _utf8_ok(buf: np.ndarray, pos: np.int64, end: np.int64) -> bool:
    """Is ``buf[pos:end]`` well-formed UTF-8 (Unicode 15, table 3-7)?"""
    i = pos
    while i < end:
        c = np.int64(buf[i])
        if c < 0x80:
            i += 1
            continue
        if 0xC2 <= c <= 0xDF:
            n = 1
            lo, hi = 0x80, 0xBF
        elif 0xE0 <= c <= 0xEF:
            n = 2
            lo = 0xA0 if c == 0xE0 else 0x80
            hi = 0x9F if c == 0xED else 0xBF
        elif 0xF0 <= c <= 0xF4:
            n = 3
            lo = 0x90 if c == 0xF0 else 0x80
            hi = 0x8F if c == 0xF4 else 0xBF
        else:
            return False
        if i + n >= end:
            return False  # truncated
        second = np.int64(buf[i + 1])
        if not lo <= second <= hi:
            return False
        for j in range(2, n + 1):
            if not 0x80 <= np.int64(buf[i + j]) <= 0xBF:
                return False
        i += n + 1
    return True


@njit(cache=True, inline="always")
def _int_form_ok(
    buf: np.ndarray, pos: np.int64, width: np.int64, signed: bool | np.bool_
) -> bool | np.bool_:
    """Is the ``width``-byte int at ``pos`` in the form the packer writes: an unsigned
    form only for what no shorter form holds, a signed one only for a negative below
    the next shorter form's least?"""
    if not signed:
        if width == 8:
            return _be(buf, pos, 4) != 0
        return _be(buf, pos, width) >= (np.int64(128) if width == 1 else np.int64(1) << (4 * width))
    first = np.int64(buf[pos])
    if first < 0x80:
        return False  # not negative: the unsigned forms hold it
    if width == 1:
        return first < 0xE0  # below -32
    if width == 8:
        return _be(buf, pos, 4) != 0xFFFFFFFF or np.int64(buf[pos + 4]) < 0x80  # below -2^31
    # As unsigned v (negative: v >= 2^(8w-1)), the value is v - 2^(8w); it must be below
    # the shorter form's least, -2^(4w-1): v < 2^(8w) - 2^(4w-1).
    v = _be(buf, pos, width)
    return v < (np.int64(1) << (8 * width)) - (np.int64(1) << (4 * width - 1))


@njit(cache=True)
def _check_one(buf: np.ndarray, start: np.int64, end: np.int64, depth_max: np.int64) -> bool:
    levels = depth_max + 2
    remaining = np.zeros(levels, np.int64)
    kind = np.zeros(levels, np.int64)
    key_at = np.zeros(levels, np.int64)  # the previous key's bytes, per map level
    key_len = np.full(levels, -1, np.int64)
    remaining[0] = 1
    level = 0
    pos = start
    while True:
        while level >= 0 and remaining[level] == 0:
            level -= 1
        if level < 0:
            break
        remaining[level] -= 1
        is_key = kind[level] == _MAP and remaining[level] % 2 == 1
        if pos >= end:
            return False
        b = np.int64(buf[pos])
        pos += 1
        # Strings first: the only thing a key may be.
        slen = np.int64(-1)
        if 0xA0 <= b <= 0xBF:
            slen = b - 0xA0
        elif 0xD9 <= b <= 0xDB:  # str 8/16/32: only for lengths no shorter form holds
            width = np.int64(1) << (b - 0xD9)
            if pos + width > end:
                return False
            slen = _be(buf, pos, width)
            pos += width
            if slen < (np.int64(32) if b == 0xD9 else np.int64(1) << (4 * width)):
                return False
        if slen >= 0:
            if pos + slen > end or not _utf8_ok(buf, pos, pos + slen):
                return False
            if is_key:
                prev_len = key_len[level]
                if prev_len >= 0:  # strictly above the previous key, bytewise
                    prev = key_at[level]
                    n = min(prev_len, slen)
                    order = 0
                    for i in range(n):
                        x = np.int64(buf[prev + i])
                        y = np.int64(buf[pos + i])
                        if x != y:
                            order = 1 if y > x else -1
                            break
                    if order < 0 or (order == 0 and slen <= prev_len):
                        return False
                key_at[level] = pos
                key_len[level] = slen
            pos += slen
            continue
        if is_key:
            return False
        if b <= 0x7F or b >= 0xE0 or b == 0xC0 or b == 0xC2 or b == 0xC3:
            continue  # fixints, nil, false, true
        if b == 0xC4 or b == 0xC5 or b == 0xC6:  # bin 8/16/32
            width = np.int64(1) if b == 0xC4 else np.int64(2) if b == 0xC5 else np.int64(4)
            if pos + width > end:
                return False
            blen = _be(buf, pos, width)
            pos += width
            if (b == 0xC5 and blen < 256) or (b == 0xC6 and blen < 65536):
                return False
            if pos + blen > end:
                return False
            pos += blen
            continue
        if 0xCC <= b <= 0xD3:  # uint and int 8/16/32/64
            width = np.int64(1) << ((b - 0xCC) & 3)
            if pos + width > end or not _int_form_ok(buf, pos, width, b >= 0xD0):
                return False
            pos += width
            continue
        n = np.int64(-1)
        container = 0
        if 0x90 <= b <= 0x9F:
            n = b - 0x90
            container = _ARRAY
        elif 0x80 <= b <= 0x8F:
            n = b - 0x80
            container = _MAP
        elif 0xDC <= b <= 0xDF:  # array 16/32, map 16/32: as for strs
            width = np.int64(2) if b == 0xDC or b == 0xDE else np.int64(4)
            if pos + width > end:
                return False
            n = _be(buf, pos, width)
            pos += width
            if n < (np.int64(16) if width == 2 else np.int64(65536)):
                return False
            container = _ARRAY if b <= 0xDD else _MAP
        if container == 0:
            return False  # 0xc1, floats, extension types
        if n == 0:
            continue
        if level >= depth_max:
            return False  # items deeper than the limit
        level += 1
        kind[level] = container
        remaining[level] = n if container == _ARRAY else 2 * n
        key_len[level] = -1
    return pos == end


@njit(cache=True)
def _check_batch(
    buf: np.ndarray, offsets: np.ndarray, depth_max: np.int64, out: np.ndarray
) -> None:
    for i in range(len(offsets) - 1):
        out[i] = _check_one(buf, offsets[i], offsets[i + 1], depth_max)


def canonical(datas: Sequence[bytes]) -> list[bool]:
    """Per input: is it exactly one canonical value (see the module doc)? The same
    verdicts as ``reference.canonical_msgpack``."""
    n = len(datas)
    if n == 0:
        return []
    offsets = np.zeros(n + 1, np.int64)
    np.cumsum(np.fromiter(map(len, datas), np.int64, n), out=offsets[1:])
    buf = np.frombuffer(b"".join(datas), np.uint8)
    out = np.zeros(n, np.bool_)
    _check_batch(buf, offsets, np.int64(limits.PAYLOAD_DEPTH_MAX), out)
    return [bool(x) for x in out]


def warmup() -> None:
    canonical([b"\x91\x81\xa1a\xc0"])
