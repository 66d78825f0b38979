"""splinterlab from Python: ``from splinterlab import Lab, run, results``
(``experiments.lab``: a network driven by hand; ``experiments.runs``: an experiment run, its
results directory returned; ``results``: a results directory's tables as DataFrames)."""

from experiments.lab import Lab, LabError
from experiments.results import ResultsError
from experiments.results import frames as results
from experiments.runs import run

__all__ = ["Lab", "LabError", "ResultsError", "results", "run"]
