"""splinterlab from Python: ``from splinterlab import Lab`` (see ``experiments.lab``)."""

from experiments.lab import Lab, LabError

__all__ = ["Lab", "LabError"]
