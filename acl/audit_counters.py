"""The audit counters: running counts of the audit log, kept by the machine as it applies
blocks, so that counting the events of any time range costs a few reads per label,
whatever the range holds (``acl.audit_report``).

A *label* is one thing the report counts by: every event (``ALL``), an organisation and a
result, a dataset and a result, a purpose (``"none"`` for an event without one), a kind.
The counters are **prefix sums at block boundaries**: the period is the block.

==========================================  ==================================================
key                                         value
==========================================  ==================================================
``Y`` label                                 the label's events so far u64, the block ms of its
                                            first and of its last event u64, then its name
                                            (utf-8); for ``ALL``, the last event instead
                                            (height u64, index u32, tx id)
``Z`` label, block ms u64, height u64       the label's events in the blocks before this one
                                            u64; for ``ALL``, then the last event before it
                                            (none before the first event)
==========================================  ==================================================

A label is ``dimension byte || 32-byte id digest || result u16`` (the result is 0 for
``ALL``, purposes and kinds): fixed width, ids hashed as everywhere in ``acl.keys``. A
block with events writes, for each label it has events of, one ``Z`` entry and the new
``Y`` value, after all its txs are judged (``record``): its own events are counted in the
``Z`` entries of later blocks and in ``Y``.

The label's events in the blocks with ``t1 <= block time < t2`` are ``before(t2) -
before(t1)``, where ``before(t)`` is the value of the label's first ``Z`` entry at or after
``(t, 0)``, or its total when it has none: one seek per end, and none for an end beyond the
label's first or last block time. Block time never goes back, so ``(ms, height)`` order is
chain order and every ``Z`` entry before ``(t, 0)`` is a block before ``t``.

Why blocks and not hours or days: with hour buckets a report would sum the whole hours and
scan the events of the two partial hours at its ends, and an hour holds up to an hour of
traffic (at the node's ~20,000 txs/s, 72 million events): not a bound. A block is wholly
inside a range or outside it (its time is one number), so prefix sums at block boundaries
leave nothing to scan at either end, and the cost of a report is two seeks per label in
the worst case.

Determinism: derived only from the block's height, time and the events its txs recorded;
written through the block's overlay, so they are in its change set and its state root.
"""

from __future__ import annotations

import struct
from collections import Counter
from collections.abc import Sequence
from dataclasses import dataclass
from operator import itemgetter
from typing import Final

from acl import keys as K
from acl.evidence import TxRef
from acl.kinds import KIND_BY_CODE
from acl.results import Result
from acl.state import Overlay, StateReader, prefix_end

DIM_ALL: Final = b"t"
DIM_ORG_RESULT: Final = b"o"
DIM_DATASET_RESULT: Final = b"d"
DIM_PURPOSE: Final = b"p"
DIM_KIND: Final = b"k"
LABEL_BYTES: Final = 35
ALL: Final = DIM_ALL + bytes(32) + b"\x00\x00"
_NO_GRANT: Final = int(Result.NO_GRANT)
NO_PURPOSE: Final = "none"
"""The name events without a purpose are counted under (not a purpose: ``kinds.PURPOSES``)."""

_U16 = struct.Struct(">H").pack
_U64 = struct.Struct(">Q")
_HEAD = struct.Struct(">QQQ")
"""The start of a ``Y`` value: total, first block ms, last block ms."""
_REF = struct.Struct(">QI32s")
"""An event's place: height, index in its block, tx id."""

Tally = tuple[int, str, int, str | None, tuple[str, ...], int, bytes]
"""One recorded event, as ``record`` reads it: kind code, organisation, result code,
purpose, the datasets it used (each once), index in the block, tx id."""
_KIND = itemgetter(0)
_ORG_RESULT = itemgetter(1, 2)
_PURPOSE = itemgetter(3)
_DATASETS_RESULT = itemgetter(4, 2)


def org_label(org_id: str, result: int) -> bytes:
    return DIM_ORG_RESULT + K.org_key(org_id) + _U16(result)


def dataset_label(dataset_id: str, result: int) -> bytes:
    return DIM_DATASET_RESULT + K.dataset_key(dataset_id) + _U16(result)


def purpose_label(purpose: str) -> bytes:
    return DIM_PURPOSE + K.digest(b"purpose", purpose) + b"\x00\x00"


def kind_label(kind: str) -> bytes:
    return DIM_KIND + K.digest(b"kind", kind) + b"\x00\x00"


