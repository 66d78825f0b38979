"""Latency: what admission costs a ping, a new TCP connection and a small web fetch.

Both architectures run the same workload on the same graph with the same seed:

* baseline: every host pings the national web server, a foreign one (both chosen by
  ``experiments.subjects``) and another host (the first echo of each pair is "cold": under
  registered access it waits for admission, at both ends' gateways for another host); every
  host fetches a site of each server a few times over new TCP connections (the first
  connection to a destination is cold too);
* permission (``permission``): a few hosts, each as a newcomer at an address nobody
  registered, and each sending a protocol nobody approved to another host;
* TTL sweep: hosts use one flow each (an echo to the national web server, on one socket) at
  random (exponential) intervals under several admission TTLs; the longer the TTL, the more
  often the flow finds its grant still alive (a new TCP connection is a new flow: it always
  waits, whatever the TTL);
* load sweep: a synthetic gateway next to the authority sends it requests at several rates
  while hosts measure cold connections;
* placement: the authority at its usual site ("near") and behind an extra delay ("far");
  per host, the first-connection overhead against the host gateway's round trip to it.

Every figure is measured from hosts with curl and ping (plus, for the load, the synthetic
gateway's own request timing). Permissionless runs the same host workload as a reference.
"""

from __future__ import annotations

import json
import random
import statistics
import subprocess
import sys
import time
from concurrent.futures import ThreadPoolExecutor
from ipaddress import IPv4Address
from pathlib import Path

from experiments import subjects
from experiments.comparisons import latency_report as report
from experiments.comparisons import permission
from experiments.config import ExperimentConfig
from experiments.interface import Experiment
from experiments.model import latency as latency_model
from experiments.model.latency import first_connection_overhead_ms
from experiments.results import Results, RunWriter
from protocols.architectures import BASELINE, admits
from topologies.graph import attachment, authority_site, hosts, site_owner
from topologies.graph import load as load_graph

NAME = "latency"
PROFILES = {
    "quick": {"pings": 10, "fetches": 4, "repetitions": 1, "ttl_ms": [500, 5000, 30000],
              "ttl_seconds": 8.0, "loads": [0, 4000, 8000, 16000], "load_seconds": 3.0,
              "far_ms": 15.0, "cold_rounds": 3, "newcomers": 3},
    "full": {"pings": 30, "fetches": 8, "repetitions": 3, "ttl_ms": [250, 1000, 5000, 30000],
             "ttl_seconds": 20.0, "loads": [0, 2000, 6000, 11000, 20000, 40000, 60000],
             "load_seconds": 6.0, "far_ms": 15.0, "cold_rounds": 6, "newcomers": 6},
}
COLD_TTL_MS = 200
HEADER = ["arch", "repetition", "phase", "param", "kind", "src", "dst", "cold", "value_ms"]


class LatencyConfig(ExperimentConfig):
    PROFILES = PROFILES


# -- workload pieces (run inside one architecture's network) --------------------------------
def check(g) -> None:
    """A national web server and a foreign one to time (``experiments.subjects``)."""
    subjects.choose(g)


def _pairs(net, s: dict) -> tuple[list[str], dict[str, list[str]]]:
    everyone = hosts(net.graph)
    targets = {h: list(s["targets"]) +
               [everyone[(i + 1) % len(everyone)]] for i, h in enumerate(everyone)}
    return everyone, targets


def _fetch(net, services, host: str, site: str) -> tuple[float | None, float | None]:
    from experiments.probing.webprobe import fetch

    label, _, connect, total, _ = fetch(net, host, site, services.records[site][0])
    return (connect, total) if label is None else (None, None)


