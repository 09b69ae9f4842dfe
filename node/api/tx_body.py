"""Signed txs as a request carries them, the same on every front door (HTTP, MQTT).

Two encodings: JSON ``{"tx": base64}`` or ``{"txs": [base64, ...]}``, and msgpack (one
bin, or an array of bin: canonical tx bytes). The msgpack decoder is bounded before it
allocates (array and string lengths), so a small body cannot unpack into a large object.
"""

from __future__ import annotations

import base64
import binascii
import json

import msgpack

from chain import limits

BATCH_TXS_MAX = 10_000
JSON_TYPES = ("application/json", "", "application/octet-stream", "text/plain")
MSGPACK_TYPE = "application/msgpack"


class TxBodyError(ValueError):
    """The body is not txs in a form we take; ``status`` is the HTTP code that says so."""

    def __init__(self, message: str, status: int = 400) -> None:
        super().__init__(message)
        self.status = status


def parse_txs(body: bytes, content_type: str) -> list[bytes]:
    """The raw txs in ``body``; ``TxBodyError`` names what is wrong with it."""
    if not body:
        raise TxBodyError('empty body: send {"tx": base64} or {"txs": [base64, ...]} or msgpack')
    if content_type == MSGPACK_TYPE:
        txs = _from_msgpack(body)
    elif content_type in JSON_TYPES:
        txs = _from_json(body)
    else:
        raise TxBodyError(
            f"content type {content_type!r}: use application/json or application/msgpack", 415
        )
    if not txs:
        raise TxBodyError("no txs in the request")
    if len(txs) > BATCH_TXS_MAX:
        raise TxBodyError(f"{len(txs)} txs in one request, the limit is {BATCH_TXS_MAX}")
    for i, t in enumerate(txs):
        if len(t) > limits.TX_BYTES_MAX:
            raise TxBodyError(f"tx {i} is {len(t)} bytes, over the limit of {limits.TX_BYTES_MAX}")
    return txs


def _from_msgpack(body: bytes) -> list[bytes]:
    try:
        value = msgpack.unpackb(
            body,
            raw=False,
            strict_map_key=True,
            max_bin_len=limits.TX_BYTES_MAX,
            max_array_len=BATCH_TXS_MAX + 1,
            max_str_len=1024,
            max_map_len=16,
            max_ext_len=0,
        )
    except Exception as exc:
        raise TxBodyError(f"body is not msgpack: {exc}") from None
    txs = value if isinstance(value, list) else [value]
    if not all(isinstance(t, bytes) for t in txs):
        raise TxBodyError("a msgpack body is an array of bin (canonical tx bytes)")
    return txs


def _from_json(body: bytes) -> list[bytes]:
    try:
        doc = json.loads(body)
    except (ValueError, UnicodeDecodeError) as exc:
        raise TxBodyError(f"body is not JSON: {exc}") from None
    if not isinstance(doc, dict) or ("tx" in doc) == ("txs" in doc):
        raise TxBodyError("JSON body must be an object with exactly one of 'tx' or 'txs'")
    items = [doc["tx"]] if "tx" in doc else doc["txs"]
    if not isinstance(items, list) or not all(isinstance(t, str) for t in items):
        raise TxBodyError("'txs' must be a list of base64 strings")
    try:
        return [base64.b64decode(t, validate=True) for t in items]
    except (binascii.Error, ValueError):
        raise TxBodyError("a tx is not valid base64") from None
