"""Builders, the registry and zoo loading: pure graph code, no root needed."""

from __future__ import annotations

import networkx as nx
import pytest

import topologies
from topologies import graph
from topologies.graph import TopologyError


def roles(g):
    out = {}
    for n, r in g.nodes(data="role"):
        out.setdefault(r, []).append(n)
    return out


def test_isp_default_shape():
    g = topologies.build("isp")
    r = roles(g)
    assert len(r["access"]) == 4 and len(r["core"]) == 4 and len(r["border"]) == 2
    assert len(r["host"]) == 12 and r["authority"] == ["auth"]
    assert {g.nodes[n]["service"] for n in r["foreign_server"]} == {"web", "dns", "relay"}
    # every access router is dual-homed, so a single uplink failure never isolates it
    for a in r["access"]:
        assert sum(g.nodes[n]["role"] == "core" for n in g.neighbors(a)) == 2, a
    # hosts carry the region of their access router
    for h in r["host"]:
        assert g.nodes[h]["region"] == g.nodes[graph.attachment(g, h)]["region"]
    assert {g.nodes[a]["region"] for a in r["access"]} == {"north", "south"}


def test_isp_parameters_change_sizes():
    g = topologies.build("isp,access=6,hosts=2,core=5,borders=1,regions=3")
    r = roles(g)
    assert (len(r["access"]), len(r["host"]), len(r["core"]), len(r["border"])) == (6, 12, 5, 1)
    assert len({g.nodes[a]["region"] for a in r["access"]}) == 3


def test_isp_without_borders_has_no_abroad():
    g = topologies.build("isp,borders=0")
    assert not [n for n in g if graph.is_foreign(g, n)]


@pytest.mark.parametrize("spec", ["line", "line,n=1", "ring,n=5", "star,n=3", "isp",
                                  "zoo:Abilene", "zoo:sndlib/polska,hosts=2"])
def test_every_builder_gives_a_valid_graph(spec):
    g = topologies.build(spec)
    graph.validate(g)
    assert nx.is_connected(g)
    for end in graph.end_nodes(g):
        assert g.degree(end) == 1 and graph.is_router(g, graph.attachment(g, end))


def test_line_of_one_router_is_two_hosts_around_it():
    g = topologies.build("line,n=1,authority=false")
    assert {frozenset(e) for e in g.edges} == {frozenset({"h1", "r1"}), frozenset({"h2", "r1"})}


def test_zoo_delay_follows_link_length():
    g = topologies.build("zoo:Abilene")
    raw = topologies.zoo.load_raw("Abilene")
    assert len(graph.routers(g)) == raw.number_of_nodes() + 2  # + border b1 + foreign f1
    label = {n: g.nodes[n]["label"] for n in g if "label" in g.nodes[n]}
    by_label = {v: k for k, v in label.items()}
    for a, b, data in raw.edges(data=True):
        ra, rb = by_label[raw.nodes[a]["name"]], by_label[raw.nodes[b]["name"]]
        assert g.edges[ra, rb]["delay_ms"] == pytest.approx(data["dist"] * 0.005, abs=1e-3)


def test_zoo_authority_by_pop_name_and_default_centre():
    named = topologies.build("zoo:Abilene,authority=Denver")
    router = graph.attachment(named, "auth")
    assert named.nodes[router]["label"] == "Denver"
    default = topologies.build("zoo:Abilene")
    assert default.nodes[graph.attachment(default, "auth")]["label"] == "Kansas City"


def test_zoo_names_are_case_insensitive():
    assert topologies.build("zoo:abilene").number_of_nodes() == \
        topologies.build("zoo:Abilene").number_of_nodes()


@pytest.mark.parametrize("spec, words", [
    ("nosuch", "topo list"),
    ("zoo:Nowhere", "topo list --zoo"),
    ("isp,foo=1", "no parameter 'foo'"),
    ("isp,hosts=many", "must be a int"),
    ("isp,hosts", "key=value"),
    ("isp,access=0", "between 1 and 32"),
    ("ring,n=2", "between 3 and 64"),
    ("zoo:Abilene,authority=Paris", "no PoP named"),
])
def test_bad_specs_give_one_sentence(spec, words):
    with pytest.raises(TopologyError) as err:
        topologies.build(spec)
    message = str(err.value)
    assert words in message and "\n" not in message


def test_summary_reports_diameter_in_hops_and_ms():
    s = graph.summarize(topologies.build("line,n=3,delay=2"))
    # h1 -r1 -r2 -r3 - h2: 4 links of 2 ms
    assert (s.diameter_hops, s.diameter_ms) == (4, pytest.approx(8.0))


def test_graph_json_round_trip(tmp_path):
    g = topologies.build("zoo:Abilene")
    graph.save(g, tmp_path / "t.json")
    back = graph.load(tmp_path / "t.json")
    assert set(back.edges) == set(g.edges)
    assert back.nodes["r1"]["pos"] == g.nodes["r1"]["pos"]


def test_a_continent_of_the_world_backbone_is_a_zoo_graph():
    raw = topologies.zoo.load_raw("world/north-america")
    assert nx.is_connected(raw) and raw.number_of_nodes() > 300
    assert all(raw.edges[e]["dist"] > 0 for e in raw.edges)
    assert "world/europe" in topologies.zoo.describe()
    g = topologies.build("zoo:world/north-america,ceiling=false")
    pops = {f"r{k}" for k in range(1, raw.number_of_nodes() + 1)}  # one router a place
    assert pops <= set(g) and all(graph.is_router(g, r) for r in pops)
