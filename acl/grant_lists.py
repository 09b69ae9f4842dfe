"""The grants of a dataset or to an organisation: all of them, or those in force at a time."""

from __future__ import annotations

import itertools
from dataclasses import dataclass
from typing import Any

from acl import keys as K
from acl.evidence import TxRef, cap_evidence
from acl.lookups import grant
from acl.state import StateReader, scan_prefix
from acl.views import GrantView


@dataclass(frozen=True, slots=True)
class GrantList:
    subject: str
    at_ms: int | None
    grants: tuple[GrantView, ...]
    evidence: tuple[TxRef, ...]
    truncated: bool = False
    """More than ``GRANTS_READ_MAX`` grants: these are the first read (page through all
    of them with ``GET /v1/explore/grants``)."""

    def to_json(self) -> dict[str, Any]:
        return {
            "subject": self.subject,
            "in_force_at_ms": self.at_ms,
            "grants": [g.to_json() for g in self.grants],
            "evidence": [r.to_json() for r in self.evidence],
            "truncated": self.truncated,
        }


GRANTS_READ_MAX = 10_000
"""Grants one list reads at most: a query's cost must not grow without bound."""


def _grant_list(state: StateReader, subject: str, prefix: bytes, at_ms: int | None) -> GrantList:
    keys = [key for key, _ in itertools.islice(scan_prefix(state, prefix), GRANTS_READ_MAX + 1)]
    truncated = len(keys) > GRANTS_READ_MAX
    found = sorted(
        (grant(state, key[-32:]) for key in keys[:GRANTS_READ_MAX]), key=lambda g: g.issued
    )
    if at_ms is not None:
        found = [g for g in found if g.in_force_at(at_ms)]
    evidence, _ = cap_evidence(r for g in found for r in g.evidence())
    return GrantList(subject, at_ms, tuple(found), evidence, truncated)


def grants_by_dataset(
    state: StateReader, dataset_id: str, *, in_force_at_ms: int | None = None
) -> GrantList:
    """Grants of a dataset (all, or only those in force at a time), in issue order."""
    return _grant_list(state, dataset_id, K.BY_DATASET + K.dataset_key(dataset_id), in_force_at_ms)


def grants_by_grantee(
    state: StateReader, org_id: str, *, in_force_at_ms: int | None = None
) -> GrantList:
    """Grants to an organisation (and its identities), in issue order."""
    return _grant_list(state, org_id, K.BY_GRANTEE + K.org_key(org_id), in_force_at_ms)
