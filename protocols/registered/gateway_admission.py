"""The gateway's first packets and its grants running out: a packet without a live grant for
its flow is named, put on its host's budget, and asked about (or, without the authority, left
to the fail mode); the answer becomes a grant element or a denial, and the packets waiting for
it get their verdict. A flow still in use is asked about again before its grant runs out: the
kernel holds a grant's element one margin short of the grant, so the first packet after that
comes here, and says the flow is in use. Nothing is read or done about grants nobody uses."""

from __future__ import annotations

import heapq
import ipaddress
import time

from protocols.nfqueue import NF_DROP

from . import identity
from .admission import AdmissionRow
from .gateway_flows import (
    NO_PROOF,
    Flow,
    Grant,
    Pending,
    _left_ms,
    canonical,
    entry,
    parse_ip,
    renewal_margin,
)
from .messages import FlowFlag, Reason, Type
from .ruleset import QUEUE
from .setelements import Change

DENY_CACHE_MS = 1000
UDP = 17


class Admission:
    """Part of ``gateway.Gateway``: its packets without a grant."""

    def on_packets(self) -> None:
        now = time.monotonic()
        for packet in self.queue.receive():
            fields = parse_ip(packet.payload)
            named = None if fields is None else canonical(fields, packet.mark)
            if named is None:
                self.counters["not a flow"] += 1
                self.queue.verdict(QUEUE, packet.id, NF_DROP)
                continue
            flow, inbound = named
            grant = self.grants.get(flow)
            if grant is not None and grant.expires > now:  # its element on its way, or due
                self.queue.verdict(QUEUE, packet.id)
                if now >= grant.renew_at and not grant.renewing:
                    self.renew(flow, grant, now)
            elif self.denied.get(flow, 0) > now:
                self.queue.verdict(QUEUE, packet.id, NF_DROP)
            elif flow in self.pending:
                if self.pending[flow].renewal:
                    self.counters["waiting on a renewal"] += 1
                self.pending[flow].packets.append(packet.id)
            elif not self.within_budget(flow, inbound, now):
                self.queue.verdict(QUEUE, packet.id, NF_DROP)
            else:
                pending = Pending(0, inbound, False, [packet.id], now,
                                  proof=self._device_proof(flow, inbound, packet.payload))
                if self.reachable:
                    self._request(flow, pending)
                else:
                    self.fail(flow, pending)

    def _device_proof(self, flow: Flow, inbound: bool, payload: bytes) -> tuple[int, bytes]:
        """What a farm's device shows at the start of a datagram of a flow it starts."""
        if inbound or not self.devices or flow[2] != UDP or \
                not any(ipaddress.IPv4Address(flow[0]) in block for block in self.devices):
            return NO_PROOF
        return identity.device_claim(payload[(payload[0] & 0x0F) * 4 + 8:])

    def within_budget(self, flow: Flow, inbound: bool, now: float) -> bool:
        """A new question, on its host's budget (``budget``); a refusal is counted, and
        logged here once a second per host and direction."""
        local = flow[1] if inbound else flow[0]
        if self.budget.spend(local, inbound, now):
            return True
        self.counters["over budget"] += 1
        if self.budget.log_refusal(local, inbound, now):
            self.alone.append((AdmissionRow(time.time(), self.id,
                                            self.enforced.bound.get(local) or None, *flow,
                                            inbound, False, False, Reason.OVER_BUDGET,
                                            by_gateway=True), None, None))
        return False

    def _request(self, flow: Flow, pending: Pending) -> None:
        pending.request_id = self._next_request_id()
        pending.asked = time.monotonic()
        self.pending[flow] = pending
        self.pending.move_to_end(flow)  # asked last (``Gateway.pending``)
        self.requests[pending.request_id] = flow
        self.counters["renewals asked" if pending.renewal else "asked"] += 1
        self._ask(flow, pending)

    def _ask(self, flow: Flow, pending: Pending) -> None:
        src, dst, proto, sport, dport = flow
        flags = (FlowFlag.INBOUND if pending.inbound else 0) | (
            FlowFlag.RENEWAL if pending.renewal else 0)
        self._send(Type.FLOW_REQUEST, (pending.request_id, src, dst, proto, int(flags), sport,
                                       dport, *pending.proof), with_turn=True)

    def fail(self, flow: Flow, pending: Pending) -> None:
        """No answer. While the authority is reachable, that is one question lost: its packets
        are dropped (the next asks again), whatever the fail mode, since the authority is
        there to decide. Without the authority, the fail mode decides (and, open, the gateway
        logs it here and heeds a late DENY)."""
        self.requests.pop(pending.request_id, None)
        if self.reachable:
            self.counters["unanswered"] += 1
            for packet_id in pending.packets:
                self.queue.verdict(QUEUE, packet_id, NF_DROP)
        elif self.fail_mode == "open":
            self.counters["failed open"] += 1
            local = flow[1] if pending.inbound else flow[0]
            identity_ = self.enforced.bound.get(local, 0)
            self.alone.append((AdmissionRow(time.time(), self.id, identity_ or None, *flow,
                                            pending.inbound, pending.renewal, True,
                                            Reason.OK, by_gateway=True), flow, pending))
            if pending.request_id:
                self.decided_alone[pending.request_id] = (flow, time.monotonic())
        else:
            self.counters["failed closed"] += 1
            if pending.renewal:  # its grant runs out; packets that found it gone wait here
                for packet_id in pending.packets:
                    self.queue.verdict(QUEUE, packet_id, NF_DROP)
            else:
                self.deny(flow, pending)

    def settle_alone(self) -> None:
        """What the gateway decided alone this turn of the loop goes to its journal in one
        write (with the durability asked for, an fdatasync: once, not per flow), and only
        then are the fail-open grants given."""
        if not self.alone:
            return
        decided, self.alone = self.alone, []
        self.journal.append([row for row, _, _ in decided])
        for _, flow, pending in decided:
            if flow is not None:
                self.grant(flow, pending, self.ttl_ms)

    def grant(self, flow: Flow, pending: Pending, ttl_ms: int) -> None:
        expires = time.monotonic() + ttl_ms / 1000
        renew_at = expires - renewal_margin(ttl_ms)
        self.grants[flow] = Grant(expires, renew_at, proof=pending.proof)
        heapq.heappush(self.expiries, (expires, flow))
        for packet_id in pending.packets:  # with this turn's: the element is not on the path
            self.queue.verdict(QUEUE, packet_id)
        self._hold(flow, renew_at)

    def _hold(self, flow: Flow, until: float) -> None:
        """The flow's grant element, in the kernel until ``until`` (``ElementWriter._held``)."""
        self._element_change(lambda: self._held(flow, _left_ms(until)))

    def deny(self, flow: Flow, pending: Pending) -> None:
        self.denied[flow] = time.monotonic() + DENY_CACHE_MS / 1000
        heapq.heappush(self.denials, (self.denied[flow], flow))
        for packet_id in pending.packets:
            self.queue.verdict(QUEUE, packet_id, NF_DROP)
        until = self.denied[flow]
        self._element_change(lambda: [Change(True, *entry(flow, "denied"), _left_ms(until))])
        # a renewal refused: cut it now (even if its grant has run out here: the kernel's
        # element may have been applied later than the grant was made)
        if self.grants.pop(flow, None) is not None or pending.renewal:
            self._withdraw([flow])

    # -- grants running out ----------------------------------------------------------------
    def renew(self, flow: Flow, grant: Grant, now: float) -> None:
        """A packet of ``flow`` in its grant's last margin: the flow is in use, so it is asked
        about again (once a grant: without the authority, a question fails at once and is
        not open), and its element is held until the grant runs out (the flow's packets stay
        in the kernel meanwhile; the answer replaces it). Asked in the flow's direction, not
        the packet's: a reply between two hosts of this gateway is no inbound flow."""
        grant.renewing = True
        self._hold(flow, grant.expires)
        pending = Pending(0, self._inbound(flow), True, [], now, proof=grant.proof)
        if self.reachable:
            self._request(flow, pending)
        else:
            self.fail(flow, pending)

    def expire(self, now: float) -> None:
        """Grants run out: forgotten (their elements have left the kernel already)."""
        while self.expiries and self.expiries[0][0] <= now:
            expires, flow = heapq.heappop(self.expiries)
            if (grant := self.grants.get(flow)) is not None and grant.expires == expires:
                del self.grants[flow]

    def _inbound(self, flow: Flow) -> bool:
        return flow[0] not in self.enforced.bound
