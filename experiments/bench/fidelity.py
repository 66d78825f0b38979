"""``splinterlab fidelity``: does a link do what it was asked to? Requested vs measured.

On ``line,n=1`` (h1 -- r1 -- h2) the h1-r1 link is reshaped step by step and measured from the
hosts with real tools: median ping RTT against twice the one-way delay (the path itself, at
0 ms, is a row of its own), iperf3 TCP goodput against the bandwidth, and the packet rate a
delayed link carries (iperf3 UDP, 64-byte datagrams, 20 ms each way). Targets: RTT within
max(0.2 ms, 2 %) of twice the delay, goodput within 10 % of the rate.

The packet rate is measured twice at each offered rate. Once with the receiving socket's
default buffer (about 208 KB: what an ordinary application gets), and once with 4 MB, so that
the receiving application is not what limits the figure: when a busy two-core machine
schedules the delay process late, it releases a burst, and a default-sized socket overflows
before the link does. The path's own drops (the kernel's queue counters, the delay process's
socket overruns, netem's qdisc drops) are counted separately.
"""

from __future__ import annotations

import contextlib
import re
import statistics
from collections.abc import Iterator
from dataclasses import asdict, dataclass, field
from pathlib import Path

import topologies
from experiments.probing import probes
from topologies.graph import LinkSpec
from topologies.network import EmulatedNetwork

TOPOLOGY = "line,n=1,delay=0,authority=false"
LINK = ("h1", "r1")
LARGE_BUFFER = 4 << 20
RMEM_MAX = Path("/proc/sys/net/core/rmem_max")


@dataclass
class FidelityConfig:
    delays_ms: list[float] = field(default_factory=lambda: [0, 1, 5, 20, 50])
    rates_mbit: list[float] = field(default_factory=lambda: [10, 100])
    delayed_rate_ms: float = 20.0  # each rate again through a link this long (TSQ, nesting)
    pps: list[int] = field(default_factory=lambda: [50_000, 100_000, 125_000, 150_000])
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


def rtt_tolerance(requested_rtt_ms: float) -> float:
    return max(0.2, 0.02 * requested_rtt_ms)


def _rtt_row(net: EmulatedNetwork, delay: float, pings: int) -> Row:
    net.set_link(*LINK, LinkSpec(delay_ms=delay))
    return measured_rtt_row(net, delay, pings)


def measured_rtt_row(net: EmulatedNetwork, delay: float, pings: int) -> Row:
    """The path as it is now, judged against ``delay`` each way on the reshaped link."""
    probes.ping(net, "h1", "h2", count=3, interval=0.02)  # warm up: ARP, caches
    series = probes.ping_series(net, "h1", "h2", pings, interval=0.02)
    rtts = series.rtts_ms
    if not rtts:
        return Row("rtt_ms", 2 * delay, float("nan"), 0.0, False)
    measured = statistics.median(rtts)
    tolerance = rtt_tolerance(2 * delay)
    return Row("rtt_ms", 2 * delay, measured, tolerance, abs(measured - 2 * delay) <= tolerance,
               {"mean": series.summary.rtt_ms, "min": min(rtts), "max": max(rtts),
                "samples": len(rtts)})


def _rate_row(net: EmulatedNetwork, rate: float, seconds: float, delay: float = 0.0) -> Row:
    """TCP goodput over the link at ``rate``; with ``delay``, through a link that is delayed
    too (where TCP Small Queues, the nesting of the rate and the delay and the queue limit
    all show), leaving out the first second of slow start."""
    net.set_link(*LINK, LinkSpec(bw_mbit=rate, delay_ms=delay))
    end = probes.iperf3(net, "h1", "h2", seconds=seconds, omit=1 if delay else 0)
    measured = end["sum_received"]["bits_per_second"] / 1e6
    tolerance = 0.10 * rate
    return Row("goodput_mbit", rate, measured, tolerance, abs(measured - rate) <= tolerance,
               {"retransmits": end["sum_sent"].get("retransmits"), "delay_ms": delay})


