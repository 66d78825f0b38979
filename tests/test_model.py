"""The graph model on graphs small enough to check by hand (no root, milliseconds)."""

from __future__ import annotations

import pytest

import topologies
from experiments import subjects
from experiments.model import latency, reachability
from experiments.model.reachability import Failure
from protocols import architectures


@pytest.fixture(scope="module")
def ring():
    """r1..r4 in a ring, a host each, the authority site on r1 (1 ms links)."""
    return topologies.build("ring,n=4")


def test_a_ring_survives_any_one_link_under_both_designs(ring):
    for design in architectures.compared():
        assert reachability.new_lost(ring, Failure("link", "r1-r2"), design) == set()


def test_a_router_takes_its_own_host_with_it(ring):
    lost = reachability.new_lost(ring, Failure("router", "r3"), "permissionless")
    assert lost == {(a, b) for a in ("h1", "h2", "h3", "h4") for b in ("h1", "h2", "h3", "h4")
                    if a != b and "h3" in (a, b)}


def test_losing_the_authoritys_router_costs_everyone_only_under_registered_access(ring):
    failure = Failure("router", "r1")
    assert reachability.new_lost(ring, failure, "permissionless") == {
        p for p in reachability.routing_lost(ring, failure)}
    assert len(reachability.new_lost(ring, failure, "registered")) == 4 * 3  # every pair
    assert reachability.new_lost(ring, failure, "registered", fail_mode="open") == \
        reachability.routing_lost(ring, failure)


def test_existing_flows_outlive_admission_only_until_their_grants_run_out(ring):
    failure = Failure("authority", "authority")
    assert reachability.existing_lost(ring, failure, "registered", after_ttl=False) == set()
    assert len(reachability.existing_lost(ring, failure, "registered", after_ttl=True)) == 12


def test_a_partition_cut_from_the_authority_loses_its_inside_too():
    g = topologies.build("isp")
    failure = Failure("partition", "south")
    routing = reachability.routing_lost(g, failure)
    registered = reachability.new_lost(g, failure, "registered")
    south = {h for h in topologies.graph.hosts(g) if g.nodes[h]["region"] == "south"}
    assert {(a, b) for a in south for b in south if a != b} <= registered - routing
    assert len(routing) == 144 and len(registered) == 174  # as measured on isp


def test_first_connection_overhead_is_a_round_trip_per_gateway_plus_processing(ring):
    # h2 -> r2 -> r1 -> auth: 1 + 1 ms one way from h2's gateway (r2)
    assert latency.gateway_authority_rtt_ms(ring, "h2") == pytest.approx(4.0)
    # h3's gateway r3 is two links from r1, then the authority's own link: 3 ms one way
    assert latency.first_connection_overhead_ms(ring, "h2", "h3", processing_ms=0.5) == \
        pytest.approx((4.0 + 0.5) + (6.0 + 0.5))
    g = topologies.build("isp")
    assert latency.first_connection_overhead_ms(g, "web1", "fweb1") == 0  # no gateway


def test_subjects_follow_roles_and_the_seed_on_every_kind_of_topology():
    for spec in ("isp", "zoo:Abilene", "zoo:sndlib/polska", "ring,n=6,hosts=2"):
        g = topologies.build(spec)
        try:
            s = subjects.choose(g)
        except topologies.graph.TopologyError as e:  # a ring has no abroad: said so
            assert spec.startswith("ring") and "foreign web servers" in str(e)
            continue
        assert s == subjects.choose(g)
        assert g.nodes[s.victim]["region"] == s.region != g.nodes[s.user]["region"]
        assert len({s.victim, s.user, s.helper}) == 3