def record(ov: Overlay, height: int, timestamp_ms: int, tally: Sequence[Tally]) -> None:
    """Write the counters of a block whose txs recorded the events ``tally`` (in block
    order): one ``Z`` entry and the new ``Y`` value per label it has events of."""
    if not tally:
        return
    # Counted by C loops (Counter over itemgetter maps), then one label per distinct key:
    # a block's events share few organisations, purposes, kinds and datasets.
    counts: dict[bytes, int] = {}
    names: dict[bytes, str] = {}
    for (org_id, result), n in Counter(map(_ORG_RESULT, tally)).items():
        lab = org_label(org_id, result)
        counts[lab], names[lab] = n, org_id
    for purpose, n in Counter(map(_PURPOSE, tally)).items():
        name = purpose if purpose is not None else NO_PURPOSE
        lab = purpose_label(name)
        counts[lab] = counts.get(lab, 0) + n
        names[lab] = name
    for code, n in Counter(map(_KIND, tally)).items():
        name = KIND_BY_CODE[code]
        lab = kind_label(name)
        counts[lab], names[lab] = n, name
    for (datasets, result), n in Counter(map(_DATASETS_RESULT, tally)).items():
        for dataset_id in datasets:
            lab = dataset_label(dataset_id, result)
            counts[lab] = counts.get(lab, 0) + n
            names[lab] = dataset_id
    _, _, _, _, _, index, tx_id = tally[-1]
    counts[ALL] = len(tally)
    at = _U64.pack(timestamp_ms) + _U64.pack(height)
    put = ov.put_trusted
    for lab in sorted(counts):
        raw = ov.get(K.COUNT + lab)
        if raw is None:
            total, first_ms = 0, timestamp_ms
            rest = b"" if lab == ALL else names[lab].encode()
        else:
            total, first_ms, _ = _HEAD.unpack_from(raw)
            rest = raw[_HEAD.size :]
        if lab == ALL:
            put(K.COUNT_AT + lab + at, _U64.pack(total) + rest)
            rest = _REF.pack(height, index, tx_id)
        else:
            put(K.COUNT_AT + lab + at, _U64.pack(total))
        put(K.COUNT + lab, _HEAD.pack(total + counts[lab], first_ms, timestamp_ms) + rest)


# -- reading --------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class LabelCount:
    """A label's events in a range: its dimension byte, name, result code and count."""

    dim: bytes
    name: str
    result: int
    count: int


@dataclass(frozen=True, slots=True)
class RangeCounts:
    """What the counters say about ``[from_ms, until_ms)`` of block time."""

    total: int
    last: TxRef | None
    """The range's last event (None when it has none)."""
    labels: tuple[LabelCount, ...]
    """Every label with events in the range, in key order (not ``ALL``)."""
    seeks: int
    """``Z`` seeks it took (at most two per label): what the answer cost."""


def violations_count(state: StateReader, from_ms: int, until_ms: int) -> int:
    """The ``no_grant`` events of the range, from the organisation x result labels."""
    counts = range_counts(state, from_ms, until_ms, dim=DIM_ORG_RESULT)
    return sum(c.count for c in counts.labels if c.result == _NO_GRANT)


def _bound(value: int) -> bytes:
    return _U64.pack(min(max(int(value), 0), 2**64 - 1))


def _before(state: StateReader, lab: bytes, at: bytes) -> bytes | None:
    """The value of the label's first ``Z`` entry at or after ``at`` (u64 ms), or None."""
    start = K.COUNT_AT + lab + at + bytes(8)
    for _key, value in state.range(start, prefix_end(K.COUNT_AT + lab)):
        return value
    return None


def range_counts(
    state: StateReader, from_ms: int, until_ms: int, *, dim: bytes | None = None
) -> RangeCounts:
    """The events of the blocks with ``from_ms <= block time < until_ms``, by label; with
    ``dim``, of that dimension's labels only (``total`` and ``last`` then stay 0 and None
    unless it is ``DIM_ALL``)."""
    a, b = _bound(from_ms), _bound(until_ms)
    a_ms, b_ms = _U64.unpack(a)[0], _U64.unpack(b)[0]
    labels: list[LabelCount] = []
    total = 0
    last: TxRef | None = None
    seeks = 0
    if b_ms <= a_ms:
        return RangeCounts(0, None, (), 0)
    prefix = K.COUNT if dim is None else K.COUNT + dim
    for key, raw in state.range(prefix, prefix_end(prefix)):
        lab = key[1:]
        count, first_ms, last_ms = _HEAD.unpack_from(raw)
        if last_ms < a_ms or first_ms >= b_ms:
            continue  # no event of the label in the range
        upper = count
        upper_value: bytes | None = None
        if last_ms >= b_ms:
            upper_value = _before(state, lab, b)
            seeks += 1
            if upper_value is not None:
                upper = _U64.unpack_from(upper_value)[0]
        lower = 0
        if first_ms < a_ms:
            lower_value = _before(state, lab, a)
            seeks += 1
            if lower_value is not None:
                lower = _U64.unpack_from(lower_value)[0]
        n = upper - lower
        if n <= 0:
            continue
        if lab == ALL:
            total = n
            tail = raw[_HEAD.size :] if upper_value is None else upper_value[8:]
            height, index, tx_id = _REF.unpack(tail)
            last = TxRef(height, index, tx_id)
            continue
        result = int.from_bytes(lab[-2:], "big")
        labels.append(LabelCount(lab[:1], raw[_HEAD.size :].decode(), result, n))
    return RangeCounts(total, last, tuple(labels), seeks)
