"""Architecture-neutral network graphs.

A topology is a plain ``networkx.Graph`` whose nodes carry a ``role`` and whose edges carry
link attributes. Nothing here knows about routing protocols, admission control or Mininet:
the same graph is brought up under every architecture, which is what makes a comparison fair.

Node roles:

==============  ============================================================================
host            a person's machine behind an access router
server          a national service machine (web, DNS) in a data centre
authority       the site where a registered-access authority can run (unused by others)
foreign_server  a machine abroad (web, DNS, relay)
access          router that hosts attach to (where a registered-access gateway sits)
core            national backbone router
border          national router with links abroad (where a border censor sits)
foreign         router abroad
==============  ============================================================================

Edge attributes: ``delay_ms`` (one way), ``bw_mbit`` (None = unshaped), ``loss_pct``,
``jitter_ms``. Optional node attributes: ``label`` (e.g. a PoP's city), ``pos``
((lon, lat) or (x, y)), ``region`` (hosts and access routers), ``service`` and ``sites``
(servers: ``web`` with the site names it serves, ``dns``, ``relay``).
"""

from __future__ import annotations

import json
import re
from dataclasses import dataclass
from pathlib import Path

import networkx as nx

DEFAULT_SEED = 1  # every random choice of a run (subjects, jitter, names) unless told
ROUTER_ROLES = frozenset({"access", "core", "border", "foreign"})
END_ROLES = frozenset({"host", "server", "authority", "foreign_server"})
ROLES = ROUTER_ROLES | END_ROLES
FOREIGN_ROLES = frozenset({"foreign", "foreign_server"})
SERVICES = frozenset({"web", "dns", "relay"})

# Linux limits interface names to 15 characters; Mininet names them "<node>-eth<port>".
_NODE_NAME = re.compile(r"^[a-z][a-z0-9]{0,8}$")


class TopologyError(ValueError):
    """A graph that cannot be emulated; the message is one sentence naming the problem."""


@dataclass(frozen=True)
class LinkSpec:
    """What a link should look like; every field is honoured or the run says it is not."""

    delay_ms: float = 0.0
    bw_mbit: float | None = None
    loss_pct: float = 0.0
    jitter_ms: float = 0.0

    def __post_init__(self) -> None:
        if self.delay_ms < 0 or self.jitter_ms < 0:
            raise TopologyError("link delay and jitter must be zero or positive milliseconds")
        if self.bw_mbit is not None and not 0 < self.bw_mbit <= 10_000:
            raise TopologyError("link bandwidth must be between 0 and 10000 Mbit/s")
        if not 0 <= self.loss_pct < 100:
            raise TopologyError("link loss must be a percentage from 0 to below 100")

    @classmethod
    def of(cls, graph: nx.Graph, a: str, b: str) -> LinkSpec:
        e = graph.edges[a, b]
        return cls(e.get("delay_ms", 0.0), e.get("bw_mbit"), e.get("loss_pct", 0.0),
                   e.get("jitter_ms", 0.0))

    @property
    def shaped(self) -> bool:
        return bool(self.delay_ms or self.jitter_ms or self.loss_pct or self.bw_mbit)


def new_graph(name: str, **attrs: object) -> nx.Graph:
    g = nx.Graph(name=name)
    g.graph.update(attrs)
    return g


def add_router(g: nx.Graph, name: str, role: str, **attrs: object) -> str:
    if role not in ROUTER_ROLES:
        raise TopologyError(f"{role!r} is not a router role ({', '.join(sorted(ROUTER_ROLES))})")
    g.add_node(name, role=role, **attrs)
    return name


def add_end(g: nx.Graph, name: str, role: str, router: str, link: LinkSpec = LinkSpec(),
            **attrs: object) -> str:
    """Add an end node (host, server, ...) attached by one link to ``router``."""
    if role not in END_ROLES:
        raise TopologyError(f"{role!r} is not an end-node role ({', '.join(sorted(END_ROLES))})")
    g.add_node(name, role=role, **attrs)
    add_link(g, name, router, link)
    return name


def add_link(g: nx.Graph, a: str, b: str, spec: LinkSpec = LinkSpec()) -> None:
    g.add_edge(a, b, delay_ms=spec.delay_ms, bw_mbit=spec.bw_mbit, loss_pct=spec.loss_pct,
               jitter_ms=spec.jitter_ms)


def role(g: nx.Graph, node: str) -> str:
    return g.nodes[node]["role"]


