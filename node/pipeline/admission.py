"""Admission: what a tx must pass before it may wait in the mempool.

Strict decoding within the size limits, this chain's id, a timestamp inside the state
machine's freshness window (else it could only ever be recorded ``stale``), a registered
and active sender (by the state machine's own rule: an unregistered, revoked or
rotated-out key cannot fill blocks with rejections), not already committed or queued,
and a valid signature — verified in batches on a kernel thread, off the event loop.

Governance that changes the validator set passes here under either protocol: Raft and
PBFT both follow it (docs/architecture.md §9, "Validator sets").
"""

from __future__ import annotations

import asyncio
import enum
from collections.abc import Callable, Sequence
from concurrent.futures import Executor
from dataclasses import dataclass
from typing import Protocol

from acl.machine import TX_AGE_MAX_MS, TX_FUTURE_MAX_MS
from acl.records import decode_record
from acl.results import Result
from acl.senders import active_sender
from chain.hashing import leaf_hashes
from chain.signing import verify_batch
from chain.tx import Tx, decode_txs, signing_bytes_of
from storage.blockstore import TxLocation


class Status(enum.Enum):
    ACCEPTED = "accepted"
    """Queued here, or handed to the leader."""
    DUPLICATE = "duplicate"
    """Already waiting in the mempool."""
    COMMITTED = "committed"
    """Already in the chain."""
    REJECTED = "rejected"
    MEMPOOL_FULL = "mempool_full"
    NO_LEADER = "no_leader"


@dataclass(slots=True)  # not frozen: made per tx on the hot path, where frozen costs
class Admitted:
    tx_id: bytes | None
    status: Status
    error: str = ""
    location: TxLocation | None = None

    def to_json(self) -> dict[str, object]:
        doc: dict[str, object] = {
            "tx_id": self.tx_id.hex() if self.tx_id else None,
            "status": self.status.value,
        }
        if self.error:
            doc["error"] = self.error
        if self.location is not None:
            doc["height"] = self.location.height
            doc["position"] = self.location.position
        return doc


@dataclass(slots=True)  # not frozen, as Admitted
class Candidate:
    tx_id: bytes
    raw: bytes
    tx: Tx


class Lookup(Protocol):
    """One consistent view for a whole batch: state and tx index."""

    def get(self, key: bytes) -> bytes | None: ...

    def tx_location(self, tx_id: bytes) -> TxLocation | None: ...

    def __enter__(self) -> Lookup: ...

    def __exit__(self, *exc: object) -> None: ...


_SENDER_REFUSALS = {
    Result.UNKNOWN_SENDER: "the sender key is not a registered identity",
    Result.SENDER_REVOKED: "the sender identity was revoked",
    Result.KEY_ROTATED: "the sender key was rotated out: sign with the identity's current key",
    Result.ORG_INACTIVE: "the sender's organisation was removed from the consortium",
}


def _sender_refusal(view: Lookup, public_key: bytes) -> str | None:
    """Why ``public_key`` may not send now (the state machine's own rule,
    ``acl.senders``), or None if it may."""

    def load(key: bytes) -> object:
        raw = view.get(key)
        return None if raw is None else decode_record(raw)

    found = active_sender(load, public_key)
    if not isinstance(found, Result):
        return None
    return f"{found.label}: {_SENDER_REFUSALS.get(found, found.label)}"


VERIFY_CHUNK_TXS = 512
"""Signatures verified in one kernel call; between calls, the request's budget of bad
signatures is checked (``_verify``)."""
BAD_SIGNATURES_MAX = 32
NOT_VERIFIED_ERROR = (
    f"not_verified: this request already carried {BAD_SIGNATURES_MAX} bad signatures, "
    "so the rest of it was not checked"
)


