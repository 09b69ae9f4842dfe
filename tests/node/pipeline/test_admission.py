"""Admission (issue 15 §4): the state machine's sender rule at the door, and a bounded
cost for requests full of bad signatures."""

from __future__ import annotations

import asyncio
from concurrent.futures import ThreadPoolExecutor
from typing import Any

import pytest

from acl import keys as K
from chain import codec, signing
from chain.tx import sign_tx
from node.pipeline import admission
from node.pipeline.admission import (
    BAD_SIGNATURES_MAX,
    VERIFY_CHUNK_TXS,
    Admitted,
    Candidate,
    Status,
    screen,
)
from storage.blockstore import TxLocation

CHAIN = "admission-test"
NOW_MS = 1_800_000_000_000
APP = signing.private_key_from_bytes(b"\x71" * 32)
GONE = signing.private_key_from_bytes(b"\x72" * 32)
OLD = signing.private_key_from_bytes(b"\x73" * 32)


def _state() -> dict[bytes, bytes]:
    """org1 with three identities: 'app' (active), 'gone' (revoked), 'moved' (its key
    OLD rotated out: epoch 1 is current)."""
    org = K.org_key("org1")
    state = {K.ORG + org: codec.encode({"status": "active"})}
    for name, key, status, epoch, current in (
        ("app", APP, "active", 0, 0),
        ("gone", GONE, "revoked", 0, 0),
        ("moved", OLD, "active", 0, 1),
    ):
        ik = K.identity_key("org1", name)
        state[K.KEY + signing.public_key_bytes(key)] = codec.encode([ik, epoch])
        state[K.IDENTITY + ik] = codec.encode(
            {"org_id": "org1", "name": name, "role": "app", "status": status, "key_epoch": current}
        )
    return state


class _View:
    def __init__(self, state: dict[bytes, bytes]) -> None:
        self.state = state

    def get(self, key: bytes) -> bytes | None:
        return self.state.get(key)

    def tx_location(self, tx_id: bytes) -> TxLocation | None:
        return None

    def __enter__(self) -> _View:
        return self

    def __exit__(self, *exc: object) -> None:
        return None


def _tx(key: signing.PrivateKey, nonce: int, *, forge: bool = False) -> bytes:
    raw = sign_tx(
        key, chain_id=CHAIN, kind="audit.data_access", nonce=nonce, timestamp_ms=NOW_MS, payload={}
    ).to_bytes()
    return raw[:-1] + bytes([raw[-1] ^ 1]) if forge else raw  # the signature is last


def _screen(
    raws: list[bytes], state: dict[bytes, bytes] | None = None
) -> tuple[list[Admitted | None], list[Candidate]]:
    view = _View(state or _state())
    with ThreadPoolExecutor(1) as pool:
        return asyncio.run(
            screen(
                raws,
                chain_id=CHAIN,
                snapshot=lambda: view,
                queued=lambda _: False,
                executor=pool,
                now_ms=NOW_MS,
            )
        )


def test_only_active_current_keys_pass_the_sender_rule() -> None:
    verdicts, passing = _screen([_tx(APP, 1), _tx(GONE, 2), _tx(OLD, 3)])
    assert verdicts[0] is None and len(passing) == 1
    assert verdicts[1] is not None and verdicts[1].error.startswith("sender_revoked")  # type: ignore[union-attr]
    assert verdicts[2] is not None and verdicts[2].error.startswith("key_rotated")  # type: ignore[union-attr]


@pytest.fixture
def verified(monkeypatch: pytest.MonkeyPatch) -> list[int]:
    """How many signatures each kernel call of admission verified."""
    calls: list[int] = []
    real = admission.verify_batch

    def counting(*args: Any) -> list[bool]:
        calls.append(len(args[0]))
        return real(*args)

    monkeypatch.setattr(admission, "verify_batch", counting)
    return calls


def test_a_request_of_junk_signatures_costs_one_chunk(verified: list[int]) -> None:
    """Seen: 10,000 junk signatures under a registered key, 10,000 verifications."""
    n = 3 * VERIFY_CHUNK_TXS
    verdicts, passing = _screen([_tx(APP, i, forge=True) for i in range(n)])
    assert passing == [] and sum(verified) == VERIFY_CHUNK_TXS
    errors = [v.error for v in verdicts if v is not None]
    assert errors[:VERIFY_CHUNK_TXS] == ["bad_signature"] * VERIFY_CHUNK_TXS
    assert all(e.startswith("not_verified") for e in errors[VERIFY_CHUNK_TXS:])
    assert all(v is not None and v.status is Status.REJECTED for v in verdicts)


def test_good_txs_are_all_verified_in_chunks_and_a_few_bad_ones_cost_nothing_more(
    verified: list[int],
) -> None:
    n = 2 * VERIFY_CHUNK_TXS + 7
    bad = list(range(0, n, 100))
    assert len(bad) < BAD_SIGNATURES_MAX  # under the budget
    raws = [_tx(APP, i, forge=i in bad) for i in range(n)]
    verdicts, passing = _screen(raws)
    assert verified == [VERIFY_CHUNK_TXS, VERIFY_CHUNK_TXS, 7]
    assert len(passing) == n - len(bad)
    assert [i for i, v in enumerate(verdicts) if v is not None] == bad


def test_governance_that_changes_validators_passes_admission() -> None:
    """Issue 15 §2: Raft and PBFT both follow governance, so admission refuses none of
    the governance txs that add or remove a validator (PBFT refused them before)."""
    from acl import kinds as k
    from acl import payloads as pl

    node_key = signing.public_key_bytes(signing.private_key_from_bytes(b"\x74" * 32))

    def gov(nonce: int, kind: str, payload: dict[str, Any]) -> bytes:
        return sign_tx(
            APP, chain_id=CHAIN, kind=kind, nonce=nonce, timestamp_ms=NOW_MS, payload=payload
        ).to_bytes()

    def propose(**fields: Any) -> dict[str, Any]:
        return pl.build(k.GOV_PROPOSE, **fields)

    state = _state()
    pending = b"\x0c" * 32  # an add_validator proposed before (a Raft-era or forged one)
    state[K.PROPOSAL + pending] = codec.encode(
        {"action": "add_validator", "params": {"org_id": "org1", "node_id": "n9"}}
    )
    raws = [
        gov(
            1,
            k.GOV_PROPOSE,
            propose(action="add_validator", org_id="org1", node_id="n4", node_public_key=node_key),
        ),
        gov(2, k.GOV_PROPOSE, propose(action="remove_validator", org_id="org1", node_id="n1")),
        gov(3, k.GOV_PROPOSE, propose(action="remove_org", org_id="org1")),  # runs a validator
        gov(4, k.GOV_APPROVE, pl.build(k.GOV_APPROVE, proposal_id=pending)),
        gov(5, k.GOV_PROPOSE, propose(action="remove_org", org_id="org2")),  # runs none
        gov(6, k.GOV_APPROVE, pl.build(k.GOV_APPROVE, proposal_id=b"\x0d" * 32)),  # unknown
    ]
    verdicts, passing = _screen(raws, state)
    assert verdicts == [None] * 6 and len(passing) == 6
