"""Every host's questions to the authority, on a budget.

Every flow a host starts that has no grant becomes a question to the authority and a row of
its log: without a bound, a port sweep loads the authority and grows the log for as long as
the host likes. A gateway gives each of its addresses a token bucket per direction (questions
about flows the host starts, and about flows started towards it, so that nobody else can
spend a host's budget): ``rate`` questions a second, ``burst`` at once. A question over
budget is not asked; its packet is dropped, counted, and logged by the gateway, once per
address and direction a second (so the refusals do not grow the log either). Renewals of
flows in use are the gateway's own and cost nothing.

The defaults carry the experiments' heaviest legitimate use (a blast-radius round on a 25-PoP
graph asks about every other end node, both ways, twice a second) with room to spare.
"""

from __future__ import annotations

from dataclasses import dataclass, field

QUESTION_RATE = 200    # questions a second, per address and direction
QUESTION_BURST = 1000  # at once
# registration requests relayed to the authority per host line (the ruleset also limits each
# address): a line has one person, or a farm whose devices are enrolled in bulk beforehand
REGISTRATION_RATE, REGISTRATION_BURST = 10, 20
LOG_EVERY_S = 1.0      # a refusal is logged at most this often per address and direction


@dataclass
class Bucket:
    tokens: float
    at: float
    logged: float = -LOG_EVERY_S


@dataclass
class Budget:
    rate: float = QUESTION_RATE
    burst: float = QUESTION_BURST
    buckets: dict[tuple[int, bool], Bucket] = field(default_factory=dict)

    def spend(self, address: int, inbound: bool, now: float) -> bool:
        """One question of ``address`` (about a flow started towards it if ``inbound``) at
        ``now``: True if it is within budget."""
        bucket = self.buckets.get((address, inbound))
        if bucket is None:
            bucket = self.buckets[address, inbound] = Bucket(self.burst, now)
        bucket.tokens = min(self.burst, bucket.tokens + (now - bucket.at) * self.rate)
        bucket.at = now
        if bucket.tokens < 1:
            return False
        bucket.tokens -= 1
        return True

    def log_refusal(self, address: int, inbound: bool, now: float) -> bool:
        """Whether this refusal is the one to log (the first in ``LOG_EVERY_S``)."""
        bucket = self.buckets[address, inbound]
        if now - bucket.logged < LOG_EVERY_S:
            return False
        bucket.logged = now
        return True
