"""``grantchain demo --dir DIR``: the main job of ``make run``.

Starts a local 3-node cluster (creating the consortium on first use), plays the audit
story (a dataset shared, a grant, a training run, a model, inference batches, an
ungranted evaluation, a revoked grant and a run flagged ``no_grant``), prints the audit
report and the model's lineage, verifies one receipt offline against the genesis, sends
one event through a local Mosquitto broker (the MQTT bridge) and waits for its receipt,
and keeps the cluster running until Ctrl-C.
"""

from __future__ import annotations

import asyncio
import base64
import dataclasses
import json
import signal
import threading
from pathlib import Path
from typing import Any

import aiomqtt
import click

from acl import kinds
from acl import payloads as pl
from chain.genesis import Genesis
from chain.receipt import Receipt, verify_receipt
from node.cluster.broker import Broker, BrokerError, start_broker
from node.cluster.consortium import ConsortiumError, Manifest
from node.cluster.local import (
    ClusterError,
    ensure_consortium,
    member_client,
    start_node,
    stop_node,
    wait_for_leader,
    warm_kernels,
)
from node.cluster.scenario import run_story, signer_for
from node.runtime.config import MqttConfig, load_config, write_config
from storage.blockstore import NotAGrantchainStore, OtherSchemaStore
from storage.lmdb_store import LmdbBlockStore

MQTT_PORT_OFFSET = 183  # base port 7700 -> the broker on 7883
MQTT_RECEIPT_WAIT_S = 30.0


def enable_mqtt(manifest: Manifest, port: int) -> MqttConfig:
    """Point every node's bridge at the local broker (the configs are rewritten)."""
    mqtt = MqttConfig(enabled=True, port=port)
    for n in manifest.nodes:
        write_config(dataclasses.replace(load_config(n.config), mqtt=mqtt), n.config)
    return mqtt


async def publish_over_mqtt(
    manifest: Manifest, broker: Broker, mqtt: MqttConfig, dataset_id: str
) -> dict[str, Any]:
    """Publish one signed access event on ``<prefix>/tx/org2`` and return its receipt
    message from ``<prefix>/receipts/<tx id>``."""
    app = signer_for(manifest, "org2", "app")
    tx = app.sign(kinds.AUDIT_DATA_ACCESS, pl.data_access(dataset_id, purpose="inference"))
    body = json.dumps({"tx": base64.b64encode(tx.to_bytes()).decode()})
    prefix = mqtt.topic_prefix
    async with aiomqtt.Client(broker.host, broker.port, protocol=aiomqtt.ProtocolVersion.V5) as c:
        await c.subscribe(f"{prefix}/receipts/{tx.tx_id.hex()}", qos=1)
        await c.publish(f"{prefix}/tx/org2", body, qos=1)
        async with asyncio.timeout(MQTT_RECEIPT_WAIT_S):
            async for msg in c.messages:
                doc: dict[str, Any] = json.loads(bytes(msg.payload))
                return doc
    raise TimeoutError("no receipt")


def _org_of(manifest: Manifest, index: int) -> str:
    """The story's organisations in order (hospital, lab, regulator), as ``run_story``
    picks them."""
    orgs = sorted({n.org_id for n in manifest.nodes})
    return orgs[min(index, len(orgs) - 1)]


def _tls_note(manifest: Manifest) -> str:
    if not any(n.rpc_tls for n in manifest.nodes):
        return ""
    return f" (TLS: trust {manifest.ca_cert} in the browser, or accept its warning)"


def _curl_ca(manifest: Manifest) -> str:
    return f" --cacert {manifest.ca_cert}" if any(n.rpc_tls for n in manifest.nodes) else ""


def _report_lines(report: dict[str, Any]) -> list[str]:
    lines = [f"  events: {report.get('total', report.get('events', '?'))}"]
    for key in sorted(k for k in report if k.startswith("by_")):
        counts = report[key]
        if isinstance(counts, dict) and counts and all(isinstance(v, int) for v in counts.values()):
            lines.append(
                f"  {key.replace('_', ' ')}: "
                + ", ".join(f"{k}={v}" for k, v in report[key].items())
            )
    return lines


def check_stores(data_dirs: list[Path], directory: Path) -> None:
    """Refuse, with what to do, a demo consortium whose stores an earlier grantchain wrote
    in a store schema this one does not read (its nodes would each fail to start, and the
    demo could only point at their logs). The demo's consortium is disposable: removing
    its directory makes a new one."""
    for data in data_dirs:
        if not (data / "data.mdb").exists():
            continue
        try:
            LmdbBlockStore.open(data, create=False, readonly=True).close()
        except OtherSchemaStore as exc:
            raise ConsortiumError(
                f"{exc}: {directory} was made by another version of grantchain; "
                f"remove it (rm -rf {directory}) and run the demo again"
            ) from None
        except NotAGrantchainStore:
            continue  # the node names anything else when it starts


