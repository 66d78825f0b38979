"""``splinterlab bench cluster``: the ceiling past one machine, measured where it can be and
planned where it cannot.

* **What a server carries**: each design's cost per router, a least-squares line through the
  rungs of the newest ``bench scale`` ladder that ran (memory the machine lost, cores the
  machine was busier at rest than before the run: what the ladder's verdict judges), and how
  many routers a server like the one that climbed it holds before that verdict would say it
  gave out. Past the largest graph the
  ladder ran that is an extrapolation; both are kept, with what stopped the ladder.
* **What a tunnel costs**: one graph brought up on one machine, then across two and three
  servers (the namespace test bed unless ``--servers`` names real ones): seconds until ready,
  links between servers, each tunnel's own latency as measured and taken off its link's delay,
  and a sample of first connections through it all.
* **The plan**: the world backbone as it would be emulated (a waypoint at sea between two
  others is no router: its two cable segments are one link of their summed length), the
  servers it needs under each design and its placement on them: links between servers, the
  most tunnels one server ends, the countries whose cities land on more than one server.
"""

from __future__ import annotations

import math
import statistics
import time

import networkx as nx
import numpy as np

import topologies
from experiments.bench.scale import first_connections, sample_hosts
from experiments.paired import bring_up
from experiments.results import ResultsError, newest
from protocols import architectures
from topologies import world
from topologies.graph import is_router
from topologies.placement import Server, crossing, parse_servers, place

LADDER = "bench-scale/*"
SPREADS = (2, 3)  # servers the measured graph is spread over, beside one machine
SEED = 1


def per_router(rows: list[dict]) -> dict:
    """Slope and intercept, through the rungs that ran, of what the ladder judges a rung by:
    the memory the machine lost (MB) and the cores the machine was busier at rest than before
    the run."""
    ran = [r for r in rows if r["runs"]]
    if _sizes_run(rows) < 2:
        raise ResultsError("the newest bench scale ran fewer than two sizes of graph under "
                           f"{rows[0]['arch']}: no line to draw through them")
    routers = np.array([r["routers"] for r in ran], dtype=float)

    def line(values: list[float], what: str) -> dict:
        slope, intercept = np.polyfit(routers, np.array(values, dtype=float), 1)
        if slope <= 0:
            raise ResultsError(f"on the newest bench scale, {what} under {rows[0]['arch']} "
                               "does not grow with the routers: no capacity follows from it")
        return {"per_router": float(slope), "fixed": float(intercept)}

    return {"memory_mb": line([r["mem_used_mb"] for r in ran], "memory"),
            "cores_at_rest": line([(r["rest"]["machine_busy"] - r["rest"].get("busy_before", 0))
                                   * r["cores"] for r in ran], "CPU at rest"),
            "memory_free_before_mb": min(r["mem_available_after_mb"] + r["mem_used_mb"]
                                         for r in ran)}


def capacity(fit: dict, machine: dict, thresholds: dict, gave_out_at: int | None) -> dict:
    """Routers one server like ``machine`` holds before the ladder's own verdict would say a
    headroom is used up, and which; never more than a rung that did not run."""
    memory = fit["memory_free_before_mb"] - thresholds["memory_headroom"] * machine["memory_mb"]
    cores = (1 - thresholds["cpu_headroom"]) * machine["cores"]
    bounds = {"memory": (memory - fit["memory_mb"]["fixed"]) / fit["memory_mb"]["per_router"],
              "CPU": (cores - fit["cores_at_rest"]["fixed"]) / fit["cores_at_rest"]["per_router"]}
    if gave_out_at is not None:
        bounds["a rung that did not run"] = gave_out_at - 1
    by = min(bounds, key=bounds.get)
    return {"routers": int(bounds[by]), "by": by,
            "bounds": {k: int(v) for k, v in bounds.items()}}


def _sizes_run(rows: list[dict]) -> int:
    """How many sizes of graph ran among ``rows``: a line needs two."""
    return len({r["routers"] for r in rows if r["runs"]})


def _usable(figures: dict) -> bool:
    """A ladder every design of which ran two sizes of graph (a climb of one graph is not)."""
    rows = figures.get("rows", [])
    return bool(rows) and all(_sizes_run([r for r in rows if r["arch"] == a]) >= 2
                              for a in {r["arch"] for r in rows})


def carried() -> dict:
    """Per design, what a server carries, from the newest ladder."""
    figures, path = newest(LADDER, "rows", usable=_usable)
    machine = figures["machine"]
    out = {"source": str(path), "machine": machine, "thresholds": figures["thresholds"],
           "designs": {}}
    for arch in dict.fromkeys(r["arch"] for r in figures["rows"]):
        rows = [{**r, "cores": machine["cores"]} for r in figures["rows"] if r["arch"] == arch]
        fit = per_router(rows)
        out_at = next((r["routers"] for r in rows if not r["runs"]), None)
        ceiling = figures["ceiling"][arch]
        out["designs"][arch] = {**fit, "capacity": capacity(fit, machine, figures["thresholds"],
                                                            out_at),
                                "largest_ran": ceiling["routers"],
                                "stopped_by": ceiling["stopped_by"]}
    return out


