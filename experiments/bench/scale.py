"""``splinterlab bench scale``: how large a graph this machine emulates honestly, under each
design, and what runs out first.

Zoo graphs of growing size (``LADDER``) are brought up one at a time, permissionless and
registered. For each, with the network at rest after bring-up:

* time: network up (namespaces, links, delay path), routing converged, architecture ready;
* processes of the run and their memory (proportional set size, by kind of process, so a
  per-router cost shows as such), and what the machine lost in available memory (kernel
  objects included: namespaces, veths, conntrack, sets);
* at rest means once routing is quiet (``Ospf.wait_quiet``: routes converge before the
  routers stop flooding new instances of their LSAs);
* CPU at rest over ``REST_S``: the whole machine's busy share (less what it was before the
  run started) and the run's own processes';
* honesty of the delay path at rest: release lateness p99 of the packets it held, in each of
  ``WINDOWS`` windows; the median of them judges (one burst does not sink a graph, most
  windows do), the p99 over the whole rest is kept beside it;
* a sample of first connections: every pair among ``SAMPLE`` hosts spread over the graph
  connects once (under registered access, each asked about at both ends).

A graph *runs* when it comes up, every sampled pair connects, the delay path's p99 lateness at
rest stays under ``LATE_P99_US`` and the machine keeps ``CPU_HEADROOM`` of its cores and
``MEMORY_HEADROOM`` of its memory free. A design's ceiling is below its first graph that does
not run, and the row says which of these gave out (the ladder goes on: a larger graph of
another shape may still run); the largest graph up to which everything ran under every design
is what ``topologies.zoo.CEILING`` holds.
"""

from __future__ import annotations

import collections
import os
import time
from itertools import pairwise
from pathlib import Path

import topologies
from experiments.measures import cpu_seconds
from experiments.paired import bring_up
from protocols import architectures
from protocols.ospf import QUIET_TIMEOUT_S
from topologies import zoo
from topologies.cleanup import processes_of
from topologies.delaypath import summarize
from topologies.graph import end_nodes, is_router

# zoo graphs to SNDlib's brain, the catalogue's largest (continents of the world backbone,
# ``zoo:world/...``, go past it when named)
LADDER = ["Abilene", "Aarnet", "Bics", "Roedunet", "Surfnet", "Forthnet", "Ulaknet",
          "VtlWavenet2011", "TataNld", "sndlib/brain"]
REST_S = 10.0
WINDOWS = 5
BASELINE_S = 1.0  # the machine's own busyness, read before the run starts
SAMPLE = 12
LATE_P99_US = 1024
CPU_HEADROOM = 0.25     # a quarter of the cores idle at rest: experiments add their own load
MEMORY_HEADROOM = 0.10
KINDS = ("gateway", "box", "authority", "services", "prober", "zebra", "ospfd", "staticd", "mgmtd",
         "delayd", "bash", "dnsmasq", "python")


def _meminfo() -> dict[str, int]:
    """/proc/meminfo in kB."""
    out = {}
    for line in Path("/proc/meminfo").read_text().splitlines():
        key, value = line.split(":", 1)
        out[key] = int(value.split()[0])
    return out


def _busy_ticks() -> tuple[int, int]:
    """(busy, total) jiffies of the whole machine."""
    fields = [int(v) for v in Path("/proc/stat").read_text().split("\n", 1)[0].split()[1:]]
    idle = fields[3] + fields[4]
    return sum(fields) - idle, sum(fields)


def _read(path: str) -> str:
    try:
        return Path(path).read_text(errors="replace")
    except OSError:
        return ""


def _kind(pid: int) -> str:
    cmdline = _read(f"/proc/{pid}/cmdline").replace("\0", " ")
    comm = _read(f"/proc/{pid}/comm").strip()
    return next((k for k in KINDS if k in cmdline or k in comm), comm or "?")


def _pss_kb(pid: int) -> int:
    for line in _read(f"/proc/{pid}/smaps_rollup").splitlines():
        if line.startswith("Pss:"):
            return int(line.split()[1])
    return 0


def processes(run_id: str) -> dict[int, str]:
    return {pid: _kind(pid) for pid in processes_of(run_id)}


def memory_by_kind(procs: dict[int, str]) -> dict[str, dict]:
    """Kind -> count and proportional set size (MB) of the run's processes."""
    out: dict[str, dict] = collections.defaultdict(lambda: {"count": 0, "pss_mb": 0.0})
    for pid, kind in procs.items():
        out[kind]["count"] += 1
        out[kind]["pss_mb"] += _pss_kb(pid) / 1024
    return {k: {"count": v["count"], "pss_mb": round(v["pss_mb"], 1)}
            for k, v in sorted(out.items(), key=lambda kv: -kv[1]["pss_mb"])}


