"""The validator set after each block, derived from the ACL state (``chain.validator_sets``
says what the sets are for).

``active_validators`` reads the validator records as they are now. ``history`` rebuilds
every change since genesis from the governance proposals the state keeps forever (and
``peer_addresses`` the address each added validator was given): each
approved ``add_validator``, ``remove_validator`` and ``remove_org`` is replayed, in the
order the chain decided them, over the genesis set, exactly as ``governance_rules``
executed it; the set after each block that decided one is a step of the history (a block
whose changes cancel out makes none). The validator records alone would not do: a node
removed and added again keeps only its last record.
"""

from __future__ import annotations

import bisect
from typing import Any

from acl import keys as K
from acl.state import StateReader, scan_prefix
from chain import codec
from chain.genesis import Genesis, Validator
from chain.validator_sets import ValidatorHistory, ValidatorSet

_CHANGES = ("add_validator", "remove_validator", "remove_org")


def active_validators(state: StateReader) -> tuple[Validator, ...]:
    """The active validators in ``state``, by node id."""
    found = [
        Validator(rec["node_id"], rec["org_id"], rec["public_key"])
        for rec in (codec.decode(v) for _, v in scan_prefix(state, K.VALIDATOR))
        if rec["status"] == "active"
    ]
    return tuple(sorted(found, key=lambda v: v.node_id))


def active_after_writes(
    before: dict[str, Validator], writes: tuple[tuple[bytes, bytes | None], ...]
) -> dict[str, Validator] | None:
    """The active validators after a block whose ``writes`` (sorted by key) are given,
    from those before it; None when the block wrote no validator record. Runs for every
    block, so the validator records are found by bisection, not by a pass over all."""
    start = bisect.bisect_left(writes, K.VALIDATOR, key=lambda w: w[0])
    end = start
    while end < len(writes) and writes[end][0][:1] == K.VALIDATOR:
        end += 1
    touched = writes[start:end]
    if not touched:
        return None
    after = dict(before)
    for _, raw in touched:
        if raw is None:
            continue
        rec = codec.decode(raw)
        if rec["status"] == "active":
            after[rec["node_id"]] = Validator(rec["node_id"], rec["org_id"], rec["public_key"])
        else:
            after.pop(rec["node_id"], None)
    return after


def peer_addresses(state: StateReader) -> dict[str, str]:
    """The peer address (``host:port``) governance gave each validator it added with one,
    by node id (the latest approved ``add_validator`` of a node wins)."""
    found: list[tuple[int, int, str, str]] = []
    for _, raw in scan_prefix(state, K.PROPOSAL):
        rec = codec.decode(raw)
        params = rec["params"]
        if (
            rec["status"] == "approved"
            and rec["action"] == "add_validator"
            and "node_address" in params
        ):
            found.append(
                (rec["decided"][0], rec["decided"][1], params["node_id"], params["node_address"])
            )
    return {node_id: address for _, _, node_id, address in sorted(found)}


def history(state: StateReader, genesis: Genesis) -> ValidatorHistory:
    """Every validator-set change up to the state's height, from the genesis set."""
    decided: list[tuple[int, int, dict[str, Any]]] = []
    for _, raw in scan_prefix(state, K.PROPOSAL):
        rec = codec.decode(raw)
        if rec["status"] == "approved" and rec["action"] in _CHANGES:
            height, index = rec["decided"][0], rec["decided"][1]
            decided.append((height, index, rec))
    decided.sort(key=lambda d: (d[0], d[1]))
    out = ValidatorHistory(genesis)
    active = {v.node_id: v for v in genesis.validators}
    for i, (height, _, rec) in enumerate(decided):
        params = rec["params"]
        if rec["action"] == "add_validator":
            node_id = params["node_id"]
            active[node_id] = Validator(node_id, params["org_id"], params["node_public_key"])
        elif rec["action"] == "remove_validator":
            active.pop(params["node_id"], None)
        else:
            for node_id in [n for n, v in active.items() if v.org_id == params["org_id"]]:
                del active[node_id]
        if i + 1 == len(decided) or decided[i + 1][0] != height:
            out.record(ValidatorSet.of(height, list(active.values())))
    return out
