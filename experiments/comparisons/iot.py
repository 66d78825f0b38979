"""IoT: what a farm of devices, each asking an authority before it may speak, costs.

One host of the topology (the ``user`` of ``experiments.subjects``) becomes a device farm: a
block of device addresses in one namespace (``topologies.addressing``), every device a
registered identity of its own under registered access. Devices send telemetry like IoT does
(``experiments.probing.telemetry``): a datagram every period, within a jitter, to a cloud
site at home or abroad (the national and the foreign web server, alternately); a share of
them are chatty. For each device count and, under registered access, each admission TTL,
one step on the same network:

* the TTL is set and every grant flushed, so each step starts with no device admitted;
* devices start at random phases within one period (their first contact), then run a steady
  window of at least ``steady_s`` and one and a half TTLs, up to ``steady_max_s``: a flow in
  use is renewed once a TTL, so only a window longer than the TTL observes the steady rate
  (longer TTLs are measured for their first contact only, and left out of the projection);
* from the devices (the sinks): each device's first datagram and its one-way delay (its first
  packet waits for admission), devices never heard or whose first datagram was lost, and
  datagrams from an address not their device's own;
* at the authority: decisions (first contact and steady), CPU seconds, admission-log bytes
  written (its journal); at the farm's gateway: CPU seconds, ask-to-answer times, grants
  held, what it failed, and the kernel's NFQUEUE drops.

From the measured steady rates ``summarize`` projects, labelled as a projection, the
authority's cores, decisions per second, log volume and gateway state for 12 billion (2020)
and 125 billion (2030) connected devices, and says how far beyond the measured points that
reaches.
"""

from __future__ import annotations

import json
import statistics
import subprocess
import sys
import time
from pathlib import Path

from experiments import plotstyle, subjects
from experiments.bench.admission_load import cpu_seconds, percentile
from experiments.config import ExperimentConfig
from experiments.interface import Experiment
from experiments.results import RunWriter, load

NAME = "iot"
PROFILES = {
    "quick": {"devices": [100, 1000], "ttl_ms": [1000, 10000], "period_s": 10.0,
              "jitter": 0.2, "chatty_share": 0.1, "chatty_period_s": 1.0, "steady_s": 10.0,
              "steady_max_s": 20.0},
    "full": {"devices": [100, 1000, 4000, 16000],
             "ttl_ms": [1000, 10000, 60000, 600000, 3600000], "period_s": 10.0,
             "jitter": 0.2, "chatty_share": 0.1, "chatty_period_s": 1.0, "steady_s": 30.0,
             "steady_max_s": 120.0},
    # where the farm's gateway is the bottleneck: short TTLs at thousands of devices
    "burst": {"devices": [4000, 16000], "ttl_ms": [1000, 10000, 60000], "period_s": 10.0,
              "jitter": 0.2, "chatty_share": 0.1, "chatty_period_s": 1.0, "steady_s": 10.0,
              "steady_max_s": 15.0},
}
ERAS = {"2020": 12e9, "2030": 125e9}  # connected IoT devices, counted and forecast
FIRST_PORT = 9300
HEADER = ["arch", "devices", "ttl_ms", "sent", "received", "heard", "first_lost",
          "wrong_source", "sender_lag_ms", "first_p50_ms", "first_p90_ms", "first_p99_ms",
          "first_max_ms", "decisions_first", "decisions_steady", "steady_s",
          "decisions_per_s", "decisions_per_device_s", "cpu_share", "decisions_per_cpu_s",
          "gateway_cpu_share",
          "answer_p50_ms", "answer_p99_ms", "log_bytes_steady", "log_bytes_per_device_day",
          "log_rows_per_device_day", "renewals_observed", "grants_mean", "grants_max",
          "failed", "nfqueue_drops"]


class IotConfig(ExperimentConfig):
    PROFILES = PROFILES


def check(g) -> None:
    """A host to turn into a farm, and a cloud site at home and abroad."""
    subjects.choose(g, 1)


