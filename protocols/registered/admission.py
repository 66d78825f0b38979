"""Admission decisions: a pure function of a flow request and the policy in force.

``admit(request, policy) -> Decision`` is what the authority answers to every flow, new or
renewed. No I/O, so it is tested alone and costs about a microsecond. Addresses are 32-bit
integers. A flow is named by its initiator, its responder, its protocol and both ports (an
echo by its identifier): one admission is one flow, never a whole service or tunnel; the local
end is the gateway's own host (the initiator of an outbound flow, the responder of an inbound
one), the remote end the other one. In order:

0. the protocol must be one a flow can be of (``messages.ADMITTED``: ports, or an echo);
1. the remote end must not be the control plane (the authority, any router: a host granted
   UDP to 7400 could flood it; no host has business there);
2. the local address must be bound to a registered identity, at this gateway;
3. that identity must not be revoked, nor may the remote end's;
4. neither end may be blocked (a block is both ways: a blocked address is no destination and
   starts nothing);
5. if either end's region is shut down, the other end must be on that region's essential list.

``AdmissionRow`` is the one record of a decision, written by the authority (and, for flows a
fail-open gateway let through on its own, by that gateway), read by the journal, the registry
and the results.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import NamedTuple

from .messages import ADMITTED, DEFAULT_TTL_MS, Reason


class FlowRequest(NamedTuple):
    gateway: int
    src: int      # the initiator
    dst: int      # the responder
    proto: int
    sport: int    # the initiator's port (an echo's identifier)
    dport: int    # the responder's port (0 for an echo)
    inbound: bool


class Decision(NamedTuple):
    reason: Reason
    identity: int  # the local identity (0 if none)
    ttl_ms: int

    @property
    def granted(self) -> bool:
        return self.reason == Reason.OK


class AdmissionRow(NamedTuple):
    time: float
    gateway: int
    identity: int | None
    src: int
    dst: int
    proto: int
    sport: int
    dport: int
    inbound: bool
    renewal: bool
    granted: bool
    reason: int
    by_gateway: bool = False  # a fail-open gateway decided alone: the authority never knew


def mask(length: int) -> int:
    return (0xFFFFFFFF << (32 - length)) & 0xFFFFFFFF if length else 0


def covered(address: int, prefixes: list[tuple[int, int]]) -> bool:
    return any(address & mask(n) == net & mask(n) for net, n in prefixes)


@dataclass
class Policy:
    ttl_ms: int = DEFAULT_TTL_MS
    identity_at: dict[int, int] = field(default_factory=dict)     # address -> identity
    address_of: dict[int, int] = field(default_factory=dict)      # identity -> address
    gateway_of: dict[int, int] = field(default_factory=dict)      # identity -> gateway
    revoked: set[int] = field(default_factory=set)                # identities
    blocked: list[tuple[int, int]] = field(default_factory=list)  # (address, length)
    region_of: dict[int, str] = field(default_factory=dict)       # gateway -> region
    shutdowns: dict[str, list[tuple[int, int]]] = field(default_factory=dict)  # region -> allow
    members: dict[int, set[int]] = field(default_factory=dict)    # gateway -> identities
    flushes: dict[int, int] = field(default_factory=dict)         # gateway -> flushes so far
    infrastructure: list[tuple[int, int]] = field(default_factory=list)  # routers, authority
    devices: list[tuple[int, int]] = field(default_factory=list)  # farms' device blocks

    def bind(self, identity: int, address: int, gateway: int) -> None:
        """One binding per identity and per address."""
        old = self.address_of.pop(identity, None)
        if old is not None:
            self.identity_at.pop(old, None)
        holder = self.identity_at.get(address)
        if holder is not None:
            self.address_of.pop(holder, None)
            self.members.get(self.gateway_of.pop(holder, None), set()).discard(holder)
        self.members.get(self.gateway_of.get(identity), set()).discard(identity)
        self.identity_at[address] = identity
        self.address_of[identity] = address
        self.gateway_of[identity] = gateway
        self.members.setdefault(gateway, set()).add(identity)


def admit(request: FlowRequest, policy: Policy) -> Decision:
    local, remote = ((request.dst, request.src) if request.inbound
                     else (request.src, request.dst))
    if request.proto not in ADMITTED:
        return Decision(Reason.PROTOCOL, policy.identity_at.get(local, 0), 0)
    if policy.infrastructure and covered(remote, policy.infrastructure):
        return Decision(Reason.INFRASTRUCTURE, policy.identity_at.get(local, 0), 0)
    identity = policy.identity_at.get(local)
    if identity is None:
        return Decision(Reason.UNREGISTERED, 0, 0)
    if policy.gateway_of.get(identity) != request.gateway:
        return Decision(Reason.WRONG_GATEWAY, identity, 0)
    if identity in policy.revoked:
        return Decision(Reason.REVOKED, identity, 0)
    peer = policy.identity_at.get(remote)
    if peer is not None and peer in policy.revoked:
        return Decision(Reason.PEER_REVOKED, identity, 0)
    if policy.blocked and (covered(remote, policy.blocked) or covered(local, policy.blocked)):
        return Decision(Reason.BLOCKED, identity, 0)
    if policy.shutdowns:
        region = policy.region_of.get(request.gateway)
        if region in policy.shutdowns and not covered(remote, policy.shutdowns[region]):
            return Decision(Reason.SHUT_DOWN, identity, 0)
        if peer is not None:
            peer_region = policy.region_of.get(policy.gateway_of.get(peer, -1))
            if peer_region in policy.shutdowns and not covered(local,
                                                               policy.shutdowns[peer_region]):
                return Decision(Reason.SHUT_DOWN, identity, 0)
    return Decision(Reason.OK, identity, policy.ttl_ms)