def _capacity_row(net: EmulatedNetwork, seconds: float) -> Row:
    """TCP goodput with no rate limit: what this machine's CPU carries over the path, the
    reference a rate is judged against where the CPU is slower than the rate (a VM under
    software emulation)."""
    net.set_link(*LINK, LinkSpec())
    end = probes.iperf3(net, "h1", "h2", seconds=seconds)
    return Row("capacity_mbit", 0.0, end["sum_received"]["bits_per_second"] / 1e6, 0.0, True)


def path_drops(net: EmulatedNetwork) -> int:
    """Packets the delay path itself dropped so far on r1: the kernel's queue counters
    (queue full, no listener) and netem's qdisc drops."""
    if net.backend == "netem":
        out = net.exec("r1", "tc", "-s", "qdisc", "show").stdout + \
            net.exec("h1", "tc", "-s", "qdisc", "show").stdout
        return sum(int(n) for n in re.findall(r"qdisc netem .*?dropped (\d+)", out, re.S))
    out = net.exec("r1", "cat", "/proc/net/netfilter/nfnetlink_queue", check=False).stdout
    # queue, portid, waiting, copy mode, copy range, queue dropped, user dropped, id, 1
    return sum(int(f[5]) + int(f[6]) for f in (line.split() for line in out.splitlines())
               if len(f) >= 7)


@contextlib.contextmanager
def receive_buffers_up_to(size: int) -> Iterator[None]:
    """Let sockets ask for ``size`` bytes of receive buffer (net.core.rmem_max, a machine-wide
    setting that Mininet's own ``mn`` raises to 16 MB at every start); put it back after."""
    before = int(RMEM_MAX.read_text())
    RMEM_MAX.write_text(str(max(before, size)))
    try:
        yield
    finally:
        RMEM_MAX.write_text(str(before))


def _pps_row(net: EmulatedNetwork, pps: int, buffer: int | None, delay: float = 20.0,
             size: int = 64) -> Row:
    net.set_link(*LINK, LinkSpec(delay_ms=delay))
    drops = path_drops(net)
    end = probes.iperf3(net, "h1", "h2", seconds=3, udp_rate=f"{pps * size * 8}", length=size,
                        window=str(buffer) if buffer else None)
    total = end["sum"]
    sent_pps = total["packets"] / total["seconds"]
    lost = total.get("lost_percent", 100.0)
    received_pps = sent_pps * (1 - lost / 100)
    return Row("delay_path_pps" if buffer else "default_socket_pps", pps, received_pps, 1.0,
               lost < 1.0, {"offered_pps": round(sent_pps), "loss_pct": round(lost, 3),
                            "path_drops": path_drops(net) - drops, "delay_ms": delay,
                            "payload_bytes": size, "receive_buffer": buffer or "default"})


def run(config: FidelityConfig) -> tuple[list[Row], dict]:
    graph = topologies.build(TOPOLOGY)
    with EmulatedNetwork(graph, static_routes=True, backend=config.backend) as net:
        rows = [_rtt_row(net, d, config.pings) for d in config.delays_ms]
        rows.append(_capacity_row(net, config.iperf_seconds))
        rows += [_rate_row(net, r, config.iperf_seconds, d) for d in (0, config.delayed_rate_ms)
                 for r in config.rates_mbit]
        with receive_buffers_up_to(LARGE_BUFFER):
            for p in config.pps:
                rows += [_pps_row(net, p, None), _pps_row(net, p, LARGE_BUFFER)]
        context = net.describe()
    return rows, context


def sustained(rows: list[Row], kind: str) -> float:
    """The highest rate received at an offered rate that lost < 1 % (0 if none)."""
    return max((r.measured for r in rows if r.kind == kind and r.ok), default=0.0)


