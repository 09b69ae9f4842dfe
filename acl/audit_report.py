"""The audit report: counts of the audit events in a time range, by organisation,
dataset, purpose, kind and result, with the violations among them.
"""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass, field
from typing import Any

from acl.audit_log import events
from acl.evidence import EVIDENCE_MAX, TxRef, cap_evidence
from acl.results import label
from acl.state import StateReader
from acl.views import EventView


@dataclass(frozen=True, slots=True)
class AuditReport:
    """Counts of audit events in ``[from_ms, until_ms)``: by organisation, dataset,
    purpose, kind and result, plus the (organisation, result) and (dataset, result) cross
    tables an auditor reads first. ``first``/``last``: the range of txs it covers."""

    from_ms: int
    until_ms: int
    total: int
    by_org: dict[str, int] = field(hash=False)
    by_dataset: dict[str, int] = field(hash=False)
    by_purpose: dict[str, int] = field(hash=False)
    by_kind: dict[str, int] = field(hash=False)
    by_result: dict[str, int] = field(hash=False)
    by_org_result: dict[str, dict[str, int]] = field(hash=False)
    by_dataset_result: dict[str, dict[str, int]] = field(hash=False)
    violations: tuple[EventView, ...]
    first: TxRef | None
    last: TxRef | None
    evidence: tuple[TxRef, ...]
    truncated: bool
    next_from_ms: int | None = None
    """None when the counts cover the whole range; else the report stopped at its event
    cap and covers ``[from_ms, next_from_ms)``: ask again from there for the rest."""

    def to_json(self) -> dict[str, Any]:
        return {
            "from_ms": self.from_ms,
            "until_ms": self.until_ms,
            "total": self.total,
            "by_org": dict(self.by_org),
            "by_dataset": dict(self.by_dataset),
            "by_purpose": dict(self.by_purpose),
            "by_kind": dict(self.by_kind),
            "by_result": dict(self.by_result),
            "by_org_result": {o: dict(c) for o, c in self.by_org_result.items()},
            "by_dataset_result": {d: dict(c) for d, c in self.by_dataset_result.items()},
            "violations": [e.to_json() for e in self.violations],
            "first": None if self.first is None else self.first.to_json(),
            "last": None if self.last is None else self.last.to_json(),
            "evidence": [r.to_json() for r in self.evidence],
            "truncated": self.truncated,
            "complete": self.next_from_ms is None,
            "next_from_ms": self.next_from_ms,
        }


def _sorted_counts(counter: Counter[str]) -> dict[str, int]:
    return {key: counter[key] for key in sorted(counter)}


def audit_report(
    state: StateReader, from_ms: int, until_ms: int, *, events_max: int | None = None
) -> AuditReport:
    """One pass over the audit log of the time range. An event using several datasets
    counts once per dataset in ``by_dataset``; events without a purpose count under
    ``"none"``. With ``events_max``, the pass stops at the first block time after that
    many events (a block's events are counted together) and says where to go on."""
    by_org: Counter[str] = Counter()
    by_dataset: Counter[str] = Counter()
    by_purpose: Counter[str] = Counter()
    by_kind: Counter[str] = Counter()
    by_result: Counter[str] = Counter()
    org_result: dict[str, Counter[str]] = {}
    dataset_result: dict[str, Counter[str]] = {}
    found_violations: list[EventView] = []
    refs: list[TxRef] = []
    total = 0
    first: TxRef | None = None
    last: TxRef | None = None
    next_from_ms: int | None = None
    last_ms = from_ms
    for e in events(state, from_ms, until_ms):
        if events_max is not None and total >= events_max and e.timestamp_ms != last_ms:
            next_from_ms = e.timestamp_ms
            break
        last_ms = e.timestamp_ms
        total += 1
        result = label(e.result)
        by_org[e.org_id] += 1
        by_purpose[e.purpose or "none"] += 1
        by_kind[e.kind] += 1
        by_result[result] += 1
        org_result.setdefault(e.org_id, Counter())[result] += 1
        for d in sorted({u[0] for u in e.uses}):
            by_dataset[d] += 1
            dataset_result.setdefault(d, Counter())[result] += 1
        if e.violation and len(found_violations) < EVIDENCE_MAX:
            found_violations.append(e)
        if len(refs) <= EVIDENCE_MAX:
            refs.append(e.tx)
        first = first or e.tx
        last = e.tx
    evidence, truncated = cap_evidence(refs)
    return AuditReport(
        from_ms,
        until_ms,
        total,
        _sorted_counts(by_org),
        _sorted_counts(by_dataset),
        _sorted_counts(by_purpose),
        _sorted_counts(by_kind),
        _sorted_counts(by_result),
        {o: _sorted_counts(c) for o, c in sorted(org_result.items())},
        {d: _sorted_counts(c) for d, c in sorted(dataset_result.items())},
        tuple(found_violations),
        first,
        last,
        evidence,
        truncated,
        next_from_ms,
    )
