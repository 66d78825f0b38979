"""The designs under comparison: the one registry the CLI, experiments and plots read.

An architecture is laid over an emulated network that is already up (same graph, same
addresses) and its services: ``start(net, services)`` starts its daemons through
``net.start_daemon`` and returns once the network is usable. There is no stop: the network's
teardown kills every daemon. What each design declares about itself (label, colour, settings,
capabilities) is its ``DESIGN`` (``protocols.design``); a new design is one line here.
"""

from __future__ import annotations

from typing import Protocol

from . import permissionless, static
from .design import Design
from .registered import architecture as registered
from .sovereign import architecture as sovereign


class Architecture(Protocol):
    name: str
    static_routes: bool  # ask the network for precomputed routes (no routing daemons)

    def start(self, net, services) -> None: ...

    def describe(self) -> dict: ...


def check(designs: tuple[Design, ...]) -> tuple[Design, ...]:
    """``designs`` if they can live side by side, else one sentence on the clash: names,
    labels and colours tell designs apart in figures, a flag means one setting on the command
    line, and a central element's outage is named after it."""
    def clash(what: str, values: list) -> None:
        if len(set(values)) < len(values):
            twice = sorted({v for v in values if values.count(v) > 1}, key=str)
            raise ValueError(f"two designs share the {what} {', '.join(map(str, twice))}")
    for what, of in (("name", lambda d: [d.name]), ("label", lambda d: [d.label]),
                     ("colour", lambda d: [d.colour]),
                     ("central element", lambda d: [d.central] if d.central else [])):
        clash(what, [v for d in designs for v in of(d)])
    clash("flag", [o.flag for d in designs for o in d.options])
    clash("setting", [o.name for d in designs for o in d.options])  # argparse dest
    if bad := [o.flag for d in designs for o in d.options
               if isinstance(o.default, bool) and not o.choices]:
        raise ValueError(f"{bad[0]} is a yes/no setting: declare its choices, a flag's "
                         "text 'False' would read as true")
    return designs


DESIGNS: tuple[Design, ...] = check((static.DESIGN, permissionless.DESIGN, registered.DESIGN,
                                     sovereign.DESIGN))
BASELINE = permissionless.DESIGN.name  # what every other design is compared against
# the design whose admission (its cost, load, placement and TTL) benches and figures measure
ADMITTING = next(d.name for d in DESIGNS if d.compared and d.admits_flows)


class UnknownArchitecture(ValueError):
    pass


def names() -> tuple[str, ...]:
    return tuple(d.name for d in DESIGNS)


def compared() -> tuple[str, ...]:
    """The designs paired experiments compare, baseline first."""
    return tuple(d.name for d in DESIGNS if d.compared)


def design(name: str) -> Design:
    for d in DESIGNS:
        if d.name == name:
            return d
    raise UnknownArchitecture(f"there is no architecture {name!r}; choose one of "
                              f"{', '.join(names())}")


def admits(name: str) -> bool:
    """Whether a third party decides each new flow of ``name`` before it passes: what TTL
    sweeps, authority load and placement, and admission's costs are measured on."""
    return design(name).admits_flows


def get(name: str, seed: int | None = None, **options) -> Architecture:
    """The architecture ``name`` with ``options`` checked against what it declares."""
    return design(name).build(seed, **options)
