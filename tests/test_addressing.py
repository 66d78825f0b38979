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
    farms = [h for h in graph.hosts(g)][:3]
    for farm in farms:
        g.nodes[farm]["farm"] = True
    after = addressing.plan(g)
    assert after.interfaces == before.interfaces and after.loopbacks == before.loopbacks
    # small farms keep the blocks they always had: published results name these addresses
    assert [after.devices[f] for f in farms[:2]] == [(IPv4Network("198.18.64.0/18"),),
                                                     (IPv4Network("198.18.192.0/18"),)]
    (block,) = after.devices[farms[0]]
    assert after.own_prefixes(farms[0]) == [after.line(farms[0]), block]
    assert after.node_of(block[1234]) == farms[0] and block in after.prefixes()
    used = [i.address.ip for i in after.interfaces.values()] + list(after.loopbacks.values())
    assert not any(a in b for a in used for b in after.blocks())
    router = after.interfaces_of(farms[0])[0].peer
    assert (block, after.address(farms[0])) not in routes.static_routes(g, after)[router]
    assert any(p == block for p, _ in routes.static_routes(g, after)[
        next(r for r in graph.routers(g) if r != router)])


def test_a_farm_of_64000_devices_has_an_address_each_routed_and_taken_from_nobody():
    g = topologies.build("isp")
    before = addressing.plan(g)
    farm = graph.hosts(g)[0]
    g.nodes[farm]["farm"] = 64000
    after = addressing.plan(g)
    assert after.interfaces == before.interfaces and after.loopbacks == before.loopbacks
    blocks = after.devices[farm]
    addresses = addressing.device_addresses(blocks)[:64000]
    assert len(set(addresses)) == 64000 and addressing.capacity(blocks) >= 64000
    assert addresses[:16382] == addressing.device_addresses([IPv4Network("198.18.64.0/18")])
    assert all(addressing.is_national(IPv4Address(a)) and IPv4Address(a) not in
               addressing.UNROUTED for a in addresses)
    assert {after.node_of(IPv4Address(a)) for a in addresses[::997]} == {farm}
    assert after.node_of(IPv4Address(addresses[-1])) == farm
    used = [i.address.ip for i in after.interfaces.values()] + list(after.loopbacks.values())
    assert not any(a in b for a in used for b in blocks)
    everything = set(after.prefixes())
    assert set(blocks) <= everything
    for r, table in routes.static_routes(g, after).items():
        assert set(blocks) <= {p for p, _ in table} | ({*blocks} if farm in g[r] else set())


def test_the_plan_refuses_farms_it_has_no_room_for_in_one_sentence():
    g = topologies.build("isp")
    g.nodes[graph.hosts(g)[0]]["farm"] = 70000
    with pytest.raises(graph.TopologyError, match="room for 65262 devices"):
        addressing.plan(g)
    g = topologies.build("ring,n=4")
    for k in range(1, 131):  # end lines of routers up to 130
        graph.add_end(g, f"x{k}", "host", graph.add_router(g, f"xa{k}", "access"))
        g.add_edge(f"xa{k}", "r1", delay_ms=1.0)
    g.nodes[graph.hosts(g)[0]]["farm"] = 40000
    with pytest.raises(graph.TopologyError, match="take 198.19.128.0/17"):
        addressing.plan(g)
    g.nodes[graph.hosts(g)[0]]["farm"] = 30000  # two /18s: no end line taken
    assert addressing.capacity(addressing.plan(g).devices[graph.hosts(g)[0]]) >= 30000


def test_past_254_routers_with_end_nodes_lines_come_from_packed_blocks():
    """A continent of the world backbone has hundreds of routers with hosts: each gets a block
    as small as the busiest needs, packed below the unused range; up to 254, the /24 each."""
    brain = addressing.line_blocks(topologies.build("zoo:sndlib/brain,ceiling=false"))
    assert [b.prefixlen for b in brain.values()] == [24] * 161
    assert str(next(iter(brain.values()))) == "198.19.1.0/24"
    g = topologies.build("zoo:world/europe,ceiling=false")
    blocks = addressing.line_blocks(g)
    assert len(blocks) > 254
    firsts = sorted(int(b.network_address) for b in blocks.values())
    assert len(set(firsts)) == len(firsts)  # of one size, so distinct starts do not overlap
    assert not any(b.overlaps(addressing.UNROUTED) for b in blocks.values())
    plan = addressing.plan(g)
    for end in graph.end_nodes(g):
        (router,) = g.neighbors(end)
        if not graph.is_foreign(g, router):
            assert plan.line(end).subnet_of(blocks[router]), end
    addresses = [i.address.ip for i in plan.interfaces.values()]
    assert len(addresses) == len(set(addresses))


def test_the_plan_says_how_many_routers_with_end_nodes_it_has_room_for():
    g = topologies.build("ring,n=4")
    for k in range(1, 8200):
        graph.add_end(g, f"x{k}", "host", graph.add_router(g, f"xa{k}", "access"))
    with pytest.raises(graph.TopologyError, match="8203 routers with end nodes; the address "
                       "plan has room for 4064 with up to 2 each"):
        addressing.line_blocks(g)


def test_past_254_routers_a_router_of_more_than_32_end_nodes_is_told_in_one_sentence():
    g = topologies.build("ring,n=4")
    for k in range(1, 300):
        graph.add_end(g, f"x{k}", "host", graph.add_router(g, f"xa{k}", "access"))
    for k in range(40):
        graph.add_end(g, f"crowd{k}", "host", "xa1")
    # blocks stay /24 at most, aligned as 198.19.K.0 is
    with pytest.raises(graph.TopologyError, match="room for 254 with up to 32 each"):
        addressing.plan(g)
