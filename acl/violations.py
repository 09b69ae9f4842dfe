"""Violations: the audit events recorded as ``no_grant`` in a time range."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from acl import keys as K
from acl.audit_log import encode_time_bound
from acl.evidence import EVIDENCE_MAX, TxRef
from acl.lookups import QueryError
from acl.state import StateReader
from acl.views import EventView


@dataclass(frozen=True, slots=True)
class Violations:
    from_ms: int
    until_ms: int
    events: tuple[EventView, ...]
    evidence: tuple[TxRef, ...]
    truncated: bool

    def to_json(self) -> dict[str, Any]:
        return {
            "from_ms": self.from_ms,
            "until_ms": self.until_ms,
            "count": len(self.events),
            "events": [e.to_json() for e in self.events],
            "evidence": [r.to_json() for r in self.evidence],
            "truncated": self.truncated,
        }


def violations(
    state: StateReader, from_ms: int, until_ms: int, *, limit: int = EVIDENCE_MAX
) -> Violations:
    """Audit events recorded as ``no_grant`` in blocks with ``from_ms <= time < until_ms``."""
    found: list[EventView] = []
    truncated = False
    for key, _ in state.range(
        K.VIOLATION + encode_time_bound(from_ms), K.VIOLATION + encode_time_bound(until_ms)
    ):
        if len(found) >= limit:
            truncated = True
            break
        log_key = K.LOG + key[1:]
        raw = state.get(log_key)
        if raw is None:
            raise QueryError(f"violation index points to a missing event {key.hex()}")
        found.append(EventView.from_entry(log_key, raw))
    return Violations(from_ms, until_ms, tuple(found), tuple(e.tx for e in found), truncated)
