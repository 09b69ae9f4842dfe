"""Per-identity rate limits: how many txs a second one sender key may place in this
node's mempool (a token bucket per key: ``rate_per_s`` a second, up to one second's
worth at once).

The mempool's sender quota (``mempool_sender_percent``) stops one identity from holding
the pool; this stops it from taking the chain's throughput while the pool drains. Both
answer 503 with a reason, so clients back off and retry (MQTT pauses), and nothing
acknowledged is dropped.

Only txs whose signature verified are charged (admission calls this after ``screen``):
anyone can put another member's key in a junk tx, so charging unverified txs would let
an attacker spend a victim's budget. A node-local policy, never consensus: the clock is
the node's monotonic clock, passed in so that tests drive it.
"""

from __future__ import annotations

BUCKETS_MAX = 100_000
"""Keys tracked at once; a full bucket is forgotten first (it is the default state), so
the table stays bounded however many identities the consortium registers."""


class SenderRates:
    def __init__(self, rate_per_s: int) -> None:
        if rate_per_s < 0:
            raise ValueError("rate_per_s must be >= 0 (0: no limit)")
        self.rate_per_s = rate_per_s
        self._buckets: dict[bytes, tuple[float, float]] = {}  # key -> (tokens, at_s)

    def take(self, sender: bytes, now_s: float) -> bool:
        """Charge one tx to ``sender``; False (nothing charged) if its bucket is empty."""
        rate = self.rate_per_s
        if not rate:
            return True
        tokens, at_s = self._buckets.get(sender, (float(rate), now_s))
        tokens = min(float(rate), tokens + (now_s - at_s) * rate)
        if tokens < 1.0:
            self._buckets[sender] = (tokens, now_s)
            return False
        if sender not in self._buckets and len(self._buckets) >= BUCKETS_MAX:
            self._forget_full(now_s)
        self._buckets[sender] = (tokens - 1.0, now_s)
        return True

    def _forget_full(self, now_s: float) -> None:
        rate = self.rate_per_s
        full = [k for k, (t, at) in self._buckets.items() if t + (now_s - at) * rate >= rate]
        for k in full:
            del self._buckets[k]
        if len(self._buckets) >= BUCKETS_MAX:  # every tracked key is busy: drop the oldest
            for k in list(self._buckets)[: len(self._buckets) - BUCKETS_MAX + 1]:
                del self._buckets[k]

    def __len__(self) -> int:
        return len(self._buckets)
