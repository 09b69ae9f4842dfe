"""Peer message codec: frozen dataclasses <-> canonical msgpack, decoded against the
declared field types so a peer can never smuggle in a value of the wrong shape.

A message is ``[tag, field, field, ...]`` in declaration order; nested dataclasses are
encoded the same way, enums by value, tuples as arrays. The tag table is explicit and
append-only: a tag never changes meaning across versions.
"""

from __future__ import annotations

import dataclasses
import enum
import types
import typing
from collections.abc import Callable, Sequence
from typing import Any

from chain import codec

WIRE_BYTES_MAX = 64 * 1024 * 1024


_EXACT = (bytes, str)
"""Item types whose values ``_dec`` returns as they are when exactly of that type."""


class WireError(ValueError):
    """A peer frame is not a well-formed message; the message says where."""


class MessageCodec:
    def __init__(
        self, classes: Sequence[type], check: Callable[[Any], str | None] | None = None
    ) -> None:
        """``classes``: every dataclass that may appear on the wire; the position in this
        sequence is the tag (so append only). ``check``: what is wrong with a decoded
        message beyond its field types (None when nothing), raised as a ``WireError``."""
        self._check = check
        self._tag_of = {cls: i for i, cls in enumerate(classes)}
        self._cls_of = dict(enumerate(classes))
        self._hints = {cls: typing.get_type_hints(cls) for cls in classes}
        self._fields = {cls: [f.name for f in dataclasses.fields(cls)] for cls in classes}

    def encode(self, msg: Any) -> bytes:
        return codec.encode(self._enc(msg))

    def _enc(self, v: Any) -> Any:
        t = type(v)
        if t is bytes or t is str or t is int:  # most fields: nothing to convert
            return v
        if t is tuple and all(type(x) is bytes for x in v):  # txs, blocks: taken as is
            return list(v)
        if dataclasses.is_dataclass(v) and not isinstance(v, type):
            cls = type(v)
            if cls not in self._tag_of:
                raise WireError(f"{cls.__name__} is not a wire message")
            return [self._tag_of[cls], *(self._enc(getattr(v, f)) for f in self._fields[cls])]
        if isinstance(v, enum.Enum):
            return v.value
        if isinstance(v, tuple | list):
            return [self._enc(x) for x in v]
        return v

    def decode(self, raw: bytes) -> Any:
        try:
            value = codec.decode(raw, max_bytes=WIRE_BYTES_MAX)
        except codec.DecodeError as exc:
            raise WireError(f"frame is not canonical msgpack: {exc}") from None
        msg = self._dec_dataclass(value, None, "message")
        if self._check is not None and (problem := self._check(msg)) is not None:
            raise WireError(problem)
        return msg

    def _dec_dataclass(self, value: Any, expected: type | None, where: str) -> Any:
        if not isinstance(value, list) or not value or not isinstance(value[0], int):
            raise WireError(f"{where}: expected [tag, fields...]")
        cls = self._cls_of.get(value[0])
        if cls is None:
            raise WireError(f"{where}: unknown message tag {value[0]}")
        if expected is not None and cls is not expected:
            raise WireError(f"{where}: expected {expected.__name__}, got {cls.__name__}")
        names = self._fields[cls]
        if len(value) != len(names) + 1:
            raise WireError(
                f"{where}: {cls.__name__} has {len(names)} fields, got {len(value) - 1}"
            )
        hints = self._hints[cls]
        kwargs = {
            n: self._dec(v, hints[n], f"{cls.__name__}.{n}")
            for n, v in zip(names, value[1:], strict=True)
        }
        try:
            return cls(**kwargs)
        except (TypeError, ValueError) as exc:
            raise WireError(f"{where}: {cls.__name__}: {exc}") from None

    def _dec(self, v: Any, tp: Any, where: str) -> Any:
        origin = typing.get_origin(tp)
        if origin in (typing.Union, types.UnionType):
            args = typing.get_args(tp)
            if v is None and type(None) in args:
                return None
            non_none = [a for a in args if a is not type(None)]
            if len(non_none) == 1:
                return self._dec(v, non_none[0], where)
            for a in non_none:  # a union of message classes: the tag decides
                if (
                    isinstance(a, type)
                    and a in self._tag_of
                    and isinstance(v, list)
                    and v
                    and v[0] == self._tag_of[a]
                ):
                    return self._dec_dataclass(v, a, where)
            raise WireError(f"{where}: value matches none of {tp}")
        if origin is tuple:
            args = typing.get_args(tp)
            if not isinstance(v, list):
                raise WireError(f"{where}: expected an array")
            if len(args) == 2 and args[1] is Ellipsis:
                item = args[0]
                if item in _EXACT and all(type(x) is item for x in v):
                    # Every item exactly of the declared type (a frame of txs): what the
                    # item-by-item path below returns for them, without a call each.
                    return tuple(v)
                return tuple(self._dec(x, args[0], f"{where}[{i}]") for i, x in enumerate(v))
            if len(args) != len(v):
                raise WireError(f"{where}: expected {len(args)} items")
            return tuple(
                self._dec(x, a, f"{where}[{i}]")
                for i, (x, a) in enumerate(zip(v, args, strict=True))
            )
        if isinstance(tp, type):
            if dataclasses.is_dataclass(tp):
                return self._dec_dataclass(v, tp, where)
            if issubclass(tp, enum.Enum):
                if isinstance(v, bool):
                    raise WireError(f"{where}: {v!r} is not a {tp.__name__}")
                try:
                    return tp(v)
                except ValueError:
                    raise WireError(f"{where}: {v!r} is not a {tp.__name__}") from None
            if tp is bool:
                if not isinstance(v, bool):
                    raise WireError(f"{where}: expected a bool")
                return v
            if tp is int:
                if not isinstance(v, int) or isinstance(v, bool):
                    raise WireError(f"{where}: expected an int")
                return v
            if tp in (str, bytes):
                if not isinstance(v, tp):
                    raise WireError(f"{where}: expected {tp.__name__}")
                return v
        raise WireError(f"{where}: unsupported field type {tp}")
