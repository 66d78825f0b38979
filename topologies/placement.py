"""Which server runs which node when a network spans several machines.

Links between servers cost a tunnel each (encapsulation, a hop through the servers' own
network, a calibration of its own), so the routers are split into parts with as few links
between parts as possible: recursive bisection, each half grown breadth-first to its share
of the servers' capacity from each of ``STARTS`` nodes in turn and improved by Kernighan-Lin
swaps (which keep both sizes), the split cutting fewest links kept. End nodes (hosts,
servers, the authority) go where their router is: their one link never crosses. A server's
capacity is counted in routers, the cost that ``bench scale`` measures per router.

Pure: the graph and the servers in, a mapping node -> server out.
"""

from __future__ import annotations

from dataclasses import dataclass

import networkx as nx
from networkx.algorithms.community import kernighan_lin_bisection

from .graph import DEFAULT_SEED, TopologyError, attachment, is_router, natural_key


@dataclass(frozen=True)
class Server:
    """A machine that runs part of the network: ``localhost`` (this one) or an ssh address;
    ``capacity``: the most routers it takes (None: an equal share)."""

    name: str
    capacity: int | None = None


def parse_servers(text: str) -> list[Server]:
    """``A,B[:ROUTERS],...`` as given on the command line."""
    servers = []
    for item in text.split(","):
        name, _, cap = item.strip().partition(":")
        if not name:
            raise TopologyError(f"--servers {text!r}: a server's name is empty")
        if "@" in name:
            raise TopologyError(f"--servers: {name!r}: servers are reached as root; give the "
                                "host alone (a Host of the ssh configuration may say more)")
        if cap and not (cap.isdigit() and int(cap) > 0):
            raise TopologyError(f"--servers: {item.strip()!r}: a capacity is a positive "
                                "number of routers, e.g. 198.19.254.2:60")
        servers.append(Server(name, int(cap) if cap else None))
    names = [s.name for s in servers]
    if len(set(names)) != len(names):
        raise TopologyError(f"--servers {text!r} names a server twice")
    return servers


def _shares(n: int, servers: list[Server]) -> list[int]:
    """Routers per server, in proportion to capacity (largest remainders first); a server
    without one counts as the largest given (all equal if none is) and takes what those with
    one cannot."""
    given = [s.capacity for s in servers if s.capacity is not None]
    if len(given) == len(servers) and sum(given) < n:
        raise TopologyError(f"the servers take {sum(given)} routers and the topology has {n}; "
                            "give them more capacity or add a server")
    weights = [s.capacity or max(given, default=1) for s in servers]
    exact = [n * w / sum(weights) for w in weights]
    shares = [int(x) for x in exact]
    for i in sorted(range(len(servers)), key=lambda i: shares[i] - exact[i])[:n - sum(shares)]:
        shares[i] += 1
    free = [i for i, s in enumerate(servers) if s.capacity is None]
    for i, s in enumerate(servers):  # past a capacity: to the servers without one, in turn
        while s.capacity is not None and shares[i] > s.capacity:
            shares[i] -= 1
            shares[free[shares[i] % len(free)]] += 1
    return shares


STARTS = 32  # bisections tried from different starts; the one cutting fewest links is kept


def _induced(graph: nx.Graph, nodes) -> nx.Graph:
    """The subgraph on ``nodes`` in natural order (a view would iterate a set, and the swaps'
    ties would then fall differently in every process)."""
    sub = nx.Graph()
    sub.add_nodes_from(sorted(nodes, key=natural_key))
    sub.add_edges_from(sorted((tuple(sorted(e, key=natural_key)) for e in
                               graph.subgraph(nodes).edges), key=lambda e: (
        natural_key(e[0]), natural_key(e[1]))), weight=1)
    return sub


def _grow(graph: nx.Graph, start: str, size: int) -> set[str]:
    """``size`` nodes grown breadth-first from ``start`` (then from the next piece, if the
    graph is in pieces): a connected start, so that the swaps only polish it."""
    part: list[str] = []
    for root in [start, *graph]:
        if len(part) >= size:
            break
        if root in part:
            continue
        for node in nx.bfs_tree(graph, root, sort_neighbors=lambda ns: sorted(
                ns, key=natural_key)):
            if len(part) < size and node not in part:
                part.append(node)
    return set(part)


def _bisect(graph: nx.Graph, size: int, seed: int) -> tuple[set[str], set[str]]:
    """Two parts, the first of ``size`` nodes, with few links between them."""
    nodes = list(graph)
    if not 0 < size < len(nodes):
        return set(nodes[:size]), set(nodes[size:])
    best = None
    for start in nodes[::max(1, len(nodes) // STARTS)]:
        first = _grow(graph, start, size)
        parts = kernighan_lin_bisection(graph, (first, set(nodes) - first), seed=seed)
        # the swaps keep both sizes; which set comes back first varies
        first, second = sorted(parts, key=lambda p: (len(p) != size, -len(p & first)))
        cut = nx.cut_size(graph, first, second)
        if best is None or cut < best[0]:
            best = (cut, first, second)
    return best[1], best[2]


def _split(graph: nx.Graph, servers: list[Server], shares: list[int],
           seed: int) -> dict[str, str]:
    if len(servers) == 1:
        return dict.fromkeys(graph, servers[0].name)
    half = len(servers) // 2
    size = sum(shares[:half])
    first, second = _bisect(graph, size, seed)
    out = _split(_induced(graph, first), servers[:half], shares[:half], seed)
    out.update(_split(_induced(graph, second), servers[half:], shares[half:], seed))
    return out


def place(graph: nx.Graph, servers: list[Server], seed: int = DEFAULT_SEED) -> dict[str, str]:
    """Every node of ``graph`` -> the name of the server that runs it."""
    if not servers:
        raise TopologyError("no server to place the network on")
    routers = _induced(graph, [n for n in graph if is_router(graph, n)])
    out = _split(routers, servers, _shares(routers.number_of_nodes(), servers), seed)
    for node in graph:
        if node not in out:
            out[node] = out[attachment(graph, node)]
    return out


def crossing(graph: nx.Graph, placement: dict[str, str]) -> list[tuple[str, str]]:
    """The links whose ends run on different servers (each becomes a tunnel)."""
    return sorted((tuple(sorted((a, b), key=natural_key)) for a, b in graph.edges
                   if placement[a] != placement[b]), key=lambda e: tuple(map(natural_key, e)))
