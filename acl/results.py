"""Result codes: what the state machine decided about each tx, stored on chain with it.

The numbers are part of the chain format (they are in every block and its
``results_root``): never renumber or reuse one; add new codes at the end. Users see the
lowercase names (``no_grant``).

Two results apply a tx: ``ACCEPTED`` and ``NO_GRANT`` (a well-formed audit event whose
data use no grant in force allowed: recorded, because a denied or unlicensed use is audit
evidence, and counted as a violation). Every other code is a rejection: the tx leaves the
ACL state exactly as it was.
"""

from __future__ import annotations

from enum import IntEnum


class Result(IntEnum):
    ACCEPTED = 0
    """Applied."""
    NO_GRANT = 1
    """A well-formed audit event that no grant in force at block time allowed: recorded as a violation."""
    MALFORMED = 2
    """The payload does not match its kind's schema (missing, unknown or ill-typed field)."""
    UNAUTHORIZED = 3
    """The sender's role or organisation may not do this (e.g. not a steward of the owner)."""
    UNKNOWN_SENDER = 4
    """The sender key is not a registered identity."""
    REPLAYED = 5
    """A tx with this id was already applied."""
    UNKNOWN_KIND = 6
    """The tx kind is not in ``acl.kinds.KINDS``."""
    WRONG_CHAIN = 7
    """The tx names another chain id, or a tx version this state machine does not speak."""
    UNSUPPORTED_VERSION = 8
    """The payload schema version ``v`` is not one this node knows for the kind."""
    SENDER_REVOKED = 9
    """The sender identity was revoked."""
    KEY_ROTATED = 10
    """The sender key was replaced by a rotation; the identity must sign with its new key."""
    ORG_INACTIVE = 11
    """The sender's organisation (or a named one) was removed from the consortium."""
    NOT_FOUND = 12
    """A referenced dataset, version, grant, identity, organisation, proposal or model does not exist."""
    ALREADY_EXISTS = 13
    """The id (dataset, identity, key, organisation, validator, model version) is taken."""
    INVALID_STATE = 14
    """The target is not in a state that allows this (grant already revoked, proposal closed, ...)."""
    DUPLICATE_VOTE = 15
    """This organisation already voted on the proposal."""
    STALE = 16
    """The tx timestamp is outside the freshness window around the block timestamp."""
    INVALID_WINDOW = 17
    """A validity window is empty or inverted (``valid_until_ms <= valid_from_ms``)."""

    @property
    def label(self) -> str:
        """The name users see: ``no_grant``."""
        return self.name.lower()

    @property
    def applied(self) -> bool:
        """Whether a tx with this result changed the ACL state."""
        return self in (Result.ACCEPTED, Result.NO_GRANT)


def label(code: int) -> str:
    """The user-facing name of a stored result code, ``unknown_<n>`` for a code this
    version does not know (a newer node may have added it)."""
    known = _LABELS.get(code)
    return known if known is not None else f"unknown_{code}"


_LABELS = {r.value: r.label for r in Result}  # every committed tx's answer names one
