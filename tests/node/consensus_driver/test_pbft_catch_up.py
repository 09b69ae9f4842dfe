"""A PBFT replica installs the state of a stable checkpoint by fetching the blocks up to
the head it certifies (issue 14: a replica further behind than the peers keep entries):
on real LMDB stores with the story's signed blocks, each block is taken only with a
quorum certificate of the validators in force (or as the certified target itself) and
a re-execution that gives its header; a peer serving anything else is refused and the
next one asked, and nothing it served reaches the store."""

from __future__ import annotations

import dataclasses
import threading
import time
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

from acl.samples import story, story_genesis
from chain import signing
from chain.block import Block
from chain.receipt import header_signing_bytes
from consensus.types import InvariantViolation, Snapshot, SnapshotMeta
from node.consensus_driver.loop import CatchUpRequest
from node.consensus_driver.pbft_catch_up import CertifiedCatchUp
from node.consensus_driver.pbft_loop import PbftConsensusLoop, pbft_config
from node.consensus_driver.pbft_storage import LmdbPbftStorage
from node.consensus_driver.snapshot_data import local_data
from node.pipeline.ledger import Applied, ApplyOutcome, Ledger
from node.pipeline.mempool import Mempool
from node.runtime.metrics import NodeMetrics
from node.transport.messages import CertifiedBlocks
from storage.lmdb_store import LmdbBlockStore

STORY = story()
GENESIS = dataclasses.replace(STORY.genesis, consensus="pbft")
KEYS = story_genesis()[1]
TS = STORY.blocks[0].timestamp_ms

Cert = tuple[tuple[str, bytes], ...]


def _cert(block: Block, signers: tuple[str, ...] = ("hospital", "lab")) -> Cert:
    h = block.header.hash
    return tuple(
        (f"{o}-node", signing.sign(KEYS[f"{o}/node"], header_signing_bytes(h))) for o in signers
    )


@pytest.fixture
def chain(tmp_path: Path) -> Iterator[tuple[list[Block], Ledger]]:
    """The blocks a correct peer holds, and an empty ledger to install them in."""
    stores = [LmdbBlockStore.open(tmp_path / n) for n in ("peer", "behind")]
    peer, behind = (Ledger(s, GENESIS, signing.verify_batch) for s in stores)
    for led in (peer, behind):
        led.ensure_genesis()
    blocks = []
    for i, b in enumerate(STORY.blocks):
        block, _ = peer.build(
            [tx.to_bytes() for tx in b.txs], timestamp_ms=TS + i, proposer="hospital-node", round=0
        )
        assert block is not None
        assert peer.apply(peer.entry(block)).outcome is ApplyOutcome.APPLIED
        blocks.append(block)
    yield blocks, behind
    for s in stores:
        s.close()


Serve = Callable[[CatchUpRequest], CertifiedBlocks | None]


def _honest(blocks: list[Block], frm: str = "good") -> Serve:
    def serve(req: CatchUpRequest) -> CertifiedBlocks:
        got = blocks[req.start_height - 1 : req.end_height]
        return CertifiedBlocks(frm, tuple(b.to_bytes() for b in got), tuple(_cert(b) for b in got))

    return serve


def _catch_up(behind: Ledger, peers: dict[str, Serve]) -> tuple[CertifiedCatchUp, list[str]]:
    refused: list[str] = []
    applied: list[Applied] = []

    def request(req: CatchUpRequest) -> None:
        resp = peers[req.to](req)
        if resp is not None:
            cu.post(resp)

    cu = CertifiedCatchUp(
        node_id="me",
        ledger=behind,
        request_blocks=request,
        on_applied=applied.append,
        on_refused=lambda peer, why: refused.append(f"{peer}: {why}"),
        timeout_s=0.05,
        attempts=2,
    )
    return cu, refused


