"""The experiments, each one module with its run and its plots (``experiments.interface``),
and the study that runs one over many topologies."""
