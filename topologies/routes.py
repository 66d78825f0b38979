"""Static shortest-path routes computed from the graph.

Used by the network layer before any routing protocol exists, by the ``static`` baseline, and
by ``mn --custom``. The path metric is one-way delay plus a tiny per-hop cost, so ties go to
fewer hops, the same choice OSPF makes with delay-derived costs.
"""

from __future__ import annotations

from ipaddress import IPv4Address, IPv4Network

import networkx as nx

from .addressing import AddressPlan
from .graph import routers

HOP_COST = 1e-3


def path_weight(g: nx.Graph):
    return lambda a, b, e: e.get("delay_ms", 0.0) + HOP_COST


def static_routes(g: nx.Graph, plan: AddressPlan) -> dict[str, list[tuple[IPv4Network,
                                                                            IPv4Address]]]:
    """Router -> [(prefix, next hop)] for every prefix the router is not connected to."""
    core = g.subgraph(routers(g))
    owners: dict[IPv4Network, list[str]] = {}
    for intf in plan.interfaces.values():
        if intf.node in core:
            owners.setdefault(intf.address.network, []).append(intf.node)
    for r, lo in plan.loopbacks.items():
        owners.setdefault(IPv4Network(f"{lo}/32"), []).append(r)
    for farm, blocks in plan.devices.items():
        for block in blocks:
            owners[block] = [plan.interfaces_of(farm)[0].peer]
    table = {}
    for r in core:
        dist, paths = nx.single_source_dijkstra(core, r, weight=path_weight(g))
        routes = []
        for prefix, nodes in sorted(owners.items()):
            if r in nodes or not any(n in dist for n in nodes):
                continue
            target = min((n for n in nodes if n in dist), key=lambda n: (dist[n], n))
            first_hop = paths[target][1]
            routes.append((prefix, plan.intf(first_hop, r).address.ip))
        table[r] = routes
    return table
