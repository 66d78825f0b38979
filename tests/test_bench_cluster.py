"""bench cluster's arithmetic: the world as it would be emulated keeps every distance, and a
server's capacity is where the ladder's line meets its headroom."""

from __future__ import annotations

import json

import networkx as nx
import pytest

from experiments import results
from experiments.bench import cluster
from experiments.bench.scale import CPU_HEADROOM, MEMORY_HEADROOM
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


def test_a_servers_capacity_is_where_the_ladders_line_meets_its_headroom():
    rows = [{"routers": r, "runs": True, "mem_used_mb": 50 + 20 * r,
             "rest": {"run_cpu_cores": 0.01 + 0.002 * r}} for r in (10, 40, 90)]
    # a rung that did not run says nothing of the line
    rows.append({"routers": 120, "runs": False, "mem_used_mb": 1, "rest": {"run_cpu_cores": 9}})
    fit = cluster.per_router(rows)
    assert fit["memory_mb"]["per_router"] == pytest.approx(20)
    assert fit["cores_at_rest"]["per_router"] == pytest.approx(0.002)
    machine = {"memory_mb": 8000, "cores": 2}
    cap = cluster.capacity(fit, machine)
    memory = ((1 - MEMORY_HEADROOM) * 8000 - 50) / 20
    cpu = ((1 - CPU_HEADROOM) * 2 - 0.01) / 0.002
    assert cap["bounds"] == {"memory": int(memory), "CPU": int(cpu)}
    assert (cap["routers"], cap["by"]) == (int(memory), "memory")


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