# -- readings ---------------------------------------------------------------------------------
def histogram_percentile(buckets: dict[int, int], q: float) -> float | None:
    """Milliseconds under which a share ``q`` of answers came (a gateway bucket's upper
    bound, 9 % wide)."""
    from protocols.registered.gateway import bucket_us

    total = sum(buckets.values())
    seen = 0
    for bucket in sorted(buckets):
        seen += buckets[bucket]
        if seen >= q * total:
            return round(bucket_us(bucket) / 1000, 3)
    return None


def nfqueue_drops(net, router: str) -> int:
    """Packets the kernel dropped at the router's queues (full, or the reader gone)."""
    text = net.exec(router, "cat", "/proc/net/netfilter/nfnetlink_queue", check=False).stdout
    return sum(int(f[5]) + int(f[6]) for f in (line.split() for line in text.splitlines())
               if len(f) >= 7)


class Readings:
    """The authority's and the farm gateway's counters, read between phases of a step."""

    def __init__(self, net, arch_obj, router: str):
        self.net, self.arch, self.router = net, arch_obj, router
        self.journal = arch_obj.authority_dir() / "registry.journal"

    def read(self) -> dict:
        counters = self.arch.operator.status()["counters"]
        gateway = self.arch.gateway_status(self.router)
        gateway_pid = self.arch.gateway_daemon(self.router).pid()
        return {"t": time.monotonic(),
                "decisions": counters.get("granted", 0) + counters.get("denied", 0),
                "cpu": cpu_seconds(self.arch.authority_daemon.pid()),
                "gateway_cpu": cpu_seconds(gateway_pid) if gateway_pid else 0.0,
                "journal": self.journal.stat().st_size if self.journal.exists() else 0,
                "answers": {int(k): v for k, v in gateway.get("answer_us_buckets", {}).items()},
                "failed": sum(v for k, v in gateway.get("counters", {}).items()
                              if k.startswith("failed") or k == "denied"),
                "nfqueue": nfqueue_drops(self.net, self.router)}


def _sinks(net, servers: list[str], port: int, first: str) -> list[subprocess.Popen]:
    out = []
    for server in servers:
        p = net.popen(server, [sys.executable, "-m", "experiments.probing.telemetry", "sink",
                               str(port), first], stdout=subprocess.PIPE,
                      stderr=subprocess.PIPE, text=True)
        p.stderr.readline()  # "listening"
        out.append(p)
    return out


def bound_at_gateway(arch_obj, router: str) -> int:
    """How many addresses the gateway holds bindings for (its status names them up to 64)."""
    bound = arch_obj.gateway_status(router).get("bound", {})
    return int(bound.split()[0]) if isinstance(bound, str) else len(bound)


def wait_for_farm(net, arch_obj, farm: str, devices: int) -> None:
    """The farm's devices reach its gateway in a snapshot of the register, which for 16 000
    devices came 13 s after bring-up: a step started before counted first datagrams the
    gateway dropped as unregistered (all 4 000 of the first step) as lost."""
    from topologies.network import NetworkError
    from topologies.polling import wait_until

    router = net.plan.interfaces_of(farm)[0].peer
    if not wait_until(lambda: bound_at_gateway(arch_obj, router) >= devices, 120, 0.5):
        raise NetworkError(f"the gateway on {router} bound {bound_at_gateway(arch_obj, router)} "
                           f"of the farm's {devices} devices in 120 s")


def steady_window(s: dict, ttl_ms: int | None) -> float:
    return min(s["steady_max_s"], max(s["steady_s"], 1.5 * (ttl_ms or 0) / 1000))