def emulated_world() -> nx.Graph:
    """The world as it would be emulated, roles given (every city a user's access router),
    nodes named as ``place`` sorts them."""
    g = world.routers()
    for _, attrs in g.nodes(data=True):
        attrs["role"] = "access" if attrs["type"] == world.CITY else "core"
    return nx.relabel_nodes(g, {n: f"w{n}" for n in g})


def placed(g: nx.Graph, count: int) -> dict:
    """The world placed on ``count`` equal servers: what crosses between them."""
    t0 = time.monotonic()
    where = place(g, [Server(f"s{k}", None) for k in range(1, count + 1)], SEED)
    links = crossing(g, where)
    ends: dict[str, int] = {}
    for a, b in links:
        for n in (a, b):
            ends[where[n]] = ends.get(where[n], 0) + 1
    countries: dict[str, set] = {}
    for n, attrs in g.nodes(data=True):
        if attrs.get("country") and attrs["role"] == "access":
            countries.setdefault(attrs["country"], set()).add(where[n])
    return {"servers": count, "links_between": len(links),
            "share_between": round(len(links) / g.number_of_edges(), 4),
            "most_tunnels_on_one": max(ends.values(), default=0),
            "countries_split": sum(1 for s in countries.values() if len(s) > 1),
            "placing_s": round(time.monotonic() - t0, 1)}


def plan(carries: dict) -> dict:
    g = emulated_world()
    routers = sum(1 for n in g if is_router(g, n))
    countries = {a["country"] for _, a in g.nodes(data=True) if a["role"] == "access"}
    need = {}
    for arch, d in carries["designs"].items():
        need[arch] = {"at_largest_ran": math.ceil(routers / d["largest_ran"]),
                      "at_capacity": math.ceil(routers / d["capacity"]["routers"])}
    counts = sorted({n for v in need.values() for n in v.values()})
    out = {"routers": routers, "links": g.number_of_edges(), "countries": len(countries),
           "servers_needed": need, "placements": []}
    print(f"world as emulated: {routers} routers, {g.number_of_edges()} links, "
          f"cities in {len(countries)} countries", flush=True)
    for count in counts:
        out["placements"].append(row := placed(g, count))
        print(f"  on {count:>2} servers: {row['links_between']} links between them "
              f"({row['share_between']:.1%}), at most {row['most_tunnels_on_one']} tunnels on "
              f"one, {row['countries_split']} countries split ({row['placing_s']} s to place)",
              flush=True)
    return out


def spread_once(graph, arch: str, servers: list[Server] | None) -> dict:
    t0 = time.monotonic()
    with bring_up(graph, arch, servers=servers) as (net, _, _):
        row = {"arch": arch, "servers": len(servers) if servers else 1,
               "ready_s": round(time.monotonic() - t0, 1),
               "network_s": round(net.timings["bringup_s"], 1)}
        if servers:
            s = net.spread_summary()
            taken = list(s["tunnel_ms_taken_off"].values())
            row.update(links_between=s["links_between"], nodes=s["nodes"],
                       tunnel_mtu=sorted(set(s["tunnel_mtu"].values())),
                       tunnel_ms={"least": min(taken), "most": max(taken),
                                  "median": round(statistics.median(taken), 4)}
                       if taken else None)
        row["reach"] = first_connections(net, sample_hosts(graph))
    return row


def tunnels(topo: str, servers: list[Server]) -> dict:
    """The graph on one machine and across the first 2, 3, ... of ``servers``."""
    graph = topologies.build(topo)
    rows = []
    for arch in architectures.compared():
        for count in (1, *(k for k in SPREADS if k <= len(servers))):
            rows.append(row := spread_once(graph, arch, servers[:count] if count > 1 else None))
            t = row.get("tunnel_ms") or {}
            extra = (f", {row['links_between']} links between servers, tunnels' own "
                     f"{t.get('least')}-{t.get('most')} ms taken off" if count > 1 else "")
            print(f"{topo} {arch:<14} on {count} server(s): ready {row['ready_s']} s (network "
                  f"{row['network_s']} s){extra}, pairs {row['reach']['connected']}/"
                  f"{row['reach']['pairs']}", flush=True)
    return {"topo": topo, "routers": sum(1 for n in graph if is_router(graph, n)),
            "servers": [s.name for s in servers], "rows": rows}


def run(topo: str, servers: str | None) -> dict:
    carries = carried()
    for arch, d in carries["designs"].items():
        c = d["capacity"]
        print(f"{arch:<14} per router: {d['memory_mb']['per_router']:.1f} MB, "
              f"{d['cores_at_rest']['per_router'] * 1000:.2f} millicores at rest; ran up to "
              f"{d['largest_ran']} routers; a server like this one holds about {c['routers']} "
              f"({c['by']} gives out first)", flush=True)
    out = {"carried": carries, "world": plan(carries)}
    if servers:
        out["tunnels"] = tunnels(topo, parse_servers(servers))
    else:
        from topologies import testbed

        with testbed.bed(max(SPREADS)) as bed:
            out["tunnels"] = {**tunnels(topo, [Server(s.name, None) for s in bed]),
                              "test_bed": True}
    return out
