"""The registered-access control protocol's vocabulary, defined once.

Message types, reasons, policy actions, ports and defaults as ``IntEnum``s, shared by the scapy
layers that define the wire format (``wire``) and the ``struct`` codec the daemons run
(``codec``). No scapy here: every daemon imports this module, and must start fast.
"""

from __future__ import annotations

import socket
from enum import IntEnum, IntFlag

PORT = 7400           # the authority
SERVICE_PORT = 7401   # a gateway's registration service, on its host lines only
GATEWAY_PORT = 7402   # a gateway's control socket, for the authority
MAGIC = b"SL"
VERSION = 2
DEFAULT_TTL_MS = 30_000
TTL_BOUNDS_MS = (100, 86_400_000)  # a grant lives from 100 ms to a day
MAX_ITEMS = 64        # policy items per message


class Type(IntEnum):
    CHALLENGE_REQUEST = 1  # gateway -> authority: a host wants to prove who it is
    CHALLENGE = 2          # authority -> gateway: a one-time challenge for that host
    ENROL = 3              # gateway -> authority: the host's proof, to register or to bind
    ENROL_ACK = 4          # authority -> gateway: the outcome
    FLOW_REQUEST = 5       # gateway -> authority: may this flow pass?
    GRANT = 6              # authority -> gateway: yes, for ttl_ms (names the flow it answers)
    DENY = 7               # authority -> gateway: no, and why
    POLICY = 8             # authority -> gateway: a numbered change, or a part of a snapshot
    POLICY_ACK = 9         # gateway -> authority: everything up to this number is in force
    KEEPALIVE = 10         # gateway -> authority: alive, and what I have applied
    KEEPALIVE_ACK = 11
    SYNC = 12              # gateway -> authority: my session, and what I have applied


class Reason(IntEnum):
    OK = 0
    UNREGISTERED = 1
    REVOKED = 2
    PEER_REVOKED = 3
    BLOCKED = 4
    SHUT_DOWN = 5
    UNKNOWN_PERSON = 6
    ALREADY_REGISTERED = 7
    BAD_PROOF = 8
    NOT_REGISTERED = 9
    ADDRESS_IN_USE = 10
    WRONG_GATEWAY = 11
    NO_CHALLENGE = 12
    INFRASTRUCTURE = 13  # a control-plane address: no host's destination
    OVER_BUDGET = 14     # the host asked more than its budget (the gateway refused alone)
    PROTOCOL = 15        # no protocol a flow can be of (no ports, or ICMP other than echo)

    @property
    def text(self) -> str:
        return self.name.lower().replace("_", " ")


class Action(IntEnum):
    """What a POLICY message asks a gateway to enforce. Items are (address, prefix length,
    identity): an address bound to an identity, a cut (revoked) address, a blocked prefix,
    an essential prefix of a shutdown."""

    BIND = 1
    UNBIND = 2
    CUT = 3
    UNCUT = 4
    BLOCK = 5
    UNBLOCK = 6
    SHUTDOWN = 7  # the gateway's region is shut down; items: what stays reachable
    LIFT = 8
    FLUSH = 9     # every grant asked for again
    TTL = 10      # item: (0, 0, how long grants live from now on, in ms)


class Enrol(IntEnum):
    REGISTER = 1  # a person's first identity
    BIND = 2      # an existing identity, to the address it now uses


class FlowFlag(IntFlag):
    INBOUND = 0x01   # the remote end started it: the local host is the responder
    RENEWAL = 0x02   # a flow in use asks again before its grant runs out


class PolicyFlag(IntFlag):
    SNAPSHOT = 0x01  # one part of a complete state, not a change


PROTOCOLS = {1: "icmp", 6: "tcp", 17: "udp", 33: "dccp", 132: "sctp", 136: "udplite"}
PORTED = frozenset({6, 17, 33, 132, 136})  # their first four bytes are the two ports
ICMP = 1  # a flow only as an echo: named by its identifier, in place of the initiator's port
ADMITTED = PORTED | {ICMP}  # the protocols a flow can be of; nothing else crosses a gateway


def dotted(value: int) -> str:
    """An IPv4 address as the protocol carries it (an int) in dotted form."""
    return socket.inet_ntoa(value.to_bytes(4, "big"))
