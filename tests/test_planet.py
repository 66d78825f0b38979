"""The planet model on graphs small enough to check by hand, and the real world backbone's
basic facts (no root; the world loads in a few seconds)."""

from __future__ import annotations

from collections import Counter

import networkx as nx
import pytest

from experiments.model import planet
from experiments.model.planet import Planet
from topologies import world

PROCESSING = 0.5


def city(g: nx.Graph, name: str, country: str, continent: str, lon: float) -> None:
    g.add_node(name, type=world.CITY, name=name, pos=(lon, 0.0), country=country,
               continent=continent)


def link(g: nx.Graph, a: str, b: str, ms: float) -> None:
    g.add_edge(a, b, type="normal", dist_km=ms / 0.005, delay_ms=ms)


@pytest.fixture
def line() -> nx.Graph:
    """a-b-c-d-e, one-way 1, 1, 2, 4 ms (a at 0, b 1, c 2, d 4, e 8); a, b, c in AA
    (Europe), d, e in BB (Africa)."""
    g = nx.Graph(name="line", source="by hand", dropped_nodes=0)
    for name, lon in zip("abcde", (0, 1, 2, 4, 8), strict=True):
        aa = name in "abc"
        city(g, name, "AA" if aa else "BB", "Europe" if aa else "Africa", lon)
    for (a, b), ms in zip(("ab", "bc", "cd", "de"), (1, 1, 2, 4), strict=True):
        link(g, a, b, ms)
    return g


@pytest.fixture
def p(line) -> Planet:
    return Planet.of(line, processing_ms=PROCESSING)


def test_one_way_delays_follow_the_shortest_path(p):
    assert p.ms[p.index(["a"])[0], p.index(["e"])[0]] == pytest.approx(8.0)
    assert p.ms[p.index(["b"])[0], p.index(["d"])[0]] == pytest.approx(3.0)


def test_sites_are_the_most_central_cities_of_their_region(p):
    # mean delay to all: a 15/5, b 12/5, c 11/5, d 13/5, e 25/5
    assert planet.placement(p, "global") == {"world": "c"}
    # AA: b; BB: d and e tie (4 ms each way), the first in order wins
    assert planet.placement(p, "country") == {"AA": "b", "BB": "d"}
    assert planet.placement(p, "continent") == {"Africa": "d", "Europe": "b"}


def test_overhead_is_a_round_trip_to_the_nearest_site_plus_processing(p):
    assert list(planet.overhead_ms(p, ["c"])) == pytest.approx([4.5, 2.5, 0.5, 4.5, 12.5])
    # c is 1 ms from b and 2 from d: it asks b
    assert list(planet.overhead_ms(p, ["b", "d"])) == pytest.approx([2.5, 0.5, 2.5, 0.5, 8.5])
    assert planet.assignment(p, ["b", "d"]) == {"a": "b", "b": "b", "c": "b", "d": "d",
                                                 "e": "d"}
    # nearest rank: with five cities, the 95th percentile is the worst
    assert planet.p95(planet.overhead_ms(p, ["b", "d"])) == pytest.approx(8.5)


def test_an_authority_with_jurisdiction_is_asked_even_when_another_is_nearer(line):
    line.nodes["c"]["country"] = "BB"  # now c's own site (d) is 2 ms away, b only 1
    p = Planet.of(line, processing_ms=PROCESSING)
    own = planet.jurisdiction(p, {"AA": "b", "BB": "d"}, "country")
    assert own["c"] == "d"
    assert list(planet.overhead_via_ms(p, own)) == pytest.approx([2.5, 0.5, 4.5, 0.5, 8.5])


def test_greedy_placement_adds_the_site_that_lowers_the_p95_most(p):
    steps = planet.greedy(p, target_ms=3.0, max_sites=10)
    # d first (worst one-way 4 ms). Then no single site helps a (4 ms from d) and e (4 ms
    # from d) at once: every option leaves the worst at 4 ms, and the lowest mean, b, wins
    # the tie. Then e: everyone within 1 ms (2.5 ms overhead).
    assert [s.added for s in steps] == ["d", "b", "e"]
    assert [s.p95_ms for s in steps] == pytest.approx([8.5, 8.5, 2.5])
    assert planet.sites_needed(steps, 10.0) == 1
    assert planet.sites_needed(steps, 6.5) == 3
    assert planet.sites_needed(steps, 0.4) is None
    assert len(planet.greedy(p, target_ms=0.0, max_sites=4)) == 4


