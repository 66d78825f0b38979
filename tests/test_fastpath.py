"""The compiled decisions are the Python reference's: random operator histories (bindings,
revocations, blocks, shutdowns with essential prefixes, the TTL, the control plane) applied to
``admission.Policy`` and to ``fastpath.CompiledPolicy`` alike, then every request of a small
universe decided by both."""

from __future__ import annotations

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from protocols.registered.admission import FlowRequest, Policy, admit, mask
from protocols.registered.fastpath import CompiledPolicy

BASE = 0x0A000000  # 10.0.0.0
ADDRESSES = [BASE + k for k in (1, 2, 3, 5, 9, 17, 33, 65, 130, 257)]
REGIONS = ["north", "south", "east"]
GATEWAYS = [1, 2, 3, 4]

address = st.sampled_from(ADDRESSES)
prefix = st.tuples(address, st.sampled_from([24, 30, 31, 32, 32, 32])).map(
    lambda p: (p[0] & mask(p[1]), p[1]))
operation = st.one_of(
    st.tuples(st.just("bind"), st.integers(1, 9), address, st.sampled_from(GATEWAYS)),
    st.tuples(st.just("revoke"), st.integers(1, 9), st.booleans()),
    st.tuples(st.just("block"), st.lists(prefix, max_size=2)),
    st.tuples(st.just("shutdown"), st.sampled_from(REGIONS),
              st.none() | st.lists(prefix, max_size=3)),
    st.tuples(st.just("ttl"), st.integers(100, 3_600_000)),
    st.tuples(st.just("infrastructure"), st.lists(prefix.filter(lambda p: p[1] == 32),
                                                  max_size=1)))
# a request: its ends, its protocol, its direction, and whether it comes through the local
# end's own gateway (mostly: else few requests would get past the first checks)
# the C tables' marks, 0 and 255.255.255.255, too: never bound, so never found
request = st.tuples(address | st.sampled_from([0, 0xFFFFFFFF]), address,
                    st.sampled_from([6, 6, 17, 1, 132, 47, 253]),
                    st.booleans(), st.integers(0, 9) | st.sampled_from(GATEWAYS))


def flow(policy: Policy, src: int, dst: int, proto: int, inbound: bool, gateway) -> FlowRequest:
    local = dst if inbound else src
    own = policy.gateway_of.get(policy.identity_at.get(local, 0), 1)
    return FlowRequest(own if gateway < 7 else gateway - 6, src, dst, proto, 40000, 80, inbound)


def apply(policy: Policy, compiled: CompiledPolicy, op: tuple) -> None:
    kind, *args = op
    if kind == "bind":
        policy.bind(*args)
        compiled.bind(*args)
    elif kind == "revoke":
        identity, revoked = args
        (policy.revoked.add if revoked else policy.revoked.discard)(identity)
        compiled.revoke(identity, revoked)
    elif kind == "block":
        policy.blocked = list(args[0])
        compiled.blocked(policy.blocked)
    elif kind == "shutdown":
        region, essential = args
        if essential is None:
            policy.shutdowns.pop(region, None)
        else:
            policy.shutdowns[region] = list(essential)
        compiled.shutdown(region, essential)
    elif kind == "ttl":
        policy.ttl_ms = args[0]
        compiled.ttl(args[0])
    else:
        policy.infrastructure = list(args[0])
        compiled.infrastructure(policy.infrastructure)


def fresh() -> tuple[Policy, CompiledPolicy]:
    """Eight people bound at four gateways in three regions, then copied."""
    policy = Policy(region_of={g: REGIONS[g % len(REGIONS)] for g in GATEWAYS})
    for identity, address in enumerate(ADDRESSES[:8], 1):
        policy.bind(identity, address, GATEWAYS[identity % len(GATEWAYS)])
    return policy, CompiledPolicy.of(policy)


@settings(max_examples=1500, deadline=None, suppress_health_check=list(HealthCheck))
@given(st.lists(operation, max_size=25), st.lists(request, min_size=1, max_size=40))
def test_every_decision_is_the_reference_s_after_any_history(history, requests):
    policy, compiled = fresh()
    for op in history:
        apply(policy, compiled, op)
    copied = CompiledPolicy.of(policy)  # a whole copy decides alike
    for r in (flow(policy, *x) for x in requests):
        assert compiled.admit(r) == admit(r, policy) == copied.admit(r), (history, r)


def test_a_policy_grows_past_its_first_tables():
    policy, compiled = fresh()
    for k in range(1, 5001):
        policy.bind(k, 0x0B000000 + k, 1 + k % 4)
        compiled.bind(k, 0x0B000000 + k, 1 + k % 4)
    for k in range(1, 5001, 97):
        r = FlowRequest(1 + k % 4, 0x0B000000 + k, 0x0B000000 + k + 1, 6, 1000, 80, False)
        assert compiled.admit(r) == admit(r, policy)


def _slot(key: int, capacity: int = 1024) -> int:
    """Where admitcore.c's tables first look for ``key`` (its hash, at their first size)."""
    key ^= key >> 16
    key = key * 0x45D9F3B & 0xFFFFFFFF
    return (key ^ key >> 16) & (capacity - 1)


def test_reserved_keys_are_never_found_however_many_slots_were_freed():
    """0 and 255.255.255.255 mark the C tables' empty and removed slots: a host claiming either
    address finds nobody's identity, even where a removed binding left its mark in the very
    slot where 255.255.255.255 would be looked for, or after thousands of rebindings."""
    policy, compiled = fresh()
    there = next(a for a in range(0x0D000000, 0x0E000000)
                 if _slot(a) == _slot(0xFFFFFFFF) and a not in ADDRESSES)
    for k in range(20000):  # one person moving on and on
        policy.bind(6, 0x0C100000 + k, 2)
        compiled.bind(6, 0x0C100000 + k, 2)
    for address in (there, 0x0C000000):  # bound there, then moved: a removed slot there
        policy.bind(7, address, 1)
        compiled.bind(7, address, 1)
    for src in (0xFFFFFFFF, 0, there, 0x0C000000, 0x0C100000 + 19999):
        r = FlowRequest(1, src, ADDRESSES[0], 6, 1000, 80, False)
        assert compiled.admit(r) == admit(r, policy), src
    with pytest.raises(ValueError):
        compiled.bind(9, 0xFFFFFFFF, 1)
