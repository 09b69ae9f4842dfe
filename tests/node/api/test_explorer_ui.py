"""The audit explorer (``/ui/``, ``node/api/ui``) in a real browser against a real
3-node cluster that has told the demo story (``node.cluster.scenario``), and the
paginated reads it is built on (``/v1/explore/...``).

The browser is Debian's ``chromium`` driven by Playwright for Python (``make test``
installs both; ``playwright install`` cannot download here, so it is launched by path).
Where neither is present nor installable the browser tests skip, saying so; under CI
(``CI`` set) they fail instead, since CI must run them.

Screenshots of every page are written under pytest's temporary directory
(``explorer-screenshots*``), never into the checkout.
"""

from __future__ import annotations

import base64
import json
import os
import random
import shutil
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import msgpack
import pytest
from click.testing import CliRunner

from acl import kinds as k
from acl import payloads as pl
from acl.results import Result, label
from chain import codec
from chain.block import BlockHeader
from node.cli.tx import command as tx_command
from node.cli.verify_receipt import command as verify_receipt_command
from node.client import Client
from node.cluster.consortium import Manifest
from node.cluster.scenario import StoryRun, run_story, signer_for
from tests.conftest import VECTORS
from tests.node.clusters import running_cluster

pytestmark = pytest.mark.slow

CHROMIUM_PATHS = ("/usr/bin/chromium", "/usr/bin/chromium-browser")
PAGE_TIMEOUT_MS = 15_000
VIOLATION_SHOWN_MS_MAX = 2_000


# -- fixtures -----------------------------------------------------------------------------
class Explorer:
    def __init__(self, manifest: Manifest, story: StoryRun) -> None:
        self.manifest = manifest
        self.story = story
        self.url = manifest.nodes[0].rpc_url
        self.genesis_text = manifest.genesis.read_text()

    def get(self, path: str, **params: Any) -> httpx.Response:
        return httpx.get(self.url + path, params=params, timeout=10)


@pytest.fixture(scope="module")
def explorer(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Explorer]:
    with running_cluster(tmp_path_factory.mktemp("explorer")) as manifest:
        with Client([n.rpc_url for n in manifest.nodes]) as client:
            story = run_story(manifest, client, say=lambda _line: None)
        yield Explorer(manifest, story)


def _chromium() -> str | None:
    found = shutil.which("chromium")
    return found or next((p for p in CHROMIUM_PATHS if Path(p).exists()), None)


def _unavailable(why: str) -> None:
    if os.environ.get("CI"):
        pytest.fail(f"{why}; CI must run the browser tests (make test installs it)")
    pytest.skip(f"{why}: run `make test` (it installs chromium and playwright) to run these")


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


