"""CL §4.4 new-view computation: from 2f+1 view-change messages (V), the pre-prepares
(O) the new primary must issue. Primary and backups run the same function, so a backup
rejects a NEW-VIEW whose O is not exactly what V implies.

- min-s is the highest stable checkpoint in V (each checkpoint in V carries a proof);
- max-s is the highest sequence number of a prepared certificate in V;
- every n in (min-s, max-s] gets the request of the prepared certificate for n with the
  highest view in V, or the null request if no certificate names n.

Rule 3 is what carries a request that may have committed into the new view; the
planted bug ``ignore_prepared`` drops it.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

from consensus.pbft_messages import NULL_DIGEST, CheckpointCert, PreparedCert, ViewChange


@dataclass(frozen=True, slots=True)
class Slot:
    seq: int
    digest: bytes
    payload: bytes


@dataclass(frozen=True, slots=True)
class NewViewPlan:
    checkpoint: CheckpointCert
    slots: tuple[Slot, ...]

    @property
    def max_seq(self) -> int:
        return self.slots[-1].seq if self.slots else self.checkpoint.seq


def plan_new_view(vcs: Sequence[ViewChange], ignore_prepared: bool = False) -> NewViewPlan:
    """``vcs`` must already be validated (``Membership.view_change_ok``)."""
    checkpoint = vcs[0].checkpoint
    for v in vcs:
        if v.checkpoint.seq > checkpoint.seq:
            checkpoint = v.checkpoint
    low = checkpoint.seq
    best: dict[int, PreparedCert] = {}
    if not ignore_prepared:
        for v in vcs:
            for p in v.prepared:
                pp = p.pre_prepare
                if pp.seq <= low:
                    continue
                cur = best.get(pp.seq)
                if cur is None or (pp.view, pp.digest) > (
                    cur.pre_prepare.view,
                    cur.pre_prepare.digest,
                ):
                    best[pp.seq] = p
    top = max(best, default=low)
    slots = []
    for seq in range(low + 1, top + 1):
        cert = best.get(seq)
        if cert is None:
            slots.append(Slot(seq, NULL_DIGEST, b""))
        else:
            slots.append(Slot(seq, cert.pre_prepare.digest, cert.pre_prepare.payload))
    return NewViewPlan(checkpoint, tuple(slots))
