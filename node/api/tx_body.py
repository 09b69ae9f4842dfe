"""Signed txs as a request carries them, the same on every front door (HTTP, MQTT).

Two encodings: JSON ``{"tx": base64}`` or ``{"txs": [base64, ...]}``, and msgpack (one
bin, or an array of bin: canonical tx bytes). Neither decoder builds anything a valid
body would not: msgpack is read header by header and an element that is not a bin is
refused before it is unpacked, and a JSON body with more than one array or object is
refused before it is parsed. A size limit per container is not enough: 3.6 MiB of
nested empty msgpack arrays (10,000 arrays of 380, each under the array limit) unpacked
into ~230 MiB of lists in ~1 s on the event loop that also carries peer heartbeats, and
14 MiB of JSON ``[],`` into ~320 MiB.
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


_BIN_MARKERS = (0xC4, 0xC5, 0xC6)  # bin 8, bin 16, bin 32


def _from_msgpack(body: bytes) -> list[bytes]:
    unpacker = msgpack.Unpacker(
        max_buffer_size=len(body), max_bin_len=limits.TX_BYTES_MAX, max_array_len=BATCH_TXS_MAX
    )
    unpacker.feed(body)
    try:
        if body[0] in _BIN_MARKERS:
            count, single = 1, True
        else:
            count, single = unpacker.read_array_header(), False
            if count > BATCH_TXS_MAX:  # read_array_header does not check max_array_len
                raise TxBodyError(f"{count} txs in one request, the limit is {BATCH_TXS_MAX}")
        txs: list[bytes] = []
        for i in range(count):
            at = unpacker.tell()
            if at >= len(body):
                raise TxBodyError(f"body ends before tx {i} of the {count} its array announces")
            if body[at] not in _BIN_MARKERS:
                raise TxBodyError(
                    "a msgpack body is a bin or an array of bin (canonical tx bytes); "
                    f"{'it' if single else f'element {i}'} is not a bin"
                )
            try:
                txs.append(unpacker.unpack())
            except msgpack.OutOfData:
                raise TxBodyError(f"body ends inside tx {i}") from None
    except TxBodyError:
        raise
    except Exception as exc:  # msgpack's own: out of data, over a limit, not an array
        raise TxBodyError(f"body is not msgpack txs: {type(exc).__name__}: {exc}") from None
    if unpacker.tell() != len(body):
        raise TxBodyError(f"{len(body) - unpacker.tell()} bytes after the txs")
    return txs


def _from_json(body: bytes) -> list[bytes]:
    # Base64 has no brackets or braces, so a valid body has one object and one array at
    # most: count them in C before json.loads builds whatever the body nests.
    if body.count(b"{") > 1 or body.count(b"[") > 1:
        raise TxBodyError('JSON body must be {"tx": base64} or {"txs": [base64, ...]}')
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
