"""Canonical msgpack: one byte string per value, so hashes and signatures are stable.

Canonical form: msgpack with the smallest encoding of every int and length (what the
packer emits), ``bytes`` as bin and ``str`` as str, no floats, no extension types, and
maps only with ``str`` keys in sorted order. Decoding is strict: a value is accepted only
if encoding it again gives exactly the bytes received, so any other encoding of the same
value (a non-minimal int, unsorted or duplicate keys, a float) is rejected.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import msgpack

from chain import limits

Value = Any
"""A canonical value: None, bool, int, str, bytes, list/tuple of values, str-keyed map."""

INT_MIN = -(2**63)
INT_MAX = 2**64 - 1


class DecodeError(ValueError):
    """Input bytes are not one canonical value within the limits; the message says why."""


class EncodeError(ValueError):
    """A value cannot be encoded canonically (a float, a non-str map key, ...)."""


def _normalize(value: Value, depth: int) -> Value:
    if depth > limits.PAYLOAD_DEPTH_MAX:
        raise EncodeError(f"nesting deeper than {limits.PAYLOAD_DEPTH_MAX}")
    if value is None or isinstance(value, bool | str | bytes):
        return value
    if isinstance(value, int):
        if not INT_MIN <= value <= INT_MAX:
            raise EncodeError(f"integer {value} out of the 64-bit range")
        return value
    if isinstance(value, list | tuple):
        return [_normalize(v, depth + 1) for v in value]
    if isinstance(value, Mapping):
        for k in value:
            if not isinstance(k, str):
                raise EncodeError(f"map key {k!r} is not a str")
        return {k: _normalize(value[k], depth + 1) for k in sorted(value)}
    raise EncodeError(f"type {type(value).__name__} has no canonical encoding")


def encode(value: Value) -> bytes:
    """The canonical bytes of ``value``."""
    packed: bytes = msgpack.packb(_normalize(value, 0), use_bin_type=True)
    return packed


def _ext_hook(code: int, data: bytes) -> Any:
    raise DecodeError(f"extension type {code} is not allowed")


def unpack(data: bytes) -> Value:
    """One value, str as str and bin as bytes, only str or bytes map keys, no extension
    types; canonical form is NOT checked: only for bytes already known to be canonical
    (``decode`` checks, ``chain.batch_decode`` screens)."""
    return msgpack.unpackb(data, raw=False, use_list=True, strict_map_key=True, ext_hook=_ext_hook)


_CONTAINERS = (list, dict)


def _check(value: Value, depth: int) -> None:
    """Reject what re-encoding cannot: floats, non-str map keys, unsorted keys, and
    nesting past the limit. (Duplicate keys and non-minimal widths change the bytes.)
    Values come from the unpacker, so exact type checks suffice; scalars are skipped
    without a call, since this runs on every tx every node receives."""
    if depth > limits.PAYLOAD_DEPTH_MAX:
        raise DecodeError(f"nesting deeper than {limits.PAYLOAD_DEPTH_MAX}")
    t = type(value)
    if t is float:
        raise DecodeError("floats are not allowed")
    if t is dict:
        keys = list(value)
        for k in keys:
            if type(k) is not str:
                raise DecodeError(f"map key {k!r} is not a str")
        if keys != sorted(keys):
            raise DecodeError("non-canonical encoding (map keys not in ascending order)")
        items = value.values()
    elif t is list:
        items = value
    else:
        return
    if depth == limits.PAYLOAD_DEPTH_MAX and items:
        raise DecodeError(f"nesting deeper than {limits.PAYLOAD_DEPTH_MAX}")
    for v in items:
        tv = type(v)
        if tv is float:
            raise DecodeError("floats are not allowed")
        if tv in _CONTAINERS:
            _check(v, depth + 1)


def decode(data: bytes, *, max_bytes: int = limits.BLOCK_BYTES_MAX) -> Value:
    """Decode exactly one canonical value from ``data`` or raise ``DecodeError``."""
    if not isinstance(data, bytes | bytearray | memoryview):
        raise DecodeError(f"expected bytes, got {type(data).__name__}")
    if len(data) > max_bytes:
        raise DecodeError(f"{len(data)} bytes is over the limit of {max_bytes}")
    if len(data) == 0:
        raise DecodeError("empty input")
    try:
        value = unpack(data)
    except msgpack.ExtraData as exc:
        extra = getattr(exc, "extra", b"")
        raise DecodeError(f"{len(extra)} trailing bytes after the value") from None
    except DecodeError:
        raise
    except UnicodeDecodeError:
        raise DecodeError("a str is not valid UTF-8") from None
    except (ValueError, TypeError, msgpack.UnpackException) as exc:
        raise DecodeError(f"malformed msgpack: {exc or type(exc).__name__}") from None
    _check(value, 0)
    # _check proved the value canonical in every way but byte widths (sorted str keys, no
    # floats), so the plain packer re-encodes it; any other byte width differs below.
    again = msgpack.packb(value, use_bin_type=True)
    if again != bytes(data):
        raise DecodeError("non-canonical encoding (re-encoding gives different bytes)")
    return value
