"""What each gateway must enforce, and how it gets there in order.

The authority's ``admission.Policy`` is the whole country's; ``Enforced`` is one gateway's
share of it: the bindings of its hosts (address -> identity), which of those addresses are cut
(revoked people), the blocked destinations, and whether its region is shut down and what then
stays reachable, how long its grants live (what a gateway that decides alone or batches
renewals must know), and how many times it has been told to forget its grants (a flush is state
too: a gateway that missed one and is brought up to date by a snapshot must still forget the
grants given before it). Whenever the policy changes, the authority computes each affected
gateway's new share, sends the difference as numbered POLICY changes (1, 2, ... per gateway,
recorded in the registry before they are sent), and retransmits them until the gateway
acknowledges.

A gateway applies changes strictly in order (``Sequencer``): one that arrives early waits for
those before it; a gap that does not close is filled by a snapshot, its complete share at a
number, sent in parts (``Snapshot``), which it applies as the difference from what it has. So
no late or repeated message can undo a newer one, and a sync never drops a binding, nor a flow
that the policy still allows.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from .admission import Policy
from .messages import MAX_ITEMS, Action

Item = tuple[int, int, int]   # address, prefix length, identity
Change = tuple[Action, tuple[Item, ...]]


@dataclass
class Enforced:
    bound: dict[int, int] = field(default_factory=dict)        # address -> identity
    cut: dict[int, int] = field(default_factory=dict)          # address -> identity
    blocked: set[tuple[int, int]] = field(default_factory=set)
    shutdown: tuple[tuple[int, int], ...] | None = None        # essential prefixes
    flushes: int = 0
    ttl_ms: int = 0  # 0: not said yet (a gateway keeps the TTL it was started with)
    # identity -> its address, so that a farm's thousands of bindings apply in linear time
    address_of: dict[int, int] = field(default_factory=dict, compare=False, repr=False)

    def __post_init__(self) -> None:
        self.address_of = {identity: address for address, identity in self.bound.items()}

    @classmethod
    def of(cls, policy: Policy, gateway: int) -> Enforced:
        """The share of ``policy`` that ``gateway`` enforces."""
        bound = {policy.address_of[identity]: identity
                 for identity in policy.members.get(gateway, ())}
        region = policy.region_of.get(gateway)
        return cls(bound, {a: i for a, i in bound.items() if i in policy.revoked},
                   set(policy.blocked), tuple(sorted(policy.shutdowns[region]))
                   if region in policy.shutdowns else None, policy.flushes.get(gateway, 0),
                   policy.ttl_ms)

    def apply(self, action: Action, items: tuple[Item, ...]) -> None:
        if action == Action.BIND:
            for address, _, identity in items:
                self._unbind(self.address_of.get(identity))  # an identity has one address
                self._unbind(address)
                self.bound[address] = identity
                self.address_of[identity] = address
        elif action == Action.UNBIND:
            for address, _, _ in items:
                self._unbind(address)
                self.cut.pop(address, None)
        elif action == Action.CUT:
            self.cut.update({address: identity for address, _, identity in items})
        elif action == Action.UNCUT:
            for address, _, _ in items:
                self.cut.pop(address, None)
        elif action == Action.BLOCK:
            self.blocked |= {(a, n) for a, n, _ in items}
        elif action == Action.UNBLOCK:
            self.blocked -= {(a, n) for a, n, _ in items}
        elif action == Action.SHUTDOWN:
            self.shutdown = tuple(sorted((a, n) for a, n, _ in items))
        elif action == Action.LIFT:
            self.shutdown = None
        elif action == Action.FLUSH:  # item: (0, 0, the gateway's flushes so far)
            self.flushes = items[0][2] if items else self.flushes + 1
        elif action == Action.TTL and items and items[0][2]:  # 0 would expire grants at once
            self.ttl_ms = items[0][2]

    def _unbind(self, address: int | None) -> None:
        identity = self.bound.pop(address, None)
        if identity is not None and self.address_of.get(identity) == address:
            del self.address_of[identity]

    def changes_to(self, target: Enforced) -> list[Change]:
        """The changes that turn this share into ``target``, at most ``MAX_ITEMS`` items
        each: bindings first (an unbinding clears its address's cut), then cuts and blocks
        and their releases, then the shutdown. (A revoked identity can never be bound, so no
        binding is ever briefly let through uncut.)"""
        out: list[tuple[Action, list[Item]]] = [
            (Action.UNBIND, [(a, 32, i) for a, i in self.bound.items()
                             if target.bound.get(a) != i]),
            (Action.BIND, [(a, 32, i) for a, i in target.bound.items()
                           if self.bound.get(a) != i]),
            (Action.CUT, [(a, 32, i) for a, i in target.cut.items()
                          if self.cut.get(a) != i or self.bound.get(a) != target.bound.get(a)]),
            (Action.UNCUT, [(a, 32, i) for a, i in self.cut.items()
                            if a not in target.cut and self.bound.get(a) == target.bound.get(a)]),
            (Action.BLOCK, [(a, n, 0) for a, n in sorted(target.blocked - self.blocked)]),
            (Action.UNBLOCK, [(a, n, 0) for a, n in sorted(self.blocked - target.blocked)]),
        ]
        if target.shutdown != self.shutdown:
            out.append((Action.LIFT, []) if target.shutdown is None else
                       (Action.SHUTDOWN, [(a, n, 0) for a, n in target.shutdown]))
        if target.ttl_ms != self.ttl_ms:
            out.append((Action.TTL, [(0, 0, target.ttl_ms)]))
        if target.flushes != self.flushes:  # last: grants given before go, whatever changed
            out.append((Action.FLUSH, [(0, 0, target.flushes)]))
        return [chunk for action, items in out for chunk in _chunks(action, items,
                                                                     empty_ok=action in (
                                                                         Action.LIFT,
                                                                         Action.SHUTDOWN))]

    def parts(self) -> list[Change]:
        """The whole share as snapshot parts (a shutdown part even when nothing is
        essential; no part at all when the region is not shut down)."""
        return Enforced().changes_to(self)

    def copy(self) -> Enforced:
        return Enforced(dict(self.bound), dict(self.cut), set(self.blocked), self.shutdown,
                        self.flushes, self.ttl_ms)


def _chunks(action: Action, items: list[Item], empty_ok: bool) -> list[Change]:
    if not items:
        return [(action, ())] if empty_ok else []
    return [(action, tuple(items[k:k + MAX_ITEMS])) for k in range(0, len(items), MAX_ITEMS)]


def from_parts(parts: list[Change]) -> Enforced:
    state = Enforced()
    for action, items in parts:
        state.apply(action, items)
    return state


class Sequencer:
    """A gateway's side: which changes to apply now, and when a gap calls for a snapshot."""

    def __init__(self, patience_s: float = 0.5):
        self.applied = 0
        self.early: dict[int, Change] = {}
        self.gap_since: float | None = None
        self.patience_s = patience_s

    def offer(self, seq: int, change: Change, now: float) -> list[Change]:
        """Changes to apply now, in order (none for a repeat or an early arrival)."""
        if seq > self.applied:
            self.early[seq] = change
        return self._release(now)

    def _release(self, now: float) -> list[Change]:
        out = []
        while self.applied + 1 in self.early:
            self.applied += 1
            out.append(self.early.pop(self.applied))
        self.gap_since = (self.gap_since or now) if self.early else None
        return out

    def wants_snapshot(self, now: float) -> bool:
        return self.gap_since is not None and now - self.gap_since >= self.patience_s

    def snapshot_applied(self, seq: int, now: float) -> list[Change]:
        """A snapshot at ``seq`` is in force; changes after it that were waiting follow."""
        self.applied = max(self.applied, seq)
        self.early = {s: c for s, c in self.early.items() if s > self.applied}
        self.gap_since = None
        return self._release(now)


@dataclass
class Snapshot:
    """The parts of one snapshot, as they arrive in any order."""

    seq: int
    parts: int
    received: dict[int, Change] = field(default_factory=dict)

    def add(self, part: int, change: Change) -> bool:
        """True once every part is here."""
        self.received[part] = change
        return len(self.received) == self.parts

    def state(self) -> Enforced:
        return from_parts([self.received[k] for k in sorted(self.received)])
