"""Governance changes who certifies blocks (issue 15 §2): the set in force at each height
follows the chain, the certificate collector counts the signatures of that set only, and
receipts carry the certified history of the changes, which ``verify-receipt`` walks from
the genesis set. On a real LMDB store, with the ledger applying real governance txs."""

from __future__ import annotations

import dataclasses
import json
from collections.abc import Iterator
from pathlib import Path

import pytest
from click.testing import CliRunner

from acl import kinds as k
from acl import payloads as pl
from acl import validator_history
from chain import signing
from chain.block import Block
from chain.genesis import Genesis, Identity, Organisation, Validator
from chain.receipt import Receipt, ReceiptError, verify_receipt
from chain.tx import sign_tx
from chain.validator_sets import (
    HeaderSignature,
    SetChange,
    ValidatorHistory,
    ValidatorSet,
    header_signing_bytes,
)
from node.cli.verify_receipt import command as verify_receipt_cli
from node.pipeline.certificates import CertificateCollector
from node.pipeline.ledger import Applied, ApplyOutcome, Ledger
from node.pipeline.validator_proofs import with_validator_sets
from node.transport.messages import HeaderSig
from storage.lmdb_store import LmdbBlockStore
from storage.receipts import build_receipts

CHAIN = "vsets"
ADMIN = signing.private_key_from_bytes(b"\x51" * 32)
NODES = {f"n{i}": signing.private_key_from_bytes(bytes([0x70 + i]) * 32) for i in (1, 2, 3, 4, 5)}
GENESIS = Genesis(
    chain_id=CHAIN,
    consensus="raft",
    timestamp_ms=1_000,
    organisations=(Organisation("org1", "Org 1"), Organisation("org2", "Org 2")),
    identities=(Identity("org1", "admin", "admin", signing.public_key_bytes(ADMIN)),),
    validators=tuple(
        Validator(n, org, signing.public_key_bytes(NODES[n]))
        for n, org in (("n1", "org1"), ("n2", "org1"), ("n3", "org2"))
    ),
    governance_quorum=1,
)


class Chain:
    """A ledger on a real store, the history a node keeps, and every node's signatures."""

    def __init__(self, path: Path, genesis: Genesis = GENESIS) -> None:
        self.store = LmdbBlockStore.open(path)
        self.ledger = Ledger(self.store, genesis, signing.verify_batch)
        self.ledger.ensure_genesis()
        self.history = ValidatorHistory(genesis)
        self.certs = CertificateCollector(self.history, "n2", NODES["n2"])
        self.nonce = 0
        self.ts = 2_000

    def tx(self, kind: str, payload: dict[str, object]) -> bytes:
        self.nonce += 1
        return sign_tx(
            ADMIN,
            chain_id=CHAIN,
            kind=kind,
            nonce=self.nonce,
            timestamp_ms=self.ts,
            payload=payload,
        ).to_bytes()

    def commit(self, raw: bytes) -> tuple[Block, Applied]:
        self.ts += 1_000
        block, _ = self.ledger.build([raw], timestamp_ms=self.ts, proposer="n2", round=1)
        assert block is not None
        applied = self.ledger.apply(block.to_bytes())
        assert applied.outcome is ApplyOutcome.APPLIED
        if applied.validators is not None:  # as the node does, before it signs
            self.history.record(ValidatorSet.of(block.header.height, applied.validators))
        self.certs.sign_applied(block.header)
        return block, applied

    def sig(self, node: str, block: Block, history: ValidatorHistory | None = None) -> HeaderSig:
        h = block.header
        msg = (history or self.history).signing_bytes(h.height, h.hash)
        return HeaderSig(node, h.height, h.hash, signing.sign(NODES[node], msg))

    def certify(self, block: Block, nodes: list[str]) -> list[tuple[str, bytes]]:
        for n in nodes:
            assert self.certs.add(self.sig(n, block)), n
        cert = self.certs.ready(block.header.height)
        assert cert is not None
        self.store.put_certificate(block.header.height, cert)
        return cert


