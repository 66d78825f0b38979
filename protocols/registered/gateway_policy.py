"""The gateway's share of the policy, put in force in order: numbered changes through
``policy.Sequencer``, snapshots applied as a difference, each change's grants forgotten."""

from __future__ import annotations

import ipaddress
import time

from .gateway_flows import _prefix_set
from .messages import (
    Action,
    PolicyFlag,
    Type,
    dotted,
)
from .policy import Snapshot
from .ruleset import (
    TABLE,
    shutdown_rules,
)


class PolicySync:
    """Part of ``gateway.Gateway``: what the authority's POLICY messages change."""

    def on_policy(self, seq: int, action: int, flags: int, part: int, parts: int, _count: int,
                  items: tuple) -> None:
        now = time.monotonic()
        change = (Action(action), items)
        if flags & PolicyFlag.SNAPSHOT:
            if seq >= self.sequencer.applied:
                if self.snapshot is None or self.snapshot.seq != seq:
                    self.snapshot = Snapshot(seq, parts)
                if self.snapshot.add(part, change):
                    for c in self.enforced.changes_to(self.snapshot.state()):
                        self.apply(*c)
                    self.counters["snapshots applied"] += 1
                    self.snapshot = None
                    self.synced = True
                    for c in self.sequencer.snapshot_applied(seq, now):
                        self.apply(*c)
        else:
            for c in self.sequencer.offer(seq, change, now):
                self.apply(*c)
        self._send(Type.POLICY_ACK, (self.sequencer.applied,))

    def apply(self, action: Action, items: tuple) -> None:
        """Put one change in force, then forget the grants it made void."""
        self.counters[f"change {action.name.lower()}"] += 1
        self.enforced.apply(action, items)
        if action == Action.TTL:  # grants it gives alone follow it
            self.ttl_ms = self.enforced.ttl_ms or self.ttl_ms
            return
        nets = [ipaddress.IPv4Network(f"{dotted(a)}/{n}", strict=False) for a, n, _ in items]
        addresses = ", ".join(dotted(a) for a, _, _ in items)
        if action == Action.BIND:
            elements = [f'"{self._iface_of(a)}" . {dotted(a)}' for a, _, _ in items
                        if self._iface_of(a)]
            if elements:
                self._nft(f"add element inet {TABLE} bound {{ {', '.join(elements)} }}")
            self._answer_enrolled()
        elif action == Action.UNBIND:  # the address's cut goes with its binding
            for a, _, _ in items:
                iface = self._iface_of(a)
                if iface:
                    self._nft(f'add element inet {TABLE} bound {{ "{iface}" . {dotted(a)} }}\n'
                              f'delete element inet {TABLE} bound {{ "{iface}" . {dotted(a)} }}\n'
                              f"add element inet {TABLE} cut {{ {dotted(a)} }}\n"
                              f"delete element inet {TABLE} cut {{ {dotted(a)} }}")
            self._forget(lambda f: f[0] in {a for a, _, _ in items} or
                         f[1] in {a for a, _, _ in items})
        elif action == Action.CUT:
            self._nft(f"add element inet {TABLE} cut {{ {addresses} }}")
            self._forget(lambda f: f[0] in self.enforced.cut or f[1] in self.enforced.cut)
        elif action in (Action.BLOCK, Action.UNBLOCK):
            self._nft(_prefix_set("blocked", self.enforced.blocked))
            if action == Action.BLOCK:
                self._forget(lambda f: any(ipaddress.IPv4Address(e) in n for n in nets
                                           for e in (f[0], f[1])))
        elif action == Action.UNCUT:
            self._nft(f"add element inet {TABLE} cut {{ {addresses} }}\n"
                      f"delete element inet {TABLE} cut {{ {addresses} }}")
        elif action == Action.SHUTDOWN:
            self._nft(_prefix_set("essential", self.enforced.shutdown) + "\n" +
                      shutdown_rules(True))
            self._forget(lambda f: not any(ipaddress.IPv4Address(e) in n for n in nets
                                           for e in (f[0], f[1])))
        elif action == Action.LIFT:
            self._nft(shutdown_rules(False) + f"\nflush set inet {TABLE} essential")
        elif action == Action.FLUSH:
            self._forget(lambda f: True)
        self._nft(f"flush set inet {TABLE} denied_icmp\nflush set inet {TABLE} denied_l4")
        self.denied.clear()  # old denials may no longer hold
