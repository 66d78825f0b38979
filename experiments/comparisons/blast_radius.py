"""Blast radius: what breaks, for whom and for how long, when one thing fails.

Every single failure of a router and of a router-to-router link (the ``quick`` profile takes
every router and a seeded sample of links; ``full`` every link, host lines included), and
each design's central element (the authority, the regulator) where it has one; under a design
that admits flows also a partition that cuts one region off from the authority while leaving
the region whole. Links fail as cut cables (the routers see the carrier go). Before any
failure, rounds run until every pair connects (``warm_up``; the losses of each are kept as
``warmup``): the first burst of every pair's first connection is a start-up effect.

For each failure, every end node keeps a prober running (``experiments.probing.prober matrix``) and,
round after round, tries every other end node two ways: an ICMP echo of a flow it used just
before the failure (an existing connection: under registered access its grant is cached)
and a TCP connection to a port it never used (a new connection: under registered access it
must be admitted). One record per failure, as the host pairs saw it:

    {"arch", "failure": {"kind": "link"|"router"|"authority"|"partition", "target"},
     "pairs_total", "pairs_lost_new": [[src, dst], ...], "pairs_lost_existing": [...],
     "recovery_s", "timeline": [...], "repaired_s",
     "predicted_lost_new", "predicted_lost_existing"}   (the graph model's answer, or
                                                        "as measured" where it is the same)

Rounds run every half second until two in a row agree (after at least ``settle_s``, at most
``window_s``; an authority outage follows a fixed schedule past the admission TTL). Under
registered access, pairs that can no longer start a connection may still carry flows admitted
before, until their grants run out: while that is so, rounds go on to one TTL and a second.
``pairs_lost_*`` is the state at the end; ``recovery_s`` is when the network had adapted as
far as it would (the first round from which on the set of pairs unable to start a
connection no longer changed; its resolution is the round spacing); ``repaired_s`` how long
everything took to work again once the failed part was back (a network that does not heal
within ``REPAIR_S`` stops the run with the pairs still cut off: every later failure would be
measured on a broken network). Failures come a few seconds
apart, so OSPF's 5 s minimum interval between a router's LSAs can slow the healing of one
failure that follows another; both architectures meet it alike.
"""

from __future__ import annotations

import collections
import random
import time
from dataclasses import dataclass
from pathlib import Path

import networkx as nx

from experiments.comparisons import blast_radius_report as report
from experiments.config import ExperimentConfig
from experiments.interface import Experiment
from experiments.model.latency import first_connection_overhead_ms, one_way_ms
from experiments.model.reachability import (
    Failure,
    existing_lost,
    new_lost,
    partition_cut,
    partition_regions,
    users,
)
from experiments.probing.probes import Matrix
from experiments.results import RunWriter
from protocols import architectures
from protocols.architectures import admits
from topologies.graph import is_router, natural_key, routers
from topologies.polling import wait_until

NAME = "blast-radius"
PROFILES = {
    "quick": {"links": 4, "host_lines": False, "settle_s": 1.5, "window_s": 8.0,
              "ttl_ms": 6000, "authority_rounds": [0.5, 2.0, 4.0, 6.0, 8.0], "timeout": 0.5},
    "full": {"links": None, "host_lines": True, "settle_s": 3.0, "window_s": 15.0,
             "ttl_ms": 10000, "authority_rounds": [0.5, 1, 2, 4, 6, 8, 10, 12, 14],
             "timeout": 0.5},
}
ROUND_SPACING_S = 0.5
REPAIR_S = 30.0  # a repaired network must let every pair connect again within this
HEADER = ["arch", "kind", "target", "t", "lost_new", "lost_existing", "pairs_total"]


@dataclass
class BlastRadiusConfig(ExperimentConfig):
    PROFILES = PROFILES
    every_link: bool = False  # every router link, whatever the profile samples

    def settings(self) -> dict:
        return {**super().settings(), **({"links": None} if self.every_link else {})}


def failures(g: nx.Graph, s: dict, seed: int, arch: str) -> list[dict]:
    out = [{"kind": "router", "target": r} for r in routers(g)]
    links = sorted((tuple(sorted(e, key=natural_key)) for e in g.edges
                    if (is_router(g, e[0]) and is_router(g, e[1])) or s["host_lines"]),
                   key=lambda e: (natural_key(e[0]), natural_key(e[1])))
    if s["links"] is not None and len(links) > s["links"]:
        links = sorted(random.Random(seed).sample(links, s["links"]),
                       key=lambda e: (natural_key(e[0]), natural_key(e[1])))
    out += [{"kind": "link", "target": f"{a}-{b}"} for a, b in links]
    central = architectures.design(arch).central
    if central:
        out.append({"kind": central, "target": central})
    if admits(arch):  # a region cut off from the authority can no longer admit
        out += [{"kind": "partition", "target": region} for region in partition_regions(g)]
    return out