def step(net, arch_obj, farm: str, servers: list[str], devices: int, ttl_ms: int | None,
         port: int, s: dict, seed: int) -> dict:
    """One device count (and TTL): the devices' view, and under registered access the
    authority's and the gateway's."""
    block = net.plan.devices[farm]
    router = net.plan.interfaces_of(farm)[0].peer
    readings = Readings(net, arch_obj, router) if ttl_ms is not None else None
    if readings:
        arch_obj.operator.ttl(ttl_ms)
        arch_obj.operator.flush()
        time.sleep(0.3)  # the pushes take milliseconds
    sinks = _sinks(net, servers, port, str(block[1]))
    before = readings.read() if readings else None
    sender = net.popen(farm, [sys.executable, "-m", "experiments.probing.telemetry", "send"],
                       stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True)
    sender.stdin.write(json.dumps({
        "first": str(block[1]), "count": devices, "sinks": [[net.address(v), port]
                                                            for v in servers],
        "period_s": s["period_s"], "jitter": s["jitter"], "chatty_share": s["chatty_share"],
        "chatty_period_s": s["chatty_period_s"],
        "duration_s": s["period_s"] + steady_window(s, ttl_ms),
        "seed": seed}))
    sender.stdin.close()
    t0 = time.monotonic()
    time.sleep(max(0.0, t0 + s["period_s"] - time.monotonic()))
    middle = readings.read() if readings else None
    grants = []
    while sender.poll() is None:
        if readings:
            grants.append(arch_obj.gateway_status(router).get("grants", 0))
        time.sleep(0.5)
    sent = json.loads(sender.stdout.read())
    time.sleep(1.0)  # the last datagrams on their way
    after = readings.read() if readings else None
    heard: dict[int, list] = {}
    wrong = 0
    for p in sinks:
        p.send_signal(2)
        got = json.loads(p.communicate(timeout=30)[0])
        heard.update({int(k): v for k, v in got["devices"].items()})
        wrong += got["wrong_source"]
    firsts = [v[1] * 1000 for v in heard.values() if v[0] == 1]
    row = {"sent": sent["sent"], "received": sum(v[2] for v in heard.values()),
           "heard": len(heard), "first_lost": devices - len(firsts), "wrong_source": wrong,
           "sender_lag_ms": sent["max_lag_ms"],
           **{f"first_{name}_ms": round(v, 3) if (v := percentile(firsts, q)) is not None
              else None for name, q in (("p50", 0.5), ("p90", 0.9), ("p99", 0.99),
                                        ("max", 1.0))}}
    if readings:
        row.update(authority_figures(before, middle, after, devices))
        row["renewals_observed"] = int(row["steady_s"] * 1000 > ttl_ms)
        row["grants_mean"] = round(statistics.fmean(grants), 1) if grants else None
        row["grants_max"] = max(grants, default=None)
    return row


def authority_figures(before: dict, middle: dict, after: dict, devices: int) -> dict:
    """Rates from three readings: at the start, after the first period (every device has
    spoken once) and at the end (the steady window)."""
    steady_s = after["t"] - middle["t"]
    steady = after["decisions"] - middle["decisions"]
    decisions = after["decisions"] - before["decisions"]
    cpu = after["cpu"] - before["cpu"]
    log_bytes = after["journal"] - middle["journal"]
    answers = {b: after["answers"].get(b, 0) - before["answers"].get(b, 0)
               for b in after["answers"]}
    day = 86400 / steady_s / devices
    return {"decisions_first": middle["decisions"] - before["decisions"],
            "decisions_steady": steady, "steady_s": round(steady_s, 3),
            "decisions_per_s": round(steady / steady_s, 2),
            "decisions_per_device_s": steady / steady_s / devices,
            "cpu_share": round(cpu / (after["t"] - before["t"]), 4),
            "decisions_per_cpu_s": round(decisions / cpu, 1) if cpu > 0 else None,
            "gateway_cpu_share": round((after["gateway_cpu"] - before["gateway_cpu"]) /
                                       (after["t"] - before["t"]), 4),
            "answer_p50_ms": histogram_percentile(answers, 0.5),
            "answer_p99_ms": histogram_percentile(answers, 0.99),
            "log_bytes_steady": log_bytes,
            "log_bytes_per_device_day": round(log_bytes * day, 1),
            "log_rows_per_device_day": round(steady * day, 2),
            "failed": after["failed"] - before["failed"],
            "nfqueue_drops": after["nfqueue"] - before["nfqueue"]}


