"""The authority's side of policy distribution: every change numbered, recorded, sent and
retransmitted until the gateway acknowledges it or is unheard for ``GIVE_UP_S`` (it then gets
a snapshot when heard from again: its KEEPALIVE carries the last change it applied). A change
is in force once every gateway heard from in the last ``SILENT_S`` has acknowledged it.

A mixin of ``authority.Authority``, whose state it uses: ``policy``, ``shares``, ``seq``,
``outgoing``, ``acked``, ``last_seen``, ``gateways``, ``registry``, ``sock``, ``counters``.
"""

from __future__ import annotations

import functools
import time
from collections.abc import Callable
from dataclasses import dataclass

from .messages import GATEWAY_PORT, Action, PolicyFlag, Type, dotted
from .policy import Change, Enforced

RETRANSMIT_S = 0.1     # first retransmission; doubles each time, up to RETRANSMIT_MAX_S
RETRANSMIT_MAX_S = 2.0
RETRANSMIT_BURST = 32  # per pass of the loop: a mute gateway must not stall answering
GIVE_UP_S = 30.0       # unheard this long: it gets a snapshot when it is heard from again
SILENT_S = 3.0         # unheard this long (three keepalives): not waited for (``unacked``)


@dataclass
class Outgoing:
    """A POLICY message waiting for its acknowledgement."""

    gateway: int
    seq: int
    data_of: Callable[[], bytes]  # signed afresh at each (re)transmission
    first_sent: float
    last_sent: float = 0.0
    interval: float = RETRANSMIT_S


class PolicyPush:
    def commit_and_push(self, gateways=None, flush: bool = False) -> None:
        """Commit; then send each gateway (of ``gateways``; default all) the difference between
        what it enforces and its share of the policy now, numbered and recorded first."""
        now = time.time()
        sends: list[tuple[int, int, Change]] = []
        for gateway in self.gateways if gateways is None else sorted(gateways):
            if flush:
                self.policy.flushes[gateway] = self.policy.flushes.get(gateway, 0) + 1
            share = Enforced.of(self.policy, gateway)
            changes = self.shares[gateway].changes_to(share)
            self.shares[gateway] = share
            for action, items in changes:
                self.seq[gateway] += 1
                self.registry.record_change(gateway, self.seq[gateway], action, items, now)
                sends.append((gateway, self.seq[gateway], (action, items)))
        self.registry.commit()
        self.dirty = set()
        for gateway, seq, (action, items) in sends:
            self._queue(gateway, seq, 0, functools.partial(self._policy, gateway, seq, action,
                                                           0, 0, 1, items))

    def send_snapshot(self, gateway: int) -> None:
        """The gateway's whole share at its latest number, in parts; what was waiting to be
        sent to it is superseded."""
        for key in [k for k in self.outgoing if k[0] == gateway]:
            del self.outgoing[key]
        seq = self.seq[gateway]
        parts = self.shares[gateway].parts() or [(Action.LIFT, ())]
        for k, (action, items) in enumerate(parts):
            self._queue(gateway, seq, k, functools.partial(
                self._policy, gateway, seq, action, PolicyFlag.SNAPSHOT, k, len(parts), items))
        self.counters["snapshots sent"] += 1

    def _policy(self, gateway: int, seq: int, action: Action, flags: int, part: int,
                parts: int, items: tuple) -> bytes:
        return self._send(Type.POLICY, gateway, (seq, action, flags, part, parts, len(items)),
                          items)

    def _queue(self, gateway: int, seq: int, part: int, data_of) -> None:
        out = Outgoing(gateway, seq, data_of, time.monotonic())
        self.outgoing[gateway, seq, part] = out
        self._transmit(out)

    def _transmit(self, out: Outgoing) -> None:
        out.last_sent = time.monotonic()
        try:
            self.sock.sendto(out.data_of(), (dotted(self.gateways[out.gateway].address),
                                             GATEWAY_PORT))
        except OSError:
            self.counters["push unreachable"] += 1

    def acknowledged(self, gateway: int, seq: int) -> None:
        self.acked[gateway] = max(self.acked.get(gateway, 0), seq)
        for key in [k for k in self.outgoing if k[0] == gateway and k[1] <= seq]:
            del self.outgoing[key]

    def unacked(self) -> int:
        """Changes a live gateway has not acknowledged yet: what ``in_force`` waits for. One
        unheard for ``SILENT_S`` (down, cut off, or never a real gateway) is still sent them
        until ``GIVE_UP_S``, and a snapshot once heard from again; nobody waits for it."""
        now = time.time()
        return sum(1 for gateway, *_ in self.outgoing if now - self.heard(gateway) <= SILENT_S)

    def silent(self) -> list[int]:
        """Gateways with changes outstanding that have not been heard from for SILENT_S."""
        now = time.time()
        return sorted({gateway for gateway, *_ in self.outgoing
                       if now - self.heard(gateway) > SILENT_S})

    def retransmit(self) -> None:
        now = time.monotonic()
        burst = RETRANSMIT_BURST
        wall = time.time()
        for key, out in list(self.outgoing.items()):
            if now - out.first_sent > GIVE_UP_S and wall - self.heard(out.gateway) > GIVE_UP_S:
                del self.outgoing[key]  # it gets a snapshot when it is heard from again
                self.counters["push given up"] += 1
            elif now - out.last_sent >= out.interval and burst:
                burst -= 1
                out.interval = min(2 * out.interval, RETRANSMIT_MAX_S)
                self.counters["push retransmitted"] += 1
                self._transmit(out)
