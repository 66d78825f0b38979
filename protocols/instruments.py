"""A censor's instruments, as each design gives them to its operator.

The five actions of the censorship debate (cut off a person, a destination, a name, a region,
the country), how each is undone, and the records that tie a host to the destinations it
reached. Experiments aim in the network's own terms (``Aim``: hosts, sites, a region); each
design decides how its operator hits the aim: permissionless IP through a censor at its
border (``protocols.censor``), registered access through the authority's commands
(``protocols.registered.instruments``). An architecture offers them as
``instruments(net, services)``.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Protocol

ACTIONS = ("person", "destination", "name", "region", "country")
THROTTLE = "throttle"  # the destination slowed, not cut: where ``can_throttle``
THROTTLE_KBIT = 150    # Russia slowed Twitter to about 130-150 kbit/s in March 2021


def policed(prefix: str, kbit: int) -> list[str]:
    """The nftables rules that hold traffic to and from ``prefix`` to ``kbit`` each way (a
    policer: what goes over the rate is dropped), as every design that throttles writes them."""
    rate = max(1, kbit // 8)  # kbytes/second, as nftables counts
    return [f"ip {way} {prefix} limit rate over {rate} kbytes/second counter drop"
            for way in ("daddr", "saddr")]


@dataclass(frozen=True)
class Aim:
    """What the actions are aimed at."""

    person: str                  # a host, the person cut off
    destination: str             # a site, blocked by where it is
    name: str                    # a site, blocked by its name
    region: str                  # a region of the topology
    region_hosts: tuple[str, ...]
    essential: tuple[str, ...]   # nodes a regional shutdown leaves reachable


class Instruments(Protocol):
    lies_about_names: bool       # "name" is a resolver's lie, so it is timed by DNS answers
    identity_evasions: bool      # a person cut off can register again, or borrow a card
    can_throttle: bool           # THROTTLE: the destination held to THROTTLE_KBIT each way

    def act(self, action: str, aim: Aim) -> None: ...

    def undo(self, action: str, aim: Aim) -> None: ...

    def records(self, host: str, since: float) -> set[str]:
        """Destinations (addresses) the operator's own records tie to ``host`` since
        ``since``."""

    def moved(self, host: str) -> None:
        """``host`` has a new address: whatever the design does about it."""

    # where ``identity_evasions``: a person cut off tries to get back on
    def reregister(self, host: str) -> bool:
        """With their own identity again: True if it was accepted."""

    def borrow(self, host: str) -> bool:
        """With somebody else's, lent to them (``host`` already at a new address): True if
        it was accepted."""

    def blame(self, host: str, since: float) -> dict:
        """After ``borrow``: who acted, whose identity it was, whom the records name."""
