"""The sender rule: may a public key send txs now? One rule for the state machine, which
records a refused tx with its result, and for admission, which refuses it at the door
so that a revoked or rotated-out key cannot fill blocks with rejections."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from acl import keys as K
from acl.results import Result
from acl.state import StateError


def active_sender(
    load: Callable[[bytes], Any], public_key: bytes
) -> tuple[Any, bytes, int] | Result:
    """The identity record, its key and the key epoch of ``public_key``, if it may send: registered,
    its identity active, the key its current one, its organisation active. Otherwise
    the result that refuses it. ``load`` reads one decoded state record (None if absent)."""
    entry = load(K.KEY + public_key)
    if entry is None:
        return Result.UNKNOWN_SENDER
    ik, epoch = entry
    ident = load(K.IDENTITY + ik)
    if ident is None:
        raise StateError(f"key {public_key.hex()} points to a missing identity")
    if ident["status"] != "active":
        return Result.SENDER_REVOKED
    if ident["key_epoch"] != epoch:
        return Result.KEY_ROTATED
    org = load(K.ORG + K.org_key(ident["org_id"]))
    if org is None or org["status"] != "active":
        return Result.ORG_INACTIVE
    return ident, ik, epoch
