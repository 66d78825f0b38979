"""Who can still start a connection after a failure, from the graph alone.

A failure (a router, a link, a region cut off from the authority, the authority itself) leaves
a residual graph. The pairs of end nodes that can no longer start a connection are:

permissionless IP  those the residual graph disconnects: routing is all there is.
a design that admits flows (registered access)
                    those, and every pair with an end behind a gateway that can no longer reach
                    the authority (a gateway asks on behalf of its own hosts: a flow between two
                    hosts needs both gateways to get through; servers have no gateway). With
                    fail-open gateways, admission never stands in the way.

Connections that existed before the failure are cut by routing at once; under registered
access, those that can no longer be renewed follow when their grants run out, at most one TTL
later (``existing_lost(..., after_ttl=True)``).
"""

from __future__ import annotations

from dataclasses import dataclass

import networkx as nx

from protocols.architectures import admits
from topologies.graph import attachment, authority_site, end_nodes

USER_ROLES = ("host", "server", "foreign_server")


@dataclass(frozen=True)
class Failure:
    kind: str     # router, link, partition, authority
    target: str   # a router, "a-b", a region, "authority"

    @classmethod
    def of(cls, record: dict) -> Failure:
        return cls(record["kind"], record["target"])


def users(g: nx.Graph) -> list[str]:
    """The end nodes whose pairs count (the authority site is infrastructure, not a user)."""
    return end_nodes(g, *USER_ROLES)


def partition_cut(g: nx.Graph, region: str) -> list[tuple[str, str]]:
    """The links between a region (its access routers and their end nodes) and the rest, if
    the region is connected on its own and does not hold the authority."""
    inside = {n for n in g if g.nodes[n].get("region") == region}
    inside |= {e for n in list(inside) for e in g.neighbors(n)
               if g.nodes[e]["role"] in USER_ROLES + ("authority",)}
    auth = authority_site(g)
    routers_inside = [n for n in inside if g.nodes[n]["role"] == "access"]
    if auth in inside or len(routers_inside) < 2 or not nx.is_connected(g.subgraph(inside)):
        return []
    return sorted((a, b) if a in inside else (b, a) for a, b in g.edges
                  if (a in inside) != (b in inside))


def partition_regions(g: nx.Graph) -> list[str]:
    """Regions that can be cut off from the authority while staying connected inside."""
    if authority_site(g) is None:
        return []
    regions = sorted({g.nodes[n]["region"] for n in g if g.nodes[n]["role"] == "access"
                      and "region" in g.nodes[n]})
    return [r for r in regions if partition_cut(g, r)]


def residual(g: nx.Graph, failure: Failure) -> nx.Graph:
    left = g.copy()
    if failure.kind == "router":
        left.remove_node(failure.target)
    elif failure.kind == "link":
        left.remove_edge(*failure.target.split("-"))
    elif failure.kind == "partition":
        left.remove_edges_from(partition_cut(g, failure.target))
    elif failure.kind == "authority":
        left.remove_node(authority_site(g))
    return left  # a regulator's failure takes no line and no node: boxes keep their rules


def gateway_of(g: nx.Graph, node: str) -> str | None:
    """The access router whose gateway admits ``node``'s flows (hosts only)."""
    if g.nodes[node]["role"] != "host":
        return None
    router = attachment(g, node)
    return router if g.nodes[router]["role"] == "access" else None


def routing_lost(g: nx.Graph, failure: Failure) -> set[tuple[str, str]]:
    left = residual(g, failure)
    component = {n: k for k, c in enumerate(nx.connected_components(left)) for n in c}
    ends = users(g)
    return {(a, b) for a in ends for b in ends if a != b and
            (a not in left or b not in left or component[a] != component[b])}


def new_lost(g: nx.Graph, failure: Failure, design: str,
             fail_mode: str = "closed") -> set[tuple[str, str]]:
    """Ordered pairs of users that can no longer start a connection."""
    lost = routing_lost(g, failure)
    if not admits(design) or fail_mode == "open":
        return lost
    left = residual(g, failure)
    auth = authority_site(g)
    reach = nx.node_connected_component(left, auth) if auth in left else set()
    cut_off = {n for n in users(g) if gateway_of(g, n) is not None and
               gateway_of(g, n) not in reach}
    ends = users(g)
    return lost | {(a, b) for a in ends for b in ends if a != b and
                   (a in cut_off or b in cut_off)}


def existing_lost(g: nx.Graph, failure: Failure, design: str, after_ttl: bool,
                  fail_mode: str = "closed") -> set[tuple[str, str]]:
    """Ordered pairs whose connections from before the failure stop: by routing at once,
    and, under registered access, once grants that cannot be renewed have run out."""
    if admits(design) and after_ttl:
        return new_lost(g, failure, design, fail_mode)
    return routing_lost(g, failure)