def is_router(g: nx.Graph, node: str) -> bool:
    return role(g, node) in ROUTER_ROLES


def is_foreign(g: nx.Graph, node: str) -> bool:
    return role(g, node) in FOREIGN_ROLES


def routers(g: nx.Graph) -> list[str]:
    return sorted((n for n in g if is_router(g, n)), key=natural_key)


def end_nodes(g: nx.Graph, *roles: str) -> list[str]:
    wanted = set(roles) if roles else END_ROLES
    return sorted((n for n in g if role(g, n) in wanted), key=natural_key)


def hosts(g: nx.Graph) -> list[str]:
    return end_nodes(g, "host")


def authority_site(g: nx.Graph) -> str | None:
    """Where a registered-access authority runs (the first authority site), if anywhere."""
    return next(iter(end_nodes(g, "authority")), None)


def attachment(g: nx.Graph, end: str) -> str:
    """The router an end node hangs off."""
    (router,) = g.neighbors(end)
    return router


def services(g: nx.Graph, service: str) -> list[str]:
    return [n for n in end_nodes(g) if g.nodes[n].get("service") == service]


def site_owner(g: nx.Graph) -> dict[str, str]:
    """Web site name -> the server node that serves it."""
    return {site: n for n in services(g, "web") for site in g.nodes[n].get("sites", ())}


def natural_key(name: str) -> tuple:
    """Sort r2 before r10."""
    return tuple(int(t) if t.isdigit() else t for t in re.split(r"(\d+)", name))


def validate(g: nx.Graph) -> None:
    """Raise TopologyError (one sentence) if the graph cannot be emulated faithfully."""
    if g.number_of_nodes() == 0:
        raise TopologyError("the topology has no nodes")
    for n, data in g.nodes(data=True):
        if not _NODE_NAME.match(n):
            raise TopologyError(f"node name {n!r} must be 1-9 lowercase letters/digits starting "
                                "with a letter (it becomes part of interface names)")
        if data.get("role") not in ROLES:
            raise TopologyError(f"node {n} has role {data.get('role')!r}, expected one of "
                                f"{', '.join(sorted(ROLES))}")
        if data["role"] in END_ROLES:
            if g.degree(n) != 1:
                raise TopologyError(f"end node {n} must have exactly one link, it has "
                                    f"{g.degree(n)}")
            if not is_router(g, attachment(g, n)):
                raise TopologyError(f"end node {n} must attach to a router, not to "
                                    f"{attachment(g, n)}")
    for a, b in g.edges:
        LinkSpec.of(g, a, b)  # validates the attributes
    if not nx.is_connected(g):
        raise TopologyError("the topology is not connected")


@dataclass(frozen=True)
class Summary:
    name: str
    nodes_by_role: dict[str, int]
    links: int
    diameter_hops: int
    diameter_ms: float

    def lines(self) -> list[str]:
        roles = ", ".join(f"{count} {r}" for r, count in sorted(self.nodes_by_role.items()))
        return [f"topology {self.name}: {sum(self.nodes_by_role.values())} nodes ({roles})",
                f"links: {self.links}",
                f"diameter: {self.diameter_hops} hops, {self.diameter_ms:.2f} ms one way "
                "(end node to end node, lowest-delay path)"]


def summarize(g: nx.Graph) -> Summary:
    by_role: dict[str, int] = {}
    for _, r in g.nodes(data="role"):
        by_role[r] = by_role.get(r, 0) + 1
    ends = end_nodes(g) or list(g)
    hops = dict(nx.all_pairs_shortest_path_length(g))
    ms = dict(nx.all_pairs_dijkstra_path_length(g, weight="delay_ms"))
    return Summary(
        name=g.graph.get("name", "?"),
        nodes_by_role=by_role,
        links=g.number_of_edges(),
        diameter_hops=max(hops[a][b] for a in ends for b in ends),
        diameter_ms=max(ms[a][b] for a in ends for b in ends),
    )


def to_json(g: nx.Graph) -> dict:
    return nx.node_link_data(g, edges="links")


def from_json(data: dict) -> nx.Graph:
    g = nx.node_link_graph(data, edges="links")
    for _, attrs in g.nodes(data=True):
        if isinstance(attrs.get("pos"), list):
            attrs["pos"] = tuple(attrs["pos"])
    return g


def save(g: nx.Graph, path: Path) -> None:
    path.write_text(json.dumps(to_json(g), separators=(",", ":")))


def load(path: Path) -> nx.Graph:
    return from_json(json.loads(path.read_text()))
