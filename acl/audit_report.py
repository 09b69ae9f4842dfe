"""The audit report: counts of the audit events in a time range, by organisation,
dataset, purpose, kind and result, with the first violations and events among them.

``audit_report`` reads the counts from the audit counters the machine keeps
(``acl.audit_counters``: prefix sums at block boundaries), so its cost does not grow with
the range: at most two seeks per label (organisation and result, dataset and result,
purpose, kind), plus the first ``REPORT_VIOLATIONS_MAX`` violations and the first
``REPORT_EVIDENCE_MAX`` events' places, read from the log; the rest of each list is paged
through from the cursor the report names. ``audit_report_scan`` counts the same by
reading every event of the range: the reference the counters are checked against.
"""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass, field
from typing import Any, Final

from acl import audit_counters as C
from acl import keys as K
from acl.audit_log import encode_time_bound, events
from acl.evidence import TxRef
from acl.lookups import QueryError
from acl.records import event_tx_id
from acl.results import Result, label
from acl.state import StateReader
from acl.views import EventView

REPORT_VIOLATIONS_MAX: Final = 200
"""Violations one report lists (the first of its range, in chain order: one explorer page,
``node.api.explorer.PAGE_LIMIT_MAX``); all of them are counted (``by_result["no_grant"]``)
and ``/v1/explore/violations`` pages through the rest from ``violations_next_cursor``."""
REPORT_EVIDENCE_MAX: Final = 1_000
"""Events whose places (``TxRef``) one report lists as ``evidence`` (the first of its
range; ``truncated``: more exist); ``/v1/explore/events`` pages through the rest from
``evidence_next_cursor``. (Before the counters, 10,000: the cost of listing them, not of
counting, then dominated a report.)"""


@dataclass(frozen=True, slots=True)
class AuditReport:
    """Counts of audit events in ``[from_ms, until_ms)``: by organisation, dataset,
    purpose, kind and result, plus the (organisation, result) and (dataset, result) cross
    tables an auditor reads first. ``first``/``last``: the range's first and last events;
    ``evidence``: the first ``REPORT_EVIDENCE_MAX`` events' places (``truncated``: more
    exist). A ``*_next_cursor`` is the lowercase hex of the last listed event's place
    (block ms u64, height u64, index u32: its log key after the prefix), the ``cursor`` of
    the explorer's lists for the same ``from_ms`` and ``until_ms``."""

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
    """Always None: the counts cover the whole range (a report once stopped at an event
    cap and named where to go on; the field stays for the clients that read it)."""
    violations_truncated: bool = False
    """More violations in the range than ``violations`` lists."""
    violations_next_cursor: str | None = None
    """When truncated: where ``/v1/explore/violations`` goes on."""
    evidence_next_cursor: str | None = None
    """When ``truncated``: where ``/v1/explore/events`` goes on."""

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
            "violations_truncated": self.violations_truncated,
            "violations_next_cursor": self.violations_next_cursor,
            "evidence_next_cursor": self.evidence_next_cursor,
        }


def _sorted_counts(counter: Counter[str]) -> dict[str, int]:
    return {key: counter[key] for key in sorted(counter)}


def _place(e: EventView) -> bytes:
    return K.time_position(e.timestamp_ms, e.tx.height, e.tx.index)


def _report(
    from_ms: int,
    until_ms: int,
    total: int,
    by_org: Counter[str],
    by_dataset: Counter[str],
    by_purpose: Counter[str],
    by_kind: Counter[str],
    by_result: Counter[str],
    org_result: dict[str, Counter[str]],
    dataset_result: dict[str, Counter[str]],
    found_violations: list[EventView],
    last: TxRef | None,
    refs: list[tuple[TxRef, bytes]],
) -> AuditReport:
    """The report from its counts and the first violations and events (with their
    places) of the range, in chain order: one more of each than its cap when more exist."""
    shown = tuple(found_violations[:REPORT_VIOLATIONS_MAX])
    more_violations = len(found_violations) > len(shown)
    listed = refs[:REPORT_EVIDENCE_MAX]
    truncated = len(refs) > len(listed)
    # In chain order, so already sorted and distinct (as ``cap_evidence`` would make them).
    evidence = tuple(ref for ref, _ in listed)
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
        shown,
        evidence[0] if evidence else None,
        last,
        evidence,
        truncated,
        None,
        more_violations,
        _place(shown[-1]).hex() if more_violations else None,
        listed[-1][1].hex() if truncated else None,
    )


