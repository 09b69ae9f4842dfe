"""Version 2 receipts in the browser (issue 17 §2): the explorer's verifier
(``node/api/ui/receipt.js``) walks a receipt's certified validator-set history from the
genesis set as ``chain.receipt.verify_receipt`` does, and gives the verdict of
``grantchain verify-receipt --json`` on valid, forged, shortened, reordered and tampered
histories, and on version 1 receipts.

The receipts come from the Python side directly: the governance story of
``tests/node/pipeline/test_validator_sets.py`` (n4 added at block 2, n1 removed at 4) on
a real LMDB store, no cluster. The page is served as static files (the Verify page reads
nothing from a node) and driven in Debian's ``chromium`` by Playwright, as in
``test_explorer_ui.py``; screenshots go under pytest's temporary directory.
"""

from __future__ import annotations

import base64
import functools
import http.server
import json
import threading
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from click.testing import CliRunner

from chain import codec, signing
from chain.block import BlockHeader
from chain.genesis import Validator
from chain.receipt import Receipt
from chain.validator_sets import HeaderSignature, SetChange, ValidatorSet, quorum_of
from node.cli.verify_receipt import command as verify_receipt_command
from tests.node.api.test_explorer_ui import PAGE_TIMEOUT_MS, _chromium, _unavailable
from tests.node.pipeline.test_validator_sets import GENESIS, NODES, Chain, _story

pytestmark = pytest.mark.slow

UI = Path(__file__).resolve().parents[3] / "node" / "api" / "ui"


# -- fixtures -----------------------------------------------------------------------------
class Story:
    """Receipts of the governance story by height (1 is version 1, 2..5 version 2)."""

    def __init__(self, receipts: dict[int, Receipt]) -> None:
        self.receipts = receipts
        self.genesis_text = GENESIS.to_json()

    def doc(self, height: int) -> dict[str, Any]:
        return json.loads(json.dumps(self.receipts[height].to_json()))


@pytest.fixture(scope="module")
def story(tmp_path_factory: pytest.TempPathFactory) -> Story:
    chain = Chain(tmp_path_factory.mktemp("receipts-v2") / "store")
    try:
        return Story(_story(chain))
    finally:
        chain.store.close()