# -- the run --------------------------------------------------------------------------------
def run(config: IotConfig, out: Path | None = None) -> Path:
    import topologies
    from experiments.paired import archs, bring_up
    from experiments.progress import Progress

    s = config.settings()
    graph = topologies.build(config.topo)
    who = subjects.choose(graph, config.seed)
    graph.nodes[who.user]["farm"] = max(s["devices"])
    servers = [who.server, who.far]
    writer = RunWriter(NAME, config, out)
    writer.topology(graph)
    writer.subjects(who)
    writer.meta(farm=who.user, cloud=servers)
    log = writer.csv("steps", HEADER)
    summary = {"archs": list(archs(config.arch)), "farm": who.user, "cloud": servers,
               "settings": s}
    total = sum(len(s["devices"]) * (len(s["ttl_ms"]) if a == "registered" else 1)
                for a in summary["archs"])
    port = FIRST_PORT
    final: dict = {}  # results.json as the session closes: what the projection's note reads

    def results() -> dict:
        final.update(summarize(writer.dir, summary))
        return final

    with writer.session(results), Progress(total, NAME) as progress:
        for arch in summary["archs"]:
            with bring_up(graph, arch, config.seed, config.backend, writer) as (
                    net, _, arch_obj):
                if arch == "registered":
                    wait_for_farm(net, arch_obj, who.user, max(s["devices"]))
                for devices in s["devices"]:
                    for ttl in s["ttl_ms"] if arch == "registered" else [None]:
                        port += 1  # new flows: nothing admitted before counts
                        progress.step(f"{arch}: {devices} devices" +
                                      (f", TTL {ttl / 1000:g} s" if ttl else ""))
                        log.row(arch=arch, devices=devices, ttl_ms=ttl or "",
                                **step(net, arch_obj, who.user, servers, devices, ttl, port,
                                       s, config.seed))
    print(support(final["projection"]))
    return writer.dir


def support(p: dict | None) -> str:
    """Where the projection stops being supported by measurement, in one paragraph."""
    if p is None:
        return "iot: no step observed a renewal: nothing to project from"
    eras = "; ".join(f"{d['devices'] / 1e9:g} billion devices is {d['beyond_measured']:,.0f} "
                     "times that" for d in p["eras"].values())
    unseen = ", ".join(f"{t / 1000:g} s" for t in p["not_projected"])
    return (f"iot: the projection rests on {p['measured_devices']:,.0f} measured devices (at "
            f"most {p['largest_measured_rate']:,.0f} decisions/s); {eras}" +
            (f"; TTLs of {unseen} outlast the window and are not projected" if unseen else ""))


# -- summary and projection ------------------------------------------------------------------
def _number(value: str) -> float | None:
    return float(value) if value not in ("", None) else None


def summarize(directory: Path, summary: dict) -> dict:
    """results.json: every step, and the projection from the registered steps."""
    from experiments.results import Results

    path = directory / "steps.csv"
    rows = Results(directory, {}, {}).rows("steps") if path.exists() else []
    out = dict(summary)
    out["steps"] = [{k: (_number(v) if k != "arch" else v) for k, v in r.items()} for r in rows]
    out["projection"] = projection(out["steps"])
    return out


