"""What admission adds to a first connection, from the graph alone.

A first packet under registered access waits while its gateway asks the authority: the
round trip between the gateway's router and the authority site along the path routing takes
(OSPF with costs from link delay: the lowest-delay path), plus what the gateway and the
authority spend on it (``processing_ms``: the first-connection overhead less the round trip,
as the newest ``bench access`` result measured it, this machine's own under ``results/`` or
else the published one). A flow between two hosts asks at both ends' gateways, one after the
other. Once admitted, a flow costs nothing more.

The same functions give distances for the planet-sized graphs no machine can emulate.
"""

from __future__ import annotations

import functools

import networkx as nx

from experiments.model.reachability import gateway_of
from experiments.results import ResultsError, newest
from topologies.graph import attachment, authority_site
from topologies.routes import path_weight

ACCESS = "bench-access/*"


@functools.cache
def processing() -> tuple[float, str]:
    """(milliseconds, the results file they come from): the newest ``bench access`` result's
    processing, the first-connection overhead less the gateway-authority round trip."""
    try:
        figures, path = newest(ACCESS, "processing_ms")
    except ResultsError:
        raise FileNotFoundError("no bench access result to take the processing time from "
                                "(docs/results/bench-access/ is part of the repository)") from None
    return round(figures["processing_ms"], 2), str(path)


def one_way_ms(g: nx.Graph, a: str, b: str) -> float:
    """Propagation delay along the path routing takes from ``a`` to ``b``."""
    path = nx.shortest_path(g, a, b, weight=path_weight(g))
    return sum(g.edges[x, y].get("delay_ms", 0.0) for x, y in zip(path, path[1:], strict=False))


def gateway_authority_rtt_ms(g: nx.Graph, host: str, authority: str | None = None) -> float:
    authority = authority or authority_site(g)
    return 2 * one_way_ms(g, attachment(g, host), authority)


def first_connection_overhead_ms(g: nx.Graph, src: str, dst: str,
                                 processing_ms: float | None = None,
                                 authority: str | None = None) -> float:
    """How much longer the first connection from ``src`` to ``dst`` takes under registered
    access than under permissionless IP (0 when neither end has a gateway)."""
    cost = processing()[0] if processing_ms is None else processing_ms
    return sum(gateway_authority_rtt_ms(g, end, authority) + cost
               for end in (src, dst) if gateway_of(g, end) is not None)
