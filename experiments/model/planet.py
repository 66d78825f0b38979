"""Registered access at the size of the planet, from the graph alone.

Every city of the world backbone (``world``) is the gateway of its users. Routing takes the
lowest-delay path through any node (OSPF with costs from link delay, healed after every
failure). Admission works as in ``latency``: a first connection waits for one round trip from
the gateway to its authority site plus the processing ``bench access`` measured. Authority
sites are cities; a city asks the site nearest to it (or, by ``jurisdiction``, its own
region's). A flow between two cities needs both gateways to admit it, as in
``reachability``. Where cities tie (as central,
as the greedy's pick), the first in node order wins, so the same graph gives the same answer.

Counts are of unordered pairs of distinct cities. After a failure a pair can still start a
connection if

a design that routes only (permissionless IP, IP under national control: its boxes and
regulator admit nothing) the residual graph still connects it;
registered access   that, and each end's gateway reaches an authority site that is up: any of
                    them with fail-over (``assigned=None``), only its own, the nearest before
                    the failure, without.

Percentiles are of cities ("95 % of cities wait at most this long": the nearest-rank
definition, numpy's ``inverted_cdf``).
"""

from __future__ import annotations

from dataclasses import dataclass

import networkx as nx
import numpy as np

from experiments.model.latency import processing
from protocols.architectures import ADMITTING, BASELINE
from topologies.world import cities as world_cities

PLACEMENTS = ("global", "continent", "country")
THRESHOLDS_MS = (10.0, 20.0, 50.0)


@dataclass(frozen=True)
class Planet:
    """A graph, its cities, and the one-way delay (ms) between every two of them."""

    g: nx.Graph
    cities: list
    ms: np.ndarray
    processing_ms: float

    @classmethod
    def of(cls, g: nx.Graph, processing_ms: float | None = None) -> Planet:
        """Shares of pairs lost count from a whole network: ``g`` must be connected."""
        if not nx.is_connected(g):
            raise ValueError("the graph is not connected: keep its largest component")
        cities = world_cities(g)
        index = {c: i for i, c in enumerate(cities)}
        ms = np.full((len(cities), len(cities)), np.inf)
        for i, c in enumerate(cities):
            for other, d in nx.single_source_dijkstra_path_length(g, c,
                                                                   weight="delay_ms").items():
                if other in index:
                    ms[i, index[other]] = d
        return cls(g, cities, ms, processing()[0] if processing_ms is None else processing_ms)

    def index(self, nodes) -> np.ndarray:
        where = {c: i for i, c in enumerate(self.cities)}
        return np.array([where[n] for n in nodes], dtype=int)

    def attr(self, key: str) -> np.ndarray:
        return np.array([self.g.nodes[c].get(key) for c in self.cities], dtype=object)


def p95(values: np.ndarray, axis: int = 0):
    return np.percentile(values, 95, axis=axis, method="inverted_cdf")


def pairs(n: int) -> int:
    return n * (n - 1) // 2


# -- first-connection overhead --------------------------------------------------------------
def overhead_ms(p: Planet, sites) -> np.ndarray:
    """Per city: a round trip to the nearest site plus processing."""
    return 2 * p.ms[:, p.index(sites)].min(axis=1) + p.processing_ms


def assignment(p: Planet, sites) -> dict:
    """City -> the site it asks (the nearest)."""
    sites = list(sites)
    nearest = p.ms[:, p.index(sites)].argmin(axis=1)
    return {c: sites[k] for c, k in zip(p.cities, nearest, strict=True)}


def jurisdiction(p: Planet, sites: dict, key: str) -> dict:
    """City -> the site of its own region (``key``: country or continent), however near
    another region's site may be: an authority that answers for its own people only."""
    return {c: sites[region] for c, region in zip(p.cities, p.attr(key), strict=True)}


