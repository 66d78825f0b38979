"""``splinterlab fidelity``: does a link do what it was asked to? Requested vs measured.

On ``line,n=1`` (h1 -- r1 -- h2) the h1-r1 link is reshaped step by step and measured from the
hosts with real tools: median ping RTT against twice the one-way delay, iperf3 TCP goodput
against the bandwidth, and the packet rate the delay path sustains (iperf3 UDP, small packets,
through a delayed link). Tolerances are the project's targets: RTT within max(0.5 ms, 3 %) of
twice the delay, goodput within 10 % of the rate.
"""

from __future__ import annotations

import json
import statistics
from dataclasses import asdict, dataclass, field
from pathlib import Path

import topologies
from topologies.graph import LinkSpec
from topologies.network import EmulatedNetwork

from . import probes

TOPOLOGY = "line,n=1,delay=0,authority=false"
LINK = ("h1", "r1")


@dataclass
class FidelityConfig:
    delays_ms: list[float] = field(default_factory=lambda: [1, 5, 20, 50])
    rates_mbit: list[float] = field(default_factory=lambda: [10, 100])
    pps: list[int] = field(default_factory=lambda: [25_000, 50_000, 75_000, 100_000])
    pings: int = 60
    iperf_seconds: float = 5
    backend: str = "auto"


@dataclass
class Row:
    kind: str
    requested: float
    measured: float
    tolerance: float
    ok: bool
    extra: dict = field(default_factory=dict)


def _rtt_row(net: EmulatedNetwork, delay: float, pings: int) -> Row:
    net.set_link(*LINK, LinkSpec(delay_ms=delay))
    probes.ping(net, "h1", "h2", count=3, interval=0.02)  # warm up: ARP, caches
    series = probes.ping_series(net, "h1", "h2", pings, interval=0.02)
    rtts = series.rtts_ms
    if not rtts:
        return Row("rtt_ms", 2 * delay, float("nan"), 0.0, False)
    measured = statistics.median(rtts)
    tolerance = max(0.5, 0.03 * 2 * delay)
    return Row("rtt_ms", 2 * delay, measured, tolerance, abs(measured - 2 * delay) <= tolerance,
               {"mean": series.summary.rtt_ms, "min": min(rtts), "max": max(rtts),
                "samples": len(rtts)})


def _rate_row(net: EmulatedNetwork, rate: float, seconds: float) -> Row:
    net.set_link(*LINK, LinkSpec(bw_mbit=rate))
    end = probes.iperf3(net, "h1", "h2", seconds=seconds)
    measured = end["sum_received"]["bits_per_second"] / 1e6
    tolerance = 0.10 * rate
    return Row("goodput_mbit", rate, measured, tolerance, abs(measured - rate) <= tolerance,
               {"retransmits": end["sum_sent"].get("retransmits")})


def _pps_row(net: EmulatedNetwork, pps: int, delay: float = 20.0, size: int = 64) -> Row:
    net.set_link(*LINK, LinkSpec(delay_ms=delay))
    end = probes.iperf3(net, "h1", "h2", seconds=3, udp_rate=f"{pps * size * 8}", length=size)
    total = end["sum"]
    sent_pps = total["packets"] / total["seconds"]
    lost = total.get("lost_percent", 100.0)
    received_pps = sent_pps * (1 - lost / 100)
    return Row("delay_path_pps", pps, received_pps, 1.0, lost < 1.0,
               {"offered_pps": round(sent_pps), "loss_pct": round(lost, 3),
                "delay_ms": delay, "payload_bytes": size})


def run(config: FidelityConfig) -> tuple[list[Row], dict]:
    graph = topologies.build(TOPOLOGY)
    with EmulatedNetwork(graph, static_routes=True, backend=config.backend) as net:
        rows = [_rtt_row(net, d, config.pings) for d in config.delays_ms]
        rows += [_rate_row(net, r, config.iperf_seconds) for r in config.rates_mbit]
        rows += [_pps_row(net, p) for p in config.pps]
        context = net.describe()
    return rows, context


def table(rows: list[Row], context: dict) -> list[str]:
    lines = [f"delay backend: {context['delay_backend']} (PM QoS low latency held: "
             f"{context['low_latency_pm_qos']})", "",
             "one-way delay   requested RTT   median RTT   mean RTT     error of median   "
             "within max(0.5 ms, 3 %)"]
    for r in (r for r in rows if r.kind == "rtt_ms"):
        lines.append(f"{r.requested / 2:>8g} ms   {r.requested:>10.2f} ms   {r.measured:>7.2f} ms"
                     f"   {r.extra.get('mean') or float('nan'):>7.3f} ms   "
                     f"{r.measured - r.requested:+9.2f} ms        {'yes' if r.ok else 'NO'}")
    lines.append("(ping prints RTTs of 100 ms and more in whole ms; the mean comes from its "
                 "summary line, to the microsecond)")
    lines += ["", "bandwidth       measured iperf3 TCP goodput   error     within 10 %"]
    for r in (r for r in rows if r.kind == "goodput_mbit"):
        err = 100 * (r.measured - r.requested) / r.requested
        lines.append(f"{r.requested:>6g} Mbit/s   {r.measured:>14.2f} Mbit/s       "
                     f"{err:+6.1f} %   {'yes' if r.ok else 'NO'}")
    lines += ["", "delay path (20 ms link, 64-byte UDP)   offered pps   received pps   loss"]
    for r in (r for r in rows if r.kind == "delay_path_pps"):
        lines.append(f"{'':>38} {r.extra['offered_pps']:>11}   {r.measured:>12.0f}   "
                     f"{r.extra['loss_pct']:.2f} %")
    sustained = [r.measured for r in rows if r.kind == "delay_path_pps" and r.ok]
    lines.append(f"sustained through one delayed link with < 1 % loss: "
                 f"{max(sustained):.0f} packets/s" if sustained else
                 "the delay path lost >= 1 % at every offered rate")
    return lines


def save(rows: list[Row], context: dict, path: Path) -> None:
    path.write_text(json.dumps({"context": context, "rows": [asdict(r) for r in rows]},
                               indent=1))