def _register(c: Chain, name: str) -> bytes:
    key = signing.public_key_bytes(signing.private_key_from_bytes(name.encode().ljust(32, b".")))
    return c.tx(k.IDENTITY_REGISTER, pl.identity_register(name, "app", key))


def _add(c: Chain, node: str) -> bytes:
    payload = pl.build(
        k.GOV_PROPOSE,
        action="add_validator",
        org_id="org1",
        node_id=node,
        node_public_key=signing.public_key_bytes(NODES[node]),
    )
    return c.tx(k.GOV_PROPOSE, payload)


def _remove(c: Chain, node: str) -> bytes:
    payload = pl.build(k.GOV_PROPOSE, action="remove_validator", org_id="org1", node_id=node)
    return c.tx(k.GOV_PROPOSE, payload)


@pytest.fixture
def chain(tmp_path: Path) -> Iterator[Chain]:
    c = Chain(tmp_path / "store")
    yield c
    c.store.close()


def _receipts(c: Chain) -> dict[int, Receipt]:
    ids = {}
    for h in range(1, c.store.height + 1):
        block = c.store.block(h)
        assert block is not None
        ids[block.tx_ids()[0]] = h
    found = build_receipts(c.store, list(ids))
    found = with_validator_sets(c.store, found, c.history, c.store.certificate)
    return {ids[t]: r for t, r in found.items()}


def _story(c: Chain) -> dict[int, Receipt]:
    """Block 1: a plain tx; 2: n4 added; 3: a plain tx; 4: n1 removed; 5: a plain tx."""
    b1, a1 = c.commit(_register(c, "app1"))
    assert a1.validators is None
    c.certify(b1, ["n1"])  # n2 (this node) + n1: 2 of 3
    b2, a2 = c.commit(_add(c, "n4"))
    assert a2.validators is not None
    assert [v.node_id for v in a2.validators] == ["n1", "n2", "n3", "n4"]
    # Block 2 made the change: the set before it (n1..n3) certifies it, quorum 2; n4 not yet.
    assert not c.certs.add(c.sig("n4", b2))
    assert c.certs.quorum_at(2) == 2
    c.certify(b2, ["n3"])
    b3, _ = c.commit(_register(c, "app2"))
    assert c.certs.quorum_at(3) == 3  # 4 validators from block 3 on
    assert c.certs.add(c.sig("n4", b3))  # the added validator's signature counts now
    assert c.certs.ready(3) is None  # n2 + n4: 2 of the 3 needed
    c.certify(b3, ["n1"])
    b4, a4 = c.commit(_remove(c, "n1"))
    assert a4.validators is not None and [v.node_id for v in a4.validators] == ["n2", "n3", "n4"]
    c.certify(b4, ["n1", "n4"])  # n1 still signs the block that removes it
    b5, _ = c.commit(_register(c, "app3"))
    assert not c.certs.add(c.sig("n1", b5))  # removed: its signature stops counting
    assert c.certs.quorum_at(5) == 2
    c.certify(b5, ["n4"])
    return _receipts(c)


def test_the_set_in_force_follows_governance_and_receipts_prove_it(chain: Chain) -> None:
    receipts = _story(chain)
    # The history a node rebuilds from the state at start is the one it followed.
    with chain.store.snapshot() as view:
        rebuilt = validator_history.history(view, GENESIS)
    assert rebuilt.changes() == chain.history.changes()
    assert [s.since_height for s in rebuilt.changes()] == [2, 4]
    assert rebuilt.in_force(2).node_ids == ("n1", "n2", "n3")
    assert rebuilt.in_force(3).node_ids == ("n1", "n2", "n3", "n4")
    assert rebuilt.in_force(5).node_ids == ("n2", "n3", "n4")
    # Old receipts (before any change) are version 1 and carry no history.
    assert receipts[1].validator_sets == ()
    assert receipts[1].to_json()["version"] == 1
    assert [len(receipts[h].validator_sets) for h in range(1, 6)] == [0, 1, 1, 2, 2]
    for h, r in receipts.items():
        check = verify_receipt(Receipt.from_json(json.loads(json.dumps(r.to_json()))), GENESIS)
        assert check.height == h
    assert verify_receipt(receipts[5], GENESIS).validators == ("n2", "n3", "n4")
    assert verify_receipt(receipts[3], GENESIS).quorum == 3


