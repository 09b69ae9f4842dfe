"""deploy/k8s/: the manifests pass the Kubernetes schemas (kubernetes-validate, strict:
the schemas ship with the package, so this runs offline; kubeconform fetches its schemas
from the network, which this machine cannot reach), have the shape a validator node needs,
and the init container's script, run on a real organisation directory, lays out files a
node starts from and answers its readiness probe.
"""

from __future__ import annotations

import datetime
import random
import shutil
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import httpx
import yaml

from node.cluster.consortium import NodeEntry
from node.cluster.genesis_build import GenesisParams, build_genesis, configure_org, write_built
from node.cluster.local import free_base_port, stop_node
from node.cluster.org import NodeAddress, OrgSpec, init_org
from node.runtime.config import load_config
from node.runtime.keys import check_secret_file_mode
from tests.node.clusters import start_test_node

ROOT = Path(__file__).resolve().parents[2]
K8S = ROOT / "deploy" / "k8s"
MANIFEST = K8S / "grantchain-n1.yaml"
NOW = datetime.datetime.now(datetime.UTC)
READY_TIMEOUT_S = 120.0


def validator() -> str:
    exe = shutil.which("kubernetes-validate", path=str(Path(sys.executable).parent))
    # The dev extra installs it: a missing validator is a broken setup, not a skip.
    assert exe is not None, "kubernetes-validate is not installed (the dev extra)"
    return exe


def docs(path: Path = MANIFEST) -> dict[str, dict[str, Any]]:
    return {
        d["kind"] + "/" + d["metadata"]["name"]: d for d in yaml.safe_load_all(path.read_text())
    }