def table(rows: list[Row], context: dict) -> list[str]:
    lines = [f"delay backend: {context['delay_backend']} (PM QoS low latency held: "
             f"{context['low_latency_pm_qos']})"]
    cal = context.get("calibration")
    if cal:
        lines.append(f"calibration: {cal['cost_us']:.1f} us per delayed traversal (scratch pair "
                     f"{cal['base_rtt_ms']:.3f} ms plain, {cal['delayed_rtt_ms']:.3f} ms with "
                     f"{cal['delay_ms']:g} ms each way), taken off every link's delay")
    path = context.get("delay_path")
    if path:
        lines.append(f"userspace path: timer armed {path['wake_margin_us']:.0f} us early for "
                     f"its measured wake-up lateness; release lateness over the run: median "
                     f"{path['release_lateness_p50']}, p99 {path['release_lateness_p99']}; "
                     f"{path['packets']} packets")
    lines += ["", "one-way delay   requested RTT   median RTT   mean RTT     error of median   "
              "within max(0.2 ms, 2 %)"]
    for r in (r for r in rows if r.kind == "rtt_ms"):
        lines.append(f"{r.requested / 2:>8g} ms   {r.requested:>10.2f} ms   {r.measured:>7.2f} ms"
                     f"   {r.extra.get('mean') or float('nan'):>7.3f} ms   "
                     f"{r.measured - r.requested:+9.2f} ms        {'yes' if r.ok else 'NO'}")
    lines.append("(ping prints RTTs of 10 ms and more to 0.1 ms, of 100 ms and more in whole "
                 "ms; the mean comes from its summary line, to the microsecond)")
    capacity = next((r.measured for r in rows if r.kind == "capacity_mbit"), None)
    lines += ["", "bandwidth    one-way delay   measured iperf3 TCP goodput   error     "
              "within 10 %"]
    if capacity is not None:
        lines.append(f"{'no limit':>11}   {0:>7g} ms   {capacity:>14.2f} Mbit/s       (what "
                     "the CPU carries)")
    for r in (r for r in rows if r.kind == "goodput_mbit"):
        err = 100 * (r.measured - r.requested) / r.requested
        lines.append(f"{r.requested:>6g} Mbit/s   {r.extra['delay_ms']:>7g} ms   "
                     f"{r.measured:>14.2f} Mbit/s       {err:+6.1f} %   "
                     f"{'yes' if r.ok else 'NO'}")
    lines += ["", "20 ms link, 64-byte UDP   receiving socket      offered pps   received pps"
              "   loss      dropped by the path"]
    for r in (r for r in rows if r.kind in ("default_socket_pps", "delay_path_pps")):
        buffer = "default buffer" if r.kind == "default_socket_pps" else \
            f"{r.extra['receive_buffer'] >> 20} MB buffer"
        lines.append(f"{'':>25} {buffer:<20} {r.extra['offered_pps']:>11}   "
                     f"{r.measured:>12.0f}   {r.extra['loss_pct']:5.2f} %   "
                     f"{r.extra['path_drops']:>8}")
    for kind, what in (("delay_path_pps", "the delayed link carried, < 1 % loss"),
                       ("default_socket_pps", "a default-sized receiving socket got, < 1 % "
                        "loss")):
        best = sustained(rows, kind)
        lines.append(f"{what}: {best:.0f} packets/s" if best else
                     f"{what}: lost >= 1 % at every offered rate")
    return lines


def passed(rows: list[Row]) -> bool:
    """Every delay and bandwidth row within its tolerance, and the delayed link carries at
    least 100 000 packets/s with < 1 % loss."""
    core = [r for r in rows if r.kind in ("rtt_ms", "goodput_mbit")]
    return all(r.ok for r in core) and sustained(rows, "delay_path_pps") >= 100_000


def figures(rows: list[Row], context: dict) -> dict:
    """What the results directory keeps: how the links were emulated, and every row."""
    return {"context": context, "rows": [asdict(r) for r in rows], "passed": passed(rows)}
