"""Real ISP graphs from the Internet Topology Zoo and SNDlib, shipped by PyPI's ``topohub``.

One router per PoP (``r1``..``rN``, the city as its label, (lon, lat) as its position), link
delay from link length at 5 microseconds per km (light in fibre), ``hosts`` hosts on every PoP,
the authority site and the data centre at a named PoP or the most central one, and optionally
border routers at the PoPs farthest from the centre leading to the same "abroad" as ``isp``.

Regions (what a registered-access operator can shut down) are a handful of connected groups
of PoPs, the graph's greedy modularity communities (2 to 5, more for larger graphs: the same
graph always gets the same regions), each named after its most central city.
"""

from __future__ import annotations

import importlib.resources
import math
import re
from functools import cache

import networkx as nx
from networkx.algorithms.community import greedy_modularity_communities

from .graph import LinkSpec, TopologyError, add_end, add_link, add_router, new_graph
from .parts import add_abroad, add_datacentre

US_PER_KM = 5.0
GROUPS = ("topozoo", "sndlib")


WORLD = "world/"  # a continent of topohub's world backbone (``topologies.world``)


@cache
def catalogue() -> dict[str, str]:
    """Lower-case lookup name -> topohub key, e.g. 'abilene' -> 'topozoo/Abilene'; the world's
    continents as 'world/europe'."""
    from .world import REGIONS

    names = {f"{WORLD}{slug}": f"{WORLD}{slug}" for slug in REGIONS}
    root = importlib.resources.files("topohub.data")
    for group in GROUPS:
        for entry in root.joinpath(group).iterdir():
            if entry.name.endswith(".json"):
                key = f"{group}/{entry.name[:-5]}"
                names[key.lower()] = key
                if group == "topozoo":
                    names[entry.name[:-5].lower()] = key
    return names


def load_raw(name: str) -> nx.Graph:
    key = catalogue().get(name.lower())
    if key is None:
        raise TopologyError(f"there is no zoo topology {name!r}; 'splinterlab topo list --zoo' "
                            "lists them")
    if key.startswith(WORLD):
        from .world import continent

        return continent(key[len(WORLD):])
    import topohub

    return nx.node_link_graph(topohub.get(key), edges="edges")


# Graphs larger than this are refused unless asked for (",ceiling=false"): the largest graph
# up to which 'splinterlab bench scale' ran every rung under every design here
# (docs/results/bench-scale/ladder; a test holds the two equal).
CEILING = {"pops": 161, "basis": "the largest graph 'splinterlab bench scale' ran under every "
                                "design on two cores and 24 GiB"}


def build(name: str, hosts: int = 1, authority: str = "", borders: int = 1,
          foreign_delay: float = 20.0, ceiling: bool = True) -> nx.Graph:
    """``ceiling``: refuse graphs larger than ``CEILING``; ``ceiling=false`` on a larger
    machine, or to see what breaks."""
    raw = load_raw(name)
    if ceiling and raw.number_of_nodes() > CEILING["pops"]:
        raise TopologyError(
            f"zoo:{name} has {raw.number_of_nodes()} PoPs, more than the {CEILING['pops']} "
            f"this machine is held to ({CEILING['basis']}); pick a smaller graph or add "
            ",ceiling=false")
    if not 0 <= hosts <= 8:
        raise TopologyError(f"zoo topologies take hosts between 0 and 8 per PoP, not {hosts}")
    g = new_graph(f"zoo:{name}", source=catalogue()[name.lower()])
    router = {pop: f"r{i}" for i, pop in enumerate(sorted(raw, key=int), start=1)}
    region_of = regions(raw)
    for pop, r in router.items():
        lon, lat = raw.nodes[pop]["pos"]
        add_router(g, r, "access" if hosts else "core", label=raw.nodes[pop].get("name", r),
                   pos=(lon, lat), region=region_of[pop])
    for a, b, data in raw.edges(data=True):
        add_link(g, router[a], router[b], LinkSpec(delay_ms=round(data["dist"] * US_PER_KM
                                                                   / 1000, 3)))

    centre = _pick_centre(g, authority)
    line = LinkSpec(delay_ms=0.5, bw_mbit=100)
    k = 0
    for r in sorted(router.values(), key=lambda r: int(r[1:])):
        for _ in range(hosts):
            k += 1
            add_end(g, f"h{k}", "host", r, line, region=g.nodes[r]["region"])
    add_end(g, "auth", "authority", centre, LinkSpec(delay_ms=0.5))
    add_datacentre(g, centre)
    if borders:
        if borders > len(router) - 1:
            raise TopologyError(f"zoo:{name} has room for at most {len(router) - 1} borders")
        dist = nx.single_source_dijkstra_path_length(g.subgraph(router.values()), centre,
                                                     weight="delay_ms")
        farthest = sorted((r for r in router.values() if r != centre),
                          key=lambda r: (-dist[r], int(r[1:])))[:borders]
        add_abroad(g, {f"b{j + 1}": [r] for j, r in enumerate(farthest)}, foreign_delay,
                   LinkSpec(delay_ms=0.1))
        for j, r in enumerate(farthest):
            g.nodes[f"b{j + 1}"]["pos"] = g.nodes[r]["pos"]
    return g


def regions(raw: nx.Graph) -> dict:
    """PoP -> region name: connected groups of PoPs (modularity communities), a handful."""
    if not nx.is_connected(raw):
        raise TopologyError(f"{raw.graph.get('name', 'the graph')} is not connected: it cannot "
                            "be one network")
    k = max(2, min(5, round(math.sqrt(raw.number_of_nodes()) / 1.5)))
    if raw.number_of_nodes() < 2 * k:
        k = 1
    communities = greedy_modularity_communities(raw, cutoff=k, best_n=k)
    out, used = {}, set()
    for community in sorted(communities, key=lambda c: min(map(int, c))):
        closeness = nx.closeness_centrality(raw.subgraph(community))
        centre = max(sorted(community, key=int), key=lambda p: closeness[p])
        label = re.sub(r"[^a-z0-9]+", "-", str(raw.nodes[centre].get("name", "")).lower())
        label = label.strip("-")[:20] or "region"
        name, n = label, 1
        while name in used:
            n += 1
            name = f"{label}-{n}"
        used.add(name)
        out.update(dict.fromkeys(community, name))
    return out


def _pick_centre(g: nx.Graph, authority: str) -> str:
    routers = [n for n in g if g.nodes[n]["role"] in ("access", "core")]
    if authority:
        for r in routers:
            if authority.lower() in (r, g.nodes[r]["label"].lower()):
                return r
        raise TopologyError(f"{g.graph['name']} has no PoP named {authority!r}; "
                            "'splinterlab topo show' lists the PoPs")
    closeness = nx.closeness_centrality(g.subgraph(routers), distance="delay_ms")
    return max(routers, key=lambda r: (closeness[r], -int(r[1:])))


def describe() -> list[str]:
    return sorted({key for key in catalogue().values()})
