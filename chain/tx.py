"""The transaction envelope and its canonical, signed encoding.

Wire form: the canonical msgpack array
``[version, chain_id, kind, sender, nonce, timestamp_ms, payload, signature]``.
The signature covers ``TX_DOMAIN || encode([...all fields but the signature])``.
The tx id is the RFC 9162 leaf hash of the whole signed encoding — the same hash the
Merkle log holds — shown to users as lowercase hex.
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any, Final

from chain import batch_decode, codec, limits, signing
from chain.hashing import leaf_hash

KIND_PATTERN = re.compile(r"^[a-z][a-z0-9_]*(\.[a-z][a-z0-9_]*)*$")


class TxError(ValueError):
    """A transaction is malformed; the message names the field and the problem."""


@dataclass(frozen=True, slots=True)
class Tx:
    version: int
    chain_id: str
    kind: str
    sender: bytes
    nonce: int
    timestamp_ms: int
    payload: dict[str, Any] = field(hash=False)
    signature: bytes

    def unsigned_fields(self) -> list[Any]:
        return [
            self.version,
            self.chain_id,
            self.kind,
            self.sender,
            self.nonce,
            self.timestamp_ms,
            self.payload,
        ]

    def signing_bytes(self) -> bytes:
        return signing.TX_DOMAIN + codec.encode(self.unsigned_fields())

    def to_bytes(self) -> bytes:
        return codec.encode([*self.unsigned_fields(), self.signature])

    @property
    def tx_id(self) -> bytes:
        return leaf_hash(self.to_bytes())

    def verify_signature(self) -> bool:
        return signing.verify(self.sender, self.signing_bytes(), self.signature)


def signing_bytes_of(raw: bytes) -> bytes:
    """``decode_tx(raw).signing_bytes()`` without encoding again: a canonical tx is the
    8-array header, the 7 signed fields, then the signature as bin8 of 64 bytes (66
    bytes), so the signed encoding is the 7-array header and the same middle bytes.
    Only for ``raw`` that ``decode_tx`` accepted."""
    return signing.TX_DOMAIN + b"\x97" + raw[1:-66]


def tx_id(raw: bytes) -> bytes:
    """The id of a tx from its canonical bytes."""
    return leaf_hash(raw)


def sign_tx(
    key: signing.PrivateKey,
    *,
    chain_id: str,
    kind: str,
    nonce: int,
    timestamp_ms: int,
    payload: dict[str, Any],
) -> Tx:
    unsigned = Tx(
        version=limits.TX_VERSION,
        chain_id=chain_id,
        kind=kind,
        sender=signing.public_key_bytes(key),
        nonce=nonce,
        timestamp_ms=timestamp_ms,
        payload=codec.decode(codec.encode(payload)),
        signature=b"",
    )
    _check_fields(unsigned, check_signature_length=False)
    signature = signing.sign(key, unsigned.signing_bytes())
    return Tx(*unsigned.unsigned_fields(), signature=signature)  # type: ignore[misc]


def _check_int(value: Any, name: str, hi: int) -> None:
    if not isinstance(value, int) or isinstance(value, bool) or not 0 <= value <= hi:
        raise TxError(f"{name} must be an integer in [0, {hi}]")


def _check_fields(tx: Tx, *, check_signature_length: bool = True) -> None:
    if tx.version != limits.TX_VERSION:
        raise TxError(f"unknown tx version {tx.version!r} (this node speaks {limits.TX_VERSION})")
    if not isinstance(tx.chain_id, str) or not 0 < len(tx.chain_id) <= limits.CHAIN_ID_CHARS_MAX:
        raise TxError(f"chain_id must be a str of 1..{limits.CHAIN_ID_CHARS_MAX} chars")
    if (
        not isinstance(tx.kind, str)
        or len(tx.kind) > limits.KIND_CHARS_MAX
        or not KIND_PATTERN.match(tx.kind)
    ):
        raise TxError(
            f"kind must match {KIND_PATTERN.pattern} and be at most {limits.KIND_CHARS_MAX} chars"
        )
    if not isinstance(tx.sender, bytes) or len(tx.sender) != limits.PUBLIC_KEY_BYTES:
        raise TxError(f"sender must be a {limits.PUBLIC_KEY_BYTES}-byte Ed25519 public key")
    _check_int(tx.nonce, "nonce", limits.NONCE_MAX)
    _check_int(tx.timestamp_ms, "timestamp_ms", limits.TIMESTAMP_MS_MAX)
    if not isinstance(tx.payload, dict):
        raise TxError("payload must be a map")
    if check_signature_length and (
        not isinstance(tx.signature, bytes) or len(tx.signature) != limits.SIGNATURE_BYTES
    ):
        raise TxError(f"signature must be {limits.SIGNATURE_BYTES} bytes")


def decode_tx(raw: bytes) -> Tx:
    """Strictly decode a tx from its canonical bytes (the signature is not checked here)."""
    if len(raw) > limits.TX_BYTES_MAX:
        raise TxError(f"tx is {len(raw)} bytes, over the limit of {limits.TX_BYTES_MAX}")
    try:
        fields = codec.decode(raw, max_bytes=limits.TX_BYTES_MAX)
    except codec.DecodeError as exc:
        raise TxError(f"tx encoding: {exc}") from None
    return _from_fields(fields)


def decode_txs(raws: Sequence[bytes]) -> list[Tx | TxError]:
    """``decode_tx`` of each raw, with the ``TxError`` in the place of one that fails: a
    batch at a time, which the numba backend screens in one kernel call
    (``batch_decode.decode_many``)."""
    sized = [r for r in raws if len(r) <= limits.TX_BYTES_MAX]
    decoded = iter(batch_decode.decode_many(sized, max_bytes=limits.TX_BYTES_MAX))
    out: list[Tx | TxError] = []
    for raw in raws:
        if len(raw) > limits.TX_BYTES_MAX:
            out.append(TxError(f"tx is {len(raw)} bytes, over the limit of {limits.TX_BYTES_MAX}"))
            continue
        fields = next(decoded)
        if isinstance(fields, codec.DecodeError):
            out.append(TxError(f"tx encoding: {fields}"))
            continue
        try:
            out.append(_from_fields(fields))
        except TxError as exc:
            out.append(exc)
    return out


(
    _SET_VERSION,
    _SET_CHAIN_ID,
    _SET_KIND,
    _SET_SENDER,
    _SET_NONCE,
    _SET_TIMESTAMP_MS,
    _SET_PAYLOAD,
    _SET_SIGNATURE,
) = tuple(
    Tx.__dict__[name].__set__
    for name in (
        "version",
        "chain_id",
        "kind",
        "sender",
        "nonce",
        "timestamp_ms",
        "payload",
        "signature",
    )
)
"""The slots' own setters: a frozen dataclass's ``__init__`` goes through
``object.__setattr__`` by name for each field, which costs twice as much."""
_KINDS_SEEN: Final[dict[str, None]] = {}
"""Kinds that passed ``_check_fields``'s kind rule (bounded by ``_KINDS_SEEN_MAX``)."""
_KINDS_SEEN_MAX: Final = 1024
_NONCE_MAX: Final = limits.NONCE_MAX
_TIMESTAMP_MS_MAX: Final = limits.TIMESTAMP_MS_MAX
_CHAIN_ID_CHARS_MAX: Final = limits.CHAIN_ID_CHARS_MAX
_TX_VERSION: Final = limits.TX_VERSION
_PUBLIC_KEY_BYTES: Final = limits.PUBLIC_KEY_BYTES
_SIGNATURE_BYTES: Final = limits.SIGNATURE_BYTES