def overhead_via_ms(p: Planet, assigned: dict) -> np.ndarray:
    """Per city: a round trip to its assigned site plus processing."""
    return 2 * p.ms[np.arange(len(p.cities)), p.index(assigned[c] for c in p.cities)] + \
        p.processing_ms


def central(p: Planet, members) -> object:
    """The member with the least mean delay to the members (paths may leave their region)."""
    members = sorted(members)
    at = p.index(members)
    return members[int(p.ms[np.ix_(at, at)].mean(axis=1).argmin())]


def placement(p: Planet, kind: str) -> dict:
    """Region -> its site: the most central city of the world (``global``), of each
    continent or of each country (``kind`` names the city attribute)."""
    if kind == "global":
        return {"world": central(p, p.cities)}
    regions: dict[str, list] = {}
    for c, region in zip(p.cities, p.attr(kind), strict=True):
        regions.setdefault(region, []).append(c)
    return {region: central(p, members) for region, members in sorted(regions.items())}


@dataclass(frozen=True)
class Step:
    sites: int
    added: object
    p95_ms: float
    mean_ms: float
    max_ms: float


def greedy(p: Planet, target_ms: float, max_sites: int) -> list[Step]:
    """Add sites one at a time, each the city that lowers the 95th percentile of overhead
    most (ties: the lower mean), until it is at most ``target_ms`` or ``max_sites`` are
    placed. Greedy, so an upper bound on the fewest sites that would do."""
    nearest = np.full(len(p.cities), np.inf)
    chosen: list[int] = []
    steps = []
    while len(chosen) < min(max_sites, len(p.cities)):
        options = np.minimum(nearest[:, None], p.ms)  # column j: if city j became a site
        score = p95(options)
        score[chosen] = np.inf
        j = int(np.lexsort((options.mean(axis=0), score))[0])
        chosen.append(j)
        nearest = options[:, j]
        over = 2 * nearest + p.processing_ms
        steps.append(Step(len(chosen), p.cities[j], float(p95(over)), float(over.mean()),
                          float(over.max())))
        if steps[-1].p95_ms <= target_ms:
            break
    return steps


def sites_needed(steps: list[Step], threshold_ms: float) -> int | None:
    return next((s.sites for s in steps if s.p95_ms <= threshold_ms), None)


# -- who can still start a connection --------------------------------------------------------
def components(g: nx.Graph, cut=()) -> dict:
    """Node -> its component in the graph without the ``cut`` edges."""
    left = nx.restricted_view(g, [], list(cut)) if cut else g
    return {n: k for k, part in enumerate(nx.connected_components(left)) for n in part}


def can_start(p: Planet, comp: dict, sites=None, assigned: dict | None = None) -> np.ndarray:
    """A label per city: two cities can start a connection iff their labels are equal and
    not -1. ``sites=None``: permissionless. Otherwise the sites up, and with ``assigned``
    each city may only use its own site (no fail-over)."""
    labels = np.array([comp[c] for c in p.cities])
    if sites is None:
        return labels
    up = set(sites)
    if assigned is None:
        served = {comp[s] for s in up}
        admitted = [comp[c] in served for c in p.cities]
    else:
        admitted = [assigned[c] in up and comp[assigned[c]] == comp[c] for c in p.cities]
    return np.where(admitted, labels, -1)


def connected_pairs(labels: np.ndarray, among: np.ndarray | None = None) -> int:
    chosen = labels if among is None else labels[among]
    _, counts = np.unique(chosen[chosen >= 0], return_counts=True)
    return int(sum(pairs(int(k)) for k in counts))


def lost_share(labels: np.ndarray) -> float:
    return 1 - connected_pairs(labels) / pairs(len(labels))


def reach(labels: np.ndarray) -> np.ndarray:
    """Per city, how many other cities it can start a connection with."""
    values, counts = np.unique(labels, return_counts=True)
    size = dict(zip(values.tolist(), counts.tolist(), strict=True))
    return np.array([size[x] - 1 if x >= 0 else 0 for x in labels.tolist()])


