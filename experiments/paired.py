"""Paired runs: every architecture on the same graph, addresses, workload and seed.

``bring_up`` is how experiments, benchmarks and the console of ``splinterlab up`` build a
network: the emulated network, the services, then the architecture; it yields all three and
tears everything down however the block ends. (Only ``fidelity`` builds a bare network: it
measures links, not architectures.)
"""

from __future__ import annotations

import contextlib
import random
import statistics
from collections.abc import Iterator

import networkx as nx

from protocols import architectures
from protocols.architectures import Architecture
from protocols.services import Services
from topologies.graph import DEFAULT_SEED
from topologies.network import EmulatedNetwork

ALL = "all"  # --arch's word for every design compared


def archs(which: str) -> tuple[str, ...]:
    """The designs a run covers: ``all`` those compared, or one design by name (also one not
    compared yet: its tests run it alone)."""
    if which == ALL:
        return architectures.compared()
    if which not in architectures.names():
        raise ValueError(f"--arch must be {', '.join(architectures.compared())} or {ALL}, "
                         f"not {which!r}")
    return (which,)


def make(arch: str, seed: int = DEFAULT_SEED, **options) -> Architecture:
    """The architecture ``arch`` with ``options``; a design that takes the seed gets it."""
    return architectures.get(arch, seed, **options)


@contextlib.contextmanager
def bring_up(graph: nx.Graph, arch: str | Architecture, seed: int = DEFAULT_SEED,
             backend: str = "auto", writer=None, servers=None,
             **options) -> Iterator[tuple[EmulatedNetwork, Services, Architecture]]:
    """``arch``: a name (built with ``options``) or an architecture already made. ``writer``
    (a RunWriter) records how the network was emulated and configured, once it is up and
    again once it is down (the delay path's figures then cover the whole run), and keeps what
    the architecture recorded (the registry and admission log of registered access) in the
    results before the network goes away. ``servers``: the machines to spread it over."""
    architecture = make(arch, seed, **options) if isinstance(arch, str) else arch
    net = EmulatedNetwork(graph, static_routes=architecture.static_routes, backend=backend,
                          seed=seed, servers=servers)
    try:
        with net:
            services = Services(net).start()
            architecture.start(net, services)
            if writer is not None:
                writer.network(architecture.name, net, architecture)
            try:
                yield net, services, architecture
            finally:
                if writer is not None and hasattr(architecture, "keep_records"):
                    architecture.keep_records(writer.records_dir(architecture.name))
    finally:
        if writer is not None and net.calibration is not None:
            writer.network(architecture.name, net, architecture)


def median_ci(values: list[float], seed: int = 0, rounds: int = 1000) -> dict:
    """Median and a 95 % bootstrap confidence interval (the ``full`` profile reports it)."""
    if not values:
        return {"median": None, "low": None, "high": None, "n": 0}
    rng = random.Random(seed)
    medians = sorted(statistics.median(rng.choices(values, k=len(values)))
                     for _ in range(rounds))
    return {"median": statistics.median(values), "low": medians[int(0.025 * rounds)],
            "high": medians[int(0.975 * rounds)], "n": len(values)}