@pytest.fixture(scope="module")
def shots(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return tmp_path_factory.mktemp("explorer-screenshots")


class Page:
    """A browser page on the explorer that records console errors and page errors."""

    def __init__(self, browser: Any, base: str) -> None:
        self.base = base
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
        self.page.goto(f"{base}/ui/")
        self.wait_ready("dashboard")

    def wait_ready(self, view: str) -> None:
        """Until the view has rendered and none of its lists is still loading."""
        self.page.wait_for_function(
            "v => document.body.dataset.view === v && !document.querySelector('#main .loading')",
            arg=view,
        )

    def show(self, route: str, view: str) -> None:
        same = self.page.evaluate("r => location.hash === r", route)
        self.page.evaluate("() => { document.body.dataset.view = '' }")
        if same:  # no hashchange: load the page afresh
            self.page.reload()
        else:
            self.page.evaluate("r => { location.hash = r }", route)
        self.wait_ready(view)

    def close(self) -> None:
        self.context.close()


@pytest.fixture
def page(browser: Any, explorer: Explorer) -> Iterator[Page]:
    p = Page(browser, explorer.url)
    yield p
    p.close()


# -- the pages ------------------------------------------------------------------------------
def _routes(ex: Explorer) -> list[tuple[str, str, str]]:
    """(hash route, view name, a text the page must show)."""
    story = ex.story
    flagged = story.result("training run 2 after revocation")
    ds = story.dataset_id
    return [
        ("#/dashboard", "dashboard", "Validators"),
        ("#/blocks", "blocks", "signed by"),
        (f"#/block/{flagged['height']}", "block", flagged["tx_id"][:16]),
        (f"#/tx/{flagged['tx_id']}", "tx", "no_grant"),
        ("#/datasets", "datasets", ds),
        (f"#/dataset/{ds}", "dataset", "revoked"),
        (f"#/grants?dataset={ds}", "grants", "revoked"),
        ("#/grants?grantee=org2", "grants", ds),
        ("#/violations", "violations", "no_grant"),
        ("#/models", "models", story.model_name),
        (f"#/model/{story.model_name}/1", "model", story.model_name),
        ("#/report?from_ms=0", "report", "By organisation and result"),
        ("#/verify", "verify", "Verify a receipt"),
        (f"#/search/{story.model_name}", "model", story.model_name),
    ]


def test_every_page_loads_without_console_errors(
    page: Page, explorer: Explorer, shots: Path
) -> None:
    for i, (route, view, text) in enumerate(_routes(explorer)):
        page.show(route, view)
        main = page.page.inner_text("#main")
        assert text.lower() in main.lower(), f"{route}: {text!r} not shown"
        assert "Not available" not in main, f"{route}: {main[:300]}"
        page.page.screenshot(path=str(shots / f"{i:02d}-{view}.png"), full_page=True)
    assert page.errors == []


def test_revoked_grants_are_struck_through(page: Page, explorer: Explorer) -> None:
    page.show(f"#/grants?dataset={explorer.story.dataset_id}", "grants")
    row = page.page.locator("tr.revoked").first
    assert "revoked" in row.inner_text()
    cell = row.locator("td").first
    assert "line-through" in cell.evaluate("e => getComputedStyle(e).textDecorationLine")


def test_lineage_graph_shows_the_model_and_its_datasets(
    page: Page, explorer: Explorer, shots: Path
) -> None:
    story = explorer.story
    page.show(f"#/model/{story.model_name}/1", "model")
    graph = page.page.locator("[data-testid=lineage] svg")
    assert graph.locator(f'g.node.model.root[data-id="m:{story.model_name}@1"]').count() == 1
    dataset_node = graph.locator(f'g.node.dataset[data-id="d:{story.dataset_id}"]')
    assert dataset_node.count() == 1
    assert graph.locator("g.node.run").count() >= 1
    assert graph.locator("path.edge").count() >= 3
    # what was done with the model since: its deployment and inference batches
    uses = graph.locator("g.node.use").all_text_contents()
    assert any("deployment" in u for u in uses) and any("inference" in u for u in uses), uses
    graph.screenshot(path=str(shots / "lineage-graph.png"))
    assert page.errors == []


def test_a_violation_appears_within_two_seconds_of_its_commit(
    page: Page, explorer: Explorer, shots: Path
) -> None:
    page.show("#/violations", "violations")
    page.page.wait_for_selector("#live.on")  # the commit stream is open
    app = signer_for(explorer.manifest, "org2", "app")
    tx = app.sign(
        k.AUDIT_DATA_ACCESS, pl.data_access(explorer.story.dataset_id, purpose="inference")
    )
    tx_id = tx.tx_id.hex()
    with Client(explorer.url) as client:
        client.submit([tx])  # no wait: the clock below starts at the block's own time
        page.page.wait_for_selector(
            f'[data-testid=live-violations] a[href="#/tx/{tx_id}"]', timeout=10_000
        )
        shown_ms = time.time() * 1000
        doc = client.query(f"/v1/explore/txs/{tx_id}")
    assert doc["result"] == "no_grant"
    # The block's timestamp is taken by the leader before it proposes, so this counts
    # the commit itself as well.
    assert shown_ms - doc["block_timestamp_ms"] < VIOLATION_SHOWN_MS_MAX
    page.page.screenshot(path=str(shots / "violation-live.png"), full_page=True)
    assert page.errors == []


def test_the_audit_report_downloads_as_json_and_csv(
    page: Page, explorer: Explorer, tmp_path: Path
) -> None:
    until_ms = int(time.time() * 1000) + 3_600_000
    report = explorer.get("/v1/audit/report", from_ms=0, until_ms=until_ms).json()
    page.show(f"#/report?from_ms=0&until_ms={until_ms}", "report")
    with page.page.expect_download() as got:
        page.page.click("[data-testid=download-csv]")
    csv_path = tmp_path / "report.csv"
    got.value.save_as(csv_path)
    lines = csv_path.read_text().splitlines()
    assert lines[0].startswith('"block_time_utc","timestamp_ms","height"')
    assert len(lines) == 1 + report["total"]
    assert sum('"no_grant"' in line for line in lines) == report["by_result"]["no_grant"]
    with page.page.expect_download() as got:
        page.page.click("[data-testid=download-json]")
    json_path = tmp_path / "report.json"
    got.value.save_as(json_path)
    doc = json.loads(json_path.read_text())
    assert doc["report"]["total"] == report["total"] == len(doc["events"])
    assert doc["events_truncated"] is False
    assert page.errors == []


# -- receipts in the browser ----------------------------------------------------------------
def _receipt(ex: Explorer) -> dict[str, Any]:
    tx_id = ex.story.result("training run 2 after revocation")["tx_id"]
    doc: dict[str, Any] = ex.get(f"/v1/txs/{tx_id}").json()["receipt"]
    return doc


def _flip_hex(value: str, at: int = 0) -> str:
    return value[:at] + ("0" if value[at] != "0" else "1") + value[at + 1 :]


def _flip_b64(value: str, at: int) -> str:
    raw = bytearray(base64.b64decode(value))
    raw[at] ^= 0x01
    return base64.b64encode(bytes(raw)).decode()


def _reheader(doc: dict[str, Any], **changes: Any) -> dict[str, Any]:
    header = BlockHeader.from_bytes(base64.b64decode(doc["header"]))
    fields = header.fields()
    names = [
        "version", "chain_id", "height", "prev_hash", "tx_root", "tx_count", "log_root",
        "log_size", "results_root", "state_root", "timestamp_ms", "proposer", "round",
    ]  # fmt: skip
    for name, value in changes.items():
        fields[names.index(name)] = value
    return {**doc, "header": base64.b64encode(codec.encode(fields)).decode()}


def _variants(ex: Explorer) -> list[tuple[str, dict[str, Any], str, bool]]:
    """(name, receipt, genesis, valid per the CLI's rules)."""
    r = _receipt(ex)
    g = ex.genesis_text
    genesis = json.loads(g)
    other_chain = json.dumps({**genesis, "chain_id": genesis["chain_id"] + "-other"})
    swapped = json.loads(g)
    swapped["validators"][0]["public_key"], swapped["validators"][1]["public_key"] = (
        swapped["validators"][1]["public_key"],
        swapped["validators"][0]["public_key"],
    )
    cert = r["certificate"]
    tx_raw = base64.b64decode(r["tx"])
    header = BlockHeader.from_bytes(base64.b64decode(r["header"]))
    return [
        ("valid", r, g, True),
        ("tx payload byte flipped", {**r, "tx": _flip_b64(r["tx"], len(tx_raw) // 2)}, g, False),
        ("tx signature flipped", {**r, "tx": _flip_b64(r["tx"], len(tx_raw) - 3)}, g, False),
        ("result changed", {**r, "result": 0 if r["result"] else 1}, g, False),
        ("tx proof hash changed", {**r, "tx_proof": [_flip_hex(p) for p in r["tx_proof"]]}, g,
         not r["tx_proof"]),
        ("result proof dropped", {**r, "result_proof": r["result_proof"][:-1]}, g,
         not r["result_proof"]),
        ("log proof hash changed", {**r, "log_proof": [_flip_hex(p, 5) for p in r["log_proof"]]},
         g, not r["log_proof"]),
        ("log index moved", {**r, "log_index": r["log_index"] + 1}, g, False),
        ("header timestamp changed", _reheader(r, timestamp_ms=header.timestamp_ms + 1), g, False),
        ("header state root changed", _reheader(r, state_root=b"\x07" * 32), g, False),
        ("certificate cut to one", {**r, "certificate": cert[:1]}, g, False),
        ("certificate one node repeated", {**r, "certificate": [cert[0]] * 3}, g, False),
        ("certificate signature flipped", {**r, "certificate": [
            {**c, "signature": _flip_hex(c["signature"], 10)} for c in cert]}, g, False),
        ("certificate with an unknown signer",
         {**r, "certificate": [*cert[:1], {"node_id": "intruder", "signature": cert[1]["signature"]}]},
         g, False),
        ("genesis of another chain", r, other_chain, False),
        ("genesis with validator keys swapped", r, json.dumps(swapped), False),
        ("tx not base64", {**r, "tx": r["tx"][:-2] + "!!"}, g, False),
        ("receipt version 2", {**r, "version": 2}, g, False),
        ("position negative", {**r, "position": -1}, g, False),
        ("a tx get answer wrapping the receipt", {"tx_id": r["tx_id"], "receipt": r}, g, True),
    ]  # fmt: skip


def _cli_valid(tmp: Path, name: str, receipt: dict[str, Any], genesis: str) -> bool:
    rpath = tmp / f"{name.replace(' ', '-')}.json"
    gpath = tmp / f"{name.replace(' ', '-')}.genesis.json"
    rpath.write_text(json.dumps(receipt))
    gpath.write_text(genesis)
    out = CliRunner().invoke(verify_receipt_command, [str(rpath), "--genesis", str(gpath)])
    assert out.exit_code in (0, 1), out.output
    return out.exit_code == 0


def test_browser_and_cli_give_the_same_verdict_on_valid_and_tampered_receipts(
    page: Page, explorer: Explorer, tmp_path: Path
) -> None:
    for name, receipt, genesis, expected in _variants(explorer):
        cli = _cli_valid(tmp_path, name, receipt, genesis)
        out = page.page.evaluate(
            "([r, g]) => window.grantchainVerifyReceipt(r, g)", [json.dumps(receipt), genesis]
        )
        assert cli == expected, f"{name}: the CLI says {cli}"
        assert out["valid"] == cli, f"{name}: browser {out}, CLI {cli}"
        if not expected:  # the browser names the check that failed
            assert any(c["ok"] is False for c in out["checks"]), f"{name}: {out}"
        else:
            assert out["result_name"] == label(receipt.get("receipt", receipt)["result"])
    names = page.page.evaluate(
        "n => import('/ui/receipt.js').then(m => [...Array(n).keys()].map(m.resultName))",
        len(Result),
    )
    assert names == [label(code) for code in range(len(Result))]
    assert page.errors == []


def test_web_crypto_ed25519_gives_openssls_verdict_on_every_vector(page: Page) -> None:
    """The browser checks signatures with Web Crypto (BoringSSL in Chromium); the node and
    the CLI with OpenSSL's rule (docs/architecture.md §3). Same verdict on all 2,272
    reference vectors, edge cases (small order, non-canonical A and R, S >= L) included."""
    sets = json.loads((VECTORS / "ed25519" / "openssl_verdicts.json").read_text())["ed25519"]
    cases = [c for s in sets.values() for c in s["cases"]]
    assert len(cases) > 2000
    verdicts = page.page.evaluate(
        """async (cases) => {
          const m = await import('/ui/receipt.js');
          const hex = (t) => m.hexToBytes(t, 'vector');
          const out = [];
          for (const c of cases) out.push(await m.ed25519Verify(hex(c[0]), hex(c[1]), hex(c[2])));
          return out;
        }""",
        [[c["public_key"], c["message"], c["signature"]] for c in cases],
    )
    differ = [
        c["id"] for c, v in zip(cases, verdicts, strict=True) if v != (c["openssl"] == "accept")
    ]
    assert differ == []


def _random_value(rng: random.Random, depth: int = 0) -> Any:
    pick = rng.randrange(9 if depth < 3 else 5)
    if pick == 0:
        return rng.choice([None, True, False])
    if pick == 1:
        return rng.choice([0, 1, 127, 128, 255, 256, 65535, 65536, 2**32, 2**53 + 1, 2**64 - 1,
                           -1, -32, -33, -128, -129, -(2**31) - 1, -(2**63)])  # fmt: skip
    if pick == 2:
        return "".join(rng.choice("aZ09_é€😀") for _ in range(rng.choice([0, 3, 31, 32, 300])))
    if pick == 3:
        return bytes(rng.randrange(256) for _ in range(rng.choice([0, 5, 255, 256])))
    if pick == 4:
        return rng.randrange(-(2**63), 2**64)
    if pick in (5, 6):
        return [_random_value(rng, depth + 1) for _ in range(rng.choice([0, 2, 15, 16]))]
    keys = {"".join(rng.choice("abcé😀") for _ in range(rng.randrange(1, 4))) for _ in range(5)}
    return {key: _random_value(rng, depth + 1) for key in keys}


def test_the_browsers_canonical_decoder_accepts_exactly_what_the_codec_does(page: Page) -> None:
    """Receipts carry canonical msgpack (the header, the tx): the page must refuse every
    encoding ``chain.codec.decode`` refuses (non-minimal widths, unsorted or repeated
    keys, floats, extension types, trailing bytes) and accept the rest."""
    rng = random.Random(17)
    samples: list[bytes] = [
        b"\xcc\x05", b"\xd0\x05", b"\xcd\x00\x10", b"\xd9\x01a", b"\xc4\x00", b"\xca\x00\x00\x00\x00",
        b"\x82\xa1b\x01\xa1a\x02", b"\x82\xa1a\x01\xa1a\x02", b"\x81\x01\x02", b"\xd4\x01\x00",
        b"\x01\x02", b"", b"\xa2\xff\xfe", b"\x91", b"\xdc\x00\x01\x01", b"\xc1",
        msgpack.packb([1.5]), msgpack.packb({"é": 1, "z": 2}), msgpack.packb({"z": 1, "é": 2}),
        msgpack.packb({"\uffff": 1, "😀": 2}), msgpack.packb({"😀": 1, "\uffff": 2}),
    ]  # fmt: skip
    for _ in range(300):
        raw = codec.encode(_random_value(rng))
        samples.append(raw)
        mutated = bytearray(raw)
        mutated[rng.randrange(len(mutated))] = rng.randrange(256)
        samples.append(bytes(mutated))
    python = []
    for raw in samples:
        try:
            codec.decode(raw)
            python.append(True)
        except codec.DecodeError:
            python.append(False)
    browser = page.page.evaluate(
        """async (samples) => {
          const m = await import('/ui/msgpack.js');
          const r = await import('/ui/receipt.js');
          return samples.map((hex) => {
            const raw = r.hexToBytes(hex, 'sample');
            try { return m.equalBytes(m.encode(m.decode(raw, 1 << 24)), raw); }
            catch (e) { if (e instanceof m.DecodeError) return false; throw e; }
          });
        }""",
        [raw.hex() for raw in samples],
    )
    differ = [raw.hex() for raw, a, b in zip(samples, python, browser, strict=True) if a != b]
    assert differ == []
    assert 50 < sum(python) < len(samples)  # both verdicts were exercised


def _verify_in_page(page: Page, receipt: str, genesis: str) -> tuple[str, str]:
    page.show("#/verify", "verify")
    page.page.fill("textarea[name=receipt]", receipt)
    page.page.fill("textarea[name=genesis]", genesis)
    page.page.click("[data-testid=verify]")
    verdict = page.page.wait_for_selector("[data-testid=verdict] .overall")
    assert verdict is not None
    return verdict.get_attribute("data-valid") or "", page.page.inner_text("[data-testid=verdict]")


def test_a_tampered_receipt_is_shown_invalid(page: Page, explorer: Explorer, shots: Path) -> None:
    r = _receipt(explorer)
    valid, text = _verify_in_page(page, json.dumps(r), explorer.genesis_text)
    assert valid == "true" and "VALID" in text and "certificate" in text
    page.page.screenshot(path=str(shots / "verify-valid.png"), full_page=True)
    tampered = {**r, "result": 0 if r["result"] else 1}
    valid, text = _verify_in_page(page, json.dumps(tampered), explorer.genesis_text)
    assert valid == "false" and "INVALID" in text
    assert "✗" in text and "results_root" in text
    page.page.screenshot(path=str(shots / "verify-tampered.png"), full_page=True)
    assert page.errors == []


def test_a_receipt_file_can_be_dropped_in(page: Page, explorer: Explorer, tmp_path: Path) -> None:
    """The file as ``grantchain tx get ID --json`` writes it, chosen in the file input."""
    tx_id = explorer.story.result("model deployed")["tx_id"]
    out = CliRunner().invoke(tx_command, ["get", tx_id, "--url", explorer.url, "--json"])
    assert out.exit_code == 0, out.output
    rfile = tmp_path / "receipt.json"
    rfile.write_text(out.output)
    gfile = tmp_path / "genesis.json"
    gfile.write_text(explorer.genesis_text)
    page.show("#/verify", "verify")
    page.page.set_input_files("input[aria-label='Receipt file']", str(rfile))
    page.page.set_input_files("input[aria-label='Genesis file']", str(gfile))
    page.page.wait_for_function(
        "() => document.querySelector('textarea[name=genesis]').value.length > 0 && "
        "document.querySelector('textarea[name=receipt]').value.length > 0"
    )
    page.page.click("[data-testid=verify]")
    verdict = page.page.wait_for_selector("[data-testid=verdict] .overall")
    assert verdict is not None and verdict.get_attribute("data-valid") == "true"
    assert tx_id in verdict.inner_text() and "result accepted (code 0)" in verdict.inner_text()


def test_chain_strings_are_rendered_as_text_not_markup(page: Page, explorer: Explorer) -> None:
    """Free text chosen by another organisation (a title, a location, a licence) that
    looks like markup stays text on every page that shows it."""
    admin = signer_for(explorer.manifest, "org3", "admin")
    evil = '<img src=x onerror="window.pwned=1"><script>window.pwned=2</script>'
    dataset_id = f"org3/markup-{time.time_ns()}"
    tx = admin.sign(
        k.DATASET_REGISTER,
        pl.dataset_register(
            dataset_id,
            content_hash=b"\x05" * 32,
            location=evil,
            sensitivity="internal",
            licence=evil,
            title=evil,
        ),
    )
    with Client(explorer.url) as client:
        assert client.submit([tx], wait=True)["results"][0]["result"] == "accepted"
    for route, view in [
        (f"#/dataset/{dataset_id}", "dataset"),
        ("#/datasets", "datasets"),
        (f"#/tx/{tx.tx_id.hex()}", "tx"),
    ]:
        page.show(route, view)
        if view != "datasets":  # the list is in id-digest order: it may be on a later page
            assert evil in page.page.inner_text("#main"), route
        assert page.page.locator("#main img, #main script").count() == 0, route
        assert page.page.evaluate("() => window.pwned") is None, route
    assert page.errors == []


# -- the JSON reads behind the page (no browser) ------------------------------------------------
def _all_pages(ex: Explorer, path: str, **params: Any) -> list[dict[str, Any]]:
    items: list[dict[str, Any]] = []
    cursor = None
    for _ in range(1000):
        resp = ex.get(path, **params, limit=1, **({"cursor": cursor} if cursor else {}))
        assert resp.status_code == 200, resp.text
        doc = resp.json()
        assert len(doc["items"]) <= 1
        items.extend(doc["items"])
        cursor = doc["next_cursor"]
        if cursor is None:
            return items
    raise AssertionError("pagination did not end")


def test_explore_lists_page_through_everything_once(explorer: Explorer) -> None:
    head = explorer.get("/v1/status").json()["height"]
    heights = [b["height"] for b in _all_pages(explorer, "/v1/explore/blocks")]
    assert heights[:head] == list(range(head, 0, -1)) or heights[0] >= head
    assert len(heights) == len(set(heights)) and heights[-1] == 1
    datasets = [d["dataset_id"] for d in _all_pages(explorer, "/v1/explore/datasets")]
    assert explorer.story.dataset_id in datasets and len(datasets) == len(set(datasets))
    ds = explorer.story.dataset_id
    whole_ds = explorer.get(f"/v1/datasets/{ds}").json()
    versions = _all_pages(explorer, f"/v1/explore/datasets/{ds}/versions")
    assert versions == whole_ds["versions"]
    one = explorer.get(f"/v1/explore/datasets/{ds}").json()
    assert one == {**{k: v for k, v in whole_ds.items() if k != "versions"}, "version_count": 1}
    grants = _all_pages(explorer, "/v1/explore/grants", dataset=explorer.story.dataset_id)
    assert [g["grant_id"] for g in grants] == [explorer.story.grant_id]
    assert grants[0]["revoked"] is not None and grants[0]["in_force"] is False
    history = _all_pages(explorer, f"/v1/explore/datasets/{explorer.story.dataset_id}/history")
    whole = explorer.get(f"/v1/datasets/{explorer.story.dataset_id}/history").json()["entries"]
    assert history == whole
    model = f"/v1/explore/models/{explorer.story.model_name}/1"
    uses = _all_pages(explorer, f"{model}/uses")
    lineage = explorer.get(f"{model}/lineage").json()
    assert lineage["uses"] == uses and lineage["uses_truncated"] is False
    assert {u["kind"] for u in uses} >= {k.AUDIT_DEPLOYMENT, k.AUDIT_INFERENCE_BATCH}
    whole = explorer.get(f"/v1/models/{explorer.story.model_name}/1/lineage").json()
    assert {**whole, "uses_truncated": False} == lineage
    models = _all_pages(explorer, "/v1/explore/models")
    assert (explorer.story.model_name, 1) in {(m["model_name"], m["model_version"]) for m in models}
    events = _all_pages(explorer, "/v1/explore/events", from_ms=0)
    violations = _all_pages(explorer, "/v1/explore/violations", from_ms=0)
    assert violations == [e for e in events if e["result"] == "no_grant"]
    assert len(violations) >= 2  # the unpermitted evaluation and the run after revocation
    flagged = explorer.story.result("training run 2 after revocation")
    txs = _all_pages(explorer, f"/v1/explore/blocks/{flagged['height']}/txs")
    assert [t["tx_id"] for t in txs][flagged["position"]] == flagged["tx_id"]
    assert txs[flagged["position"]]["result"] == "no_grant"


def test_explore_tx_search_dashboard_and_consortium(explorer: Explorer) -> None:
    flagged = explorer.story.result("training run 2 after revocation")
    tx = explorer.get(f"/v1/explore/txs/{flagged['tx_id']}").json()
    assert tx["result"] == "no_grant" and tx["kind"] == k.AUDIT_TRAINING_RUN
    assert tx["sender_identity"]["org_id"] == "org2" and isinstance(tx["payload"], dict)
    for q, kind in [
        (flagged["tx_id"], "tx"),
        (explorer.story.dataset_id, "dataset"),
        (explorer.story.model_name, "model"),
        ("org1", "org"),
        ("1", "block"),
    ]:
        matches = explorer.get("/v1/explore/search", q=q).json()["matches"]
        assert {"type": kind}.items() <= matches[0].items(), (q, matches)
    assert explorer.get("/v1/explore/search", q="no-such-thing").json()["matches"] == []
    dash = explorer.get("/v1/explore/dashboard").json()
    assert dash["violations_last_day"] >= 2
    assert {v["node_id"] for v in dash["validators"]} == {
        n.node_id for n in explorer.manifest.nodes
    }
    assert any(v["last_signed_height"] for v in dash["validators"])
    assert dash["recent_blocks"][-1]["height"] == dash["status"]["height"] or dash["recent_blocks"]
    orgs = explorer.get("/v1/explore/consortium").json()["organisations"]
    assert {o["org_id"] for o in orgs} == {"org1", "org2", "org3"}


@pytest.mark.parametrize(
    ("path", "params", "message"),
    [
        ("/v1/explore/datasets", {"limit": 0}, "limit must be in [1, 200]"),
        ("/v1/explore/datasets", {"limit": 201}, "limit must be in [1, 200]"),
        ("/v1/explore/datasets", {"limit": "x"}, "limit must be an integer"),
        ("/v1/explore/datasets", {"cursor": "zz"}, "cursor must be 64 hex characters"),
        ("/v1/explore/datasets", {"cursor": "zz" * 32}, "cursor must be hex"),
        ("/v1/explore/models", {"cursor": "00" * 32}, "cursor must be 72 hex characters"),
        ("/v1/explore/grants", {}, "give exactly one of 'dataset' or 'grantee'"),
        ("/v1/explore/grants", {"dataset": "a", "grantee": "b"}, "give exactly one of"),
        ("/v1/explore/grants", {"dataset": "a" * 300}, "dataset is over 256 characters"),
        ("/v1/explore/violations", {"from_ms": 10, "until_ms": 5}, "until_ms must not be before"),
        ("/v1/explore/events", {"from_ms": -1}, "from_ms must be in"),
        ("/v1/explore/blocks", {"cursor": "x"}, "cursor must be an integer"),
        ("/v1/explore/blocks/x/txs", {}, "height must be an integer"),
        ("/v1/explore/txs/abc", {}, "tx id is not hex"),
        ("/v1/explore/txs/abcd", {}, "tx id must be 32 bytes"),
        ("/v1/explore/search", {}, "query parameter 'q' is required"),
        ("/v1/explore/models/m/0/lineage", {}, "model version must be in [1, 2**32)"),
        ("/v1/explore/models/m/1/uses", {"cursor": "00"}, "cursor must be 24 hex characters"),
        ("/v1/explore/datasets/d/versions", {"cursor": "00"}, "cursor must be 8 hex characters"),
    ],
)
def test_explore_rejects_bad_input_with_a_400_naming_it(
    explorer: Explorer, path: str, params: dict[str, Any], message: str
) -> None:
    resp = explorer.get(path, **params)
    assert resp.status_code == 400, resp.text
    assert message in resp.json()["error"]


def test_explore_unknown_things_are_404(explorer: Explorer) -> None:
    assert explorer.get("/v1/explore/txs/" + "ab" * 32).status_code == 404
    assert explorer.get("/v1/explore/blocks/999999/txs").status_code == 404
    assert explorer.get("/v1/explore/datasets/nope/history").status_code == 404
    assert explorer.get("/v1/explore/datasets/nope/versions").status_code == 404
    assert explorer.get("/v1/explore/datasets/nope").status_code == 404
    assert explorer.get("/v1/explore/models/nope/1/lineage").status_code == 404
    assert explorer.get("/v1/explore/models/nope/1/uses").status_code == 404


def test_the_page_is_served_with_a_strict_content_security_policy(explorer: Explorer) -> None:
    resp = httpx.get(explorer.url + "/ui", follow_redirects=False, timeout=10)
    assert resp.status_code == 302 and resp.headers["location"] == "/ui/"
    index = explorer.get("/ui/")
    assert index.status_code == 200 and index.headers["content-type"].startswith("text/html")
    csp = index.headers["content-security-policy"]
    assert "script-src 'self'" in csp and "unsafe-inline" not in csp
    js = explorer.get("/ui/app.js")
    assert js.headers["content-type"].startswith("text/javascript")
    missing = explorer.get("/ui/nope.js")
    assert missing.status_code == 404 and "error" in missing.json()
    assert explorer.get("/ui/..%2Fexplorer.py").status_code == 404
