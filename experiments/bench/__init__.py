"""Benchmarks that print figures: bring-up and recovery, what registered access costs, the
authority's decision rate, link fidelity, and the verdict of ``make vmtest``."""
