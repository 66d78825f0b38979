"""Probes: real clients run inside hosts, reporting what the host itself saw.

A probe never looks at a router's table or a daemon's state: it answers "did my packet get
there, and how long did it take", the only thing a user of either architecture can observe.
"""

from __future__ import annotations

import json
import re
import signal
import subprocess
import sys
import time
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from itertools import permutations

from topologies.graph import is_router
from topologies.polling import wait_until

_RTT = re.compile(r"= [\d.]+/([\d.]+)/")
_RECEIVED = re.compile(r"(\d+) received")


@dataclass(frozen=True)
class PingResult:
    src: str
    dst: str
    sent: int
    received: int
    rtt_ms: float | None  # average over the replies

    @property
    def ok(self) -> bool:
        return self.received > 0


def parse_ping(src: str, dst: str, sent: int, output: str) -> PingResult:
    received = _RECEIVED.search(output)
    rtt = _RTT.search(output)
    return PingResult(src, dst, sent, int(received.group(1)) if received else 0,
                      float(rtt.group(1)) if rtt else None)


def ping(net, src: str, dst: str, count: int = 1, timeout: float = 2.0,
         interval: float = 0.2) -> PingResult:
    result = net.exec(src, "ping", "-n", "-q", "-c", str(count), "-i", str(interval),
                      "-W", str(timeout), net.address(dst), check=False,
                      timeout=count * interval + timeout + 10)
    return parse_ping(src, dst, count, result.stdout)


@dataclass(frozen=True)
class PingSeries:
    rtts_ms: list[float]   # per reply, in order; ping prints >= 100 ms with 1 ms resolution
    summary: PingResult    # its average has microsecond resolution at any RTT
    first_ms: float | None = None  # the first echo's RTT (None: it got no reply)


def ping_series(net, src: str, dst: str, count: int, interval: float = 0.02) -> PingSeries:
    """From a router, ``-U`` (user-to-user time): the kernel timestamps a reply before the
    router's ingress delay queue holds it (``topologies.shaping``), so the plain figure would
    leave out the last link's delay, which the router's own programs (a gateway) do wait."""
    user = ["-U"] if is_router(net.graph, src) else []
    out = net.exec(src, "ping", "-n", *user, "-c", str(count), "-i", str(interval), "-W", "2",
                   net.address(dst), check=False, timeout=count * interval + 15).stdout
    replies = re.findall(r"icmp_seq=(\d+) .*time=([\d.]+) ms", out)
    return PingSeries([float(t) for _, t in replies], parse_ping(src, dst, count, out),
                      next((float(t) for seq, t in replies if seq == "1"), None))


def ping_times(net, src: str, dst: str, count: int, interval: float = 0.02) -> list[float]:
    """Every RTT of a ping run, in ms, in order (lost probes are simply absent)."""
    return ping_series(net, src, dst, count, interval).rtts_ms


def pingall(net, nodes: list[str] | None = None, parallel: int = 16,
            timeout: float = 1.0) -> list[PingResult]:
    """One ping from every node to every other (ordered pairs, as Mininet's pingall)."""
    nodes = list(nodes if nodes is not None else net.end_nodes())
    pairs = list(permutations(nodes, 2))
    with ThreadPoolExecutor(parallel) as pool:
        return list(pool.map(lambda p: ping(net, *p, timeout=timeout), pairs))


@dataclass(frozen=True)
class Sample:
    seq: int
    sent: float              # wall-clock send time, s (a lost datagram's is reconstructed)
    rtt_ms: float | None     # None: no reply (a one-way stream: the one-way delay)
    received: float | None = None  # wall-clock arrival at the far end, where it is recorded


class PingStream:
    """Probes src -> dst every ``interval`` seconds in the background (the prober's ``icmp``
    mode), so that an outage and its end are seen the way the host sees them. ``stop()``
    returns one Sample per probe, lost ones included, each with its real send time."""

    def __init__(self, net, src: str, dst: str, interval: float = 0.01):
        self.net = net
        self.process = net.popen(src, [sys.executable, "-m", "experiments.probing.prober", "icmp",
                                       net.address(dst), str(interval)],
                                 stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)

    def stop(self) -> list[Sample]:
        self.net.signal(self.process, signal.SIGINT)
        out, err = self.process.communicate(timeout=15)
        if self.process.returncode != 0:
            raise RuntimeError(f"the prober failed: {err.strip()[-300:]}")
        return [Sample(seq, sent, rtt) for seq, sent, rtt in json.loads(out)]