def projection(steps: list[dict]) -> dict | None:
    """Per TTL, from the largest device count measured: decisions per device per second,
    log bytes per device per day and grants per device, scaled to ``ERAS``; authority cores
    from the best decisions per CPU second measured. A projection, not a measurement: it
    assumes every figure grows in proportion to the devices, which the measured points can
    confirm only up to their own size."""
    measured = [r for r in steps if r["arch"] == "registered" and r["decisions_steady"]
                is not None]
    registered = [r for r in measured if r["renewals_observed"]]
    if not registered:
        return None
    per_cpu = max((r["decisions_per_cpu_s"] or 0) for r in measured)
    largest = max(r["devices"] for r in registered)
    ttls = sorted({r["ttl_ms"] for r in registered if r["devices"] == largest})
    basis = {ttl: next(r for r in registered if r["ttl_ms"] == ttl and r["devices"] == largest)
             for ttl in ttls}
    eras = {}
    for era, devices in ERAS.items():
        eras[era] = {"devices": devices, "by_ttl": {str(int(ttl)): {
            "decisions_per_s": devices * r["decisions_per_device_s"],
            "authority_cores": devices * r["decisions_per_device_s"] / per_cpu
            if per_cpu else None,
            "log_tb_per_day": devices * r["log_bytes_per_device_day"] / 1e12,
            "gateway_grants": devices * (r["grants_mean"] or 0) / r["devices"]}
            for ttl, r in basis.items()}, "beyond_measured": devices / largest}
    return {"assumptions": "every rate in proportion to the devices; the authority's "
                           "best decisions per CPU second measured here (one Python process "
                           "on one core of this machine, never saturated in these steps: a "
                           "lower bound of its capacity); the measured devices' mix of "
                           "periods and chatty share",
            "measured_devices": largest, "decisions_per_cpu_s": per_cpu,
            "largest_measured_rate": max(r["decisions_per_s"] for r in registered),
            "not_projected": sorted({int(r["ttl_ms"]) for r in measured} - set(map(int, ttls))),
            "eras": eras}


# -- plots (read only the results directory) -----------------------------------------------
STEADY = ("decisions_per_s", "log_bytes_per_device_day", "log_rows_per_device_day",
          "grants_mean")  # need a renewal seen
FAILURES = {"first_lost": "devices whose first datagram was lost",
            "failed": "questions the gateway failed", "nfqueue_drops": "NFQUEUE drops"}


def _series(steps: list[dict], arch: str, ttl, key: str) -> tuple[list, list]:
    points = sorted((r["devices"], r[key]) for r in steps if r["arch"] == arch and
                    (ttl is None or r["ttl_ms"] == ttl) and r.get(key) is not None and
                    (key not in STEADY or r.get("renewals_observed")))
    return [p[0] for p in points], [p[1] for p in points]


def plot(directory: Path) -> list[Path]:
    results = load(directory, NAME)
    steps = results.summary["steps"]
    ttls = sorted({r["ttl_ms"] for r in steps if r["arch"] == "registered"})
    shades = {ttl: plotstyle.plt.cm.Reds(0.35 + 0.6 * k / max(1, len(ttls) - 1))
              for k, ttl in enumerate(ttls)}
    label = {ttl: f"registered, TTL {ttl / 1000:g} s" for ttl in ttls}
    fig, axes = plotstyle.figure(3, 2, width=3.7, height=3.0)
    ax = axes[0][0]
    for q, style in (("p50", "o-"), ("p99", "s--")):
        if "permissionless" in results.summary["archs"]:
            ax.plot(*_series(steps, "permissionless", None, f"first_{q}_ms"), style,
                    color=plotstyle.ARCH_COLORS["permissionless"],
                    label=f"permissionless, {q}")
        for ttl in ttls:
            ax.plot(*_series(steps, "registered", ttl, f"first_{q}_ms"), style,
                    color=shades[ttl], label=f"{label[ttl]}, {q}")
    ax.set_ylabel("first datagram's one-way delay (ms)")
    ax.legend(fontsize=5)
    panels = [(axes[0][1], "decisions_per_s", "authority decisions/s (steady)"),
              (axes[0][2], "cpu_share", "CPU (share of one core): authority, farm's "
                                        "gateway (dotted)"),
              (axes[1][0], "answer_p50_ms", "gateway ask-to-answer, p50 and p99 (ms)"),
              (axes[1][1], "log_bytes_per_device_day", "log per device per day: bytes, "
                                                       "rows (dotted)"),
              (axes[1][2], "grants_mean", "grants held by the farm's gateway")]
    for ax, key, ylabel in panels:
        for ttl in ttls:
            ax.plot(*_series(steps, "registered", ttl, key), "o-", color=shades[ttl],
                    label=label[ttl])
        ax.set_ylabel(ylabel)
    for ax, key in ((axes[0][2], "gateway_cpu_share"), (axes[1][0], "answer_p99_ms"),
                    (axes[1][1], "log_rows_per_device_day")):
        for ttl in ttls:
            ax.plot(*_series(steps, "registered", ttl, key), "s:", color=shades[ttl])
    axes[1][1].set_yscale("log")
    axes[0][1].legend(fontsize=6)
    lost = axes[1][2].twinx()  # who got no answer, and what the kernel dropped
    for key, style in (("first_lost", "v:"), ("failed", "x:"), ("nfqueue_drops", "+:")):
        for ttl in ttls:
            lost.plot(*_series(steps, "registered", ttl, key), style, color=shades[ttl],
                      label=FAILURES[key] if ttl == ttls[-1] else None)
    lost.set_ylabel("failures (dotted)")
    lost.legend(fontsize=5, loc="upper left")
    for row in axes:
        for a in row:
            a.set_xscale("log")
            a.set_xlabel("devices")
    written = plotstyle.save(fig, directory, "iot_scaling",
                             f"IoT devices on {results.meta['scenario']['topo']}: every point "
                             "a measured step")
    projected = results.summary.get("projection")
    if projected:
        written += _plot_projection(directory, projected, steps)
    return written


