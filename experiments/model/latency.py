"""What admission adds to a first connection, from the graph alone.

A first packet under registered access waits while its gateway asks the authority: the
round trip between the gateway's router and the authority site along the path routing takes
(OSPF with costs from link delay: the lowest-delay path), plus what the gateway and the
authority spend on it (``processing_ms``, a constant measured on this machine by ``bench
access``; about 0.4 ms here, all of it Python). A flow between two hosts asks at both ends'
gateways, one after the other. Once admitted, a flow costs nothing more.

The same functions give distances for the planet-sized graphs no machine can emulate.
"""

from __future__ import annotations

import networkx as nx

from experiments.model.reachability import gateway_of
from topologies.graph import attachment, authority_site
from topologies.routes import path_weight

PROCESSING_MS = 0.43  # bench access, isp, 2026-11-30: first-connection overhead minus RTT


def one_way_ms(g: nx.Graph, a: str, b: str) -> float:
    """Propagation delay along the path routing takes from ``a`` to ``b``."""
    path = nx.shortest_path(g, a, b, weight=path_weight(g))
    return sum(g.edges[x, y].get("delay_ms", 0.0) for x, y in zip(path, path[1:], strict=False))


def gateway_authority_rtt_ms(g: nx.Graph, host: str, authority: str | None = None) -> float:
    authority = authority or authority_site(g)
    return 2 * one_way_ms(g, attachment(g, host), authority)


def first_connection_overhead_ms(g: nx.Graph, src: str, dst: str,
                                 processing_ms: float = PROCESSING_MS,
                                 authority: str | None = None) -> float:
    """How much longer the first connection from ``src`` to ``dst`` takes under registered
    access than under permissionless IP (0 when neither end has a gateway)."""
    return sum(gateway_authority_rtt_ms(g, end, authority) + processing_ms
               for end in (src, dst) if gateway_of(g, end) is not None)
