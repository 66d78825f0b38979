"""``splinterlab bench``: benchmarks that print figures (not pass/fail tests)."""

from __future__ import annotations

import statistics
import time

import protocols
import topologies
from topologies.network import EmulatedNetwork


def bringup(spec: str, arch: str, repeat: int) -> list[dict]:
    """Time bring-up (network, then architecture) and teardown of a topology."""
    graph = topologies.build(spec)
    rows = []
    for i in range(repeat):
        architecture = protocols.get(arch)
        net = EmulatedNetwork(graph, static_routes=architecture.static_routes)
        t0 = time.monotonic()
        with net:
            architecture.start(net)
            ready = time.monotonic() - t0
        rows.append({"run": i + 1, "network_s": net.timings["bringup_s"],
                     "ready_s": ready, "teardown_s": net.timings["teardown_s"]})
        print(f"run {i + 1}: network up {rows[-1]['network_s']:.2f} s, {arch} ready "
              f"{ready:.2f} s, teardown {rows[-1]['teardown_s']:.2f} s")
    return rows


def run(args) -> int:
    if args.what == "bringup":
        rows = bringup(args.topo, args.arch, args.repeat)
        for key in ("network_s", "ready_s", "teardown_s"):
            values = [r[key] for r in rows]
            print(f"{key[:-2]:>9}: median {statistics.median(values):.2f} s "
                  f"(min {min(values):.2f}, max {max(values):.2f}) over {len(values)} runs")
    return 0
