"""The access check: may an organisation (or one of its identities) use a dataset for a
purpose at a time, and under which grant; if not, why not.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

from acl import keys as K
from acl.evidence import TxRef
from acl.lookups import dataset, grant
from acl.state import StateReader, scan_prefix
from acl.views import GrantView


@dataclass(frozen=True, slots=True)
class AccessDecision:
    """May ``org_id`` (optionally one identity of it) use ``dataset_id`` for ``purpose`` at
    ``at_ms``, and under which grant. ``reason``: ``owner``, ``grant`` or why not."""

    allowed: bool
    reason: str
    org_id: str
    identity: str | None
    dataset_id: str
    version: int | None
    purpose: str
    at_ms: int
    grant: GrantView | None
    considered: tuple[GrantView, ...]
    """Every grant of the pair, so the answer shows what was not in force and why."""
    evidence: tuple[TxRef, ...]

    def to_json(self) -> dict[str, Any]:
        return {
            "allowed": self.allowed,
            "reason": self.reason,
            "org_id": self.org_id,
            "identity": self.identity,
            "dataset_id": self.dataset_id,
            "version": self.version,
            "purpose": self.purpose,
            "at_ms": self.at_ms,
            "grant": None if self.grant is None else self.grant.to_json(),
            "considered": [g.to_json() for g in self.considered],
            "evidence": [r.to_json() for r in self.evidence],
        }


def access_check(
    state: StateReader,
    *,
    org_id: str,
    dataset_id: str,
    purpose: str,
    at_ms: int,
    identity: str | None = None,
    version: int | None = None,
) -> AccessDecision:
    """The same rule the machine applies to events, for any time (past grants included):
    owner organisation, or a grant to the org (or to this identity) covering the version
    and purpose, issued, inside its window and not revoked at ``at_ms``."""
    ds = dataset(state, dataset_id)
    base = [ds.registered]
    if ds.owner_org == org_id:
        return AccessDecision(
            True,
            "owner",
            org_id,
            identity,
            dataset_id,
            version,
            purpose,
            at_ms,
            None,
            (),
            tuple(base),
        )
    considered = tuple(grants_for_pair(state, dataset_id, org_id))
    chosen = None
    for g in considered:
        if (
            purpose in g.purposes
            and g.in_force_at(at_ms)
            and (g.version is None or g.version == version)
            and (g.grantee_identity is None or g.grantee_identity == identity)
        ):
            chosen = g
            break
    evidence = base + [r for g in considered for r in g.evidence()]
    if chosen is not None:
        return AccessDecision(
            True,
            "grant",
            org_id,
            identity,
            dataset_id,
            version,
            purpose,
            at_ms,
            chosen,
            considered,
            tuple(sorted(set(evidence))),
        )
    reason = (
        "no grant to this organisation"
        if not considered
        else _why_not(considered, purpose, at_ms, version, identity)
    )
    return AccessDecision(
        False,
        reason,
        org_id,
        identity,
        dataset_id,
        version,
        purpose,
        at_ms,
        None,
        considered,
        tuple(sorted(set(evidence))),
    )


def _why_not(
    grants: tuple[GrantView, ...],
    purpose: str,
    at_ms: int,
    version: int | None,
    identity: str | None,
) -> str:
    if not any(purpose in g.purposes for g in grants):
        return f"no grant covers purpose {purpose}"
    relevant = [g for g in grants if purpose in g.purposes]
    if all(g.revoked_ms is not None and g.revoked_ms <= at_ms for g in relevant):
        return "grant revoked"
    if not any(
        g.valid_from_ms <= at_ms < g.valid_until_ms and g.issued_ms <= at_ms for g in relevant
    ):
        return "no grant valid at that time"
    if not any(g.version is None or g.version == version for g in relevant):
        return "grant covers another version"
    return "grant is for another identity"


def grants_for_pair(state: StateReader, dataset_id: str, org_id: str) -> Iterator[GrantView]:
    """Every grant (revoked included) of one dataset to one organisation, in issue order."""
    prefix = K.BY_DATASET + K.dataset_key(dataset_id) + K.org_key(org_id)
    found = [grant(state, key[-32:]) for key, _ in scan_prefix(state, prefix)]
    return iter(sorted(found, key=lambda g: g.issued))