def test_a_forged_or_incomplete_history_is_refused(chain: Chain) -> None:
    r5 = _story(chain)[5]
    add_n4, remove_n1 = r5.validator_sets
    # A step left out: block 5's validators signed for the set made at 4, so the
    # certificate checked against the set the short history gives does not verify.
    with pytest.raises(ReceiptError, match=r"block 5: certificate has 0 valid signatures"):
        verify_receipt(dataclasses.replace(r5, validator_sets=(add_n4,)), GENESIS)
    # A set never certified: the change at 4 claimed to add n5 as well.
    n5 = Validator("n5", "org1", signing.public_key_bytes(NODES["n5"]))
    forged_set = ValidatorSet.of(4, [*remove_n1.validators.validators, n5])
    forged = dataclasses.replace(remove_n1, validators=forged_set)
    with pytest.raises(
        ReceiptError, match=r"validator-set change at height 4: certificate has 0 valid"
    ):
        verify_receipt(dataclasses.replace(r5, validator_sets=(add_n4, forged)), GENESIS)
    # A step signed by a removed validator: n1 (removed at 4) and an outsider "certify" a
    # change at 5 that hands the chain to n5.
    b5 = r5.header
    fake_set = ValidatorSet.of(5, [n5])
    hist = ValidatorHistory(GENESIS, [add_n4.validators, remove_n1.validators, fake_set])
    msg = hist.signing_bytes(5, b5.hash)
    fake = SetChange(
        b5,
        tuple(HeaderSignature(n, signing.sign(NODES[n], msg)) for n in ("n1", "n5")),
        fake_set,
    )
    with pytest.raises(
        ReceiptError,
        match=r"change at height 5: certificate has 0 valid signatures of the validators in "
        r"force \(n2, n3, n4\), 2 needed; signed by n1, n5, not in that set",
    ):
        verify_receipt(dataclasses.replace(r5, validator_sets=(add_n4, remove_n1, fake)), GENESIS)
    # Out of order, and past the receipt's height.
    with pytest.raises(ReceiptError, match="increasing height order"):
        verify_receipt(dataclasses.replace(r5, validator_sets=(remove_n1, add_n4)), GENESIS)
    r3 = _receipts(chain)[3]
    with pytest.raises(ReceiptError, match="past the height 3"):
        verify_receipt(dataclasses.replace(r3, validator_sets=(add_n4, remove_n1)), GENESIS)


def test_verify_receipt_command_walks_the_history(chain: Chain, tmp_path: Path) -> None:
    receipts = _story(chain)
    genesis_file = tmp_path / "genesis.json"
    genesis_file.write_text(GENESIS.to_json())
    runner = CliRunner()
    for h in (1, 3, 5):
        f = tmp_path / f"r{h}.json"
        f.write_text(json.dumps({"receipt": receipts[h].to_json()}))
        out = runner.invoke(verify_receipt_cli, [str(f), "--genesis", str(genesis_file), "--json"])
        assert out.exit_code == 0, out.output
        doc = json.loads(out.output.splitlines()[-1])
        assert doc["valid"] and doc["height"] == h
    assert doc["validators"] == ["n2", "n3", "n4"] and doc["validator_set_changes"] == 2
    text = runner.invoke(
        verify_receipt_cli, [str(tmp_path / "r5.json"), "--genesis", str(genesis_file)]
    )
    assert "(2 of 3, quorum 2; validators in force n2, n3, n4 after 2 validator-set" in text.output
    doc5 = receipts[5].to_json()
    doc5["validator_sets"] = doc5["validator_sets"][:1]
    bad = tmp_path / "bad.json"
    bad.write_text(json.dumps(doc5))
    out = runner.invoke(verify_receipt_cli, [str(bad), "--genesis", str(genesis_file), "--json"])
    assert out.exit_code == 1
    assert "block 5: certificate has 0 valid signatures" in json.loads(out.output)["error"]


