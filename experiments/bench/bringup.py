"""``splinterlab bench``: benchmarks that print figures (not pass/fail tests)."""

from __future__ import annotations

import functools
import statistics
import time

import networkx as nx

import topologies
from experiments.paired import ALL, bring_up
from experiments.probing import probes
from protocols.architectures import BASELINE
from protocols.ospf import OspfSettings
from topologies.graph import end_nodes, is_router
from topologies.routes import path_weight

RECOVERY_CASES = [
    ("cable pulled (carrier loss)", OspfSettings(), "carrier"),
    ("silent, hello 1 s / dead 3 s", OspfSettings(), "silent"),
    ("silent, fast hellos (4/s, dead 1 s)", OspfSettings(hello_multiplier=4), "silent"),
    ("silent, BFD 100 ms x 3", OspfSettings(bfd=True), "silent"),
]


def bringup(spec: str, arch: str, repeat: int, writer=None) -> list[dict]:
    """Time bring-up (network, services, architecture) and teardown of a topology."""
    graph = topologies.build(spec)
    rows = []
    for i in range(repeat):
        t0 = time.monotonic()
        with bring_up(graph, arch, writer=writer if i == 0 else None) as (net, _, _):
            ready = time.monotonic() - t0
        rows.append({"run": i + 1, "network_s": net.timings["bringup_s"],
                     "ready_s": ready, "teardown_s": net.timings["teardown_s"]})
        print(f"run {i + 1}: network up {rows[-1]['network_s']:.2f} s, {arch} ready "
              f"{ready:.2f} s, teardown {rows[-1]['teardown_s']:.2f} s")
    return rows


def redundant_link(g: nx.Graph) -> tuple[str, str, str, str]:
    """(src, dst, a, b): a host pair whose lowest-cost path uses router link a-b, and which
    stays connected without it."""
    for src in end_nodes(g, "host"):
        for dst in end_nodes(g):
            path = nx.shortest_path(g, src, dst, weight=path_weight(g))
            for a, b in zip(path, path[1:], strict=False):
                if is_router(g, a) and is_router(g, b):
                    without = nx.restricted_view(g, [], [(a, b)])
                    if nx.has_path(without, src, dst):
                        return src, dst, a, b
    raise ValueError("this topology has no redundant router link")


def recovery(spec: str, repeat: int, writer=None) -> list[dict]:
    graph = topologies.build(spec)
    src, dst, a, b = redundant_link(graph)
    print(f"cutting {a}-{b} while {src} pings {dst} every 10 ms ({spec})")
    rows = []
    for label, settings, mode in RECOVERY_CASES:
        with bring_up(graph, BASELINE, writer=writer, ospf=settings) as (
                net, _, architecture):
            routing = architecture.routing
            times = []
            for _ in range(repeat):
                cut = functools.partial(net.link_down, a, b, mode)
                seconds, _ = probes.outage(net, src, dst, cut, window=settings.dead + 1.5)
                times.append(seconds)
                net.link_up(a, b)
                routing.wait_converged(net)
                time.sleep(settings.dead + 1)  # both ends see each other again
            healed = [t for t in times if t is not None]
            rows.append({"case": label, "runs": repeat, "recovered": len(healed),
                         "median_s": statistics.median(healed) if healed else None,
                         "max_s": max(healed) if healed else None})
            print(f"{label:<38} median {rows[-1]['median_s']:.3f} s, max "
                  f"{rows[-1]['max_s']:.3f} s, healed {len(healed)}/{repeat}")
    return rows


def run(args) -> int:
    """One benchmark, recorded (``experiments.bench.record``) under ``args.out``."""
    from experiments.bench.record import BenchConfig, recorded

    graph = topologies.build(args.topo) if args.what in ("bringup", "recovery", "access", "lab",
                                                         "cluster") else None
    config = BenchConfig(topo=args.topo if graph is not None else "", name=args.name or "",
                         arch=args.arch if args.what in ("bringup", "lab") else "",
                         params={"repeat": args.repeat, "graphs": args.graphs,
                                 "servers": args.servers})
    with recorded(args.what, config, args.out, graph) as (writer, figures):
        figures.update(_measure(args, writer))
    return 0


def _measure(args, writer) -> dict:
    if args.what == "bringup":
        from protocols import architectures

        out = {}
        for arch in architectures.names() if args.arch == ALL else (args.arch,):
            rows = bringup(args.topo, arch, args.repeat, writer)
            out[arch] = {"runs": rows}
            for key in ("network_s", "ready_s", "teardown_s"):
                values = [r[key] for r in rows]
                out[arch][key] = statistics.median(values)
                print(f"{arch:>15} {key[:-2]:>9}: median {statistics.median(values):.2f} s "
                      f"(min {min(values):.2f}, max {max(values):.2f}) over {len(values)} runs")
        return out
    if args.what == "recovery":
        return {"cases": recovery(args.topo, args.repeat, writer)}
    if args.what == "admission":
        from experiments.bench import admission_load

        return admission_load.run()
    if args.what == "lab":
        from experiments.bench import labpage
        from protocols import architectures

        return labpage.run(args.topo, architectures.compared() if args.arch == ALL
                           else (args.arch,), writer.dir)
    if args.what == "scale":
        from experiments.bench import scale

        return scale.run(args.graphs or None)
    if args.what == "cluster":
        from experiments.bench import cluster

        return cluster.run(args.topo, args.servers)
    from experiments.bench import access as access_bench

    return access_bench.run(args.topo, writer=writer)
