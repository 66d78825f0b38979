"""What one delayed traversal costs on this machine beyond the delay asked for, at bring-up.

A packet the userspace delay path holds also pays for its trip to userspace and back (the
kernel queues it and wakes the delay process, which later gives the verdict, and the kernel
re-injects it): machines of the same kind were measured at 0.07 and 0.15 ms per trip for the
earlier Python daemon, so a five-hop path read up to 1.5 ms long in RTT. netem has a cost of
its own too, from timer lateness: small on an ordinary machine, about 0.2 ms per traversal in
a VM under software emulation. Calibration pings across a veth between two scratch
namespaces, first plain, then with the backend delaying each direction by ``delay_ms``; half of
the difference, less the delay asked for, is the cost of one traversal. Every link is then
configured that much shorter (the userspace program releases packets that much earlier), and
every result records the figure. (The userspace program also corrects its own timer lateness
continuously, inside the process.)
"""

from __future__ import annotations

import contextlib
import os
import re
import statistics
import subprocess
from collections.abc import Iterator
from dataclasses import dataclass

from . import cleanup
from .delaypath import DelayPath, DelayPathError, Queue, hold_low_latency
from .polling import wait_until
from .runstate import MARKER, RunState

# Two scratch namespaces see only each other: any addresses would do (two of the national range).
A_ADDRESS, B_ADDRESS = "198.19.254.1", "198.19.254.2"
NODE = "calibration"


class CalibrationError(RuntimeError):
    pass


@dataclass(frozen=True)
class Calibration:
    backend: str
    cost_us: float         # per delayed traversal; taken off every packet's delay
    base_rtt_ms: float     # the scratch pair without the delay path (median)
    delayed_rtt_ms: float  # the same with delay_ms each way through it, uncorrected (median)
    delay_ms: float
    pings: int


def _in(pid: int, *argv: str, check: bool = True,
        input: str | None = None) -> subprocess.CompletedProcess:
    result = subprocess.run(["nsenter", "-t", str(pid), "-n", *argv], capture_output=True,
                            text=True, timeout=60, input=input)
    if check and result.returncode != 0:
        raise CalibrationError(f"calibration: '{' '.join(argv)}' failed: "
                               f"{result.stderr.strip()[:200]}")
    return result


def _new_namespace() -> subprocess.Popen:
    """A process in a namespace of its own; the namespace ends with it."""
    own = os.readlink("/proc/self/ns/net")
    process = subprocess.Popen(["unshare", "--net", "sleep", "600"])

    def moved() -> bool:
        with contextlib.suppress(OSError):
            return os.readlink(f"/proc/{process.pid}/ns/net") != own
        return False

    if wait_until(moved, 5, 0.002):
        return process
    process.kill()
    raise CalibrationError("calibration: a scratch network namespace did not appear")


@contextlib.contextmanager
def scratch_pair() -> Iterator[tuple[int, int]]:
    """Two namespaces joined by a veth (cal0 in the first, cal1 in the second)."""
    a = b = None
    try:
        a, b = _new_namespace(), _new_namespace()
        subprocess.run(["ip", "link", "add", "cal0", "netns", str(a.pid), "type", "veth",
                        "peer", "name", "cal1", "netns", str(b.pid)], check=True,
                       capture_output=True)
        for pid, intf, address in ((a.pid, "cal0", A_ADDRESS), (b.pid, "cal1", B_ADDRESS)):
            _in(pid, "ip", "addr", "add", f"{address}/30", "dev", intf)
            _in(pid, "ip", "link", "set", intf, "up")
            _in(pid, "ip", "link", "set", "lo", "up")
        yield a.pid, b.pid
    finally:
        for process in (a, b):
            if process is not None:
                process.kill()
                process.wait()


def _rtts(pid: int, count: int, interval: float) -> list[float]:
    out = _in(pid, "ping", "-n", "-c", str(count), "-i", str(interval), "-W", "1",
              B_ADDRESS, check=False).stdout
    return [float(v) for v in re.findall(r"time=([\d.]+) ms", out)]


def measure(backend: str, path: DelayPath | None = None, delay_ms: float = 2.0,
            pings: int = 30, interval: float = 0.01) -> Calibration:
    """Calibrate ``backend`` ("netem", or "userspace" with ``path``, a started DelayPath, left
    serving nothing). The userspace queues both sit in the far namespace, as on a host line
    (ingress and egress at the router): a node's own ingress delay would be invisible to its
    ping, which timestamps replies before it."""
    with scratch_pair() as (a, b):
        _rtts(a, 3, interval)  # neighbour discovery, caches
        base = _rtts(a, pings, interval)
        if backend == "userspace":
            path.configure({NODE: b}, [Queue(NODE, 0, delay_ms), Queue(NODE, 1, delay_ms)],
                           advance_us=0.0)
            _in(b, "iptables-restore", "-w", input="*mangle\n"
                "-A PREROUTING -i cal1 -j NFQUEUE --queue-num 0\n"
                "-A POSTROUTING -o cal1 -j NFQUEUE --queue-num 1\nCOMMIT\n")
        else:
            for pid, intf in ((a, "cal0"), (b, "cal1")):
                _in(pid, "tc", "qdisc", "add", "dev", intf, "root", "netem", "delay",
                    f"{delay_ms}ms")
        _rtts(a, 3, interval)
        delayed = _rtts(a, pings, interval)
    if path is not None:
        path.configure({}, [])
    if len(base) < pings // 2 or len(delayed) < pings // 2:
        raise CalibrationError("calibration: the scratch pair lost most of its pings")
    base_rtt, delayed_rtt = statistics.median(base), statistics.median(delayed)
    if delayed_rtt < base_rtt + 2 * delay_ms * 0.9:
        raise CalibrationError(f"calibration: {backend} did not delay ({delayed_rtt:.3f} ms "
                               f"RTT with {delay_ms:g} ms each way)")
    cost_us = max(0.0, (delayed_rtt - base_rtt - 2 * delay_ms) / 2 * 1000)
    return Calibration(backend, round(cost_us, 1), base_rtt, delayed_rtt, delay_ms, pings)


def measure_here(backend: str) -> Calibration:
    """A calibration on its own (for ``doctor``): a run of its own, swept away afterwards."""
    run = RunState.create()
    os.environ[MARKER] = run.run_id
    qos = hold_low_latency()
    path = DelayPath(run.subdir("delay")) if backend == "userspace" else None
    try:
        if path is not None:
            path.start()
        return measure(backend, path)
    except DelayPathError as e:
        raise CalibrationError(str(e)) from None
    finally:
        if path is not None:
            path.stop()
        os.environ.pop(MARKER, None)
        if qos is not None:
            os.close(qos)
        cleanup.clean(run.run_id)