def test_a_restarted_collector_checks_old_heights_with_their_set(chain: Chain) -> None:
    _story(chain)
    with chain.store.snapshot() as view:
        rebuilt = validator_history.history(view, GENESIS)
    certs = CertificateCollector(rebuilt, "n3", NODES["n3"], applied_height=chain.store.height)
    b2, b5 = chain.store.block(2), chain.store.block(5)
    assert b2 is not None and b5 is not None
    assert certs.add(chain.sig("n1", b2))  # n1 was in force at 2
    assert not certs.add(chain.sig("n1", b5))  # not at 5
    assert not certs.add(chain.sig("n4", b5, ValidatorHistory(GENESIS)))  # the old message
    assert certs.add(chain.sig("n4", b5))
    assert header_signing_bytes(b2.header.hash) != rebuilt.signing_bytes(2, b2.header.hash)


def test_a_raft_snapshot_proves_its_validator_set_as_receipts_do(chain: Chain) -> None:
    """A follower takes a snapshot of a block certified after changes only with the
    certified changes: checked against the genesis set alone, its certificate fails."""
    from node.consensus_driver import snapshot_data as sd
    from node.pipeline.validator_proofs import set_changes

    _story(chain)
    head = chain.store.header(5)
    assert head is not None
    local = sd.local_data(5, head.hash)
    cert = chain.store.certificate(5)
    changes = set_changes(chain.store, chain.history, chain.store.certificate, 5)
    assert sd.check_certified(sd.certified_data(local, cert, changes), GENESIS) == (5, head.hash)
    with pytest.raises(sd.SnapshotDataError, match="block 5 has 0 valid signatures, quorum is 2"):
        sd.check_certified(sd.certified_data(local, cert), GENESIS)
    n5 = Validator("n5", "org1", signing.public_key_bytes(NODES["n5"]))
    forged = dataclasses.replace(
        changes[1], validators=ValidatorSet.of(4, [*changes[1].validators.validators, n5])
    )
    with pytest.raises(sd.SnapshotDataError, match="snapshot's validator-set change at height 4"):
        sd.check_certified(sd.certified_data(local, cert, [changes[0], forged]), GENESIS)


def test_an_added_validator_can_be_given_a_peer_address(chain: Chain) -> None:
    """``node_address`` (host:port) on ``add_validator`` only; the nodes dial what the
    approved proposals say (``peer_addresses``), the latest for a node."""
    from acl.payloads import PayloadError

    key = signing.public_key_bytes(NODES["n4"])
    fields = dict(action="add_validator", org_id="org1", node_id="n4", node_public_key=key)
    for bad in ("n4", "n4:0", "n4:65536", "a b:1", ""):
        with pytest.raises(PayloadError, match="node_address"):
            pl.build(k.GOV_PROPOSE, **fields, node_address=bad)
    with pytest.raises(PayloadError, match="add_validator needs"):
        pl.build(
            k.GOV_PROPOSE,
            action="remove_validator",
            org_id="org1",
            node_id="n3",
            node_address="h:1",
        )
    chain.commit(
        chain.tx(k.GOV_PROPOSE, pl.build(k.GOV_PROPOSE, **fields, node_address="[::1]:7004"))
    )
    chain.commit(_remove(chain, "n4"))
    chain.commit(
        chain.tx(k.GOV_PROPOSE, pl.build(k.GOV_PROPOSE, **fields, node_address="n4.example:7004"))
    )
    with chain.store.snapshot() as view:
        assert validator_history.peer_addresses(view) == {"n4": "n4.example:7004"}
        rebuilt = validator_history.history(view, GENESIS)
    # Removed and added again: three changes, the records alone would show one.
    assert [s.since_height for s in rebuilt.changes()] == [1, 2, 3]
    assert rebuilt.changes() == chain.history.changes()


