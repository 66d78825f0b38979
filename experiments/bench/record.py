"""Every benchmark writes a results directory, as the experiments do, so that its figures can
be published from a file that names the commit that made them (``make results``).

    <out>/bench-<what>/<name>/
        meta.json       commit (and whether the tree was clean), versions, kernel, start, end
        results.json    the figures the benchmark returned
        printout.txt    what it printed, line for line
        topology.json   the graph, where it ran on one

A benchmark has no plot: its tables are rendered into the README from results.json.
"""

from __future__ import annotations

import contextlib
import sys
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import ClassVar

from experiments.config import ExperimentConfig
from experiments.results import RunWriter

PREFIX = "bench-"


@dataclass
class BenchConfig(ExperimentConfig):
    """What a benchmark was asked: the topology and architecture where it has them, and its
    own parameters (``params``)."""

    PROFILES: ClassVar[dict[str, dict]] = {"quick": {}}
    params: dict = field(default_factory=dict)


class _Tee:
    """Writes go to the terminal and to a file."""

    def __init__(self, terminal, file):
        self.terminal, self.file = terminal, file

    def write(self, text: str) -> int:
        self.file.write(text)
        return self.terminal.write(text)

    def flush(self) -> None:
        self.file.flush()
        self.terminal.flush()


def is_benchmark(meta: dict) -> bool:
    return str(meta.get("experiment", "")).startswith(PREFIX)


@contextlib.contextmanager
def recorded(what: str, config: BenchConfig, out: Path | None,
             graph=None) -> Iterator[tuple[RunWriter, dict]]:
    """Around one benchmark: yields its writer and the dict to fill with its figures, which is
    written as results.json however the block ends (status complete or interrupted)."""
    if not config.name:
        config.name = f"{time.strftime('%Y%m%d-%H%M%S')}-{config.topo.replace(':', '_')}"
    writer = RunWriter(f"{PREFIX}{what}", config, out)
    if graph is not None:
        writer.topology(graph)
    figures: dict = {}
    with open(writer.dir / "printout.txt", "w") as printout, writer.session(lambda: figures):
        terminal, sys.stdout = sys.stdout, _Tee(sys.stdout, printout)
        try:
            yield writer, figures
        finally:
            sys.stdout = terminal