def baseline(net, services, log, arch: str, rep: int, s: dict) -> None:
    """Pings (timed by the kernel) may overlap; connections and fetches, timed by curl in
    user space, run one at a time: on two cores, parallel clients would time each other."""
    from experiments.probing import probes

    hosts, targets = _pairs(net, s)

    def pings(host: str) -> None:
        for dst in targets[host]:
            series = probes.ping_series(net, host, dst, s["pings"] + 1)
            if series.first_ms is not None:
                log.row(arch=arch, repetition=rep, phase="baseline", kind="ping", src=host,
                        dst=dst, cold=1, value_ms=series.first_ms)
            for rtt in series.rtts_ms[1 if series.first_ms is not None else 0:]:
                log.row(arch=arch, repetition=rep, phase="baseline", kind="ping", src=host,
                        dst=dst, cold=0, value_ms=rtt)

    with ThreadPoolExecutor(4) as pool:
        list(pool.map(pings, hosts))
    for host in hosts:
        for site in s["sites"]:
            for k in range(s["fetches"]):
                connect, total = _fetch(net, services, host, site)
                if connect is not None:
                    for kind, value in (("connect", connect), ("fetch", total)):
                        log.row(arch=arch, repetition=rep, phase="baseline", kind=kind,
                                src=host, dst=site, cold=int(k == 0), value_ms=value)


def cold_connects(net, services, log, arch: str, rep: int, phase: str, param, rounds: int,
                  hosts: list[str], site: str) -> list[float]:
    """Connections to ``site``, one at a time, round-robin over hosts; a host's next one comes
    after its grant (short TTL) expired, so under registered access each is admitted afresh."""
    out = []
    last: dict[str, float] = {}
    for _ in range(rounds):
        for host in hosts:
            time.sleep(max(0.0, last.get(host, 0.0) + COLD_TTL_MS / 1000 + 0.1
                           - time.monotonic()))
            connect, _ = _fetch(net, services, host, site)
            last[host] = time.monotonic()
            if connect is not None:
                out.append(connect)
                log.row(arch=arch, repetition=rep, phase=phase, param=param, kind="connect",
                        src=host, dst=site, cold=1, value_ms=connect)
    return out


def set_ttl(arch_obj, ttl_ms: int) -> None:
    """New grants get ``ttl_ms``; every cached grant is dropped, so each phase starts clean."""
    arch_obj.operator.ttl(ttl_ms)
    arch_obj.operator.flush()
    arch_obj.operator.in_force()


def ttl_sweep(net, services, arch_obj, log, arch: str, rep: int, s: dict, seed: int) -> None:
    hosts, _ = _pairs(net, s)
    steps = s["ttl_ms"] if admits(arch) else [None]
    for ttl in steps:
        if ttl is not None:
            set_ttl(arch_obj, ttl)
        rng = random.Random(seed + (ttl or 0))
        schedule = {h: [] for h in hosts[:6]}
        for h in schedule:
            t = 0.0
            while (t := t + rng.expovariate(0.5)) < s["ttl_seconds"]:
                schedule[h].append(t)

        server = services.owner(s["sites"][0])

        def run(host: str, times: list[float], ttl=ttl, server=server) -> None:
            """One flow (an echo on one socket) used at random moments: its grant may have
            run out since it was last used, and then it waits for the authority again."""
            prober = net.popen(host, [sys.executable, "-m", "experiments.probing.prober",
                                      "echoes", "2.0", net.address(server)],
                               stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True)
            try:
                start = time.monotonic()
                for at in times:
                    time.sleep(max(0.0, start + at - time.monotonic()))
                    prober.stdin.write("ping\n")
                    prober.stdin.flush()
                    rtt = json.loads(prober.stdout.readline())
                    if rtt is not None:
                        log.row(arch=arch, repetition=rep, phase="ttl", param=ttl or "",
                                kind="echo", src=host, dst=server, value_ms=rtt)
            finally:
                prober.kill()
                prober.wait()

        with ThreadPoolExecutor(len(schedule)) as pool:
            list(pool.map(lambda item: run(*item), schedule.items()))