def test_an_authority_failure_stops_its_cities_unless_they_fail_over(p):
    rows = {r["site"]: r for r in planet.authority_failures(p, ["b", "d"])}
    # b down: a, b, c cannot start anything; only d-e of 10 pairs is left
    assert rows["b"]["cities_served"] == 3
    assert rows["b"]["lost_no_failover"] == pytest.approx(0.9)
    assert rows["b"]["lost_failover"] == 0.0
    assert rows["b"]["failover_p95_ms"] == pytest.approx(8.5)  # a and e, 4 ms from d
    assert rows["d"]["lost_no_failover"] == pytest.approx(0.7)  # a-b, a-c, b-c remain
    (only,) = planet.authority_failures(p, ["c"])
    assert only["lost_no_failover"] == only["lost_failover"] == 1.0
    assert only["failover_p95_ms"] is None


def test_a_cable_cut_costs_registered_access_the_side_without_an_authority(p):
    cuts = planet.cable_cuts(p, {"global": ["c"], "continent": ["b", "d"]})
    cd = next(r for r in cuts if {r["a"], r["b"]} == {"c", "d"})
    assert cd["bridge"] and cd["km"] == pytest.approx(400)
    assert cd["permissionless"] == pytest.approx(0.6)  # 4 of 10 pairs left: a-b-c, d-e
    assert cd["registered_global_no_failover"] == pytest.approx(0.7)  # d-e cannot ask c
    assert cd["registered_continent_no_failover"] == pytest.approx(0.6)
    assert cd["registered_continent_failover"] == pytest.approx(0.6)


def test_every_design_that_only_routes_loses_to_a_cut_what_routing_loses(p):
    cuts = planet.cable_cuts(p, {"global": ["c"]}, routed=("permissionless", "sovereign"))
    cd = next(r for r in cuts if {r["a"], r["b"]} == {"c", "d"})
    assert cd["permissionless"] == cd["sovereign"] == pytest.approx(0.6)
    assert "sovereign" not in planet.cable_cuts(p, {"global": ["c"]})[0]  # compared or not


def test_a_cut_on_a_cycle_loses_nothing(line):
    link(line, "a", "e", 20)  # a ring now: every link is on a cycle
    p = Planet.of(line, processing_ms=PROCESSING)
    cuts = planet.cable_cuts(p, {"global": ["c"]})
    assert len(cuts) == 5 and not any(r["bridge"] for r in cuts)
    assert all(r[k] == 0.0 for r in cuts for k in r if k.startswith(("perm", "reg")))
    # the same by brute force: each residual graph is still connected
    for a, b in line.edges:
        labels = planet.can_start(p, planet.components(line, [(a, b)]), ["c"])
        assert planet.lost_share(labels) == 0.0


def test_a_country_disconnects(p):
    designs = {"permissionless": (None, None), "global": (["c"], None),
               "own": (["b", "d"], planet.jurisdiction(p, {"AA": "b", "BB": "d"},
                                                       "country"))}
    bb = planet.disconnect(p, "BB", designs)
    assert bb["cities"] == 2 and bb["border_links"] == 1
    assert bb["permissionless_domestic_kept"] == 1.0
    assert bb["permissionless_world_lost"] == pytest.approx(0.75)  # d and e reach 1 of 4
    assert bb["permissionless_others_lost"] == 0.0
    assert bb["global_domestic_kept"] == 0.0  # the authority is abroad
    assert bb["global_world_lost"] == 1.0
    assert bb["own_domestic_kept"] == 1.0
    aa = planet.disconnect(p, "AA", designs)  # it holds the global authority
    assert aa["global_domestic_kept"] == 1.0
    assert aa["global_others_lost"] == 1.0  # d-e can no longer be admitted
    assert aa["permissionless_others_lost"] == 0.0


def test_a_countrys_landing_points_are_its_own_and_waypoints_nobodys():
    g = nx.Graph()
    city(g, "a", "AA", "Europe", 0)
    city(g, "e", "BB", "Europe", 1)
    g.add_node("M", type=world.LANDING, country="AA")
    g.add_node("L", type=world.LANDING, country="BB")
    g.add_node("W", type=world.WAYPOINT)
    for a, b in ("ae", "aM", "MW", "WL", "Le"):
        link(g, a, b, 1.0)
    assert {frozenset(e) for e in planet.border(g, "BB")} == {frozenset("ae"),
                                                               frozenset("WL")}


