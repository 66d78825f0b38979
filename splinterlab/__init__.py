"""splinterlab from Python: ``from splinterlab import Lab, run`` (``experiments.lab``: a
network driven by hand; ``experiments.runs``: an experiment run, its results directory
returned)."""

from experiments.lab import Lab, LabError
from experiments.runs import run

__all__ = ["Lab", "LabError", "run"]
