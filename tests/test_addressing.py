"""The address plan and static routes: deterministic, inside the allowed ranges, complete."""

from __future__ import annotations

from ipaddress import IPv4Address, IPv4Network

import pytest

import topologies
from topologies import addressing, graph, routes

ALLOWED = [IPv4Network("198.18.0.0/15"), IPv4Network("192.0.2.0/24"),
           IPv4Network("198.51.100.0/24"), IPv4Network("203.0.113.0/24")]
SPECS = ["isp", "zoo:Abilene", "ring,n=6,hosts=2", "star"]


@pytest.mark.parametrize("spec", SPECS)
def test_plan_is_deterministic_and_in_reserved_ranges(spec):
    g = topologies.build(spec)
    first, second = addressing.plan(g), addressing.plan(topologies.build(spec))
    assert first.interfaces == second.interfaces and first.loopbacks == second.loopbacks
    addresses = [i.address.ip for i in first.interfaces.values()] + list(first.loopbacks.values())
    assert len(addresses) == len(set(addresses)), "an address is used twice"
    for a in addresses:
        assert any(a in net for net in ALLOWED), a
    for n in g:
        national = not graph.is_foreign(g, n)
        assert addressing.is_national(first.address(n)) == national, n


@pytest.mark.parametrize("spec", SPECS)
def test_interfaces_follow_mininet_naming_and_fit_linux(spec):
    g = topologies.build(spec)
    p = addressing.plan(g)
    for n in g:
        names = [i.name for i in p.interfaces_of(n)]
        assert names == [f"{n}-eth{k}" for k in range(g.degree(n))]
        assert all(len(name) <= 15 for name in names)


def test_link_ends_share_a_subnet_and_end_lines_are_29s():
    g = topologies.build("isp")
    p = addressing.plan(g)
    for a, b in g.edges:
        assert p.intf(a, b).address.network == p.intf(b, a).address.network
    h1 = p.intf("h1", "a1")
    assert h1.address.network.prefixlen == 29
    assert p.gateway("h1") == p.intf("a1", "h1").address.ip
    assert IPv4Address("198.19.255.1") not in p.line("h1")


def test_node_of_finds_the_owner_of_an_address():
    g = topologies.build("isp")
    p = addressing.plan(g)
    assert p.node_of(p.address("fweb1")) == "fweb1"
    assert p.node_of(p.loopbacks["c2"]) == "c2"
    assert p.node_of("198.19.255.1") is None


@pytest.mark.parametrize("spec", SPECS)
def test_static_routes_cover_every_prefix_via_a_neighbour(spec):
    g = topologies.build(spec)
    p = addressing.plan(g)
    table = routes.static_routes(g, p)
    everything = set(p.prefixes())
    for r in graph.routers(g):
        connected = {i.address.network for i in p.interfaces_of(r)}
        connected.add(IPv4Network(f"{p.loopbacks[r]}/32"))
        routed = {prefix for prefix, _ in table[r]}
        assert routed | connected == everything, r
        neighbours = {p.intf(n, r).address.ip for n in g.neighbors(r)}
        assert {nh for _, nh in table[r]} <= neighbours


def test_static_routes_follow_lowest_delay():
    # ring of 4: r1-r2 slow, so r1 reaches r2's hosts the long way round
    g = topologies.build("ring,n=4")
    g.edges["r1", "r2"]["delay_ms"] = 50.0
    p = addressing.plan(g)
    (nh,) = [nh for prefix, nh in routes.static_routes(g, p)["r1"] if prefix == p.line("h2")]
    assert nh == p.intf("r4", "r1").address.ip


def test_a_device_farm_gets_a_routed_block_and_nothing_else_moves():
    g = topologies.build("isp")
    before = addressing.plan(g)
    farms = [h for h in graph.hosts(g)][:2]
    for farm in farms:
        g.nodes[farm]["farm"] = True
    after = addressing.plan(g)
    assert after.interfaces == before.interfaces and after.loopbacks == before.loopbacks
    assert list(after.devices.values()) == list(addressing.DEVICE_BLOCKS)
    block = after.devices[farms[0]]
    assert after.own_prefixes(farms[0]) == [after.line(farms[0]), block]
    assert after.node_of(block[1234]) == farms[0] and block in after.prefixes()
    used = [i.address.ip for i in after.interfaces.values()] + list(after.loopbacks.values())
    assert not any(a in b for a in used for b in after.devices.values())
    router = after.interfaces_of(farms[0])[0].peer
    assert (block, after.address(farms[0])) not in routes.static_routes(g, after)[router]
    assert any(p == block for p, _ in routes.static_routes(g, after)[
        next(r for r in graph.routers(g) if r != router)])
    g.nodes[graph.hosts(g)[2]]["farm"] = True
    with pytest.raises(graph.TopologyError, match="device blocks"):
        addressing.plan(g)
