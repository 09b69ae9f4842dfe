"""Prometheus metrics of one node (a registry per node, so tests can run several)."""

from __future__ import annotations

from prometheus_client import (
    CollectorRegistry,
    Counter,
    Gauge,
    GCCollector,
    Histogram,
    generate_latest,
)


class NodeMetrics:
    def __init__(self) -> None:
        r = self.registry = CollectorRegistry()
        GCCollector(
            registry=r
        )  # python_gc_*: collections by generation (see node.runtime.gc_policy)
        self.txs_submitted = Counter(
            "grantchain_txs_submitted",
            "Txs received over RPC or from peers, by outcome",
            ["status"],
            registry=r,
        )
        self.blocks_applied = Counter(
            "grantchain_blocks_applied", "Committed blocks applied", registry=r
        )
        self.txs_committed = Counter(
            "grantchain_txs_committed", "Txs in applied blocks", registry=r
        )
        self.height = Gauge("grantchain_height", "Height of the last applied block", registry=r)
        self.mempool_txs = Gauge("grantchain_mempool_txs", "Txs waiting in the mempool", registry=r)
        self.is_leader = Gauge("grantchain_is_leader", "1 when this node leads", registry=r)
        self.term = Gauge("grantchain_term", "Current consensus term or view", registry=r)
        self.certified_height = Gauge(
            "grantchain_certified_height", "Highest height with a quorum certificate", registry=r
        )
        self.map_used_bytes = Gauge("grantchain_lmdb_used_bytes", "LMDB pages in use", registry=r)
        self.map_size_bytes = Gauge("grantchain_lmdb_map_bytes", "LMDB map size", registry=r)
        self.peer_frames_dropped = Gauge(
            "grantchain_peer_frames_dropped", "Frames dropped on full peer queues", registry=r
        )
        self.bad_peer_messages = Counter(
            "grantchain_bad_peer_messages",
            "Peer frames that failed to decode or authenticate",
            registry=r,
        )
        self.blocks_refused_future = Counter(
            "grantchain_blocks_refused_future",
            "Leader entries refused because their block time was more than "
            "block_time_skew_ms_max ahead of this node's clock (the leader's clock is ahead, "
            "or this node's behind)",
            registry=r,
        )
        self.block_time_skew_ms = Gauge(
            "grantchain_block_time_skew_ms",
            "The last applied block's time minus this node's clock when it was applied "
            "(positive: the proposer's clock runs ahead of this node's)",
            registry=r,
        )
        self.commit_latency = Histogram(
            "grantchain_commit_wait_seconds",
            "Submit to commit for ?wait=commit requests",
            buckets=(0.005, 0.01, 0.02, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5),
            registry=r,
        )

        self.mqtt_connected = Gauge(
            "grantchain_mqtt_connected",
            "1 while the MQTT bridge is connected and subscribed (taking messages)",
            registry=r,
        )
        self.mqtt_messages = Counter(
            "grantchain_mqtt_messages",
            "MQTT messages by outcome: in, committed, malformed, qos0_refused, retried (after a "
            "failure on the node)",
            ["outcome"],
            registry=r,
        )
        self.mqtt_txs = Counter(
            "grantchain_mqtt_txs",
            "Txs from MQTT by outcome: committed, deduplicated (already queued or in the "
            "chain when they arrived), rejected",
            ["outcome"],
            registry=r,
        )
        self.mqtt_paused_seconds = Counter(
            "grantchain_mqtt_paused_seconds",
            "Time the MQTT bridge waited because the node could not take txs",
            registry=r,
        )
        self.openlineage_events = Counter(
            "grantchain_openlineage_events",
            "OpenLineage RunEvents by outcome: recorded, nothing_to_record, invalid, "
            "unauthorized, refused, unavailable",
            ["outcome"],
            registry=r,
        )
        self.mqtt_inflight = Gauge(
            "grantchain_mqtt_inflight_messages",
            "MQTT messages taken and not yet acknowledged",
            registry=r,
        )

        buckets = (0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5)
        self.block_build = Histogram(
            "grantchain_block_build_seconds",
            "Leader: cut and execute a block",
            buckets=buckets,
            registry=r,
        )
        self.block_replicate = Histogram(
            "grantchain_block_replicate_seconds",
            "Leader: from proposing a block to applying it (replication and commit)",
            buckets=buckets,
            registry=r,
        )
        self.block_pipeline_depth = Histogram(
            "grantchain_block_pipeline_depth",
            "Leader: own blocks in flight when one is proposed, that one included",
            buckets=(1, 2, 3, 4, 6, 8),
            registry=r,
        )
        self.blocks_applied_from = Counter(
            "grantchain_blocks_applied_from",
            "Applied blocks by where their writes came from: built (this leader's own), "
            "change_set (the proposer's, replayed), validated (PBFT: this backup's "
            "validation of the proposal) or executed (re-executed here)",
            ["source"],
            registry=r,
        )
        self.block_apply = Histogram(
            "grantchain_block_apply_seconds",
            "Apply a committed block: verify, execute, store durably",
            buckets=buckets,
            registry=r,
        )

    def render(self) -> bytes:
        out: bytes = generate_latest(self.registry)
        return out
