"""Every experiment the command line knows, by name: add a module's ``EXPERIMENT`` here."""

from __future__ import annotations

from experiments.comparisons import blast_radius, censorship, iot, latency, planet
from experiments.interface import Experiment

EXPERIMENTS: dict[str, Experiment] = {e.name: e for e in (
    latency.EXPERIMENT, blast_radius.EXPERIMENT, censorship.EXPERIMENT, iot.EXPERIMENT,
    planet.EXPERIMENT)}
COMPARISONS = [e.name for e in EXPERIMENTS.values() if e.emulated and e.comparison]
"""What ``run all`` and ``study`` run: the paired comparisons on one emulated network."""