def load_sweep(net, services, arch_obj, log, arch: str, rep: int, s: dict) -> dict:
    hosts, _ = _pairs(net, s)
    probe_hosts = hosts[:4]
    generated = {}
    for rate in s["loads"] if admits(arch) else [0]:
        generator = None
        if rate:
            gw = arch_obj.load_gateway
            config = json.dumps({"key": gw.key.hex(), "gateway": gw.id,
                                 "address": str(IPv4Address(gw.address)),
                                 "authority": net.address(arch_obj.authority_node)})
            generator = net.popen(arch_obj.load_router,
                                  [sys.executable, "-m", "experiments.bench.admission_load",
                                   "generate", str(rate), str(s["load_seconds"] + 1.0)],
                                  stdin=-1, stdout=-1, stderr=-1, text=True)
            generator.stdin.write(config)  # the key never on a command line others can read
            generator.stdin.close()
            time.sleep(0.5)
        cold_connects(net, services, log, arch, rep, "load", rate, 3, probe_hosts,
                      s["sites"][0])
        if generator:
            generator.wait(timeout=60)
            out, err = generator.stdout.read(), generator.stderr.read()
            generated[rate] = json.loads(out) if out.strip() else {"error": err[-300:]}
    return generated


def placement(net, services, log, arch: str, rep: int, label: str, s: dict) -> None:
    from experiments.probing import probes

    hosts, _ = _pairs(net, s)
    auth = authority_site(net.graph)
    gap = COLD_TTL_MS / 1000 + 0.1  # a first packet's question crosses a network idle this long
    gateways = sorted({attachment(net.graph, h) for h in hosts})
    with ThreadPoolExecutor(len(gateways)) as pool:
        rtts = dict(zip(gateways, pool.map(lambda g: statistics.median(
            probes.ping_times(net, g, auth, 6, interval=gap)), gateways), strict=True))
    for host in hosts:
        log.row(arch=arch, repetition=rep, phase="placement", param=label,
                kind="gateway_authority_rtt", src=host, dst=auth,
                value_ms=rtts[attachment(net.graph, host)])
    cold_connects(net, services, log, arch, rep, "placement", label, s["cold_rounds"], hosts,
                  s["sites"][0])


def far_graph(graph, extra_ms: float):
    """The same graph with the authority site behind ``extra_ms`` more of one-way delay."""
    g = graph.copy()
    auth = authority_site(g)
    router = attachment(g, auth)
    g.edges[auth, router]["delay_ms"] += extra_ms
    return g


# -- the run --------------------------------------------------------------------------------
def run(config: LatencyConfig, out: Path | None = None) -> Path:
    import topologies
    from experiments.paired import archs, bring_up
    from experiments.progress import Progress

    graph = topologies.build(config.topo)
    who = subjects.choose(graph, config.seed)
    s = {**config.settings(), "targets": (who.server, who.far),
         "sites": (graph.nodes[who.server]["sites"][0], graph.nodes[who.far]["sites"][0])}
    writer = RunWriter(NAME, config, out)
    writer.topology(graph)
    writer.subjects(who)
    log = writer.csv("probes", HEADER)
    ms, source = latency_model.processing()
    tries = permission.chosen(graph, s["newcomers"], config.seed)
    summary: dict = {"archs": list(archs(config.arch)), "load_generator": {}, "permission": {},
                     "far_ms": s["far_ms"], "sites": s["sites"],
                     "model_processing": {"ms": ms, "source": source}}
    far = [a for a in summary["archs"] if admits(a)]  # where its authority sits matters
    steps = len(summary["archs"]) * s["repetitions"] + len(far)
    with writer.session(lambda: summarize(writer.dir, summary)), \
            Progress(steps, NAME) as progress:
        for rep in range(s["repetitions"]):
            for arch in summary["archs"]:
                options = {"load_gateway": True} if admits(arch) else {}
                with bring_up(graph, arch, config.seed, config.backend, writer,
                              servers=config.spread(), **options) as (
                        net, services, arch_obj):
                    progress.step(f"{arch}: baseline")
                    baseline(net, services, log, arch, rep, s)
                    if rep == 0:
                        progress.note(f"{arch}: permission")
                        summary["permission"][arch] = permission.measure(net, who.server,
                                                                         tries)
                    if admits(arch):
                        set_ttl(arch_obj, COLD_TTL_MS)
                    progress.note(f"{arch}: placement near")
                    placement(net, services, log, arch, rep, "near", s)
                    progress.note(f"{arch}: load sweep")
                    summary["load_generator"].update(
                        load_sweep(net, services, arch_obj, log, arch, rep, s))
                    progress.note(f"{arch}: TTL sweep")
                    ttl_sweep(net, services, arch_obj, log, arch, rep, s, config.seed)
                writer.results(summarize(writer.dir, summary))
        for arch in far:
            progress.step(f"{arch}: placement far")
            with bring_up(far_graph(graph, s["far_ms"]), arch, config.seed,
                          config.backend) as (net, services, arch_obj):
                set_ttl(arch_obj, COLD_TTL_MS)
                placement(net, services, log, arch, 0, "far", s)
    return writer.dir


