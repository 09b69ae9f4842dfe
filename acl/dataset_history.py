"""A dataset's history: its registration, versions, grants, revocations and every audit
event naming it, in chain order, and the derivations that produced it.

``read_history`` and ``read_derivations`` read those indexes for model lineage too.
"""

from __future__ import annotations

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


def read_history(state: StateReader, prefix: bytes) -> list[HistoryEntry]:
    """The marks under ``prefix`` (a dataset's history, a model's uses), in chain order."""
    entries = []
    for key, value in scan_prefix(state, prefix):
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

    def to_json(self) -> dict[str, Any]:
        return {
            "dataset": self.dataset.to_json(),
            "entries": [e.to_json() for e in self.entries],
            "derived_from": list(self.derived_from),
            "evidence": [r.to_json() for r in self.evidence],
            "truncated": self.truncated,
        }


def dataset_history(state: StateReader, dataset_id: str) -> DatasetHistory:
    ds = dataset(state, dataset_id)
    dk = K.dataset_key(dataset_id)
    entries = read_history(state, K.HISTORY + dk)
    derivations = tuple(read_derivations(state, dataset_id))
    evidence, truncated = cap_evidence([e.tx for e in entries])
    return DatasetHistory(ds, tuple(entries), derivations, evidence, truncated)


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
