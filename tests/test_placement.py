"""Placing a network on several servers: fewest links between them, capacities kept, the
same answer in every process."""

from __future__ import annotations

import itertools
import os
import subprocess
import sys
from collections import Counter

import networkx as nx
import pytest

from topologies import build
from topologies.graph import TopologyError, attachment, is_router
from topologies.placement import Server, crossing, parse_servers, place


def _routers(g):
    return [n for n in g if is_router(g, n)]


def test_parse_servers():
    assert parse_servers("localhost, 198.19.254.2:60") == [
        Server("localhost"), Server("198.19.254.2", 60)]
    for bad, said in (("a,,b", "empty"), ("a:0", "positive"), ("a:x", "positive"),
                      ("a,a", "twice")):
        with pytest.raises(TopologyError, match=said):
            parse_servers(bad)


@pytest.mark.parametrize("spec", ["isp", "zoo:Abilene", "zoo:Getnet"])
def test_two_servers_cut_as_few_links_as_any_split(spec):
    """The oracle: every split of the routers into parts of the same sizes, tried one by one."""
    g = build(spec)
    placement = place(g, [Server("a"), Server("b")])
    routers = _routers(g)
    on_a = {n for n in routers if placement[n] == "a"}
    assert abs(len(on_a) - (len(routers) - len(on_a))) <= 1
    fewest = min(nx.cut_size(g.subgraph(routers), set(c))
                 for c in itertools.combinations(routers, len(on_a)))
    assert len(crossing(g, placement)) == fewest


def test_end_nodes_go_with_their_router_and_capacities_hold():
    g = build("zoo:TataNld")
    servers = [Server("a", 30), Server("b"), Server("c", 100)]
    placement = place(g, servers)
    assert set(placement) == set(g)
    for node in g:
        if not is_router(g, node):
            assert placement[node] == placement[attachment(g, node)], node
    counts = Counter(placement[n] for n in _routers(g))
    assert counts["a"] <= 30 and counts["c"] <= 100
    assert sum(counts.values()) == len(_routers(g))


@pytest.mark.parametrize("spec", ["zoo:TataNld", "zoo:Geant2012"])
def test_large_graphs_cut_no_more_than_the_best_of_ten_random_starts(spec):
    """Too large to try every split: the rival is networkx's own Kernighan-Lin from ten
    random halves, its best kept."""
    g = build(spec)
    routers = g.subgraph(_routers(g))
    rival = min(nx.cut_size(routers, *nx.community.kernighan_lin_bisection(routers, seed=s))
                for s in range(10))
    assert len(crossing(g, place(g, [Server("a"), Server("b")]))) <= rival


def test_too_little_capacity_is_one_sentence():
    with pytest.raises(TopologyError, match="take 10 routers and the topology has 13"):
        place(build("zoo:Abilene"), [Server("a", 4), Server("b", 6)])


def test_same_placement_in_every_process():
    """Python salts string hashes per process: a split that followed a set's order would
    differ between the controller and a rerun."""
    code = ("from topologies import build; from topologies.placement import place, Server; "
            "g = build('zoo:TataNld'); "
            "print(sorted(place(g, [Server('a'), Server('b'), Server('c')]).items()))")
    seen = {subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                           check=True, env={**os.environ, "PYTHONHASHSEED": salt}).stdout
            for salt in ("1", "2", "3", "4", "5")}
    assert len(seen) == 1
