"""Experiments, measurements, results, plots and the splinterlab command line."""