def test_certified_blocks_are_installed_up_to_the_certified_head(
    chain: tuple[list[Block], Ledger],
) -> None:
    blocks, behind = chain
    cu, refused = _catch_up(behind, {"good": _honest(blocks)})
    head = blocks[-1].header
    cu.run(local_data(head.height, head.hash), ["me", "good"])
    assert behind.store.height == head.height and behind.store.head() == head
    assert refused == []


def _forged_body(blocks: list[Block]) -> Serve:
    """A certified header with another block's txs."""

    def serve(req: CatchUpRequest) -> CertifiedBlocks:
        b = blocks[req.start_height - 1]
        other = blocks[req.start_height]
        bad = Block(b.header, other.txs, other.results)
        return CertifiedBlocks("bad", (bad.to_bytes(),), (_cert(b),))

    return serve


def _uncertified(blocks: list[Block]) -> Serve:
    """The right block, with signatures that are not a validator's over its header: an
    outsider's, a garbled one, and a validator's over another header (the story's three
    validators make the PBFT quorum one signature)."""

    def serve(req: CatchUpRequest) -> CertifiedBlocks:
        b = blocks[req.start_height - 1]
        (other,) = _cert(blocks[req.start_height], ("hospital",))
        key = KEYS["lab/node"]
        outsider = ("intruder-node", signing.sign(key, header_signing_bytes(b.header.hash)))
        forged = (other, outsider, ("lab-node", b"\x01" * 64))
        return CertifiedBlocks("bad", (b.to_bytes(),), (forged,))

    return serve


def _other_chain(blocks: list[Block]) -> Serve:
    """A block at the target height that is not the certified one (its certificate is
    real: a quorum here is one signature)."""

    def serve(req: CatchUpRequest) -> CertifiedBlocks:
        got = blocks[req.start_height - 1 : req.end_height - 1]
        last = blocks[req.end_height - 1]
        fake = Block(dataclasses.replace(last.header, timestamp_ms=1), last.txs, last.results)
        served = [*got, fake]
        return CertifiedBlocks(
            "bad", tuple(b.to_bytes() for b in served), tuple(_cert(b) for b in served)
        )

    return serve


def _silent(_req: CatchUpRequest) -> None:
    return None


def _mislabelled(blocks: list[Block]) -> Serve:
    """An honest answer that claims to come from another peer (stale, ignored)."""
    return _honest(blocks, frm="someone-else")


@pytest.mark.parametrize(
    ("bad", "why"),
    [
        (_forged_body, "not applied"),
        (_uncertified, "0 valid signatures, 1 needed"),
        (_other_chain, "not the one certified"),
        (lambda _blocks: _silent, "no answer"),
        (_mislabelled, "no answer"),
    ],
    ids=["forged_body", "forged_certificate", "other_target", "silent", "mislabelled"],
)
def test_a_peer_serving_bad_blocks_is_refused_and_the_next_one_asked(
    chain: tuple[list[Block], Ledger], bad: Callable[[list[Block]], Serve], why: str
) -> None:
    blocks, behind = chain
    cu, refused = _catch_up(behind, {"bad": bad(blocks), "good": _honest(blocks)})
    head = blocks[-1].header
    cu.run(local_data(head.height, head.hash), ["bad", "good"])
    assert behind.store.head() == head
    assert refused and all(r.startswith("bad: ") for r in refused), refused
    assert why in refused[0]


def test_only_bad_peers_stop_the_node_with_nothing_forged_stored(
    chain: tuple[list[Block], Ledger],
) -> None:
    blocks, behind = chain
    cu, refused = _catch_up(behind, {"bad": _uncertified(blocks)})
    head = blocks[-1].header
    with pytest.raises(InvariantViolation, match="could not fetch certified blocks"):
        cu.run(local_data(head.height, head.hash), ["me", "bad"])
    assert behind.store.height == 0 and len(refused) == 2