def _lateness_diff(before: dict, after: dict) -> dict:
    """The delay path's statistics for what it released between two snapshots."""
    key = "release_lateness_log2_us"
    a, b = before.get(key, []), after.get(key, [])
    hist = [y - (a[i] if i < len(a) else 0) for i, y in enumerate(b)]
    return {key: hist, "early_releases": after.get("early_releases", 0)
            - before.get("early_releases", 0)}


def median_late(p99s: list[str | None]) -> str | None:
    """The median of windows' "< N us" lateness (the upper one of an even count); windows
    that released nothing say nothing."""
    said = sorted((p for p in p99s if p), key=_late_us)
    return said[len(said) // 2] if said else None


def at_rest(net) -> dict:
    """CPU and delay-path punctuality over ``REST_S`` with nothing but the network running."""
    run_id = net.run.run_id
    procs = list(processes_of(run_id))
    cpu0 = {p: cpu_seconds(p) for p in procs}
    busy0, total0 = _busy_ticks()
    snapshots = [net.delay.stats() if net.delay else {}]
    for _ in range(WINDOWS):
        time.sleep(REST_S / WINDOWS)
        if net.delay:
            snapshots.append(net.delay.stats())
    busy1, total1 = _busy_ticks()
    used = sum(cpu_seconds(p) - s for p, s in cpu0.items())
    out = {"machine_busy": round((busy1 - busy0) / max(1, total1 - total0), 3),
           "run_cpu_cores": round(used / REST_S, 3)}
    if net.delay:
        def p99(a: dict, b: dict) -> str | None:
            return summarize(_lateness_diff(a, b), net.delay.advance_us)["release_lateness_p99"]
        out["late_p99_windows"] = [p99(a, b) for a, b in pairwise(snapshots)]
        out["late_p99"] = median_late(out["late_p99_windows"])
        out["late_p99_whole"] = p99(snapshots[0], snapshots[-1])
    return out


def sample_hosts(g, k: int = SAMPLE) -> list[str]:
    """``k`` hosts spread over the graph (every n-th in natural order)."""
    hosts = list(end_nodes(g, "host"))
    step = max(1, len(hosts) // k)
    return hosts[::step][:k]


def first_connections(net, hosts: list[str]) -> dict:
    from experiments.probing.probes import Matrix

    t0 = time.monotonic()
    with Matrix(net, hosts, timeout=2.0) as matrix:
        lost, _ = matrix.round()
    pairs = len(hosts) * (len(hosts) - 1)
    return {"pairs": pairs, "connected": pairs - len(lost), "round_s":
            round(time.monotonic() - t0, 2)}


def _late_us(text: str | None) -> int:
    return int(text.split()[1]) if text else 0


def verdict(row: dict) -> str:
    """'' if the graph runs, else what gave out first."""
    if row.get("error"):
        return row["error"]
    if row.get("quiet_s", 0) is None:
        return (f"routing: OSPF still re-originating LSAs {QUIET_TIMEOUT_S:g} s after the "
                "network was ready")
    if row["reach"]["connected"] < row["reach"]["pairs"]:
        return (f"first connections: {row['reach']['pairs'] - row['reach']['connected']} of "
                f"{row['reach']['pairs']} sampled pairs failed")
    # what the run adds: a machine busy with something else before it started is not the
    # emulator giving out (two busy loops under make test made every rung "give out")
    added = row["rest"]["machine_busy"] - row["rest"].get("busy_before", 0.0)
    if added > 1 - CPU_HEADROOM:
        return f"CPU: {added:.0%} of the machine busy at rest because of the run"
    if _late_us(row["rest"].get("late_p99")) > LATE_P99_US:
        return (f"CPU: delay path p99 lateness {row['rest']['late_p99']} at rest (median of "
                f"{WINDOWS} windows)")
    if row["mem_available_after_mb"] < MEMORY_HEADROOM * row["mem_total_mb"]:
        return f"memory: {row['mem_available_after_mb']:.0f} MB left"
    return ""


def measure(name: str, arch: str) -> dict:
    graph = topologies.build(f"zoo:{name},ceiling=false")
    row: dict = {"graph": name, "arch": arch, "pops": zoo.load_raw(name).number_of_nodes(),
                 "routers": sum(1 for n in graph if is_router(graph, n)),
                 "nodes": graph.number_of_nodes()}
    mem0 = _meminfo()
    row["mem_total_mb"] = round(mem0["MemTotal"] / 1024)
    busy0, total0 = _busy_ticks()
    time.sleep(BASELINE_S)
    busy1, total1 = _busy_ticks()
    before = round((busy1 - busy0) / max(1, total1 - total0), 3)
    t0 = time.monotonic()
    try:
        with bring_up(graph, arch) as (net, _, architecture):
            row["ready_s"] = round(time.monotonic() - t0, 1)
            row["network_s"] = round(net.timings["bringup_s"], 1)
            row["convergence_s"] = round(architecture.routing.convergence_s or 0, 1)
            row["quiet_s"] = architecture.routing.wait_quiet(net)
            procs = processes(net.run.run_id)
            row["processes"] = len(procs)
            row["memory"] = memory_by_kind(procs)
            row["pss_mb"] = round(sum(v["pss_mb"] for v in row["memory"].values()))
            mem1 = _meminfo()
            row["mem_used_mb"] = round((mem0["MemAvailable"] - mem1["MemAvailable"]) / 1024)
            row["mem_available_after_mb"] = round(mem1["MemAvailable"] / 1024)
            row["rest"] = {**at_rest(net), "busy_before": before}
            row["reach"] = first_connections(net, sample_hosts(graph))
    except Exception as e:  # noqa: BLE001 - a graph that does not come up is the result
        row["error"] = f"bring-up: {str(e).splitlines()[0][:160] if str(e) else type(e).__name__}"
        row["ready_s"] = round(time.monotonic() - t0, 1)
    row["gave_out"] = verdict(row)
    row["runs"] = not row["gave_out"]
    return row


def line(row: dict) -> str:
    if row.get("error"):
        return (f"{row['graph']:<15} {row['arch']:<14} {row['routers']:>4} routers  "
                f"failed after {row['ready_s']} s: {row['error']}")
    top = ", ".join(f"{k} {v['count']}x{v['pss_mb'] / v['count']:.0f}"
                    for k, v in list(row["memory"].items())[:3])
    return (f"{row['graph']:<15} {row['arch']:<14} {row['routers']:>4} routers "
            f"{row['nodes']:>4} nodes  ready {row['ready_s']:>6.1f} s (converged "
            f"{row['convergence_s']:.1f}, quiet {row['quiet_s']} s later)  "
            f"{row['processes']:>4} procs  {row['pss_mb']:>5} MB "
            f"PSS, machine -{row['mem_used_mb']} MB  at rest: machine "
            f"{row['rest']['machine_busy']:.0%}, run {row['rest']['run_cpu_cores']:.2f} cores, "
            f"delay p99 {row['rest'].get('late_p99')} (whole "
            f"{row['rest'].get('late_p99_whole')})  pairs {row['reach']['connected']}/"
            f"{row['reach']['pairs']}  {'runs' if row['runs'] else 'OUT: ' + row['gave_out']}"
            f"\n{'':<30}largest: {top} (count x MB)")


def ceiling_of(rows: list[dict]) -> dict:
    """The largest graph below which everything ran (rows in ladder order); what stopped the
    ladder there, and any larger graph that ran all the same (size is not all: a hub of 54
    neighbours may give out before a longer chain of small routers does)."""
    first_out = next((k for k, r in enumerate(rows) if not r["runs"]), len(rows))
    ran = rows[:first_out]
    stop = rows[first_out] if first_out < len(rows) else None
    return {"largest": ran[-1]["graph"] if ran else None,
            "routers": ran[-1]["routers"] if ran else 0,
            "pops": ran[-1]["pops"] if ran else 0,
            "stopped_by": f"{stop['graph']}: {stop['gave_out']}" if stop else "the ladder's end",
            "beyond": [r["graph"] for r in rows[first_out:] if r["runs"]]}


def run(ladder: list[str] | None = None) -> dict:
    ladder = ladder or LADDER
    rows = []
    for arch in architectures.compared():
        for name in ladder:
            row = measure(name, arch)
            rows.append(row)
            print(line(row), flush=True)
    ceiling = {arch: ceiling_of([r for r in rows if r["arch"] == arch])
               for arch in architectures.compared()}
    for arch, c in ceiling.items():
        print(f"{arch}: every graph up to {c['largest']} ({c['pops']} PoPs, {c['routers']} "
              f"routers) runs here; stopped by {c['stopped_by']}" +
              (f"; larger ones that still ran: {', '.join(c['beyond'])}" if c["beyond"] else ""))
    return {"machine": {"cores": os.cpu_count(), "memory_mb": rows[0]["mem_total_mb"],
                        "kernel": os.uname().release},
            "thresholds": {"cpu_headroom": CPU_HEADROOM, "late_p99_us": LATE_P99_US,
                           "memory_headroom": MEMORY_HEADROOM, "sample_hosts": SAMPLE,
                           "rest_s": REST_S, "rest_windows": WINDOWS},
            "rows": rows, "ceiling": ceiling}
