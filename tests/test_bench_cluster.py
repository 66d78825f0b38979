"""bench cluster's arithmetic: the world as it would be emulated keeps every distance, and a
server's capacity is where the ladder's line meets its headroom."""

from __future__ import annotations

import json

import networkx as nx
import pytest

from experiments import results
from experiments.bench import cluster
from topologies import world


@pytest.fixture(scope="module")
def worlds():
    return world.load(), cluster.emulated_world()


def test_the_emulated_world_keeps_every_router_and_every_distance(worlds):
    whole, emulated = worlds
    kept = {n for n in whole if whole.nodes[n]["type"] != world.WAYPOINT
            or whole.degree(n) != 2}
    names = {f"w{n}" for n in kept}
    assert names <= set(emulated)  # cities, landing points, branching waypoints
    assert not [n for n in emulated if emulated.nodes[n]["type"] == world.WAYPOINT
                and emulated.degree(n) == 2]
    assert emulated.number_of_nodes() < whole.number_of_nodes() / 1.5
    assert nx.is_connected(emulated)
    cities = world.cities(whole)
    for source in cities[::250]:
        before = nx.single_source_dijkstra_path_length(whole, source, weight="delay_ms")
        after = nx.single_source_dijkstra_path_length(emulated, f"w{source}", weight="delay_ms")
        for city in cities[::50]:
            assert after[f"w{city}"] == pytest.approx(before[city], abs=1e-9), (source, city)


def rung(routers: int, runs: bool = True, busy_per_router: float = 0.001) -> dict:
    """A ladder row as bench scale writes it, on a 2-core machine with 7 000 MB free before."""
    used = 50 + 20 * routers
    return {"arch": "registered", "routers": routers, "runs": runs, "cores": 2,
            "mem_used_mb": used, "mem_available_after_mb": 7000 - used,
            "rest": {"busy_before": 0.05,
                     "machine_busy": 0.05 + (0.01 + 2 * busy_per_router * routers) / 2}}


THRESHOLDS = {"memory_headroom": 0.1, "cpu_headroom": 0.25}


def test_a_servers_capacity_is_where_the_ladders_verdict_would_give_out():
    # a rung that did not run says nothing of the line
    fit = cluster.per_router([rung(10), rung(40), rung(90), {**rung(120, False), "mem_used_mb": 1}])
    assert fit["memory_mb"]["per_router"] == pytest.approx(20)
    assert fit["cores_at_rest"]["per_router"] == pytest.approx(0.002)  # busy less before
    assert fit["memory_free_before_mb"] == 7000
    machine = {"memory_mb": 8000, "cores": 2}
    cap = cluster.capacity(fit, machine, THRESHOLDS, None)
    memory = (7000 - 0.1 * 8000 - 50) / 20   # what the verdict leaves: 10 % of all memory
    cpu = ((1 - 0.25) * 2 - 0.01) / 0.002
    assert cap["bounds"] == {"memory": int(memory), "CPU": int(cpu)}
    assert (cap["routers"], cap["by"]) == (int(memory), "memory")
    # never past a rung that did not run
    capped = cluster.capacity(fit, machine, THRESHOLDS, 120)
    assert (capped["routers"], capped["by"]) == (119, "a rung that did not run")


def test_a_ladder_that_draws_no_line_is_refused_in_one_sentence():
    with pytest.raises(results.ResultsError, match="fewer than two sizes"):
        cluster.per_router([rung(90), rung(90), rung(120, False)])
    with pytest.raises(results.ResultsError, match="CPU at rest under registered does not grow"):
        cluster.per_router([rung(10, busy_per_router=0.001), rung(90, busy_per_router=0.0001)])


def test_the_newest_complete_result_is_the_one_taken(tmp_path):
    for name, end, status in (("old", 1, "complete"), ("new", 3, "complete"),
                              ("cut", 5, "interrupted")):
        d = tmp_path / "bench-scale" / name
        d.mkdir(parents=True)
        (d / "meta.json").write_text(json.dumps({"status": status, "end": end}))
        (d / "results.json").write_text(json.dumps({"rows": name}))
    figures, path = results.newest("bench-scale/*", "rows", (tmp_path,))
    assert figures["rows"] == "new" and path.parent.name == "new"
    with pytest.raises(results.ResultsError, match="no complete bench-access"):
        results.newest("bench-access/*", "rows", (tmp_path,))


def test_a_continent_keeps_its_cables_at_sea():
    """North America's cities are as far apart as in the whole world: the waypoints where its
    cables branch stay (they have no country) and no shortest path between them leaves it."""
    g = world.routers()
    place = {tuple(a["pos"]): n for n, a in g.nodes(data=True)}
    part = world.continent("north-america")
    assert any(g.nodes[place[tuple(a["pos"])]]["type"] == world.WAYPOINT
               for _, a in part.nodes(data=True))
    cities = [k for k, a in part.nodes(data=True)
              if g.nodes[place[tuple(a["pos"])]]["type"] == world.CITY][::40]
    for source in cities[:4]:
        here = nx.single_source_dijkstra_path_length(part, source, weight="dist")
        there = nx.single_source_dijkstra_path_length(
            g, place[tuple(part.nodes[source]["pos"])], weight="dist_km")
        for city in cities:
            assert here[city] == pytest.approx(there[place[tuple(part.nodes[city]["pos"])]]), city
