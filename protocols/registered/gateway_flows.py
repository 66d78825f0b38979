"""How the gateway names flows and writes them into its kernel sets: a queued packet's flow
(ports, or an echo's identifier), the sets' elements, the renewal margin, and the records of
a grant and of an open question."""

from __future__ import annotations

import ipaddress
import math
import socket
import time
from dataclasses import dataclass

from .messages import (
    ADMITTED,
    ICMP,
)
from .ruleset import (
    MARK_IN,
    MARK_IN_REPLY,
    MARK_OUT_REPLY,
    MARKS,
    TABLE,
)
from .setelements import echo_key, l4_key

ECHO_REPLY, ECHO_REQUEST = 0, 8
Flow = tuple[int, int, int, int, int]  # initiator, responder, protocol, their ports (an
# echo: its identifier, 0)


def ip_int(text: str) -> int:
    return int.from_bytes(socket.inet_aton(text), "big")


def parse_ip(payload: bytes) -> tuple[int, int, int, int, int] | None:
    """(src, dst, proto, source port, destination port) of an IPv4 packet; an echo's
    identifier stands for its source port (and 0 for the other); None for what is no flow
    (a protocol without ports, ICMP other than echo: the ruleset lets neither come here)."""
    if len(payload) < 20 or payload[0] >> 4 != 4:
        return None
    ihl = (payload[0] & 0x0F) * 4
    proto = payload[9]
    if len(payload) < ihl + 8 or proto not in ADMITTED:
        return None
    if proto == ICMP:
        if payload[ihl] not in (ECHO_REQUEST, ECHO_REPLY):
            return None
        echo_id = int.from_bytes(payload[ihl + 4:ihl + 6], "big")
        sport, dport = (echo_id, 0) if payload[ihl] == ECHO_REQUEST else (0, echo_id)
    else:
        sport = int.from_bytes(payload[ihl:ihl + 2], "big")
        dport = int.from_bytes(payload[ihl + 2:ihl + 4], "big")
    return (int.from_bytes(payload[12:16], "big"), int.from_bytes(payload[16:20], "big"),
            proto, sport, dport)


def canonical(fields: tuple[int, int, int, int, int], mark: int) -> tuple[Flow, bool] | None:
    """The flow a queued packet belongs to, and whether the remote end started it (None for
    a mark the ruleset never sets). A reply names its flow reversed, ports and all."""
    if mark not in MARKS:
        return None
    src, dst, proto, sport, dport = fields
    reply = mark in (MARK_OUT_REPLY, MARK_IN_REPLY)
    flow = (dst, src, proto, dport, sport) if reply else (src, dst, proto, sport, dport)
    return flow, mark in (MARK_OUT_REPLY, MARK_IN)


def entry(flow: Flow, kind: str) -> tuple[str, bytes]:
    """A flow's set (``kind`` is ``grants`` or ``denied``; ``..._l4`` with ports, ``..._icmp``
    for an echo, by its identifier) and its key there."""
    src, dst, proto, sport, dport = flow
    if proto == ICMP:
        return f"{kind}_icmp", echo_key(src, dst, sport)
    return f"{kind}_l4", l4_key(src, dst, proto, sport, dport)


def renewal_margin(ttl_ms: int) -> float:
    """How long before its grant runs out a flow's element leaves the kernel: a packet after
    that says the flow is in use, and it is asked about again (a third of the TTL, at most
    2 s: many round trips to the authority)."""
    return min(ttl_ms / 3000, 2.0)


NO_PROOF = (0, bytes(16))  # what a flow not started by a device shows


@dataclass
class Grant:
    expires: float
    renew_at: float  # one margin before it runs out: its element leaves the kernel then
    renewing: bool = False  # a packet came after renew_at: asked about again (once)
    proof: tuple[int, bytes] = NO_PROOF  # a device's, shown again when the flow is renewed


@dataclass
class Pending:
    request_id: int
    inbound: bool
    renewal: bool
    packets: list[int]
    sent: float
    attempts: int = 1
    asked: float = 0.0     # when first asked (``sent`` moves on with a retry)
    proof: tuple[int, bytes] = NO_PROOF  # a device's identity and token, from its datagram


ANSWER_BUCKETS_PER_OCTAVE = 8  # ask-to-answer times, microseconds: buckets 9 % wide


def answer_bucket(seconds: float) -> int:
    return int(ANSWER_BUCKETS_PER_OCTAVE * math.log2(max(1.0, seconds * 1e6)))


def bucket_us(bucket: int) -> float:
    """The upper bound of an ask-to-answer bucket, microseconds."""
    return 2 ** ((bucket + 1) / ANSWER_BUCKETS_PER_OCTAVE)


def _prefix_set(name: str, prefixes) -> str:
    """Commands that make an interval set hold exactly ``prefixes`` (address, length), in one
    transaction: overlapping prefixes are merged first, which nft requires, and rebuilding
    from the whole state means removing one never removes a prefix merged with it."""
    nets = list(ipaddress.collapse_addresses(
        ipaddress.IPv4Network((a, n), strict=False) for a, n in prefixes))
    add = f"\nadd element inet {TABLE} {name} {{ {', '.join(map(str, nets))} }}" if nets else ""
    return f"flush set inet {TABLE} {name}{add}"


def _left_ms(deadline: float) -> int:
    """Milliseconds until a monotonic deadline, at least 1 (nft's smallest timeout)."""
    return max(1, round((deadline - time.monotonic()) * 1000))


class AnswerTimer:
    """How long a question waits for its answer before it is asked again: the answers'
    smoothed time plus four deviations (TCP's retransmission timer, RFC 6298), never under
    ``floor`` (the configured timeout, what an idle authority needs) nor over ``ceiling``.
    Only a question asked once is timed (Karn: an answer to a question asked twice could be
    to either). A fixed timeout under a burst of first contacts asks every question up to
    three times while answers queue, and the extra questions are what they queue behind."""

    def __init__(self, floor_s: float, ceiling_s: float):
        self.floor, self.ceiling = floor_s, ceiling_s
        self.smoothed: float | None = None
        self.deviation = 0.0
        self.backed_off: float | None = None

    def asked_again(self) -> None:
        """A wait ran out: wait twice as long until a question asked once is answered (RFC
        6298's back-off). Without it, answers grown slower than the wait all answer questions
        asked twice, which are not timed, and the wait never grows."""
        self.backed_off = min(self.ceiling, 2 * self.timeout())

    def answered(self, waited_s: float, attempts: int) -> None:
        if attempts:
            return
        self.backed_off = None
        if self.smoothed is None:
            self.smoothed, self.deviation = waited_s, waited_s / 2
        else:
            self.deviation += (abs(self.smoothed - waited_s) - self.deviation) / 4
            self.smoothed += (waited_s - self.smoothed) / 8

    def timeout(self) -> float:
        if self.backed_off is not None:
            return self.backed_off
        if self.smoothed is None:
            return self.floor
        return min(self.ceiling, max(self.floor, self.smoothed + 4 * self.deviation))
