"""Admission decisions: a pure function of a flow request and the policy in force.

``admit(request, policy) -> Decision`` is what the authority answers to every new flow. No
I/O, so it is tested alone and costs about a microsecond. Addresses are 32-bit integers.

The local end of a flow is the gateway's own host (the source of an outbound flow, the
destination of an inbound one); the remote end is the other one. In order:

1. the local address must be bound to a registered identity, at this gateway;
2. that identity must not be revoked, nor may the remote end's;
3. the remote end must not be a blocked destination;
4. if either end's region is shut down, the other end must be on that region's essential list.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import NamedTuple

from .codec import (
    BLOCKED,
    OK,
    PEER_REVOKED,
    REVOKED,
    SHUT_DOWN,
    UNREGISTERED,
    WRONG_GATEWAY,
)


class FlowRequest(NamedTuple):
    gateway: int
    src: int
    dst: int
    proto: int
    dport: int
    inbound: bool


class Decision(NamedTuple):
    reason: int  # codec.OK grants
    identity: int  # the local identity (0 if none)
    ttl_ms: int

    @property
    def granted(self) -> bool:
        return self.reason == OK


def mask(length: int) -> int:
    return (0xFFFFFFFF << (32 - length)) & 0xFFFFFFFF if length else 0


def covered(address: int, prefixes: list[tuple[int, int]]) -> bool:
    return any(address & mask(n) == net & mask(n) for net, n in prefixes)


@dataclass
class Policy:
    ttl_ms: int = 30_000
    identity_at: dict[int, int] = field(default_factory=dict)     # address -> identity
    gateway_of: dict[int, int] = field(default_factory=dict)      # identity -> gateway
    revoked: set[int] = field(default_factory=set)                # identities
    blocked: list[tuple[int, int]] = field(default_factory=list)  # (address, length)
    region_of: dict[int, str] = field(default_factory=dict)       # gateway -> region
    shutdowns: dict[str, list[tuple[int, int]]] = field(default_factory=dict)  # region -> allow

    def bind(self, identity: int, address: int, gateway: int) -> None:
        for old in [a for a, i in self.identity_at.items() if i == identity]:
            del self.identity_at[old]
        self.identity_at[address] = identity
        self.gateway_of[identity] = gateway

    def address_of(self, identity: int) -> int | None:
        return next((a for a, i in self.identity_at.items() if i == identity), None)


def admit(request: FlowRequest, policy: Policy) -> Decision:
    local, remote = ((request.dst, request.src) if request.inbound
                     else (request.src, request.dst))
    identity = policy.identity_at.get(local)
    if identity is None:
        return Decision(UNREGISTERED, 0, 0)
    if policy.gateway_of.get(identity) != request.gateway:
        return Decision(WRONG_GATEWAY, identity, 0)
    if identity in policy.revoked:
        return Decision(REVOKED, identity, 0)
    peer = policy.identity_at.get(remote)
    if peer is not None and peer in policy.revoked:
        return Decision(PEER_REVOKED, identity, 0)
    if policy.blocked and covered(remote, policy.blocked):
        return Decision(BLOCKED, identity, 0)
    if policy.shutdowns:
        region = policy.region_of.get(request.gateway)
        if region in policy.shutdowns and not covered(remote, policy.shutdowns[region]):
            return Decision(SHUT_DOWN, identity, 0)
        if peer is not None:
            peer_region = policy.region_of.get(policy.gateway_of.get(peer, -1))
            if peer_region in policy.shutdowns and not covered(local,
                                                               policy.shutdowns[peer_region]):
                return Decision(SHUT_DOWN, identity, 0)
    return Decision(OK, identity, policy.ttl_ms)