# -- failures --------------------------------------------------------------------------------
def authority_failures(p: Planet, sites) -> list[dict]:
    """Each site's authority down (the city and its links stay): what is lost without
    fail-over, with it, and what fail-over costs the others in overhead."""
    sites = list(sites)
    comp = components(p.g)
    assigned = assignment(p, sites)
    rows = []
    for site in sites:
        up = [s for s in sites if s != site]
        after = overhead_ms(p, up) if up else None
        rows.append({
            "site": site,
            "cities_served": sum(a == site for a in assigned.values()),
            "lost_no_failover": lost_share(can_start(p, comp, up, assigned)),
            "lost_failover": lost_share(can_start(p, comp, up)),
            "failover_p95_ms": None if after is None else float(p95(after)),
            "failover_max_ms": None if after is None else float(after.max())})
    return rows


def cable_cuts(p: Planet, placements: dict[str, list], routed=(BASELINE,)) -> list[dict]:
    """Every single link cut, for the designs that only route (``routed``) and registered
    access with each placement. Only a bridge (a link on no cycle) disconnects anything: any
    other cut leaves every node reachable and every pair, under every design, as it was."""
    bridges = {frozenset(e) for e in nx.bridges(p.g)}
    assigned = {name: assignment(p, sites) for name, sites in placements.items()}
    zero = {**dict.fromkeys(routed, 0.0), **{f"{ADMITTING}_{name}_{mode}": 0.0
                                            for name in placements
                                            for mode in ("no_failover", "failover")}}
    rows = []
    for a, b, attrs in sorted(p.g.edges(data=True), key=lambda e: (min(e[:2]), max(e[:2]))):
        row = {"a": a, "b": b, "km": attrs["dist_km"], "bridge": frozenset((a, b)) in bridges}
        if not row["bridge"]:
            rows.append({**row, **zero})
            continue
        comp = components(p.g, [(a, b)])
        row |= dict.fromkeys(routed, lost_share(can_start(p, comp)))
        for name, sites in placements.items():
            row[f"{ADMITTING}_{name}_no_failover"] = lost_share(
                can_start(p, comp, sites, assigned[name]))
            row[f"{ADMITTING}_{name}_failover"] = lost_share(can_start(p, comp, sites))
        rows.append(row)
    return rows


def border(g: nx.Graph, country: str) -> list[tuple]:
    """The links with one end in ``country`` (its cities and landing points) and one not."""
    inside = {n for n in g if g.nodes[n].get("country") == country}
    return [(a, b) for a, b in g.edges if (a in inside) != (b in inside)]


def disconnect(p: Planet, country: str, designs: dict[str, tuple]) -> dict:
    """``country`` cuts every link across its border. Per design (name -> (sites, assigned);
    sites None for a design that only routes): the share of its own city pairs that still
    connect, the share of its cities' reach into the world that is gone, and the share of the
    other countries' pairs lost with it (transit through it, an authority inside it)."""
    home = p.attr("country") == country
    cut = border(p.g, country)
    before_comp, after_comp = components(p.g), components(p.g, cut)
    row = {"country": country, "cities": int(home.sum()), "border_links": len(cut)}
    for name, (sites, assigned) in designs.items():
        before = can_start(p, before_comp, sites, assigned)
        after = can_start(p, after_comp, sites, assigned)
        row[f"{name}_domestic_kept"] = _kept(connected_pairs(after, home),
                                             connected_pairs(before, home))
        row[f"{name}_world_lost"] = _lost(reach(after)[home].sum(), reach(before)[home].sum())
        row[f"{name}_others_lost"] = _lost(connected_pairs(after, ~home),
                                           connected_pairs(before, ~home))
    return row


def _kept(after: int, before: int) -> float | None:
    return float(after / before) if before else None


def _lost(after: int, before: int) -> float | None:
    return float(1 - after / before) if before else None