class LineProbers:
    """One long-lived ``experiments.probing.prober`` per node, in a mode that answers every
    line on its stdin with one JSON line (``matrix``, ``web``): ``ask`` gives each its line at
    once, then reads every answer. A context manager: leaving it kills them all."""

    def __init__(self, net, nodes: list[str], argv_of):
        self.probers = {n: net.popen(n, [sys.executable, "-m", "experiments.probing.prober",
                                          *argv_of(n)],
                                     stdin=subprocess.PIPE, stdout=subprocess.PIPE,
                                     stderr=subprocess.DEVNULL, text=True) for n in nodes}

    def ask(self, lines: dict[str, str]) -> dict:
        for node, line in lines.items():
            self.probers[node].stdin.write(line + "\n")
            self.probers[node].stdin.flush()
        answers = {}
        for node in lines:
            p = self.probers[node]
            line = p.stdout.readline()
            if not line:
                raise RuntimeError(f"the prober on {node} stopped (exit status {p.poll()})")
            answers[node] = json.loads(line)
        return answers

    def __enter__(self):
        return self

    def __exit__(self, *exc: object) -> None:
        for p in self.probers.values():
            p.kill()
            p.wait()


class UdpStream:
    """A one-way stream of sequenced datagrams src -> dst, recorded at dst: ``stop()`` returns
    one Sample per datagram sent, rtt_ms holding the one-way delay (None: never arrived)."""

    def __init__(self, net, src: str, dst: str, interval: float = 0.001, port: int = 9123):
        self.net = net
        prober = [sys.executable, "-m", "experiments.probing.prober"]
        self.sink = net.popen(dst, [*prober, "udp-sink", str(port)], stdout=subprocess.PIPE,
                              stderr=subprocess.PIPE, text=True)
        self.sink.stderr.readline()  # "listening"
        self.source = net.popen(src, [*prober, "udp-send", net.address(dst), str(port),
                                      str(interval)], stdout=subprocess.PIPE, text=True)
        self.interval = interval

    def stop(self) -> list[Sample]:
        self.net.signal(self.source, signal.SIGINT)
        (last,) = json.loads(self.source.communicate(timeout=15)[0])
        self.net.signal(self.sink, signal.SIGINT)
        got = {seq: (sent, received) for seq, sent, received in
               json.loads(self.sink.communicate(timeout=15)[0])}
        if not got:
            return []
        first = min(got)
        t0 = got[first][0] - (first - 1) * self.interval  # lost datagrams keep the pace
        return [Sample(seq, got[seq][0], (got[seq][1] - got[seq][0]) * 1000, got[seq][1])
                if seq in got else Sample(seq, t0 + (seq - 1) * self.interval, None)
                for seq in range(1, last + 1)]


def cut_time(samples: list[Sample], issued: float, tail: int = 20) -> float | None:
    """Seconds from ``issued`` (the command) to the arrival of the last datagram that arrived,
    provided the stream stopped for good: the ``tail`` or more datagrams sent after it in
    sequence never arrived. None if traffic never stopped, or had already stopped before the
    command (nothing then to attribute to it).

    By sequence and arrival, never by send time: a sender that stalls and catches up (both
    cores busy with a policy push) sends late but in order, and a chokepoint far down the
    path gets no credit for datagrams that were already past it: they arrive, and count."""
    arrived = [s for s in samples if s.received is not None]
    if not arrived:
        return None
    last_seq = max(s.seq for s in arrived)
    if sum(s.seq > last_seq for s in samples) < tail:
        return None
    last = max(s.received for s in arrived)
    return None if last < issued else last - issued


