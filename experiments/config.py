"""The settings every experiment takes (kept light: plots import it without the network)."""

from __future__ import annotations

from dataclasses import dataclass
from typing import ClassVar

from topologies.graph import DEFAULT_SEED


@dataclass
class ExperimentConfig:
    """What every experiment is told: the topology, which architectures, how thoroughly
    (``PROFILES`` of the subclass), the seed, the delay backend, and the name of its results
    directory (default: the time and the topology)."""

    PROFILES: ClassVar[dict[str, dict]] = {}
    topo: str = "isp"
    arch: str = "all"
    profile: str = "quick"
    seed: int = DEFAULT_SEED
    backend: str = "auto"
    name: str = ""

    def settings(self) -> dict:
        if self.profile not in self.PROFILES:
            raise ValueError(f"profile must be one of {', '.join(self.PROFILES)}, not "
                             f"{self.profile!r}")
        return dict(self.PROFILES[self.profile])