def test_removing_an_organisation_removes_its_validators(chain: Chain) -> None:
    """``remove_org`` takes the organisation's validators with it: the set, the history
    rebuilt from the proposals and the receipts all say so."""
    payload = pl.build(k.GOV_PROPOSE, action="remove_org", org_id="org2")
    block, applied = chain.commit(chain.tx(k.GOV_PROPOSE, payload))
    assert applied.validators is not None
    assert [v.node_id for v in applied.validators] == ["n1", "n2"]
    chain.certify(block, ["n3"])  # org2's node still signs the block that removes it
    after, _ = chain.commit(_register(chain, "app9"))
    assert not chain.certs.add(chain.sig("n3", after))
    assert chain.certs.ready(after.header.height) is None  # n2 alone: 1 of the 2 needed
    chain.certify(after, ["n1"])
    with chain.store.snapshot() as view:
        rebuilt = validator_history.history(view, GENESIS)
    assert rebuilt.changes() == chain.history.changes()
    assert rebuilt.in_force(2).node_ids == ("n1", "n2")
    receipts = _receipts(chain)
    check = verify_receipt(receipts[2], GENESIS)
    assert check.signers == ("n1", "n2") and check.validators == ("n1", "n2")
    assert verify_receipt(receipts[1], GENESIS).validators == ("n1", "n2", "n3")


def test_a_pbft_chain_changes_its_validators_by_governance(tmp_path: Path) -> None:
    """Issue 15 §2: PBFT follows governance as Raft does (its refusal is gone): the
    ledger reports each block that changes the active validators, and the history
    rebuilt from the state ends in the same set."""
    g = dataclasses.replace(GENESIS, consensus="pbft")
    c = Chain(tmp_path / "pbft", g)
    try:
        _, add = c.commit(_add(c, "n4"))
        _, remove = c.commit(_remove(c, "n1"))
        gone = pl.build(k.GOV_PROPOSE, action="remove_org", org_id="org2")  # runs n3
        _, org = c.commit(c.tx(k.GOV_PROPOSE, gone))
        seen = []
        for applied in (add, remove, org):
            assert applied.block is not None and list(applied.block.results) == [0]
            assert applied.validators is not None
            seen.append([v.node_id for v in applied.validators])
        assert seen == [["n1", "n2", "n3", "n4"], ["n2", "n3", "n4"], ["n2", "n4"]]
        with c.store.snapshot() as view:
            assert validator_history.history(view, g).latest.node_ids == ("n2", "n4")
    finally:
        c.store.close()


def test_raft_follows_governance_one_change_at_a_time_additions_first() -> None:
    from consensus.types import ConfOp
    from node.consensus_driver.loop import next_conf_change

    def up(_: str) -> bool:
        return True

    assert next_conf_change(("n1", "n2", "n3"), ("n1", "n2", "n3"), up) is None
    assert next_conf_change(("n1", "n2", "n3"), ("n2", "n3", "n4"), up) == (ConfOp.ADD, "n4")
    assert next_conf_change(("n1", "n2", "n3", "n4"), ("n2", "n3", "n4"), up) == (
        ConfOp.REMOVE,
        "n1",
    )
    # An added validator this node cannot reach yet waits; a removal need not.
    assert next_conf_change(("n1", "n2", "n3"), ("n1", "n2", "n3", "n4"), lambda n: False) is None
    assert next_conf_change(("n1", "n2", "n3"), ("n2", "n3", "n4"), lambda n: n != "n4") == (
        ConfOp.REMOVE,
        "n1",
    )
