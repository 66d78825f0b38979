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
  written (its journal); at the farm's gateway: CPU seconds, ask-to-answer times (and its
  round trip to the authority at rest, before the step, the least answer time the network
  allows), grants held, what it failed, and the kernel's NFQUEUE drops.

From the measured steady rates ``summarize`` projects, labelled as a projection, the
authority's cores, decisions per second, log volume and gateway state for the world's IoT
devices as counted in 2020 and forecast for 2030 (``ERAS``, each series named by its source),
and says how far beyond the measured points that reaches.
"""

from __future__ import annotations

import json
import queue
import statistics
import subprocess
import sys
import threading
import time
from collections.abc import Callable
from pathlib import Path

from experiments import subjects
from experiments.comparisons import iot_report as report
from experiments.config import ExperimentConfig
from experiments.interface import Experiment
from experiments.measures import cpu_seconds, percentile
from experiments.probing import telemetry
from experiments.probing.probes import ping_times
from experiments.results import RunWriter
from protocols.architectures import admits
from protocols.registered.identity import DEVICES
from topologies.errors import NetworkError
from topologies.network import PRIVATE

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
    "burst": {"devices": [4000, 16000, 64000], "ttl_ms": [1000, 10000, 60000], "period_s": 10.0,
              "jitter": 0.2, "chatty_share": 0.1, "chatty_period_s": 1.0, "steady_s": 10.0,
              "steady_max_s": 15.0},
}
# Connected IoT devices, each figure as its source gives it; the projection scales to each
# and never mixes two series (IoT Analytics counted 11.7 billion IoT connections at the end of
# 2020 and forecasts about 40 billion for 2030; IHS Markit's 125 billion for 2030, from 27
# billion devices in 2017, is the high case).
ERAS = {"2020": {"devices": 11.7e9, "label": "2020, counted (IoT Analytics)"},
        "2030": {"devices": 40e9, "label": "2030, forecast (IoT Analytics)"},
        "2030-high": {"devices": 125e9, "label": "2030, high forecast (IHS Markit)"}}
FIRST_PORT = 9300
HEADER = ["arch", "devices", "ttl_ms", "sent", "received", "heard", "first_lost",
          "wrong_source", "sender_lag_ms", "first_p50_ms", "first_p90_ms", "first_p99_ms",
          "first_max_ms", "decisions_first", "decisions_steady", "steady_s",
          "decisions_per_s", "decisions_per_device_s", "cpu_share", "decisions_per_cpu_s",
          "gateway_cpu_share",
          "answer_p50_ms", "answer_p99_ms", "log_bytes_steady", "log_bytes_per_device_day",
          "log_rows_per_device_day", "renewals_observed", "grants_mean", "grants_max",
          "failed", "nfqueue_drops", "authority_rtt_ms"]
RTT_PINGS = 5  # the gateway's round trip to the authority at rest: the least of these
SAID_TIMEOUT_S = 60  # for the devices' sender to start, and to be late by at most


class IotConfig(ExperimentConfig):
    PROFILES = PROFILES


def check(g) -> None:
    """A host to turn into a farm, and a cloud site at home and abroad."""
    subjects.choose(g)


# -- readings ---------------------------------------------------------------------------------
def histogram_percentile(buckets: dict[int, int], q: float) -> float | None:
    """Milliseconds under which a share ``q`` of answers came (a gateway bucket's upper
    bound, 9 % wide)."""
    from protocols.registered.gateway_flows import bucket_us

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


def _sinks(net, servers: list[str], port: int, blocks: str) -> list[subprocess.Popen]:
    out = []
    for server in servers:
        p = net.popen(server, [sys.executable, "-m", "experiments.probing.telemetry", "sink",
                               str(port), blocks], stdout=subprocess.PIPE,
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
    from topologies.polling import wait_until

    router = net.plan.interfaces_of(farm)[0].peer
    if not wait_until(lambda: bound_at_gateway(arch_obj, router) >= devices, 120, 0.5):
        raise NetworkError(f"the gateway on {router} bound {bound_at_gateway(arch_obj, router)} "
                           f"of the farm's {devices} devices in 120 s")


def said(sender: subprocess.Popen) -> Callable[[str, float], None]:
    """``wait(word, timeout)``: until the sender says ``word`` on its standard error, or a
    NetworkError if it says anything else, ends, or says nothing within ``timeout``. A thread
    reads the pipe (select and a buffered readline together would lose lines)."""
    lines: queue.Queue = queue.Queue()
    threading.Thread(target=lambda: [*map(lines.put, sender.stderr), lines.put("")],
                     daemon=True).start()

    def wait(word: str, timeout: float) -> None:
        try:
            line = lines.get(timeout=timeout).strip()
        except queue.Empty:
            line = "nothing"
        if line != word:
            raise NetworkError(f"the devices' sender did not say {word!r} in {timeout:g} s: "
                               f"{line or 'it ended'}")
    return wait


def steady_window(s: dict, ttl_ms: int | None) -> float:
    return min(s["steady_max_s"], max(s["steady_s"], 1.5 * (ttl_ms or 0) / 1000))


def step(net, arch_obj, farm: str, servers: list[str], devices: int, ttl_ms: int | None,
         port: int, s: dict, seed: int) -> dict:
    """One device count (and TTL): the devices' view, and under registered access the
    authority's and the gateway's."""
    blocks = [str(b) for b in net.plan.devices[farm]]
    router = net.plan.interfaces_of(farm)[0].peer
    readings = Readings(net, arch_obj, router) if ttl_ms is not None else None
    rtt = None
    if readings:
        rtt = min(ping_times(net, router, arch_obj.authority_node, RTT_PINGS), default=None)
        arch_obj.operator.ttl(ttl_ms)
        arch_obj.operator.flush()
        arch_obj.operator.in_force()
    sinks = _sinks(net, servers, port, ",".join(blocks))
    before = readings.read() if readings else None
    sender = net.popen(farm, [sys.executable, "-m", "experiments.probing.telemetry", "send"],
                       stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                       text=True)
    sender.stdin.write(json.dumps({
        "blocks": blocks, "count": devices, "sinks": [[net.address(v), port]
                                                            for v in servers],
        "period_s": s["period_s"], "jitter": s["jitter"], "chatty_share": s["chatty_share"],
        "chatty_period_s": s["chatty_period_s"],
        "duration_s": s["period_s"] + steady_window(s, ttl_ms),
        "seed": seed,  # what the architecture provisioned the devices with, if anything
        "devices": str(PRIVATE / DEVICES) if (net.private_dir(farm) / DEVICES).exists()
        else ""}))
    sender.stdin.close()
    heard_from = said(sender)
    heard_from(telemetry.SENDING, SAID_TIMEOUT_S)  # its clock starts once its proofs are made
    t0 = time.monotonic()
    # the first period ends when it should, or (a loaded machine) once every device has spoken
    heard_from(telemetry.SPOKEN, s["period_s"] + SAID_TIMEOUT_S)
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
        net.signal(p, 2)
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
        row["authority_rtt_ms"] = rtt
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
    total = sum(len(s["devices"]) * (len(s["ttl_ms"]) if admits(a) else 1)
                for a in summary["archs"])
    port = FIRST_PORT
    final: dict = {}  # results.json as the session closes: what the projection's note reads

    def results() -> dict:
        final.update(summarize(writer.dir, summary))
        return final

    with writer.session(results), Progress(total, NAME) as progress:
        for arch in summary["archs"]:
            with bring_up(graph, arch, config.seed, config.backend, writer,
                          servers=config.spread()) as (net, _, arch_obj):
                if admits(arch):
                    wait_for_farm(net, arch_obj, who.user, max(s["devices"]))
                for devices in s["devices"]:
                    for ttl in s["ttl_ms"] if admits(arch) else [None]:
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
    measured = [r for r in steps if admits(r["arch"]) and r["decisions_steady"]
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
    for era, series in ERAS.items():
        devices = series["devices"]
        eras[era] = {"devices": devices, "label": series["label"], "by_ttl": {str(int(ttl)): {
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


EXPERIMENT = Experiment(NAME, "how the authority's load, its latency and its log grow with "
                        "IoT devices", IotConfig, run, report.plot, check, comparison=False)