@click.command("demo")
@click.option(
    "--dir",
    "directory",
    default=None,
    type=click.Path(path_type=Path),
    help="[default: ./.grantchain-demo, or ./.grantchain-demo-pbft with --consensus pbft]",
)
@click.option(
    "--consensus",
    type=click.Choice(["raft", "pbft"]),
    default="raft",
    show_default=True,
    help="PBFT runs 3f+1 replicas that each validate every block (4 nodes: f = 1).",
)
@click.option("--nodes", default=None, type=int, help="[default: 3, or 4 with --consensus pbft]")
@click.option("--base-port", default=7700, show_default=True)
@click.option(
    "--exit",
    "exit_after",
    is_flag=True,
    help="Stop the cluster and exit instead of waiting for Ctrl-C.",
)
def command(
    directory: Path | None, consensus: str, nodes: int | None, base_port: int, exit_after: bool
) -> None:
    """Run a local cluster with sample traffic, an audit report and a verified receipt."""
    pbft = consensus == "pbft"
    if directory is None:
        directory = Path("./.grantchain-demo-pbft" if pbft else "./.grantchain-demo")
    if nodes is None:
        nodes = 4 if pbft else 3
    leader_word = "primary" if pbft else "leader"
    try:
        manifest = ensure_consortium(
            directory, nodes=nodes, consensus=consensus, base_port=base_port
        )
        if manifest.consensus != consensus:
            raise ConsortiumError(
                f"{directory} holds a {manifest.consensus} consortium; pass another --dir "
                f"for a {consensus} one"
            )
        check_stores([n.data_dir for n in manifest.nodes], manifest.directory)
        broker = start_broker(manifest.directory / "mosquitto", base_port + MQTT_PORT_OFFSET)
    except (ConsortiumError, ClusterError, BrokerError) as exc:
        raise click.ClickException(str(exc)) from None
    try:
        mqtt = enable_mqtt(manifest, broker.port)
        click.echo(f"MQTT broker (Mosquitto) on {broker.host}:{broker.port}")
        warm_kernels(click.echo)
        click.echo(
            f"starting {len(manifest.nodes)} nodes of consortium {manifest.chain_id} in {manifest.directory}"
        )
        for n in manifest.nodes:
            start_node(n)
        leader = wait_for_leader(manifest)
    except (ConsortiumError, ClusterError, BrokerError) as exc:
        # Nothing left behind: the nodes that did start, and the broker (left running
        # here before, it held the MQTT port for the next run).
        for n in manifest.nodes:
            stop_node(n)
        broker.stop()
        raise click.ClickException(str(exc)) from None
    click.echo(f"{leader_word} elected: {leader} ({consensus})")
    try:
        # Reads are for members: the demo reads as the lab's admin (the story's grantee,
        # whose model and violations these are); the audit report is the explorer's,
        # open in a local consortium (explorer_reads = "open").
        with member_client(manifest, _org_of(manifest, 1), "admin") as client:
            click.echo("\nthe audit story:")
            story = run_story(manifest, client, say=click.echo)
            report = client.query("/v1/audit/report", from_ms=0)
            click.echo("\naudit report (all time):")
            for line in _report_lines(report):
                click.echo(line)
            violations = client.query("/v1/violations", from_ms=0)
            n_viol = len(violations.get("violations", violations.get("events", [])))
            click.echo(f"  violations flagged: {n_viol}")
            lineage = client.query(f"/v1/models/{story.model_name}/1/lineage")
            used = ", ".join(d["dataset_id"] for d in lineage.get("datasets", []))
            click.echo(f"\nlineage of {story.model_name} v1: trained on {used}")
            doc = story.result("training run 2 after revocation")
            receipt_path = manifest.directory / "receipt.json"
            receipt_path.write_text(json.dumps(doc["receipt"], indent=2) + "\n")
            genesis = Genesis.from_json(manifest.genesis.read_text())
            check = verify_receipt(Receipt.from_json(doc["receipt"]), genesis)
            click.echo(
                f"\nreceipt of the flagged run verified offline: tx {check.tx_id[:16]}... at height "
                f"{check.height}, result {doc['result']}, certified by {', '.join(check.signers)}"
            )
            click.echo(
                f"  re-check: grantchain verify-receipt {receipt_path} --genesis {manifest.genesis}"
            )
            sent = asyncio.run(publish_over_mqtt(manifest, broker, mqtt, story.dataset_id))
            click.echo(
                f"\nan inference event published over MQTT: tx {sent['tx_id'][:16]}... committed at "
                f"height {sent['height']}, result {sent['result']}, receipt on "
                f"{mqtt.topic_prefix}/receipts/<tx id>"
            )
    except BaseException:
        for n in manifest.nodes:
            stop_node(n)
        broker.stop()
        raise
    urls = "  ".join(n.rpc_url for n in manifest.nodes)
    if exit_after:
        for n in manifest.nodes:
            stop_node(n)
        broker.stop()
        click.echo("\ncluster stopped.")
        return
    app_key = next(i.key for i in manifest.identities if i.org_id == "org2" and i.role == "app")
    click.echo(
        f"\nthe cluster keeps running: {urls}"
        f"\n  audit explorer: {manifest.nodes[0].rpc_url}/ui/{_tls_note(manifest)}"
        f"\n  try: curl{_curl_ca(manifest)} {manifest.nodes[0].rpc_url}/v1/status"
        f"\n  reads are signed: grantchain query grants --grantee org2 --url "
        f"{manifest.nodes[0].rpc_url} --consortium {manifest.directory}"
        f"\n  MQTT: mosquitto_sub -p {broker.port} -t '{mqtt.topic_prefix}/receipts/#' -C 1 &"
        f"\n        grantchain tx sign audit.data_access --key {app_key} --chain-id "
        f'{manifest.chain_id} --payload \'{{"dataset_id": "{story.dataset_id}", '
        f'"purpose": "inference"}}\' | mosquitto_pub -p {broker.port} -q 1 '
        f"-t {mqtt.topic_prefix}/tx/org2 -s\nCtrl-C stops it."
    )
    stop = threading.Event()
    signal.signal(signal.SIGINT, lambda *_: stop.set())
    signal.signal(signal.SIGTERM, lambda *_: stop.set())
    stop.wait()
    for n in manifest.nodes:
        stop_node(n)
    broker.stop()
    click.echo("cluster stopped.")