async def screen(
    raws: Sequence[bytes],
    *,
    chain_id: str,
    snapshot: Callable[[], Lookup],
    queued: Callable[[bytes], bool],
    executor: Executor,
    now_ms: int,
) -> tuple[list[Admitted | None], list[Candidate]]:
    """Run every check but the mempool's; returns one verdict per input (None where the
    tx passed) and the passing txs, in input order."""
    verdicts: list[Admitted | None] = []
    # The txs still in the running, as parallel lists (their place in ``verdicts``, id,
    # raw, tx): the kernel takes the keys, messages and signatures as lists anyway.
    places: list[int] = []
    cand_ids: list[bytes] = []
    cand_raws: list[bytes] = []
    cand_txs: list[Tx] = []
    seen: set[bytes] = set()
    refusals: dict[bytes, str | None] = {}  # per sender key: a batch has few senders
    # A batch at a time: kernels screen the encodings (chain.codec.decode_many) and hash
    # the ids (multi-buffer SHA-256) in one call each.
    txs = decode_txs(raws)
    ids = leaf_hashes(raws)
    oldest_ms = now_ms - TX_AGE_MAX_MS
    newest_ms = now_ms + TX_FUTURE_MAX_MS
    add = verdicts.append
    with snapshot() as view:  # closed before the await below
        tx_location = view.tx_location
        for i, (raw, tx, tx_id) in enumerate(zip(raws, txs, ids, strict=True)):
            if type(tx) is not Tx:  # (an exact type test: the cheapest per tx)
                add(Admitted(None, Status.REJECTED, f"invalid tx: {tx}"))
                continue
            if tx.chain_id != chain_id:
                add(
                    Admitted(
                        tx_id,
                        Status.REJECTED,
                        f"tx is for chain {tx.chain_id!r}, this is {chain_id!r}",
                    )
                )
                continue
            if not oldest_ms <= tx.timestamp_ms <= newest_ms:
                add(
                    Admitted(
                        tx_id,
                        Status.REJECTED,
                        f"stale: tx time {tx.timestamp_ms} is outside [-24 h, +10 min] of now ({now_ms})",
                    )
                )
                continue
            loc = tx_location(tx_id)
            if loc is not None:
                add(Admitted(tx_id, Status.COMMITTED, location=loc))
                continue
            if tx_id in seen or queued(tx_id):
                add(Admitted(tx_id, Status.DUPLICATE))
                continue
            sender = tx.sender
            if sender in refusals:
                refusal = refusals[sender]
            else:
                refusal = refusals[sender] = _sender_refusal(view, sender)
            if refusal is not None:
                add(Admitted(tx_id, Status.REJECTED, refusal))
                continue
            seen.add(tx_id)
            add(None)
            places.append(i)
            cand_ids.append(tx_id)
            cand_raws.append(raw)
            cand_txs.append(tx)
    ok = await _verify(cand_txs, cand_raws, executor)
    passing: list[Candidate] = []
    keep = passing.append
    for i, tx_id, raw, tx, good in zip(places, cand_ids, cand_raws, cand_txs, ok, strict=True):
        if good:
            keep(Candidate(tx_id, raw, tx))
        elif good is None:
            verdicts[i] = Admitted(tx_id, Status.REJECTED, NOT_VERIFIED_ERROR)
        else:
            verdicts[i] = Admitted(tx_id, Status.REJECTED, "bad_signature")
    return verdicts, passing


async def _verify(
    txs: Sequence[Tx], raws: Sequence[bytes], executor: Executor
) -> list[bool | None]:
    """Each tx's signature verdict (``txs[i]`` is ``raws[i]`` decoded), in chunks of
    ``VERIFY_CHUNK_TXS``; once a request has shown ``BAD_SIGNATURES_MAX`` bad
    signatures, the rest are not verified (None). Before,
    a batch of junk signatures under a registered key cost up to 10,000 verifications a
    request; now at most a chunk and the budget. The budget is per request, not per
    sender key: anyone can put another member's key in a junk tx, so a per-key penalty
    would let an attacker silence that member."""
    loop = asyncio.get_running_loop()
    out: list[bool | None] = []
    bad = 0
    for start in range(0, len(txs), VERIFY_CHUNK_TXS):
        chunk = txs[start : start + VERIFY_CHUNK_TXS]
        if bad >= BAD_SIGNATURES_MAX:
            out += [None] * (len(txs) - start)
            break
        ok = await loop.run_in_executor(
            executor,
            verify_batch,
            [t.sender for t in chunk],
            [signing_bytes_of(raw) for raw in raws[start : start + VERIFY_CHUNK_TXS]],
            [t.signature for t in chunk],
        )
        bad += ok.count(False)
        out += ok
    return out