def test_blocks_across_a_governance_change_of_the_validators_are_installed(
    tmp_path: Path,
) -> None:
    """A block that changes the validator set is certified over the set after it: the
    replica learns that set by executing the block on its state before it checks the
    certificate; the blocks after it need a quorum of the new set. (The chain of
    tests/node/pipeline/test_validator_sets.py: the check is the same whatever the
    consensus, the quorum its formula.)"""
    from tests.node.pipeline.test_validator_sets import GENESIS as VSETS
    from tests.node.pipeline.test_validator_sets import Chain, _add, _register

    genesis = VSETS
    c = Chain(tmp_path / "peer", genesis)
    store = LmdbBlockStore.open(tmp_path / "behind")
    try:
        blocks = [c.commit(_register(c, "app1"))[0], c.commit(_add(c, "n4"))[0]]
        blocks += [c.commit(_register(c, f"app{i}"))[0] for i in (2, 3)]
        for b in blocks:
            signers = ["n1", "n2"] if b.header.height <= 2 else ["n1", "n2", "n3", "n4"]
            c.certify(b, signers)
        behind = Ledger(store, genesis, signing.verify_batch)
        behind.ensure_genesis()

        def serve(req: CatchUpRequest) -> CertifiedBlocks:
            got = blocks[req.start_height - 1 : req.end_height]
            certs = tuple(tuple(c.store.certificate(b.header.height)) for b in got)
            return CertifiedBlocks("good", tuple(b.to_bytes() for b in got), certs)

        cu, refused = _catch_up(behind, {"good": serve})
        head = blocks[-1].header
        cu.run(local_data(head.height, head.hash), ["good"])
        assert store.head() == head and refused == []
    finally:
        store.close()
        c.store.close()


def test_an_install_cut_by_a_crash_resumes_when_the_node_starts(
    chain: tuple[list[Block], Ledger], tmp_path: Path
) -> None:
    """The installed state's snapshot is persisted before its blocks are fetched: a node
    that stopped in between finds it at start and fetches the rest before it orders."""
    blocks, behind = chain
    head = blocks[-1].header
    replicas = tuple(sorted(v.node_id for v in GENESIS.validators))
    first = LmdbPbftStorage(tmp_path / "data" / "pbft", replicas)
    first.save(None, [], Snapshot(SnapshotMeta(8, 0, replicas), local_data(head.height, head.hash)))
    first.close()
    for b in blocks[:2]:  # fetched before the crash
        assert behind.apply(b.to_bytes()).outcome is ApplyOutcome.APPLIED
    asked: list[CatchUpRequest] = []
    serve = _honest(blocks, frm="lab-node")

    fatal: list[BaseException] = []
    metrics = NodeMetrics()

    def request(req: CatchUpRequest) -> None:
        asked.append(req)
        resp = serve(req)
        assert resp is not None
        loop.post_blocks(resp)

    loop = PbftConsensusLoop(
        node_id="hospital-node",
        genesis=GENESIS,
        node_key=KEYS["hospital/node"],
        data_dir=tmp_path / "data",
        ledger=behind,
        mempool=Mempool(txs_max=10, bytes_max=1 << 20),
        mempool_lock=threading.Lock(),
        config=pbft_config(election_timeout_ticks=10, heartbeat_ticks=1),
        tick_s=0.01,
        block_txs_max=10,
        block_interval_s=0.01,
        block_bytes_max=1 << 20,
        verify_batch=signing.verify_batch,
        send=lambda _: None,
        on_applied=lambda _: None,
        on_fatal=fatal.append,
        clock_ms=lambda: TS + 10**9,
        metrics=metrics,
        request_blocks=request,
    )
    loop.start()
    try:
        deadline = time.monotonic() + 30
        while behind.store.height < head.height and time.monotonic() < deadline:
            time.sleep(0.01)
    finally:
        loop.stop()
        loop.join(10)
    assert fatal == [] and behind.store.head() == head
    assert asked[0].start_height == 3 and asked[0].end_height == head.height
    installs = metrics.registry.get_sample_value("grantchain_pbft_state_installs_total")
    assert installs == 1