def audit_report(state: StateReader, from_ms: int, until_ms: int) -> AuditReport:
    """The report of the blocks with ``from_ms <= block time < until_ms``, counted by the
    audit counters. An event using several datasets counts once per dataset in
    ``by_dataset``; events without a purpose count under ``"none"``."""
    counts = C.range_counts(state, from_ms, until_ms)
    by_org: Counter[str] = Counter()
    by_dataset: Counter[str] = Counter()
    by_purpose: Counter[str] = Counter()
    by_kind: Counter[str] = Counter()
    by_result: Counter[str] = Counter()
    org_result: dict[str, Counter[str]] = {}
    dataset_result: dict[str, Counter[str]] = {}
    for c in counts.labels:
        if c.dim == C.DIM_ORG_RESULT:
            result = label(c.result)
            by_org[c.name] += c.count
            by_result[result] += c.count
            org_result.setdefault(c.name, Counter())[result] += c.count
        elif c.dim == C.DIM_DATASET_RESULT:
            result = label(c.result)
            by_dataset[c.name] += c.count
            dataset_result.setdefault(c.name, Counter())[result] += c.count
        elif c.dim == C.DIM_PURPOSE:
            by_purpose[c.name] += c.count
        elif c.dim == C.DIM_KIND:
            by_kind[c.name] += c.count
    if sum(by_result.values()) != counts.total:
        raise QueryError(
            f"the audit counters disagree: {counts.total} events, "
            f"{sum(by_result.values())} by organisation"
        )
    lo, hi = encode_time_bound(from_ms), encode_time_bound(until_ms)
    refs: list[tuple[TxRef, bytes]] = []
    if counts.total:
        for key, raw in state.range(K.LOG + lo, K.LOG + hi):
            if len(refs) > REPORT_EVIDENCE_MAX:
                break
            place = key[1:]
            _, height, index = K.parse_time_position(place)
            refs.append((TxRef(height, index, event_tx_id(raw)), place))
    found: list[EventView] = []
    if by_result.get(label(Result.NO_GRANT)):
        for key, _ in state.range(K.VIOLATION + lo, K.VIOLATION + hi):
            if len(found) > REPORT_VIOLATIONS_MAX:
                break
            log_key = K.LOG + key[1:]
            entry = state.get(log_key)
            if entry is None:
                raise QueryError(f"violation index points to a missing event {key.hex()}")
            found.append(EventView.from_entry(log_key, entry))
    return _report(
        from_ms,
        until_ms,
        counts.total,
        by_org,
        by_dataset,
        by_purpose,
        by_kind,
        by_result,
        org_result,
        dataset_result,
        found,
        counts.last,
        refs,
    )


def audit_report_scan(state: StateReader, from_ms: int, until_ms: int) -> AuditReport:
    """``audit_report`` by one pass over every event of the range (its cost grows with
    the range): the reference the counters are checked against."""
    by_org: Counter[str] = Counter()
    by_dataset: Counter[str] = Counter()
    by_purpose: Counter[str] = Counter()
    by_kind: Counter[str] = Counter()
    by_result: Counter[str] = Counter()
    org_result: dict[str, Counter[str]] = {}
    dataset_result: dict[str, Counter[str]] = {}
    found_violations: list[EventView] = []
    refs: list[tuple[TxRef, bytes]] = []
    total = 0
    last: TxRef | None = None
    for e in events(state, from_ms, until_ms):
        total += 1
        result = label(e.result)
        by_org[e.org_id] += 1
        by_purpose[e.purpose or C.NO_PURPOSE] += 1
        by_kind[e.kind] += 1
        by_result[result] += 1
        org_result.setdefault(e.org_id, Counter())[result] += 1
        for d in sorted({u[0] for u in e.uses}):
            by_dataset[d] += 1
            dataset_result.setdefault(d, Counter())[result] += 1
        if e.violation and len(found_violations) <= REPORT_VIOLATIONS_MAX:
            found_violations.append(e)
        if len(refs) <= REPORT_EVIDENCE_MAX:
            refs.append((e.tx, _place(e)))
        last = e.tx
    return _report(
        from_ms,
        until_ms,
        total,
        by_org,
        by_dataset,
        by_purpose,
        by_kind,
        by_result,
        org_result,
        dataset_result,
        found_violations,
        last,
        refs,
    )