WARMUP_ROUNDS = 5  # at most: a network that does not settle by then is broken
AS_MEASURED = "as measured"  # a model pair set equal to the measured one is stored once


def predicted(g: nx.Graph, arch: str, failure: dict, fail_mode: str = "closed",
              measured: dict | None = None) -> dict:
    """What the graph model says this failure costs (``experiments.model.reachability``):
    recorded beside every measurement (as ``AS_MEASURED`` where it is the measured set), and
    what the tests hold the measurement to."""
    f = Failure.of(failure)
    out = {}
    for kind, pairs in (("new", new_lost(g, f, arch, fail_mode)),
                        ("existing", existing_lost(g, f, arch, after_ttl=True,
                                                   fail_mode=fail_mode))):
        pairs = sorted(map(list, pairs))
        same = measured is not None and measured[f"pairs_lost_{kind}"] == pairs
        out[f"predicted_lost_{kind}"] = AS_MEASURED if same else pairs
    return out


def model_pairs(record: dict, kind: str) -> list[list[str]]:
    """The model's pair set of a record, ``kind`` new or existing."""
    pairs = record[f"predicted_lost_{kind}"]
    return record[f"pairs_lost_{kind}"] if pairs == AS_MEASURED else pairs


def timeout(g: nx.Graph, s: dict) -> float:
    """How long a probe waits for an answer: the profile's, or, on a graph so wide that a
    first connection takes longer (the round trip plus, under registered access, a question
    to the authority at each end, as the model puts it), twice that: a pair is lost when it
    cannot connect, not when it is far."""
    ends = users(g)
    slowest = max(2 * one_way_ms(g, a, b) + first_connection_overhead_ms(g, a, b)
                  for a in ends for b in ends if a != b)
    return max(s["timeout"], 2 * slowest / 1000)


def warm_up(matrix: Matrix, arch: str) -> list[int]:
    """Rounds until every pair connects, before any failure: the pairs lost in each (kept in
    the results). The first burst of every pair's first connection meets cold caches and,
    under registered access, hundreds of questions at once (zoo:Aarnet lost 15 to 364 of its
    600 pairs in the first round and none in the next): a start-up effect, not a failure's."""
    lost = []
    for _ in range(WARMUP_ROUNDS):
        lost.append(len(matrix.round()[0]))
        if not lost[-1]:
            return lost
    raise RuntimeError(f"{arch}: pairs unreachable before any failure, in each of "
                       f"{WARMUP_ROUNDS} rounds ({', '.join(map(str, lost))})")


def inject(net, arch_obj, failure: dict) -> None:
    kind, target = failure["kind"], failure["target"]
    if kind == "router":
        net.crash(target)
    elif kind == "link":
        net.link_down(*target.split("-"))
    elif kind == architectures.design(arch_obj.name).central:
        arch_obj.kill_central()
    else:
        for a, b in partition_cut(net.graph, target):
            net.link_down(a, b)


def repair(net, arch_obj, failure: dict) -> None:
    kind, target = failure["kind"], failure["target"]
    if kind == "router":
        net.restore(target)
    elif kind == "link":
        net.link_up(*target.split("-"))
    elif kind == architectures.design(arch_obj.name).central:
        arch_obj.restart_central()
    else:
        for a, b in partition_cut(net.graph, target):
            net.link_up(a, b)


def unhealed(net, arch_obj, failure: dict, lost: set) -> None:
    """Stop the run: every later failure would be measured on a network still broken by this
    one. Says which pairs stayed cut off, what the architecture's daemons say about their
    ends, and the line state of the end nodes in most of them."""
    pairs = ", ".join(f"{a}->{b}" for a, b in sorted(lost)[:8])
    # the end nodes in most of the lost pairs: where the fault is, if one node is cut off
    count = collections.Counter(n for pair in lost for n in pair)
    cut_off = [n for n, k in count.most_common(2) if 2 * k >= len(lost)]
    health = arch_obj.diagnose(net, [n for n, _ in count.most_common()])
    lines = "\n".join(net.line_state(n) for n in cut_off)
    raise RuntimeError(f"{REPAIR_S:g} s after repairing {failure['kind']} {failure['target']}"
                       f", {len(lost)} pairs still cannot start a connection ({pairs})" +
                       "".join(f"\n{part}" for part in (health, lines) if part))


