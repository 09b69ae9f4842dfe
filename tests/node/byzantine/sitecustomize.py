"""Turns a real node process into an equivocating PBFT primary (issue 14, item 5), for
``tests/node/test_pbft_byzantine.py``: Python imports ``sitecustomize`` at start-up
from ``PYTHONPATH``, so the test starts the ordinary ``grantchain node run`` with this
directory first on the path and ``GRANTCHAIN_TEST_EQUIVOCATE=1``.

As primary, the node sends every block it proposes to the first backup as built, and to
the others a second, conflicting proposal for the same view and sequence number, signed
with its own key: the same block with a change set attached (a different digest, and a
block every backup finds valid: PBFT replicas ignore change sets and re-execute, so
only the protocol can stop it). Each equivocation is
logged, so the test can show it happened."""

from __future__ import annotations

import os
import sys

if os.environ.get("GRANTCHAIN_TEST_EQUIVOCATE") == "1":
    from chain import signing
    from consensus.pbft_messages import (
        Envelope,
        Kind,
        PrePrepare,
        payload_digest,
        statement_bytes,
    )
    from node import app
    from node.pipeline.entry import decode_entry, encode_entry

    _send = app.Node._send_from_consensus

    def _equivocating_send(self: app.Node, msg: object) -> None:
        body = getattr(msg, "body", None)
        if (
            isinstance(msg, Envelope)
            and isinstance(body, PrePrepare)
            and body.replica == self.node_id
            and body.payload
        ):
            backups = sorted(
                v.node_id for v in self.genesis.validators if v.node_id != self.node_id
            )
            block, change_set = decode_entry(body.payload)
            if msg.to in backups[1:] and change_set is None:
                payload = encode_entry(block, b"twin")
                d = payload_digest(payload)
                stmt = statement_bytes(Kind.PRE_PREPARE, body.view, body.seq, d, body.replica)
                twin = PrePrepare(
                    body.view, body.seq, d, body.replica, signing.sign(self.node_key, stmt), payload
                )
                print(
                    f"EQUIVOCATION view {body.view} seq {body.seq} to {msg.to}",
                    file=sys.stderr,
                    flush=True,
                )
                msg = Envelope(msg.frm, msg.to, twin)
        _send(self, msg)  # type: ignore[arg-type]

    app.Node._send_from_consensus = _equivocating_send  # type: ignore[method-assign]