@pytest.fixture(scope="module")
def ui_url(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    """The explorer's static files under /ui/, and an empty commit stream."""
    root = tmp_path_factory.mktemp("ui-root")
    (root / "ui").symlink_to(UI, target_is_directory=True)

    class Handler(http.server.SimpleHTTPRequestHandler):
        def do_GET(self) -> None:
            if self.path.startswith("/v1/stream/"):  # no node: a stream with no blocks
                self.send_response(200)
                self.send_header("Content-Type", "text/event-stream")
                self.send_header("Content-Length", "0")
                self.end_headers()
                return
            super().do_GET()

        def log_message(self, format: str, *args: Any) -> None:
            pass

    server = http.server.ThreadingHTTPServer(
        ("127.0.0.1", 0), functools.partial(Handler, directory=str(root))
    )
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{server.server_address[1]}"
    finally:
        server.shutdown()
        server.server_close()
        thread.join(timeout=10)


@pytest.fixture(scope="module")
def browser() -> Iterator[Any]:
    try:
        from playwright.sync_api import sync_playwright
    except ImportError:
        _unavailable("the playwright package is not installed")
    path = _chromium()
    if path is None:
        _unavailable("Debian's chromium is not installed (apt-get install chromium)")
    with sync_playwright() as pw:
        b = pw.chromium.launch(executable_path=path, headless=True, args=["--no-sandbox"])
        try:
            yield b
        finally:
            b.close()


class VerifyPage:
    """The Verify page, recording page errors and console errors."""

    def __init__(self, browser: Any, base: str) -> None:
        self.context = browser.new_context(viewport={"width": 1366, "height": 900})
        self.page = self.context.new_page()
        self.page.set_default_timeout(PAGE_TIMEOUT_MS)
        self.errors: list[str] = []
        self.page.on(
            "console",
            lambda m: (
                self.errors.append(f"console {m.type}: {m.text}") if m.type == "error" else None
            ),
        )
        self.page.on("pageerror", lambda e: self.errors.append(f"page error: {e}"))
        self.page.goto(f"{base}/ui/#/verify")
        self.page.wait_for_function("() => document.body.dataset.view === 'verify'")

    def verify(self, receipt: dict[str, Any], genesis: str) -> dict[str, Any]:
        out: dict[str, Any] = self.page.evaluate(
            "([r, g]) => window.grantchainVerifyReceipt(r, g)", [json.dumps(receipt), genesis]
        )
        return out

    def shown(self, receipt: dict[str, Any], genesis: str) -> tuple[str, list[str]]:
        """(data-valid, one line per check) as the page shows them."""
        self.page.fill("textarea[name=receipt]", json.dumps(receipt))
        self.page.fill("textarea[name=genesis]", genesis)
        self.page.evaluate(
            "() => { delete document.querySelector('[data-testid=verdict]').dataset.done }"
        )
        self.page.click("[data-testid=verify]")
        self.page.wait_for_function(
            "() => document.querySelector('[data-testid=verdict]').dataset.done"
        )
        overall = self.page.get_attribute("[data-testid=verdict] .overall", "data-valid") or ""
        lines = self.page.eval_on_selector_all(
            "[data-testid=verdict] .checks li", "items => items.map((li) => li.innerText)"
        )
        return overall, lines


@pytest.fixture
def page(browser: Any, ui_url: str) -> Iterator[VerifyPage]:
    p = VerifyPage(browser, ui_url)
    yield p
    p.context.close()


# -- the receipts -------------------------------------------------------------------------
def _flip_hex(value: str, at: int = 10) -> str:
    return value[:at] + ("0" if value[at] != "0" else "1") + value[at + 1 :]


def _forged_change_at_5(s: Story) -> dict[str, Any]:
    """A step signed by a removed validator (n1) and an outsider (n5), handing the chain
    to n5 at block 5: each signature is good, neither signer is in the set in force."""
    r5 = s.receipts[5]
    n5 = Validator("n5", "org1", signing.public_key_bytes(NODES["n5"]))
    fake_set = ValidatorSet.of(5, [n5])
    msg = signing.HEADER_DOMAIN + r5.header.hash + fake_set.digest
    sigs = tuple(HeaderSignature(n, signing.sign(NODES[n], msg)) for n in ("n1", "n5"))
    return SetChange(r5.header, sigs, fake_set).to_json()


def _other_chain(step: dict[str, Any]) -> dict[str, Any]:
    fields = BlockHeader.from_bytes(base64.b64decode(step["header"])).fields()
    fields[1] = "elsewhere"
    return {**step, "header": base64.b64encode(codec.encode(fields)).decode()}


def _variants(s: Story) -> list[tuple[str, dict[str, Any], str, bool | None]]:
    """(name, receipt, genesis, valid per chain/receipt.py; None: whatever the CLI says)."""
    g = s.genesis_text
    r1, r3, r4, r5 = s.doc(1), s.doc(3), s.doc(4), s.doc(5)
    add_n4, remove_n1 = r5["validator_sets"]
    n5 = {"node_id": "n5", "org_id": "org1",
          "public_key": signing.public_key_bytes(NODES["n5"]).hex()}  # fmt: skip
    forged_set = {**remove_n1, "validators": [*remove_n1["validators"], n5]}
    cert1 = add_n4["certificate"]
    return [
        ("v1 receipt before any change", r1, g, True),
        ("v2 receipt after one change", r3, g, True),
        ("v2 receipt of the block that made a change", r4, g, True),
        ("v2 receipt after two changes", r5, g, True),
        ("v2 wrapped in a tx get answer", {"tx_id": r5["tx_id"], "receipt": r5}, g, True),
        ("forged step: n5 added to the set made at 4", {**r5, "validator_sets": [add_n4, forged_set]}, g, False),
        ("forged step: a change at 5 signed by a removed validator and an outsider",
         {**r5, "validator_sets": [add_n4, remove_n1, _forged_change_at_5(s)]}, g, False),
        ("last step removed", {**r5, "validator_sets": [add_n4]}, g, False),
        # Left out before a later change, a step is not missed: the change at 4 was signed
        # by n1 and n2 (and n4), a quorum of the genesis set too, so the shorter history
        # still proves the set in force at 5; both verifiers say so.
        ("first step removed", {**r5, "validator_sets": [remove_n1]}, g, True),
        ("steps reordered", {**r5, "validator_sets": [remove_n1, add_n4]}, g, False),
        ("a step repeated", {**r5, "validator_sets": [add_n4, add_n4, remove_n1]}, g, False),
        ("step past the receipt's height", {**r3, "validator_sets": [add_n4, remove_n1]}, g, False),
        ("step certificate signature tampered", {**r5, "validator_sets": [
            {**add_n4, "certificate": [{**c, "signature": _flip_hex(c["signature"])} for c in cert1]},
            remove_n1]}, g, False),
        ("step certificate cut to one", {**r5, "validator_sets": [
            {**add_n4, "certificate": cert1[:1]}, remove_n1]}, g, False),
        ("step certificate one signer repeated", {**r5, "validator_sets": [
            {**add_n4, "certificate": [cert1[0], cert1[0]]}, remove_n1]}, g, False),
        ("receipt certificate tampered", {**r5, "certificate": [
            {**c, "signature": _flip_hex(c["signature"])} for c in r5["certificate"]]}, g, False),
        ("step says another height", {**r5, "validator_sets": [{**add_n4, "height": 3}, remove_n1]},
         g, False),
        ("step with a short public key", {**r5, "validator_sets": [add_n4, {**remove_n1, "validators": [
            {**v, "public_key": v["public_key"][:-2]} for v in remove_n1["validators"]]}]}, g, False),
        ("step with repeated node ids", {**r5, "validator_sets": [add_n4, {**remove_n1, "validators": [
            *remove_n1["validators"], remove_n1["validators"][0]]}]}, g, False),
        ("step keys and signatures hex with spaces between bytes", {**r5, "validator_sets": [
            {**add_n4, "certificate": [{**c, "signature": " ".join(
                c["signature"][i:i + 2] for i in range(0, 128, 2))} for c in cert1]},
            {**remove_n1, "validators": [{**v, "public_key": "\t" + v["public_key"] + "\n"}
                                         for v in remove_n1["validators"]]}]}, g, True),
        ("step public key hex split inside a byte", {**r5, "validator_sets": [add_n4, {
            **remove_n1, "validators": [{**v, "public_key": v["public_key"][:3] + " "
                                         + v["public_key"][3:]} for v in remove_n1["validators"]]}]},
         g, False),
        ("step header not base64", {**r5, "validator_sets": [{**add_n4, "header": "!!!!"}, remove_n1]},
         g, False),
        ("step validators reordered (sorted again: same set)", {**r5, "validator_sets": [
            {**add_n4, "validators": add_n4["validators"][::-1]}, remove_n1]}, g, True),
        ("step org changed", {**r5, "validator_sets": [add_n4, {**remove_n1, "validators": [
            {**v, "org_id": "org2"} for v in remove_n1["validators"]]}]}, g, False),
        ("v2 without validator_sets", {k: v for k, v in r5.items() if k != "validator_sets"}, g, False),
        ("v2 with an empty history", {**r5, "validator_sets": []}, g, False),
        ("v2 history not a list", {**r5, "validator_sets": {"0": add_n4}}, g, False),
        ("v2 receipt relabelled version 1 (history ignored)", {**r5, "version": 1}, g, False),
        ("v1 receipt carrying a history it does not use", {**r1, "validator_sets": [add_n4]}, g, True),
        ("version 3", {**r5, "version": 3}, g, False),
        ("version true (== 1 in Python)", {**r1, "version": True}, g, None),
        ("version false", {**r1, "version": False}, g, False),
        ("version 2.0", {**r5, "version": 2.0}, g, None),
        ("step height a string", {**r5, "validator_sets": [{**add_n4, "height": "2"}, remove_n1]},
         g, False),
        ("step header of another chain", {**r5, "validator_sets": [
            _other_chain(add_n4), remove_n1]}, g, False),
        ("genesis of another chain", r5, json.dumps({**json.loads(g), "chain_id": "other"}), False),
    ]  # fmt: skip


def _cli(tmp: Path, i: int, receipt: dict[str, Any], genesis: str) -> dict[str, Any]:
    rpath, gpath = tmp / f"receipt-{i}.json", tmp / f"genesis-{i}.json"
    rpath.write_text(json.dumps(receipt))
    gpath.write_text(genesis)
    out = CliRunner().invoke(
        verify_receipt_command, [str(rpath), "--genesis", str(gpath), "--json"]
    )
    assert out.exit_code in (0, 1), out.output
    doc: dict[str, Any] = json.loads(out.output.splitlines()[-1])
    assert doc["valid"] == (out.exit_code == 0)
    return doc


# -- the tests ----------------------------------------------------------------------------
def test_browser_and_cli_give_the_same_verdict_on_v2_receipts(
    page: VerifyPage, story: Story, tmp_path: Path
) -> None:
    for i, (name, receipt, genesis, expected) in enumerate(_variants(story)):
        cli = _cli(tmp_path, i, receipt, genesis)
        out = page.verify(receipt, genesis)
        if expected is not None:
            assert cli["valid"] == expected, f"{name}: the CLI says {cli}"
        assert out["valid"] == cli["valid"], f"{name}: browser {out}, CLI {cli}"
        if cli["valid"]:
            assert out["signers"] == cli["signers"], name
            assert out["quorum"] == cli["quorum"], name
            assert out["validators"] == cli["validators"], name
            assert out["validator_set_changes"] == cli["validator_set_changes"], name
            assert out["height"] == cli["height"] and out["tx_id"] == cli["tx_id"], name
            continue
        failed = [c for c in out["checks"] if c["ok"] is False]
        assert failed, f"{name}: {out}"
        # A history or certificate refusal is the CLI's, word for word.
        if cli["error"].startswith(("validator-set change", "block ")):
            assert cli["error"] in [c["detail"] for c in failed], f"{name}: {failed} vs {cli}"
    assert page.errors == []


def test_the_page_shows_each_steps_verdict(
    page: VerifyPage, story: Story, tmp_path_factory: pytest.TempPathFactory
) -> None:
    shots = tmp_path_factory.mktemp("explorer-screenshots-v2")
    g = story.genesis_text
    valid, lines = page.shown(story.doc(5), g)
    assert valid == "true"
    steps = [line for line in lines if line[1:].startswith("validator-set change")]
    assert all(line.startswith("✓") for line in lines), lines
    assert len(steps) == 2, lines
    assert "change 1 of 2 (height 2)" in steps[0] and "n1, n2, n3, n4" in steps[0]
    assert "change 2 of 2 (height 4)" in steps[1] and "n2, n3, n4" in steps[1]
    (cert,) = [line for line in lines if line[1:].startswith("certificate")]
    assert cert.startswith("✓") and "validators in force n2, n3, n4 after 2" in cert
    page.page.screenshot(path=str(shots / "verify-v2-valid.png"), full_page=True)

    r5 = story.doc(5)
    add_n4, remove_n1 = r5["validator_sets"]
    forged = {**remove_n1, "validators": [{**v, "org_id": "org2"} for v in remove_n1["validators"]]}
    valid, lines = page.shown({**r5, "validator_sets": [add_n4, forged]}, g)
    assert valid == "false"
    assert any(line.startswith("✓") and "change 1 of 2" in line for line in lines), lines
    (bad,) = [line for line in lines if line.startswith("✗")]
    assert "change 2 of 2 (height 4)" in bad and "certificate has 0 valid signatures" in bad
    (cert,) = [line for line in lines if line[1:].startswith("certificate")]
    assert cert.startswith("–") and "history failed" in cert
    page.page.screenshot(path=str(shots / "verify-v2-forged.png"), full_page=True)

    valid, lines = page.shown({**r5, "validator_sets": [add_n4]}, g)
    assert valid == "false"
    (bad,) = [line for line in lines if line.startswith("✗")]
    assert (
        bad[1:].startswith("certificate") and "block 5: certificate has 0 valid signatures" in bad
    )
    assert page.errors == []


def test_set_digests_and_quorums_are_pythons(page: VerifyPage) -> None:
    """The set digest (canonical msgpack, members in code-point order of node id) and the
    quorum formula per set, on sets a real chain would not make (ids past U+FFFF, PBFT)."""
    key = signing.public_key_bytes(NODES["n1"])
    sets = [
        ValidatorSet.of(7, [Validator(n, "org1", key) for n in ("n\uffff", "n😀", "n2", "é")]),
        ValidatorSet.of(2**40, [Validator("a" * 64, "o" * 128, key)]),
        ValidatorSet.of(0, [Validator(f"v{i}", "org1", key) for i in range(20)]),
    ]
    docs = [[s.since_height, s.to_json()] for s in sets]
    digests = page.page.evaluate(
        """async (docs) => {
          const m = await import('/ui/receipt.js');
          const out = [];
          for (const [since, members] of docs) {
            const set = m.validatorSet(BigInt(since), members.map((v) => ({
              nodeId: v.node_id, orgId: v.org_id, publicKey: m.hexToBytes(v.public_key, 'key') })));
            out.push(m.bytesToHex(await m.setDigest(set)));
          }
          return out;
        }""",
        docs,
    )
    assert digests == [s.digest.hex() for s in sets]
    quorums = page.page.evaluate(
        "() => import('/ui/receipt.js').then(m => ['raft', 'pbft'].map(c => "
        "[...Array(40).keys()].map(i => m.quorumOf(c, i + 1))))"
    )
    assert quorums == [[quorum_of(c, n) for n in range(1, 41)] for c in ("raft", "pbft")]
    assert page.errors == []