def test_manifests_pass_the_kubernetes_schemas(tmp_path: Path) -> None:
    files = sorted(K8S.glob("*.yaml"))
    assert files
    r = subprocess.run(
        [validator(), "--strict", "--quiet", *map(str, files)],
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert r.returncode == 0, r.stdout + r.stderr
    broken = MANIFEST.read_text().replace("replicas: 1", 'replicas: "one"')
    (tmp_path / "broken.yaml").write_text(broken)
    r = subprocess.run(
        [validator(), "--strict", "--quiet", str(tmp_path / "broken.yaml")],
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert r.returncode != 0 and "replicas" in r.stdout + r.stderr, "the check can fail"


def test_a_node_is_a_statefulset_with_a_volume_services_probes_and_a_budget() -> None:
    d = docs()
    sts = d["StatefulSet/grantchain-n1"]["spec"]
    pod = sts["template"]["spec"]
    labels = sts["template"]["metadata"]["labels"]
    assert sts["replicas"] == 1 and sts["selector"]["matchLabels"] == labels
    assert [c["metadata"]["name"] for c in sts["volumeClaimTemplates"]] == ["data"]
    (node,) = pod["containers"]
    mounts = {m["name"]: m["mountPath"] for m in node["volumeMounts"]}
    assert mounts["data"] == "/var/lib/grantchain/data"
    for probe in ("startupProbe", "readinessProbe", "livenessProbe"):  # org configure: TLS
        assert node[probe]["httpGet"] == {"path": "/health", "port": "rpc", "scheme": "HTTPS"}
    assert pod["securityContext"]["runAsNonRoot"] is True
    assert node["securityContext"]["allowPrivilegeEscalation"] is False
    volumes = {v["name"]: v for v in pod["volumes"]}
    assert volumes["secrets"]["secret"]["secretName"] == "grantchain-n1"
    ports = {p["name"]: p["containerPort"] for p in node["ports"]}
    for kind, name in (("peer", "peer"), ("rpc", "rpc")):
        svc = d[f"Service/grantchain-n1-{kind}"]["spec"]
        assert svc["selector"] == labels
        (port,) = svc["ports"]
        assert port["targetPort"] == name and port["port"] == ports[name]
    assert sts["serviceName"] == "grantchain-n1-peer"
    pdb = d["PodDisruptionBudget/grantchain-n1"]["spec"]
    assert pdb["selector"]["matchLabels"] == labels and pdb["minAvailable"] == 1


def layout_script() -> str:
    (init,) = docs()["StatefulSet/grantchain-n1"]["spec"]["template"]["spec"]["initContainers"]
    assert init["command"][:2] == ["sh", "-c"]
    return str(init["command"][2])


def test_the_init_script_lays_out_a_node_that_starts_and_gets_ready(tmp_path: Path) -> None:
    """The organisation's files as the Secret and ConfigMap hold them (Kubernetes mounts
    them 0440), through the init container's script, to a node answering its probe (as
    the manifest gives it, against the RPC as `org configure` writes it by default)."""
    base = free_base_port(1, random.Random())
    org, build = tmp_path / "org1", tmp_path / "genesis"
    bundle = init_org(
        org, OrgSpec("org1", (NodeAddress("n1", "127.0.0.1", base, base + 100),)), now=NOW
    )
    write_built(build, build_genesis([bundle], GenesisParams("k8s", 0)))
    configure_org(org, build)
    mounted = {
        "/secrets": tmp_path / "secrets",
        "/consortium": tmp_path / "consortium",
        "/etc/grantchain": tmp_path / "etc",
        "/var/lib/grantchain/data": tmp_path / "pvc",
        "/opt/grantchain/numba-cache": tmp_path / "image-cache",
        "/var/cache/numba": tmp_path / "numba",
    }
    for path in mounted.values():
        path.mkdir()
    for name in ("node.key", "tls.key", "tls.crt", "config.toml"):
        shutil.copyfile(org / "nodes" / "n1" / name, mounted["/secrets"] / name)
        (mounted["/secrets"] / name).chmod(0o440)
    for name in ("genesis.json", "tls-cas.pem"):
        shutil.copyfile(org / name, mounted["/consortium"] / name)
    (mounted["/opt/grantchain/numba-cache"] / "index").write_text("warm")
    script = layout_script()
    for inside, outside in sorted(mounted.items(), key=lambda kv: -len(kv[0])):
        assert inside in script, inside
        script = script.replace(inside, str(outside))
    r = subprocess.run(["sh", "-c", script], capture_output=True, text=True, timeout=60)
    assert r.returncode == 0, r.stderr
    config = mounted["/etc/grantchain"] / "nodes" / "n1" / "config.toml"
    cfg = load_config(config)
    for key in (cfg.node_key, cfg.tls_key):
        check_secret_file_mode(key)
    assert cfg.data_dir.resolve() == mounted["/var/lib/grantchain/data"].resolve()
    assert (mounted["/var/cache/numba"] / "index").read_text() == "warm"
    assert (cfg.rpc_auth, cfg.rpc_tls) == ("members", True)
    probe = docs()["StatefulSet/grantchain-n1"]["spec"]["template"]["spec"]["containers"][0]
    get = probe["readinessProbe"]["httpGet"]
    probe_url = f"{get['scheme'].lower()}://{cfg.rpc_host}:{cfg.rpc_port}{get['path']}"
    node = NodeEntry(
        "n1", "org1", b"", cfg.rpc_host, cfg.rpc_port, cfg.peer_host, cfg.peer_port,
        config, cfg.data_dir, cfg.node_key,
    )  # fmt: skip
    start_test_node(node)
    try:
        deadline = time.monotonic() + READY_TIMEOUT_S
        status = None
        while time.monotonic() < deadline:  # the readiness probe, as the kubelet polls it
            try:
                # the kubelet does not verify the node's certificate
                status = httpx.get(probe_url, timeout=2, verify=False).status_code
            except httpx.HTTPError:
                status = None
            if status == 200:
                break
            time.sleep(0.2)
        assert status == 200, (config.parent / "node.log").read_text()[-2000:]
        assert any(mounted["/var/lib/grantchain/data"].iterdir()), "the data is on the volume"
    finally:
        stop_node(node, kill=True)