def test_a_graph_in_pieces_is_refused(line):
    line.remove_edge("c", "d")
    with pytest.raises(ValueError, match="not connected"):
        Planet.of(line)


def test_places_get_their_country_offline():
    # London, Tokyo, Sydney, Rio de Janeiro, Cape Town
    got = world.nearest_countries([(-0.13, 51.51), (139.69, 35.69), (151.21, -33.87),
                                   (-43.2, -22.9), (18.42, -33.92)])
    assert got == ["GB", "JP", "AU", "BR", "ZA"]
    assert world.continent_of("JP") == "Asia" and world.continent_of("BR") == "South America"


def test_the_world_backbone():
    g = world.load()
    assert Counter(g.nodes[n]["type"] for n in g) == {
        world.CITY: 1246, world.LANDING: 620, world.WAYPOINT: 1949}
    assert g.graph["dropped_nodes"] == 0 and nx.is_connected(g)
    assert all(d["delay_ms"] == pytest.approx(d["dist_km"] * 0.005)
               for _, _, d in g.edges(data=True))
    cities = world.cities(g)
    assert all(len(g.nodes[c]["country"]) == 2 and g.nodes[c]["continent"] in
               world.CONTINENTS.values() for c in cities)
    assert all("country" in g.nodes[n] for n in g if g.nodes[n]["type"] == world.LANDING)
    assert not any("country" in g.nodes[n] for n in g
                   if g.nodes[n]["type"] == world.WAYPOINT)

    def countries(name: str, kind: str = world.CITY) -> set[str]:
        return {g.nodes[n]["country"] for n in g
                if g.nodes[n].get("name") == name and g.nodes[n]["type"] == kind}

    assert countries("London") == {"CA"}  # the graph's only London is London, Ontario
    assert countries("Moscow") == {"RU"} and countries("Marseille") == {"FR"}
    assert countries("Harare") == {"ZW"}
    assert countries("Valencia") == {"ES", "US", "VE"}  # three cities of that name
    assert countries("Singapore", world.LANDING) == {"SG"}
    assert countries("Mumbai", world.LANDING) == {"IN"}


def test_the_experiment_writes_a_results_directory_its_plots_read(line, tmp_path,
                                                                   monkeypatch):
    from experiments.comparisons import planet as experiment
    from experiments.results import load

    monkeypatch.setattr(experiment.world, "load", lambda: line)
    directory = experiment.run(experiment.PlanetConfig(profile="full"), tmp_path)
    results = load(directory, "planet")
    assert results.meta["status"] == "complete"
    assert results.summary["placements"]["global"][0]["site"] == "c"
    assert results.summary["sites_needed"] == {"10.0": 1, "20.0": 1, "50.0": 1}
    assert len(results.rows("cable_cuts")) == 4
    assert [r["country"] for r in results.rows("disconnect")] == ["AA", "BB"]
    written = {path.name for path in experiment.EXPERIMENT.plot(directory)}  # as the CLI does
    assert {f"planet_{name}.{ext}" for name in ("overhead_map", "overhead_cdf", "sites_curve",
                                                 "blast_radius", "disconnect")
            for ext in ("png", "svg")} == written
    assert {p.name for p in directory.iterdir() if p.suffix in (".png", ".svg")} == written


def test_planet_runs_on_the_world_only():
    from experiments.comparisons.planet import PlanetConfig

    with pytest.raises(ValueError, match="world backbone only"):
        PlanetConfig(topo="isp").settings()


def test_from_python_an_experiment_is_a_function_returning_its_results(line, tmp_path,
                                                                        monkeypatch):
    import splinterlab
    from experiments.comparisons import planet as experiment
    from experiments.results import load

    monkeypatch.setattr(experiment.world, "load", lambda: line)
    directory = splinterlab.run("planet", out=tmp_path, name="mine")
    assert directory == tmp_path / "planet" / "mine"
    assert load(directory, "planet").meta["status"] == "complete"
    with pytest.raises(ValueError, match="takes no --topo"):
        splinterlab.run("planet", topo="isp")
    with pytest.raises(ValueError, match="there is no experiment 'lag'"):
        splinterlab.run("lag")