def _from_fields(fields: Any) -> Tx:
    """The ``Tx`` of decoded fields, or ``TxError``. Decoded fields have exact types
    (the unpacker makes int, str, bytes, dict), so a tx whose fields are all exactly of
    their type and in range is built directly (every node decodes every tx: issue 14);
    anything else takes ``_from_fields_checked``, which gives the verdict and message."""
    if type(fields) is list and len(fields) == 8:
        version, chain_id, kind, sender, nonce, timestamp_ms, payload, signature = fields
        if (
            type(version) is int
            and version == _TX_VERSION
            and type(chain_id) is str
            and 0 < len(chain_id) <= _CHAIN_ID_CHARS_MAX
            and type(kind) is str
            and kind in _KINDS_SEEN
            and type(sender) is bytes
            and len(sender) == _PUBLIC_KEY_BYTES
            and type(nonce) is int
            and 0 <= nonce <= _NONCE_MAX
            and type(timestamp_ms) is int
            and 0 <= timestamp_ms <= _TIMESTAMP_MS_MAX
            and type(payload) is dict
            and type(signature) is bytes
            and len(signature) == _SIGNATURE_BYTES
        ):
            tx = _new_tx(Tx)
            _SET_VERSION(tx, version)
            _SET_CHAIN_ID(tx, chain_id)
            _SET_KIND(tx, kind)
            _SET_SENDER(tx, sender)
            _SET_NONCE(tx, nonce)
            _SET_TIMESTAMP_MS(tx, timestamp_ms)
            _SET_PAYLOAD(tx, payload)
            _SET_SIGNATURE(tx, signature)
            return tx
    tx = _from_fields_checked(fields)
    if type(tx.kind) is str and len(_KINDS_SEEN) < _KINDS_SEEN_MAX:
        _KINDS_SEEN[tx.kind] = None  # it passed the kind rule (a str: else TxError)
    return tx


_new_tx: Final = object.__new__


def _from_fields_checked(fields: Any) -> Tx:
    if not isinstance(fields, list) or len(fields) != 8:
        raise TxError("a tx is an array of 8 fields")
    if fields[0] != limits.TX_VERSION:
        raise TxError(f"unknown tx version {fields[0]!r} (this node speaks {limits.TX_VERSION})")
    tx = Tx(*fields)
    _check_fields(tx)
    return tx