def _plot_projection(directory: Path, p: dict, steps: list[dict]) -> list[Path]:
    fig, axes = plotstyle.figure(3, width=4.0)
    ax = axes[0][2]  # the measured points it rests on: flat lines mean "in proportion"
    for ttl in sorted({r["ttl_ms"] for r in steps if r["arch"] == "registered"}):
        xs, ys = _series(steps, "registered", ttl, "decisions_per_device_s")
        keep = [(x, y) for x, y in zip(xs, ys, strict=True) if any(
            r["devices"] == x and r["ttl_ms"] == ttl and r["renewals_observed"] for r in steps)]
        if keep:
            ax.plot(*zip(*keep, strict=True), "o-", label=f"TTL {ttl / 1000:g} s")
    ax.set_xscale("log")
    ax.set_xlabel("devices (measured)")
    ax.set_ylabel("decisions/device/s (measured)")
    ax.legend(fontsize=6)
    for era, data in p["eras"].items():
        ttls = sorted(data["by_ttl"], key=int)
        xs = [int(t) / 1000 for t in ttls]
        axes[0][0].plot(xs, [data["by_ttl"][t]["authority_cores"] for t in ttls], "o-",
                        label=f"{data['devices'] / 1e9:g} billion devices ({era})")
        axes[0][1].plot(xs, [data["by_ttl"][t]["log_tb_per_day"] for t in ttls], "o-",
                        label=f"{data['devices'] / 1e9:g} billion devices ({era})")
    for ax, ylabel in ((axes[0][0], "authority cores (projected)"),
                       (axes[0][1], "admission log, TB per day (projected)")):
        ax.set_xscale("log")
        ax.set_yscale("log")
        ax.set_xlabel("admission TTL (s)")
        ax.set_ylabel(ylabel)
        ax.legend(fontsize=6)
    left_out = ", ".join(f"{t / 1000:g} s" for t in p["not_projected"])
    axes[0][0].text(0.02, 0.02, f"from {p['measured_devices']:g} measured devices, "
                    f"{p['decisions_per_cpu_s']:g} decisions per CPU second;\n"
                    "assumes every rate grows in proportion to the devices" +
                    (f";\nTTLs {left_out}: longer than the window, not projected"
                     if left_out else ""), transform=axes[0][0].transAxes, fontsize=6)
    return plotstyle.save(fig, directory, "iot_projection",
                          "A projection, not a measurement: the authority for the world's "
                          "IoT")


EXPERIMENT = Experiment(NAME, "how the authority's load, its latency and its log grow with "
                        "IoT devices", IotConfig, run, plot, check, comparison=False)
