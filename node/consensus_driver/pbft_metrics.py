"""The PBFT replica's own Prometheus metrics, on the node's registry: its view, the view
changes it started or joined, its stable checkpoints, the blocks it refused, and the
replica set it orders with (whether it votes in it)."""

from __future__ import annotations

from prometheus_client import CollectorRegistry, Counter, Gauge


class PbftMetrics:
    def __init__(self, registry: CollectorRegistry) -> None:
        r = registry
        self.view = Gauge("grantchain_pbft_view", "The PBFT view this replica is in", registry=r)
        self.view_changes = Counter(
            "grantchain_pbft_view_changes",
            "Views this replica moved past since it started (a view change it started, "
            "joined, or learnt of)",
            registry=r,
        )
        self.stable_checkpoint = Gauge(
            "grantchain_pbft_stable_checkpoint",
            "Sequence number of the last stable checkpoint (2f+1 matching checkpoints)",
            registry=r,
        )
        self.checkpoints = Counter(
            "grantchain_pbft_checkpoints", "Checkpoints that became stable here", registry=r
        )
        self.executed = Gauge(
            "grantchain_pbft_executed", "Sequence numbers executed by this replica", registry=r
        )
        self.blocks_refused = Counter(
            "grantchain_pbft_blocks_refused",
            "Pre-prepared blocks this backup found invalid and did not prepare",
            registry=r,
        )
        self.messages_oversize = Counter(
            "grantchain_pbft_messages_oversize",
            "PBFT messages not sent for being over peer_frame_bytes_max (a state transfer "
            "of many blocks; the replica that asked then asks another, or stays behind)",
            registry=r,
        )
        self.state_installs = Counter(
            "grantchain_pbft_state_installs",
            "States of a stable checkpoint this replica installed (CL §5.3, the entries "
            "it missed gone from every peer): the blocks up to it fetched, each certified",
            registry=r,
        )
        self.catch_up_refused = Counter(
            "grantchain_pbft_catch_up_refused",
            "Answers of a peer refused while installing a state (a block failing its "
            "certificate, the certified hash or re-execution; no answer)",
            registry=r,
        )
        self.replicas = Gauge(
            "grantchain_pbft_replicas",
            "Replicas of the set this replica orders with now (governance changes it from "
            "a checkpoint on)",
            registry=r,
        )
        self.member = Gauge(
            "grantchain_pbft_member",
            "1 while this replica votes in the set it orders with; 0 for a replica added by "
            "governance that is catching up, or one governance removed",
            registry=r,
        )
        self.signatures_primed = Counter(
            "grantchain_pbft_signatures_primed",
            "Vote signatures verified in one batch per inbox drain (the rest are verified "
            "one at a time as the core steps them)",
            registry=r,
        )
        self.decisions = Counter(
            "grantchain_pbft_decisions",
            "Entries executed, by how they were proved (protocol, transfer, replay)",
            ["source"],
            registry=r,
        )
