"""Every experiment the command line knows, by name: add a module's ``EXPERIMENT`` here."""

from __future__ import annotations

from experiments.comparisons import blast_radius, censorship, latency, planet
from experiments.interface import Experiment

EXPERIMENTS: dict[str, Experiment] = {e.name: e for e in (
    latency.EXPERIMENT, blast_radius.EXPERIMENT, censorship.EXPERIMENT, planet.EXPERIMENT)}