def summarize(directory: Path, summary: dict) -> dict:
    """results.json from probes.csv: medians, 90th percentiles, overheads, sweeps."""
    from experiments.paired import median_ci

    path = directory / "probes.csv"
    rows = Results(directory, {}, {}).rows("probes") if path.exists() else []
    out = dict(summary)

    def values(arch, **match):
        return _values(rows, arch, **match)

    def stats(vals):
        if not vals:
            return None
        return {**median_ci(vals), "p90": sorted(vals)[int(0.9 * (len(vals) - 1))],
                "mean": statistics.fmean(vals)}

    out["baseline"] = {arch: {
        "ping_rtt": stats(values(arch, phase="baseline", kind="ping", cold=0)),
        "ping_first": stats(values(arch, phase="baseline", kind="ping", cold=1)),
        "connect_all": stats(values(arch, phase="baseline", kind="connect")),
        "connect_cold": stats(values(arch, phase="baseline", kind="connect", cold=1)),
        "connect_warm": stats(values(arch, phase="baseline", kind="connect", cold=0)),
        "fetch_all": stats(values(arch, phase="baseline", kind="fetch")),
        "fetch_cold": stats(values(arch, phase="baseline", kind="fetch", cold=1)),
    } for arch in summary["archs"]}

    def params(arch, phase):  # each once, in the order measured
        return dict.fromkeys(r["param"] for r in rows if r["arch"] == arch and
                             r["phase"] == phase)

    out["ttl"] = {arch: {p or "any": stats(values(arch, phase="ttl", param=p))
                         for p in params(arch, "ttl")} for arch in summary["archs"]}
    out["load"] = {arch: {p: stats(values(arch, phase="load", param=p))
                          for p in params(arch, "load")} for arch in summary["archs"]}
    per_host = {}
    for r in rows:
        if r["phase"] == "placement":
            key = (r["arch"], r["param"], r["src"])
            per_host.setdefault(key, {"rtt": [], "connect": []})[
                "rtt" if r["kind"] == "gateway_authority_rtt" else "connect"].append(
                float(r["value_ms"]))
    reference = {host: statistics.median(v["connect"]) for (arch, _, host), v in
                 per_host.items() if arch == BASELINE and v["connect"]}
    near = load_graph(directory / "topology.json")
    graphs = {"near": near, "far": far_graph(near, summary.get("far_ms", 0.0))}
    server = site_owner(near)[summary["sites"][0]]
    out["placement"] = [
        {"placement": label, "host": host, "gateway_authority_rtt_ms":
         statistics.median(v["rtt"]) if v["rtt"] else None,
         "cold_connect_ms": statistics.median(v["connect"]) if v["connect"] else None,
         "overhead_ms": statistics.median(v["connect"]) - reference[host]
         if v["connect"] and host in reference else None,
         "model_overhead_ms": first_connection_overhead_ms(
             graphs[label], host, server, summary["model_processing"]["ms"])}
        for (arch, label, host), v in sorted(per_host.items()) if admits(arch)]
    return out


def _values(rows: list[dict], arch: str, **match) -> list[float]:
    """The measured values of ``arch`` in the rows whose columns match."""
    return [float(r["value_ms"]) for r in rows if r["arch"] == arch and
            all(r[k] == str(v) for k, v in match.items())]


EXPERIMENT = Experiment(
    name=NAME,
    question=(
        "What admission adds to a ping, a new connection and a small web fetch, against "
        "TTL, load and the authority's placement"),
    config=LatencyConfig, run=run, plot=report.plot, check=check)
