"""Admission decisions as a pure function: each rule, in order, both directions."""

from __future__ import annotations

from ipaddress import IPv4Address

import pytest

from protocols.registered.admission import FlowRequest, Policy, admit, covered
from protocols.registered.messages import Reason


def a(text: str) -> int:
    return int(IPv4Address(text))


H1, H2, H3, WEB, NEWS = (a("198.19.1.2"), a("198.19.2.2"), a("198.19.3.2"), a("198.19.6.10"),
                         a("203.0.113.10"))


@pytest.fixture
def policy():
    p = Policy(ttl_ms=5000, region_of={1: "north", 2: "north", 3: "south"})
    for identity, address, gateway in ((1, H1, 1), (2, H2, 2), (3, H3, 3)):
        p.bind(identity, address, gateway)
    return p


def out(gateway, src, dst, proto=6, dport=80):
    return FlowRequest(gateway, src, dst, proto, 40000, dport, False)


def test_a_registered_host_is_granted_with_the_ttl(policy):
    assert admit(out(1, H1, NEWS), policy) == (Reason.OK, 1, 5000)


@pytest.mark.parametrize("request_, reason", [
    (out(1, a("198.19.1.3"), NEWS), Reason.UNREGISTERED),
    (out(2, H1, NEWS), Reason.WRONG_GATEWAY),
])
def test_the_local_end_must_be_bound_here(policy, request_, reason):
    assert admit(request_, policy).reason == reason


def test_revocation_cuts_both_ways(policy):
    policy.revoked.add(2)
    assert admit(out(2, H2, NEWS), policy).reason == Reason.REVOKED
    assert admit(out(1, H1, H2), policy).reason == Reason.PEER_REVOKED
    assert admit(out(1, H1, H3), policy).granted


def test_blocked_destinations_by_prefix(policy):
    policy.blocked = [(a("203.0.113.8"), 29)]
    assert admit(out(1, H1, NEWS), policy).reason == Reason.BLOCKED
    assert admit(out(1, H1, a("203.0.113.18")), policy).granted


def test_a_shut_down_region_reaches_only_its_essential_services(policy):
    policy.shutdowns = {"north": [(WEB, 32)]}
    assert admit(out(1, H1, WEB), policy).granted
    assert admit(out(1, H1, NEWS), policy).reason == Reason.SHUT_DOWN
    assert admit(out(3, H3, H1), policy).reason == Reason.SHUT_DOWN  # into the region
    assert admit(out(3, H3, NEWS), policy).granted                   # south is untouched


def test_inbound_flows_are_decided_for_the_local_host(policy):
    inbound = FlowRequest(1, NEWS, H1, 6, 40000, 22, True)
    assert admit(inbound, policy) == (Reason.OK, 1, 5000)
    policy.revoked.add(1)
    assert admit(inbound, policy).reason == Reason.REVOKED


def test_one_binding_per_identity_and_per_address(policy):
    policy.bind(1, a("198.19.1.3"), 1)
    assert admit(out(1, H1, NEWS), policy).reason == Reason.UNREGISTERED
    assert admit(out(1, a("198.19.1.3"), NEWS), policy).granted
    policy.bind(2, a("198.19.1.3"), 1)  # the address goes to someone else
    assert policy.address_of.get(1) is None and policy.members[1] == {2}


def test_covered():
    assert covered(a("10.1.2.3"), [(a("10.0.0.0"), 8)])
    assert not covered(a("11.1.2.3"), [(a("10.0.0.0"), 8)])
    assert covered(a("1.2.3.4"), [(0, 0)])
