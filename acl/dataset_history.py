"""A dataset's history: its registration, versions, grants, revocations and every audit
event naming it, in chain order, and the derivations that produced it.

``read_history`` and ``read_derivations`` read those indexes for model lineage too.
"""

from __future__ import annotations

import itertools
from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import Any

from acl import keys as K
from acl import kinds as k
from acl.evidence import TxRef, cap_evidence
from acl.lookups import dataset
from acl.results import label
from acl.state import StateReader, scan_prefix
from acl.views import DatasetView, HistoryEntry, jsonify
from chain import codec

HISTORY_READ_MAX = 10_000
"""Entries one history answer holds at most (the first, in chain order); the explorer's
``GET /v1/explore/datasets/{id}/history`` pages through all of them."""


def read_history(state: StateReader, prefix: bytes, limit: int | None = None) -> list[HistoryEntry]:
    """The marks under ``prefix`` (a dataset's history, a model's uses), in chain order;
    the first ``limit`` of them when given."""
    entries = []
    for key, value in itertools.islice(scan_prefix(state, prefix), limit):
        height, index = K.parse_position(key[-12:])
        code, result, ms, tx_id = K.MARK.unpack(value)
        entries.append(HistoryEntry(TxRef(height, index, tx_id), k.KIND_BY_CODE[code], result, ms))
    return entries


@dataclass(frozen=True, slots=True)
class DatasetHistory:
    dataset: DatasetView
    entries: tuple[HistoryEntry, ...]
    """Registration, versions, grants, revocations and every audit event naming it, in chain order."""
    derived_from: tuple[dict[str, Any], ...] = field(hash=False)
    """Derivations whose output is this dataset: activity, inputs, tx."""
    evidence: tuple[TxRef, ...]
    truncated: bool
    entries_truncated: bool = False
    """More than ``HISTORY_READ_MAX`` entries: ``entries`` holds the first of them."""

    def to_json(self) -> dict[str, Any]:
        return {
            "dataset": self.dataset.to_json(),
            "entries": [e.to_json() for e in self.entries],
            "entries_truncated": self.entries_truncated,
            "derived_from": list(self.derived_from),
            "evidence": [r.to_json() for r in self.evidence],
            "truncated": self.truncated,
        }


def dataset_history(state: StateReader, dataset_id: str) -> DatasetHistory:
    ds = dataset(state, dataset_id)
    dk = K.dataset_key(dataset_id)
    entries = read_history(state, K.HISTORY + dk, HISTORY_READ_MAX + 1)
    more = len(entries) > HISTORY_READ_MAX
    entries = entries[:HISTORY_READ_MAX]
    derivations = tuple(itertools.islice(read_derivations(state, dataset_id), HISTORY_READ_MAX))
    evidence, truncated = cap_evidence([e.tx for e in entries])
    return DatasetHistory(ds, tuple(entries), derivations, evidence, truncated, more)


def read_derivations(state: StateReader, dataset_id: str) -> Iterator[dict[str, Any]]:
    """The derivations whose output is the dataset, in chain order, as JSON-ready data."""
    for key, raw in scan_prefix(state, K.DERIVATION + K.dataset_key(dataset_id)):
        height, index = K.parse_position(key[-12:])
        rec = codec.decode(raw)
        yield {
            "activity": rec["activity"],
            "inputs": [
                {"dataset_id": u[0], "version": u[1], "grant_id": jsonify(u[2]), "allowed": u[4]}
                for u in rec["inputs"]
            ],
            "output_digest": rec["output_digest"].hex(),
            "result": label(rec["result"]),
            "tx": TxRef(height, index, rec["tx_id"]).to_json(),
        }
