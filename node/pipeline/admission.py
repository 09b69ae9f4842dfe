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
from chain.tx import Tx, TxError, decode_txs, signing_bytes_of
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
    decoded: list[tuple[int, bytes, bytes, Tx]] = []
    seen: set[bytes] = set()
    refusals: dict[bytes, str | None] = {}  # per sender key: a batch has few senders
    # A batch at a time: kernels screen the encodings (chain.codec.decode_many) and hash
    # the ids (multi-buffer SHA-256) in one call each.
    txs = decode_txs(raws)
    ids = leaf_hashes(raws)
    with snapshot() as view:  # closed before the await below
        for i, (raw, tx, tx_id) in enumerate(zip(raws, txs, ids, strict=True)):
            if isinstance(tx, TxError):
                verdicts.append(Admitted(None, Status.REJECTED, f"invalid tx: {tx}"))
                continue
            if tx.chain_id != chain_id:
                verdicts.append(
                    Admitted(
                        tx_id,
                        Status.REJECTED,
                        f"tx is for chain {tx.chain_id!r}, this is {chain_id!r}",
                    )
                )
                continue
            if not now_ms - TX_AGE_MAX_MS <= tx.timestamp_ms <= now_ms + TX_FUTURE_MAX_MS:
                verdicts.append(
                    Admitted(
                        tx_id,
                        Status.REJECTED,
                        f"stale: tx time {tx.timestamp_ms} is outside [-24 h, +10 min] of now ({now_ms})",
                    )
                )
                continue
            loc = view.tx_location(tx_id)
            if loc is not None:
                verdicts.append(Admitted(tx_id, Status.COMMITTED, location=loc))
                continue
            if tx_id in seen or queued(tx_id):
                verdicts.append(Admitted(tx_id, Status.DUPLICATE))
                continue
            if tx.sender not in refusals:
                refusals[tx.sender] = _sender_refusal(view, tx.sender)
            refusal = refusals[tx.sender]
            if refusal is not None:
                verdicts.append(Admitted(tx_id, Status.REJECTED, refusal))
                continue
            seen.add(tx_id)
            verdicts.append(None)
            decoded.append((i, tx_id, raw, tx))
    ok = await _verify(decoded, executor)
    passing: list[Candidate] = []
    for (i, tx_id, raw, tx), good in zip(decoded, ok, strict=True):
        if good:
            passing.append(Candidate(tx_id, raw, tx))
        elif good is None:
            verdicts[i] = Admitted(tx_id, Status.REJECTED, NOT_VERIFIED_ERROR)
        else:
            verdicts[i] = Admitted(tx_id, Status.REJECTED, "bad_signature")
    return verdicts, passing


async def _verify(
    decoded: Sequence[tuple[int, bytes, bytes, Tx]], executor: Executor
) -> list[bool | None]:
    """Each tx's signature verdict, in chunks of ``VERIFY_CHUNK_TXS``; once a request has
    shown ``BAD_SIGNATURES_MAX`` bad signatures, the rest are not verified (None). Before,
    a batch of junk signatures under a registered key cost up to 10,000 verifications a
    request; now at most a chunk and the budget. The budget is per request, not per
    sender key: anyone can put another member's key in a junk tx, so a per-key penalty
    would let an attacker silence that member."""
    loop = asyncio.get_running_loop()
    out: list[bool | None] = []
    bad = 0
    for start in range(0, len(decoded), VERIFY_CHUNK_TXS):
        chunk = decoded[start : start + VERIFY_CHUNK_TXS]
        if bad >= BAD_SIGNATURES_MAX:
            out += [None] * (len(decoded) - start)
            break
        ok = await loop.run_in_executor(
            executor,
            verify_batch,
            [t.sender for *_, t in chunk],
            [signing_bytes_of(raw) for _, _, raw, _ in chunk],
            [t.signature for *_, t in chunk],
        )
        bad += ok.count(False)
        out += ok
    return out
