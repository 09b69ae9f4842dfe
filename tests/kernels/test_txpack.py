"""``txpack`` packs a block's txs into the store's page-sized values byte for byte as the
store's Python path does (``storage.lmdb_store._txs_items_py``): blocks of the bench's
size, txs of every size around a page's room (alone, together, larger than a page),
empty txs, one tx, and the greedy bound exactly at the room."""

from __future__ import annotations

import random

import numpy as np
import pytest

from chain.kernels import txpack
from storage import lmdb_store

ROOM = lmdb_store.TXS_CHUNK_BYTES - 4


def _items(txs: list[bytes], log_start: int) -> list[tuple[bytes, bytes]]:
    packed = txpack.pack(txs, ROOM)
    assert packed is not None
    raw, firsts, sizes = packed
    out, at = [], 0
    for first, size in zip(firsts, sizes, strict=True):
        out.append(((log_start + first).to_bytes(8, "big"), raw[at : at + size]))
        at += size
    assert at == len(raw)
    return out


def _python(txs: list[bytes], log_start: int) -> list[tuple[bytes, bytes]]:
    return [(k, bytes(v)) for k, v in lmdb_store._txs_items_py(txs, log_start)]


def _blocks() -> list[list[bytes]]:
    rng = random.Random(18)
    blocks = [[rng.randbytes(rng.randrange(240, 265)) for _ in range(1000)]]
    blocks += [[rng.randbytes(rng.randrange(0, 6000)) for _ in range(rng.randrange(1, 40))]]
    blocks += [[bytes(size)] for size in (0, 1, ROOM - 5, ROOM - 4, ROOM - 3, 3 * ROOM)]
    blocks += [[bytes(ROOM - 8 - 4), b"x"], [bytes(ROOM - 8 - 4), b""], [b""] * 2000]
    blocks += [[bytes(100)] * 40, [bytes(10_000), b"a", bytes(9_000), b"b"]]
    for _ in range(50):
        blocks.append(
            [rng.randbytes(rng.randrange(0, 2 * ROOM)) for _ in range(rng.randrange(1, 30))]
        )
    return blocks


@pytest.mark.parametrize("index", range(len(_blocks())))
def test_the_kernel_packs_as_the_python_path(index: int) -> None:
    txs = _blocks()[index]
    assert _items(txs, 12_345) == _python(txs, 12_345)


def test_the_store_uses_the_kernel_and_reads_its_values_back(tmp_path: object) -> None:
    txs = _blocks()[0]
    got = [(k, bytes(v)) for k, v in lmdb_store._txs_items(txs, 7)]
    assert got == _python(txs, 7)
    assert [t for _, v in got for t in lmdb_store._txs_of(v, 1 << 20)] == txs


def test_warmup_agrees() -> None:
    assert txpack.warmup()


@pytest.mark.parametrize("index", [0, 1, 9])
def test_the_txs_joined_by_the_caller_pack_as_the_txs_themselves(index: int) -> None:
    """``pack`` given the txs end to end and their lengths (``Block.body_arrays``) packs
    what it packs from the txs; lengths that do not describe the txs are refused."""
    txs = _blocks()[index]
    lengths = np.fromiter(map(len, txs), dtype=np.int64, count=len(txs))
    assert txpack.pack(txs, ROOM, b"".join(txs), lengths) == txpack.pack(txs, ROOM)
    with pytest.raises(ValueError):
        txpack.pack(txs, ROOM, b"".join(txs) + b"x", lengths)
    with pytest.raises(ValueError):
        txpack.pack(txs, ROOM, b"".join(txs), lengths[1:])


@pytest.mark.parametrize("index", range(len(_blocks())))
def test_unpack_reads_back_what_pack_packed(index: int) -> None:
    """``unpack`` of a block's values: the txs end to end and their lengths, as
    ``_txs_of`` splits them."""
    txs = _blocks()[index]
    values = [v for _, v in _items(txs, 0)]
    got = txpack.unpack(values, len(txs))
    assert got is not None
    assert got[0] == b"".join(txs) and got[1].tolist() == [len(t) for t in txs]
    assert [t for v in values for t in lmdb_store._txs_of(v, 1 << 20)] == txs


def _damaged() -> list[tuple[str, list[bytes], int]]:
    good = [v for _, v in _items([b"ab", b"", b"cde", bytes(5000), b"f"], 0)]
    one = b"\0\0\0\2" + b"\0\0\0\x0e" * 2 + b"ab"  # "ab" and "": ends 14, 14
    return [
        ("fewer txs than asked", good, 6),
        ("more txs than asked", good, 4),
        ("no count", [b"\0\0\0"], 1),
        ("a count of zero", [b"\0\0\0\0"], 1),
        ("no room for the ends", [b"\0\0\0\3" + b"\0\0\0\x0e" * 2 + b"ab"], 3),
        ("an end before the txs", [b"\0\0\0\2" + b"\0\0\0\x0b" + b"\0\0\0\x0e" + b"ab"], 2),
        ("ends out of order", [b"\0\0\0\2" + b"\0\0\0\x0e\0\0\0\x0d" + b"ab"], 2),
        ("the last end short of the value", [one + b"x"], 2),
        ("the last end past the value", [one[:-1]], 2),
        ("a value of nothing", [one, b""], 2),
    ]


@pytest.mark.parametrize(("what", "values", "count"), _damaged(), ids=[d[0] for d in _damaged()])
def test_unpack_refuses_what_txs_of_refuses(what: str, values: list[bytes], count: int) -> None:
    """Every frame ``_txs_of`` (or the count a block says) refuses, ``unpack`` refuses:
    None, and the store reads the block the slow way, which names the damage."""
    assert txpack.unpack(values, count) is None
    with pytest.raises((lmdb_store._DamagedTxs, ValueError, AssertionError)):
        got = [t for v in values for t in lmdb_store._txs_of(v, 1 << 20)]
        assert len(got) == count, "the count a block says"
