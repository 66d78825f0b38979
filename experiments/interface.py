"""The one interface every experiment implements.

An experiment is a module that ends with ``EXPERIMENT = Experiment(...)``: its name on the
command line, one line saying what it answers, its config type (a dataclass with a profile per
thoroughness), ``run(config, out)`` writing a results directory, ``plot(directory)`` reading
only that directory, and ``check(graph)``, which refuses in one sentence a topology it cannot
use. ``experiments.registry`` lists them; adding one is copying a module and adding a line.
``emulated`` is False for an experiment that only runs the graph model: it needs no root and
takes no ``--topo``, and ``run all`` (the emulated comparison) leaves it out. ``comparison``
is False for an emulated study of its own (IoT at scale) that ``run all`` and ``study`` leave
out: the demo stays the three paired comparisons.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import networkx as nx

from experiments.config import ExperimentConfig


def no_check(graph: nx.Graph) -> None:
    """Every topology will do."""


@dataclass(frozen=True)
class Experiment:
    name: str
    question: str
    config: type[ExperimentConfig]
    run: Callable[[ExperimentConfig, Path | None], Path]
    plot: Callable[[Path], list[Path]]
    check: Callable[[nx.Graph], None] = no_check
    emulated: bool = True
    comparison: bool = True
