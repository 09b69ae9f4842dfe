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
        self._decoders: dict[Any, _Decoder] = {}
        """Per declared field type, its decoder (``_decoder``), made at first use."""
        self._field_decoders: dict[type, list[tuple[str, str, _Decoder]]] = {}
        """Per message class: (field name, where for errors, decoder), in field order."""

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
        fields = self._field_decoders.get(cls)
        if fields is None:
            hints = self._hints[cls]
            fields = self._field_decoders[cls] = [
                (n, f"{cls.__name__}.{n}", self._decoder(hints[n])) for n in self._fields[cls]
            ]
        if len(value) != len(fields) + 1:
            raise WireError(
                f"{where}: {cls.__name__} has {len(fields)} fields, got {len(value) - 1}"
            )
        kwargs = {n: dec(v, at) for (n, at, dec), v in zip(fields, value[1:], strict=True)}
        try:
            return cls(**kwargs)
        except (TypeError, ValueError) as exc:
            raise WireError(f"{where}: {cls.__name__}: {exc}") from None

    def _decoder(self, tp: Any) -> _Decoder:
        """The decoder of values declared ``tp``, made once per type: what to check is
        worked out from the type here, not again for every value of every frame."""
        dec = self._decoders.get(tp)
        if dec is None:
            dec = self._decoders[tp] = self._make_decoder(tp)
        return dec

    def _lazy(self, tp: Any) -> _Decoder:
        """``_decoder(tp)``, looked up when a value comes, not now (a type may refer to itself)."""
        return lambda v, where: self._decoder(tp)(v, where)

    def _make_decoder(self, tp: Any) -> _Decoder:
        origin = typing.get_origin(tp)
        if origin in (typing.Union, types.UnionType):
            return self._union_decoder(tp)
        if origin is tuple:
            return self._tuple_decoder(tp)
        if isinstance(tp, type):
            if dataclasses.is_dataclass(tp):
                return lambda v, where: self._dec_dataclass(v, tp, where)
            if issubclass(tp, enum.Enum):
                return _enum_decoder(tp)
            if tp is bool:
                return _dec_bool
            if tp is int:
                return _dec_int
            if tp in (str, bytes):
                return _exact_decoder(tp)

        def unsupported(v: Any, where: str) -> Any:
            raise WireError(f"{where}: unsupported field type {tp}")

        return unsupported

    def _union_decoder(self, tp: Any) -> _Decoder:
        args = typing.get_args(tp)
        optional = type(None) in args
        non_none = [a for a in args if a is not type(None)]
        if len(non_none) == 1:
            inner = self._lazy(non_none[0])

            def one(v: Any, where: str) -> Any:
                return None if v is None and optional else inner(v, where)

            return one
        tags = [  # a union of message classes: the tag decides
            (self._tag_of[a], a) for a in non_none if isinstance(a, type) and a in self._tag_of
        ]

        def by_tag(v: Any, where: str) -> Any:
            if v is None and optional:
                return None
            if isinstance(v, list) and v:
                for tag, cls in tags:
                    if v[0] == tag:
                        return self._dec_dataclass(v, cls, where)
            raise WireError(f"{where}: value matches none of {tp}")

        return by_tag

    def _tuple_decoder(self, tp: Any) -> _Decoder:
        args = typing.get_args(tp)
        if len(args) == 2 and args[1] is Ellipsis:
            item_type = args[0]
            item = self._lazy(item_type)
            exact = item_type if item_type in _EXACT else None

            def variadic(v: Any, where: str) -> Any:
                if not isinstance(v, list):
                    raise WireError(f"{where}: expected an array")
                if exact is not None and all(type(x) is exact for x in v):
                    # Every item exactly of the declared type (a frame of txs): what the
                    # item-by-item path below returns for them, without a call each.
                    return tuple(v)
                return tuple(item(x, f"{where}[{i}]") for i, x in enumerate(v))

            return variadic
        items = [self._lazy(a) for a in args]

        def fixed(v: Any, where: str) -> Any:
            if not isinstance(v, list):
                raise WireError(f"{where}: expected an array")
            if len(items) != len(v):
                raise WireError(f"{where}: expected {len(items)} items")
            return tuple(
                dec(x, f"{where}[{i}]") for i, (x, dec) in enumerate(zip(v, items, strict=True))
            )

        return fixed


_Decoder = Callable[[Any, str], Any]
"""Decodes one value found at ``where`` (for the error message), or raises WireError."""


def _enum_decoder(tp: type[enum.Enum]) -> _Decoder:
    def dec(v: Any, where: str) -> Any:
        if isinstance(v, bool):
            raise WireError(f"{where}: {v!r} is not a {tp.__name__}")
        try:
            return tp(v)
        except ValueError:
            raise WireError(f"{where}: {v!r} is not a {tp.__name__}") from None

    return dec


def _dec_bool(v: Any, where: str) -> Any:
    if not isinstance(v, bool):
        raise WireError(f"{where}: expected a bool")
    return v


def _dec_int(v: Any, where: str) -> Any:
    if not isinstance(v, int) or isinstance(v, bool):
        raise WireError(f"{where}: expected an int")
    return v


def _exact_decoder(tp: type) -> _Decoder:
    def dec(v: Any, where: str) -> Any:
        if not isinstance(v, tp):
            raise WireError(f"{where}: expected {tp.__name__}")
        return v

    return dec
