"""The authority's compiled decisions (``fastpath``), when its configuration asks for them
(``"decisions": "compiled"``): FLOW_REQUESTs read, decided, logged and answered in C a batch
at a time; every other datagram, and a device's flow, by the Python path as before. Both
paths share one replay window and one message counter per gateway (the C side's), and the C
side's copy of the policy takes over every change: a binding as it is made, an operator's
command once carried out.

A mixin of ``authority.Authority``, whose state it uses: ``policy``, ``gateways``, ``keys``,
``replays``, ``sender``, ``devices``, ``sock``, ``journal``, ``counters``, ``last_seen``,
``started``.
"""

from __future__ import annotations

from . import codec
from .codec import Key, Rejected
from .fastpath import CompiledPolicy, FlowServer

DECISIONS = ("python", "compiled")
INTERNAL = ("answered", "to python")  # the C side's own tallies, no counter of the protocol


class CompiledDecisions:
    fast: FlowServer | None = None

    def compile_decisions(self) -> None:
        self.fast = FlowServer(CompiledPolicy.of(self.policy), self.sender.session,
                               codec.STARTED_US, {g.id: g.key for g in self.gateways.values()},
                               {g.id: g.address for g in self.gateways.values()}, self.devices)

    def compiled_batch(self) -> None:
        """``serve_batch`` with the C path."""
        _, rest = self.fast.serve(self.sock, self.journal.fd, self.journal.durability == "power")
        if rest:
            self.answer_batch(rest)

    def authenticated(self, data: bytes, sender: int, session: int, counter: int,
                      timestamp: int) -> Key:
        """``codec.authenticate``, through the C side's replay windows if it decides."""
        if self.fast is None:
            return codec.authenticate(data, sender, session, counter, timestamp,
                                      self.keys.get, self.replays)
        why = self.fast.authenticate(data, codec.now_us())
        if why != "answered":
            raise Rejected(why)
        return self.keys[sender]

    def opened(self, data: bytes) -> codec.Message:
        """``codec.open_message``, authenticated as ``authenticated`` does."""
        msg_type, sender, session, counter, timestamp = codec.peek(data)
        fields = codec.body(msg_type, data)
        self.authenticated(data, sender, session, counter, timestamp)
        return codec.Message(msg_type, sender, session, counter, timestamp, fields)

    def heard(self, gateway: int) -> float:
        """When ``gateway`` last spoke to either path; one not heard since the start, at the
        start (it may be speaking already: its first keepalive is at most a second away)."""
        seen = self.last_seen.get(gateway, self.started)
        return seen if self.fast is None else max(seen, self.fast.last_seen(gateway))

    def numbered(self, gateway: int) -> tuple[int, int]:
        """The session and counter of our next message to ``gateway``."""
        return self.sender.next(gateway) if self.fast is None else self.fast.next(gateway)

    def policy_changed(self) -> None:
        if self.fast is not None:
            self.fast.policy.sync(self.policy)

    def bound(self, identity: int, address: int, gateway: int) -> None:
        if self.fast is not None:
            self.fast.policy.bind(identity, address, gateway)

    def all_counters(self) -> dict[str, int]:
        """The Python path's counters and the C path's, under the same names."""
        merged = dict(self.counters)
        for name, n in (self.fast.counts() if self.fast else {}).items():
            if name not in INTERNAL:
                merged[name] = merged.get(name, 0) + n
        return merged
