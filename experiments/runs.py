"""Every experiment as a function: ``run("latency", topo="zoo:Abilene")`` returns its results
directory, as ``splinterlab run`` makes it (``from splinterlab import run`` in a notebook).
``configure`` checks what is asked before anything is built, for the CLI and for Python."""

from __future__ import annotations

from pathlib import Path

import topologies
from experiments.interface import Experiment
from experiments.paired import ALL
from experiments.registry import EXPERIMENTS
from topologies.graph import DEFAULT_SEED

PROFILE = "quick"  # minutes; "full": more of everything, repetitions and CIs


def experiment(name: str) -> Experiment:
    if name not in EXPERIMENTS:
        raise ValueError(f"there is no experiment {name!r}; choose one of "
                         f"{', '.join(EXPERIMENTS)} or all")
    return EXPERIMENTS[name]


def configure(chosen: Experiment, topo: str | None = None, arch: str = ALL,
              profile: str = PROFILE, seed: int = DEFAULT_SEED, backend: str = "auto",
              name: str = "", servers: str = ""):
    """The experiment's configuration, checked: a ValueError of one sentence if it cannot
    run as asked (the topology, the seed, the profile)."""
    if seed < 0:
        raise ValueError("--seed must be zero or positive")
    if not chosen.emulated:
        for given, flag in ((topo is not None, "--topo"), (servers, "--servers")):
            if given:
                raise ValueError(f"{chosen.name} runs the graph model on its own graph; it "
                                 f"takes no {flag}")
        config = chosen.config(profile=profile, seed=seed, name=name)
    else:
        topo = topo or topologies.DEFAULT
        chosen.check(topologies.build(topo))
        config = chosen.config(topo=topo, arch=arch, profile=profile, seed=seed,
                               backend=backend, name=name, servers=servers)
        config.spread()  # servers understood before anything runs
    config.settings()
    return config


def run(which: str, /, out: str | Path | None = None, **settings) -> Path:
    """Run the experiment named ``which`` (``settings``: those of ``configure``, ``name`` the
    results directory's) and return its results directory (under ``out``, default
    results/). Emulated ones need root."""
    chosen = experiment(which)
    return chosen.run(configure(chosen, **settings), Path(out) if out else None)
