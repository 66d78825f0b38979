"""Who and what an experiment acts on, chosen by rule from a topology's roles and the seed.

No experiment names a node of one particular topology: it asks for its subjects here, and
records them in its ``meta.json``. The rule, for seed S (``random.Random(S)`` over sorted
candidates, so the same graph and seed always give the same choice):

* ``region``: a region with hosts, leaving at least two hosts outside it (the region a
  shutdown hits);
* ``victim``: a host in that region (the person cut off); ``user``: a host outside it (the
  user whose destination is blocked); ``helper``: another host outside it (who runs a relay
  at home);
* ``blocked_site`` and ``named_site``: one site of each of two different foreign web servers
  (the destination blocked by address, the name blocked by its resolver or addresses);
* ``essential``: the national resolver and web server (what stays up in a shutdown);
* ``server`` and ``far``: the national web server and a foreign one (latency benchmarks).
"""

from __future__ import annotations

import random
from dataclasses import asdict, dataclass

import networkx as nx

from topologies.graph import DEFAULT_SEED, TopologyError, hosts, is_foreign, services


@dataclass(frozen=True)
class Subjects:
    region: str
    victim: str
    user: str
    helper: str
    blocked_site: str
    named_site: str
    essential: tuple[str, ...]
    server: str
    far: str

    def describe(self) -> dict:
        return asdict(self)


def choose(g: nx.Graph, seed: int = DEFAULT_SEED) -> Subjects:
    """The subjects of ``g`` for ``seed``; TopologyError (one sentence) if it has none."""
    rng = random.Random(seed)
    people = hosts(g)
    regions = sorted({g.nodes[h]["region"] for h in people if g.nodes[h].get("region")})
    fit = [r for r in regions if any(g.nodes[h].get("region") == r for h in people) and
           sum(g.nodes[h].get("region") != r for h in people) >= 2]
    national_web = [n for n in services(g, "web") if not is_foreign(g, n)]
    national_dns = [n for n in services(g, "dns") if not is_foreign(g, n)]
    foreign_web = [n for n in services(g, "web") if is_foreign(g, n)]
    missing = [what for what, ok in (
        ("two regions with hosts (and two hosts outside one of them)", fit),
        ("a national web server", national_web), ("a national resolver", national_dns),
        ("two foreign web servers", len(foreign_web) >= 2),
        ("a relay abroad", services(g, "relay"))) if not ok]
    if missing:
        raise TopologyError(f"topology {g.graph.get('spec', g.graph.get('name', ''))} lacks "
                            f"{', '.join(missing)}")
    region = rng.choice(fit)
    inside = [h for h in people if g.nodes[h].get("region") == region]
    outside = [h for h in people if g.nodes[h].get("region") != region]
    victim = rng.choice(inside)
    user, helper = rng.sample(outside, 2)
    blocked_server, named_server = rng.sample(foreign_web, 2)
    return Subjects(region=region, victim=victim, user=user, helper=helper,
                    blocked_site=g.nodes[blocked_server]["sites"][0],
                    named_site=g.nodes[named_server]["sites"][0],
                    essential=(national_dns[0], national_web[0]),
                    server=national_web[0], far=rng.choice(foreign_web))
