"""The architectures under comparison, by name: the one registry the CLI and benchmarks use.

An architecture is laid over an emulated network that is already up (same graph, same
addresses) and its services: ``start(net, services)`` starts its daemons through
``net.start_daemon`` and returns once the network is usable. There is no stop: the network's
teardown kills every daemon.
"""

from __future__ import annotations

from typing import Protocol

from .permissionless import Permissionless
from .registered.architecture import Registered
from .static import Static


class Architecture(Protocol):
    name: str
    static_routes: bool  # ask the network for precomputed routes (no routing daemons)

    def start(self, net, services) -> None: ...

    def describe(self) -> dict: ...


ARCHITECTURES: dict[str, type] = {"static": Static, "permissionless": Permissionless,
                                  "registered": Registered}


class UnknownArchitecture(ValueError):
    pass


def get(name: str, **options) -> Architecture:
    if name not in ARCHITECTURES:
        raise UnknownArchitecture(f"there is no architecture {name!r}; choose one of "
                                  f"{', '.join(ARCHITECTURES)}")
    return ARCHITECTURES[name](**options)