def one_way_ms(samples: list[Sample]) -> float | None:
    """The median one-way delay of what arrived: how long a datagram already on its way keeps
    arriving after a cut upstream."""
    delays = sorted(s.rtt_ms for s in samples if s.rtt_ms is not None)
    return delays[len(delays) // 2] if delays else None


def recovery_time(samples: list[Sample], failed_at: float) -> float | None:
    """Seconds from ``failed_at`` until probes get through again after the first outage that
    follows it: 0.0 if no probe sent after it was lost, None if none got through afterwards."""
    after = [s for s in samples if s.sent >= failed_at]
    first_lost = next((s for s in after if s.rtt_ms is None), None)
    if first_lost is None:
        return 0.0
    back = next((s for s in after if s.rtt_ms is not None and s.sent > first_lost.sent), None)
    return back.sent - failed_at if back else None


def reachable(results: list[PingResult]) -> str:
    ok = sum(r.ok for r in results)
    return f"{ok}/{len(results)} pairs reachable"


def wait_listening(net, node: str, port: int, proto: str = "tcp", timeout: float = 10) -> None:
    """Block until something listens on ``port`` inside ``node`` (bounded)."""
    if wait_until(lambda: net.listening(node, port, udp=proto != "tcp"), timeout):
        return
    raise TimeoutError(f"nothing listens on {proto} port {port} in {node} after {timeout} s")


def iperf3(net, client: str, server: str, seconds: float = 5, udp_rate: str | None = None,
           length: int | None = None, port: int = 5201, window: str | None = None,
           omit: float = 0) -> dict:
    """Run iperf3 between two nodes; returns iperf3's JSON summary ``end`` section.
    ``omit``: seconds left out at the start (TCP's slow start)."""
    srv = net.popen(server, ["iperf3", "-s", "-1", "-p", str(port)],
                    stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        wait_listening(net, server, port)
        argv = ["iperf3", "-c", net.address(server), "-p", str(port), "-t", str(seconds), "-J"]
        if udp_rate:
            argv += ["-u", "-b", udp_rate]
        if length:
            argv += ["-l", str(length)]
        if window:
            argv += ["-w", window]
        if omit:
            argv += ["-O", str(omit)]
        out = net.exec(client, *argv, check=False, timeout=seconds + omit + 30).stdout
        data = json.loads(out)
        if "error" in data:
            raise RuntimeError(f"iperf3 {client}->{server}: {data['error']}")
        return data["end"]
    finally:
        srv.kill()
        srv.wait()


EXPERIMENTAL_PROTOCOL = 253  # IP protocol numbers 253 and 254 are for experiments (RFC 3692)


def new_protocol(net, src: str, dst: str, proto: int = EXPERIMENTAL_PROTOCOL,
                 wait: float = 2.0) -> bool:
    """Does an IP packet of a protocol nobody approved get from ``src`` to ``dst``? Sent by
    ``src``'s own user (who may craft packets on their own machine), watched for at ``dst``
    by the experimenter: the open, general-purpose network's test."""
    watch = (f"from scapy.all import sniff; print(len(sniff(filter='ip proto {proto} and src "
             f"{net.address(src)}', timeout={wait}, count=1, started_callback=lambda: print("
             "'listening', flush=True))))")
    sniffer = net.popen(dst, [sys.executable, "-c", watch], privileged=True,
                        stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, text=True)
    try:
        if sniffer.stdout.readline().strip() != "listening":  # scapy is slow to import
            raise RuntimeError(f"{dst}: the sniffer did not start")
        net.exec(src, sys.executable, "-c", "from scapy.all import IP, Raw, send; send(IP("
                 f"dst='{net.address(dst)}', proto={proto}) / Raw(b'splinterlab'), count=3, "
                 "inter=0.1, verbose=0)", raw=True)
        out, _ = sniffer.communicate(timeout=wait + 10)
    finally:
        if sniffer.poll() is None:
            sniffer.kill()
    return out.strip() == "1"


def outage(net, src: str, dst: str, action, window: float, interval: float = 0.01,
           warmup: float = 0.5) -> tuple[float | None, list[Sample]]:
    """Ping src -> dst continuously, call ``action()`` (a failure), keep pinging for
    ``window`` seconds; return the recovery time seen by src (see ``recovery_time``)."""
    stream = PingStream(net, src, dst, interval)
    try:
        time.sleep(warmup)
        failed_at = time.time()
        action()
        time.sleep(window)
    finally:
        samples = stream.stop()
    return recovery_time(samples, failed_at), samples


class Matrix(LineProbers):
    """One prober per end node; ``round()`` returns the pairs lost, new and existing, of the
    pairs probed: each node's ``peers`` (default: every other node)."""

    def __init__(self, net, nodes: list[str], timeout: float,
                 peers: dict[str, list[str]] | None = None):
        self.nodes = nodes
        self.peers = peers or {n: [d for d in nodes if d != n] for n in nodes}
        self.address = {n: net.address(n) for n in nodes}
        self.rounds = 0
        super().__init__(net, nodes, lambda n: ["matrix", str(timeout),
                                                *(self.address[d] for d in self.peers[n])])

    def round(self) -> tuple[set, set]:
        """Each round's new flows go to a port of their own (20001 on, again after 40 000
        rounds: a lab's page runs them for hours)."""
        self.rounds += 1
        port = 20000 + 1 + (self.rounds - 1) % 40000
        answers = self.ask({n: f"round {port}" for n in self.nodes})
        by_address = {a: n for n, a in self.address.items()}
        lost_new, lost_existing = set(), set()
        for src, answer in answers.items():
            for kind, lost in (("new", lost_new), ("existing", lost_existing)):
                reached = {by_address.get(a) for a in answer[kind]}
                lost |= {(src, d) for d in self.peers[src] if d not in reached}
        return lost_new, lost_existing