def measure(net, arch_obj, matrix: Matrix, arch: str, failure: dict, s: dict, log) -> dict:
    matrix.round()  # the "existing" flows: used (and, if need be, admitted) right before
    t0 = time.monotonic()
    inject(net, arch_obj, failure)
    timeline: list[dict] = []
    fixed = s["authority_rounds"] if failure["kind"] == "authority" else None
    at = fixed[0] if fixed else ROUND_SPACING_S
    while True:
        time.sleep(max(0.0, t0 + at - time.monotonic()))
        t = time.monotonic() - t0
        lost_new, lost_existing = matrix.round()
        timeline.append({"t": t, "lost_new": lost_new, "lost_existing": lost_existing})
        log.row(arch=arch, kind=failure["kind"], target=failure["target"], t=round(t, 3),
                lost_new=len(lost_new), lost_existing=len(lost_existing),
                pairs_total=len(matrix.nodes) * (len(matrix.nodes) - 1))
        if fixed:
            if len(timeline) == len(fixed):
                break
            at = fixed[len(timeline)]
            continue
        steady = len(timeline) >= 2 and (timeline[-1]["lost_new"], timeline[-1][
            "lost_existing"]) == (timeline[-2]["lost_new"], timeline[-2]["lost_existing"])
        # flows that can no longer be admitted live until their grants run out: not final yet
        outliving = admits(arch) and not lost_new <= lost_existing and \
            t < s["ttl_ms"] / 1000 + 1.0
        if (steady and t >= s["settle_s"] and not outliving) or t >= s["window_s"]:
            break
        at = max(time.monotonic() - t0, at + ROUND_SPACING_S)
    final = timeline[-1]["lost_new"]
    settled = len(timeline) - 1  # the first round from which on nothing changed any more
    while settled and timeline[settled - 1]["lost_new"] == final:
        settled -= 1
    recovery = timeline[settled]["t"]
    t1 = time.monotonic()
    repair(net, arch_obj, failure)
    if not wait_until(lambda: not matrix.round()[0], REPAIR_S, 0):
        unhealed(net, arch_obj, failure, matrix.round()[0])
    repaired = time.monotonic() - t1
    record = {"arch": arch, "failure": failure,
              "pairs_total": len(matrix.nodes) * (len(matrix.nodes) - 1),
              "pairs_lost_new": sorted(map(list, final)),
              "pairs_lost_existing": sorted(map(list, timeline[-1]["lost_existing"])),
              "recovery_s": recovery,
              "timeline": [{"t": r["t"], "lost_new": len(r["lost_new"]),
                            "lost_existing": len(r["lost_existing"])} for r in timeline],
              "repaired_s": repaired}
    return record | predicted(net.graph, arch, failure, measured=record)


def run(config: BlastRadiusConfig, out: Path | None = None) -> Path:
    import topologies
    from experiments.paired import archs, bring_up
    from experiments.progress import Progress

    s = config.settings()
    graph = topologies.build(config.topo)
    writer = RunWriter(NAME, config, out)
    writer.topology(graph)
    log = writer.csv("timeline", HEADER)
    records: list[dict] = []
    plan = {arch: failures(graph, s, config.seed, arch) for arch in archs(config.arch)}
    summary = {"archs": list(plan), "records": records}
    with writer.session(lambda: summary), \
            Progress(sum(map(len, plan.values())), NAME) as progress:
        for arch, failure_list in plan.items():
            options = {"ttl_ms": s["ttl_ms"]} if admits(arch) else {}
            with bring_up(graph, arch, config.seed, config.backend, writer,
                          servers=config.spread(), **options) as (
                    net, _, arch_obj), Matrix(net, users(graph), timeout(graph, s)) as matrix:
                summary.setdefault("warmup", {})[arch] = warm_up(matrix, arch)
                for failure in failure_list:
                    progress.step(f"{arch}: {failure['kind']} {failure['target']}")
                    records.append(measure(net, arch_obj, matrix, arch, failure, s, log))
                    writer.results(summary)
    return writer.dir


EXPERIMENT = Experiment(
    name=NAME,
    question=(
        "What breaks, for whom and for how long, when one router, link or the authority "
        "fails"),
    config=BlastRadiusConfig, run=run, plot=report.plot)
