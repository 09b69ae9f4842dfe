"""A node the CLI cannot reach is a one-line error naming the URL, not a traceback
(``node.cli.lazy_group.LazyGroup.invoke``), for reads and for submits alike."""

from __future__ import annotations

import socket

from tests.conftest import grantchain


def closed_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def test_an_unreachable_node_is_a_clear_error() -> None:
    url = f"http://127.0.0.1:{closed_port()}"
    for args in (
        ("query", "grants", "--grantee", "org1", "--url", url),
        ("tx", "get", "ab" * 32, "--url", url),
    ):
        r = grantchain(*args)
        assert r.returncode == 1, (args, r.stdout, r.stderr)
        assert "Traceback" not in r.stderr, r.stderr
        assert r.stderr.startswith(f"Error: cannot reach the node {url}/"), r.stderr


def test_tls_server_name_must_match_the_urls() -> None:
    url = f"https://127.0.0.1:{closed_port()}"
    r = grantchain(
        "query", "grants", "--grantee", "org1", "--url", url,
        "--tls-server-name", "n1", "--tls-server-name", "n2",
    )  # fmt: skip
    assert r.returncode == 2 and "--tls-server-name: 2 names for 1 URLs" in r.stderr, r.stderr
