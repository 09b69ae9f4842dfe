"""The explorer where reads are for members (``rpc_auth = "members"``, ``explorer_reads =
"auditors"``): in a real browser, the pages refuse until a key file is loaded, then sign
every read (Web Crypto Ed25519, ``node/api/ui/api.js``) including the live commit stream;
an auditor of a designated organisation sees the pages, another member is told they are
for auditors. Same browser set-up as ``test_explorer_ui``."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from acl import kinds as k
from acl import payloads as pl
from chain import signing
from node.client import Client
from node.cluster.consortium import Manifest
from node.cluster.scenario import run_story, signer_for
from node.runtime.keys import write_private_key
from tests.node.api.test_explorer_ui import PAGE_TIMEOUT_MS, _chromium, _unavailable
from tests.node.clusters import running_cluster, wait_converged

pytestmark = pytest.mark.slow

AUDITOR = signing.private_key_from_bytes(b"\x73" * 32)


@pytest.fixture(scope="module")
def cluster(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[Manifest, Path]]:
    root = tmp_path_factory.mktemp("signin")
    with running_cluster(
        root / "c", auditor_orgs=("org3",), rpc_auth="members", explorer_reads="auditors"
    ) as m:
        with Client([n.rpc_url for n in m.nodes]) as c:
            run_story(m, c, say=lambda _: None)
            register = signer_for(m, "org3", "admin").sign(
                k.IDENTITY_REGISTER,
                pl.identity_register("org3-auditor", "auditor", signing.public_key_bytes(AUDITOR)),
            )
            assert c.submit([register], wait=True)["results"][0]["result"] == "accepted"
        wait_converged(m)
        write_private_key(root / "auditor.key", AUDITOR)
        yield m, root / "auditor.key"


@pytest.fixture(scope="module")
def page(cluster: tuple[Manifest, Path]) -> Iterator[Any]:
    try:
        from playwright.sync_api import sync_playwright
    except ImportError:
        _unavailable("the playwright package is not installed")
    path = _chromium()
    if path is None:
        _unavailable("Debian's chromium is not installed (apt-get install chromium)")
    with sync_playwright() as pw:
        browser = pw.chromium.launch(executable_path=path, headless=True, args=["--no-sandbox"])
        try:
            p = browser.new_page()
            p.set_default_timeout(PAGE_TIMEOUT_MS)
            yield p
        finally:
            browser.close()


def _shown(page: Any, view: str) -> str:
    page.wait_for_function(
        "v => document.body.dataset.view === v && !document.querySelector('#main .loading')",
        arg=view,
    )
    return str(page.inner_text("#main"))


def test_the_explorer_signs_its_reads_with_a_loaded_key(
    page: Any, cluster: tuple[Manifest, Path]
) -> None:
    manifest, auditor_key = cluster
    page.goto(manifest.nodes[0].rpc_url + "/ui/#/dashboard")
    refused = _shown(page, "dashboard")
    assert "Not available" in refused and "Authorization" in refused, refused
    page.evaluate("() => { document.body.dataset.view = '' }")
    page.set_input_files("#keyfile", str(auditor_key))
    page.wait_for_function(
        "() => document.getElementById('reader').textContent.startsWith('reading as')"
    )
    assert "head hash" in _shown(page, "dashboard")
    page.wait_for_selector("#live.on")  # the commit stream, read with a signed fetch
    page.evaluate("() => { location.hash = '#/violations' }")
    assert "no_grant" in _shown(page, "violations")
    with Client([n.rpc_url for n in manifest.nodes]) as c:  # a new block reaches the page
        tx = signer_for(manifest, "org1", "admin").sign(
            k.IDENTITY_REGISTER, pl.identity_register("org1-late", "app", b"\x02" * 32)
        )
        height = c.submit([tx], wait=True)["results"][0]["height"]
    page.wait_for_function(
        "h => document.getElementById('live').textContent.includes('height ' + h)", arg=height
    )
    # another member's key: the explorer's pages are for auditors
    member_key = next(
        i.key for i in manifest.identities if i.org_id == "org1" and i.role == "admin"
    )
    page.evaluate("() => { document.body.dataset.view = '' }")
    page.set_input_files("#keyfile", str(member_key))
    page.wait_for_function(
        "p => document.getElementById('reader').title.length === 64 && "
        "!document.getElementById('reader').title.startsWith(p)",
        arg=signing.public_key_bytes(AUDITOR).hex()[:12],
    )
    text = _shown(page, "violations")
    assert "is for auditors" in text and "reading as org1/org1-admin" in text, text
