"""The settings every experiment takes (kept light: plots import it without the network)."""

from __future__ import annotations

from dataclasses import dataclass
from typing import ClassVar

from topologies.graph import DEFAULT_SEED


@dataclass
class ExperimentConfig:
    """What every experiment is told: the topology, which architectures, how thoroughly
    (``PROFILES`` of the subclass), the seed, the delay backend, the name of its results
    directory (default: the time and the topology) and the servers it spreads over."""

    PROFILES: ClassVar[dict[str, dict]] = {}
    topo: str = "isp"
    arch: str = "all"
    profile: str = "quick"
    seed: int = DEFAULT_SEED
    backend: str = "auto"
    name: str = ""
    servers: str = ""  # as --servers takes them; "": this machine alone

    def spread(self):
        """The servers to spread each network over (``placement.Server``s), or None."""
        from topologies.placement import parse_servers

        return parse_servers(self.servers) if self.servers else None

    def settings(self) -> dict:
        if self.profile not in self.PROFILES:
            raise ValueError(f"profile must be one of {', '.join(self.PROFILES)}, not "
                             f"{self.profile!r}")
        return dict(self.PROFILES[self.profile])
