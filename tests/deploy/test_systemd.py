"""deploy/grantchain-node@.service: `systemd-analyze verify` clean (no warning either),
hardened (writes its data directory only, no new privileges, restarts on failure a
bounded number of times), and pointing at the files `grantchain org configure` lays out.
"""

from __future__ import annotations

import datetime
import re
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from node.cluster.genesis_build import GenesisParams, build_genesis, configure_org, write_built
from node.cluster.org import NodeAddress, OrgSpec, init_org
from node.runtime.config import load_config

ROOT = Path(__file__).resolve().parents[2]
UNIT = ROOT / "deploy" / "grantchain-node@.service"
INSTALLED = "/opt/grantchain/.venv/bin/grantchain"
NOW = datetime.datetime.now(datetime.UTC)
EXPOSURE_MAX = 2.0
"""`systemd-analyze security` scores 0 (locked down) to 10 (exposed); the unit scores 1.7."""

needs_systemd = pytest.mark.skipif(
    shutil.which("systemd-analyze") is None,
    reason="systemd-analyze is not installed (apt-get install systemd)",
)


def settings(text: str) -> dict[str, list[str]]:
    """Key -> values of a unit file (every occurrence, in order)."""
    out: dict[str, list[str]] = {}
    for line in text.splitlines():
        if line and not line.startswith(("#", "[")):
            key, _, value = line.partition("=")
            out.setdefault(key, []).append(value)
    return out


def here(tmp_path: Path, text: str, name: str = "grantchain-node@.service") -> Path:
    """The unit with this checkout's `grantchain` in place of the installed one, so that
    verify can check that the command exists."""
    exe = Path(sys.executable).parent / "grantchain"
    assert text.count(INSTALLED) == 1
    (tmp_path / name).write_text(text.replace(INSTALLED, str(exe)))
    return tmp_path / name.replace("@.", "@n1.")


def verify(unit: Path) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        ["systemd-analyze", "verify", str(unit)], capture_output=True, text=True, timeout=60
    )


@needs_systemd
def test_unit_verifies_without_a_warning(tmp_path: Path) -> None:
    r = verify(here(tmp_path, UNIT.read_text()))
    assert r.returncode == 0 and r.stdout + r.stderr == "", r.stdout + r.stderr


@needs_systemd
def test_verify_catches_what_the_test_relies_on(tmp_path: Path) -> None:
    """The check can fail: an unknown key is only a warning, but a warning fails it."""
    bad = UNIT.read_text().replace("ProtectSystem=strict", "ProtectSystem=strict\nProtectSytem=1")
    r = verify(here(tmp_path, bad, "bad@.service"))
    assert "Unknown key 'ProtectSytem'" in r.stderr


@needs_systemd
def test_unit_exposure_is_low(tmp_path: Path) -> None:
    r = subprocess.run(
        ["systemd-analyze", "security", "--offline=true", str(here(tmp_path, UNIT.read_text()))],
        capture_output=True,
        text=True,
        timeout=60,
    )
    m = re.search(r"Overall exposure level for \S+: (\d+\.\d+)", r.stdout)
    assert m, r.stdout + r.stderr
    assert float(m.group(1)) <= EXPOSURE_MAX


def test_unit_is_hardened_and_restarts_a_bounded_number_of_times() -> None:
    s = settings(UNIT.read_text())
    assert s["ProtectSystem"] == ["strict"]
    assert s["NoNewPrivileges"] == ["true"]
    assert s["ReadWritePaths"] == ["/etc/grantchain/nodes/%i/data"], "the data dir only"
    assert s["Restart"] == ["on-failure"]
    assert int(s["StartLimitBurst"][0]) <= 10 and int(s["StartLimitIntervalSec"][0]) >= 60
    assert s["CapabilityBoundingSet"] == [""]
    assert s["User"] == ["grantchain"]


def test_unit_paths_are_those_org_configure_writes(tmp_path: Path) -> None:
    """The unit's config and data paths are where `grantchain org configure` puts them
    for an organisation directory at /etc/grantchain."""
    org, build = tmp_path / "org1", tmp_path / "genesis"
    bundle = init_org(org, OrgSpec("org1", (NodeAddress("n1", "10.0.0.1"),)), now=NOW)
    write_built(build, build_genesis([bundle], GenesisParams("c", 0)))
    (config,) = configure_org(org, build).values()
    cfg = load_config(config)
    s = settings(UNIT.read_text())
    as_unit = {"/etc/grantchain": str(org.resolve()), "%i": "n1"}

    def expand(path: str) -> str:
        for k, v in as_unit.items():
            path = path.replace(k, v)
        return path

    assert expand(s["ExecStart"][0].split("--config ")[1]) == str(config.resolve())
    assert expand(s["ReadWritePaths"][0]) == str(cfg.data_dir)
