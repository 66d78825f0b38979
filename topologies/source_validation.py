"""Source address validation (BCP 38 / uRPF): part of the network, so the same under every
architecture.

* A national router with end-node lines accepts from each line only that line's own prefix (a
  host may move within its line, never outside it) and, from a device farm, its device
  block. Abroad is not our network: nothing is assumed of foreign routers, as many real
  networks filter nothing.
* A border router drops what arrives from abroad claiming a national source: nobody abroad
  can pose as a national node.
* Reverse-path filtering is strict on end-node lines (single-homed: the way back is always the
  line) and loose on router links (OSPF's equal-cost and asymmetric paths would make strict
  filtering drop legitimate traffic).

Drops are counted (nftables table ``inet splinter_sav``, counters ``line`` and ``border``).
"""

from __future__ import annotations

import networkx as nx

from .addressing import NATIONAL, AddressPlan
from .graph import is_foreign, is_router

TABLE = "splinter_sav"
SETTINGS = {"lines": "an end-node line carries only its own prefix",
            "borders": f"national sources ({NATIONAL}) arriving from abroad are dropped",
            "rp_filter": "strict on end-node lines, loose on router links"}


def ruleset(g: nx.Graph, plan: AddressPlan, router: str) -> str | None:
    """The router's table, or None if it is foreign or has neither end-node lines nor links
    abroad."""
    if is_foreign(g, router):
        return None
    rules = []
    for intf in plan.interfaces_of(router):
        if not is_router(g, intf.peer):
            own = ", ".join(map(str, plan.own_prefixes(intf.peer)))
            rules.append(f'iifname "{intf.name}" ip saddr != {{ {own} }} '
                         "counter name line drop")
        elif g.nodes[router]["role"] == "border" and is_foreign(g, intf.peer):
            rules.append(f'iifname "{intf.name}" ip saddr {NATIONAL} counter name border drop')
    if not rules:
        return None
    body = "\n    ".join(rules)
    return (f"table inet {TABLE} {{\n  counter line {{}}\n  counter border {{}}\n"
            f"  chain prerouting {{\n    type filter hook prerouting priority -300; "
            f"policy accept;\n    {body}\n  }}\n}}\n")


def rp_filter(g: nx.Graph, plan: AddressPlan, router: str) -> list[str]:
    """sysctl assignments: strict (1) on end-node lines, loose (2) on router links (none for
    foreign routers)."""
    if is_foreign(g, router):
        return []
    return [f"net.ipv4.conf.{intf.name}.rp_filter={1 if not is_router(g, intf.peer) else 2}"
            for intf in plan.interfaces_of(router)]
