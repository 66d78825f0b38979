"""What the lab's page is drawn from, without a network: where each node goes, and which
pairs a round probes."""

from __future__ import annotations

from collections import Counter

import topologies
from experiments.model.reachability import users
from experiments.web.state import PEERS, layout, peers


def test_a_zoo_graph_is_drawn_by_geography_in_the_unit_square():
    g = topologies.build("zoo:Abilene")
    places = layout(g)
    assert set(places) == set(g)
    assert all(0 <= x <= 1 and 0 <= y <= 1 for x, y in places.values())
    placed = [n for n in g if "pos" in g.nodes[n]]
    assert len(placed) >= 10
    west, east = min(placed, key=lambda n: g.nodes[n]["pos"][0]), \
        max(placed, key=lambda n: g.nodes[n]["pos"][0])
    north, south = max(placed, key=lambda n: g.nodes[n]["pos"][1]), \
        min(placed, key=lambda n: g.nodes[n]["pos"][1])
    assert places[west][0] < places[east][0]   # longitude to the right
    assert places[north][1] < places[south][1]  # latitude up (SVG's y grows downwards)
    assert layout(g) == places  # the same drawing every time


def test_a_round_probes_every_pair_on_isp_and_a_spread_on_a_large_graph():
    isp = users(topologies.build("isp"))
    assert len(isp) - 1 <= PEERS
    assert {u: set(ds) for u, ds in peers(isp).items()} == {u: set(isp) - {u} for u in isp}
    many = [f"h{i}" for i in range(200)]
    chosen = peers(many)
    assert all(u not in ds and len(set(ds)) == len(ds) == PEERS for u, ds in chosen.items())
    reached = Counter(d for ds in chosen.values() for d in ds)
    assert set(reached) == set(many) and max(reached.values()) == min(reached.values())
