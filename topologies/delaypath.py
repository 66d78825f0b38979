"""The userspace delay path: one ``splinterlab-delayd`` process per run, serving every node.

The program (``topologies/delayd.c``, built by ``scripts/setup.sh``) holds an nfnetlink_queue
socket in each node's network namespace and releases each queued packet when its link's delay
has passed. This module writes its configuration (namespaces, queues, the calibrated cost per
traversal), signals it to re-read it, waits until it has, and reads its statistics: how late
packets left, how early the timer fires to make up for wake-up latency, what each queue
carried. One process for the whole run instead of one per router: a few hundred kilobytes
instead of about 33 MB per router, and one place that knows the path's cost.
"""

from __future__ import annotations

import contextlib
import json
import os
import signal
import struct
import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path

from .graph import DEFAULT_SEED
from .machines import Machine
from .polling import wait_until
from .programs import NotBuilt, built

PROGRAM = "splinterlab-delayd"
RT_PRIORITY = 10  # above every other process of a run (all normal), below the kernel's own


class DelayPathError(RuntimeError):
    """The delay process is missing, died or did not answer; one sentence with a fix."""


def program() -> Path:
    """The built delay program (``programs.built``)."""
    try:
        return built(PROGRAM)
    except NotBuilt as e:
        raise DelayPathError(str(e)) from None


def hold_low_latency() -> int | None:
    """Keep CPUs out of deep idle while the returned fd stays open (PM QoS); the kernel drops
    the request when it closes, even if we are killed. Without it, waking from idle adds up to
    0.15 ms to every delayed packet on a VM. None if this machine does not allow it."""
    try:
        fd = os.open("/dev/cpu_dma_latency", os.O_WRONLY)
    except OSError:
        return None
    try:
        os.write(fd, struct.pack("i", 0))
    except OSError:
        os.close(fd)
        return None
    return fd


@dataclass(frozen=True)
class Queue:
    """One delayed direction of one link, as the delay process sees it."""

    node: str
    number: int
    delay_ms: float
    jitter_ms: float = 0.0


class DelayPath:
    """``start()``, then ``configure()`` as often as links change, ``stop()`` at the end."""

    def __init__(self, workdir: Path, seed: int = DEFAULT_SEED, machine: Machine | None = None,
                 mark: dict[str, str] | None = None):
        """``machine``: another server, which reads ``workdir`` as this one writes it (a run's
        shared directory); ``mark``: the environment that names the run there."""
        self.config = workdir / "delay.conf"
        self.log = workdir / "delay.log"
        self.seed = seed
        self.machine, self.mark = machine, mark or {}
        self.remote_pid: int | None = None  # the program's pid on ``machine``
        self.written: Path | None = None  # where it is written there
        self.process: subprocess.Popen | None = None
        self.generation = 0
        self.advance_us = 0.0
        self.scheduling = ""

    def start(self) -> None:
        self.config.write_text("generation 0\n")
        argv = [str(program()), str(self.config)]
        if self.machine is not None:  # the same install path there; its pid written first
            self.written = self.config.with_suffix(".pid")
            argv = self.machine.argv(argv, self.mark, self.written)
        with open(self.log, "ab") as log:
            self.process = subprocess.Popen(argv, stdout=log, stderr=subprocess.STDOUT,
                                            stdin=subprocess.DEVNULL)
        if self.machine is not None:
            self.remote_pid = self.machine.signal(self.written, 0, timeout=15)  # 0: is it there
            if self.remote_pid is None:
                raise DelayPathError(f"{self.machine.name}: the delay process did not start: "
                                     f"{self._tail()}")
        self.scheduling = _real_time(self.process.pid, self.machine, self.remote_pid)
        self._wait_ready()

    def _signal(self, sig: signal.Signals) -> None:
        if self.machine is None:
            self.process.send_signal(sig)
        else:
            self.machine.signal(self.written, sig)

    def configure(self, namespaces: dict[str, int], queues: list[Queue],
                  advance_us: float | None = None) -> None:
        """Serve exactly these namespaces (node -> pid of a process inside) and queues."""
        if advance_us is not None:
            self.advance_us = advance_us
        self.generation += 1
        lines = [f"generation {self.generation}", f"advance_ns {round(self.advance_us * 1000)}",
                 f"realtime {RT_PRIORITY if self.scheduling.startswith('SCHED_FIFO') else 0}"]
        lines += [f"ns {node} /proc/{pid}/ns/net" for node, pid in sorted(namespaces.items())]
        for k, q in enumerate(queues):
            lines.append(f"queue {q.node} {q.number} {round(q.delay_ms * 1e6)} "
                         f"{round(q.jitter_ms * 1e6)} {self.seed * 100_003 + k}")
        tmp = self.config.with_suffix(".tmp")
        tmp.write_text("\n".join(lines) + "\n")
        tmp.replace(self.config)
        self._signal(signal.SIGHUP)
        self._wait_ready()

    def _wait_ready(self, timeout: float = 15.0) -> None:
        ready = Path(f"{self.config}.ready")

        def taken() -> bool:
            with contextlib.suppress(OSError):
                if ready.read_text() == str(self.generation):
                    return True
            if self.process.poll() is not None:
                raise DelayPathError(f"the userspace delay process died: {self._tail()}")
            return False

        if wait_until(taken, timeout, 0.005):
            return
        raise DelayPathError(f"the userspace delay process did not take its configuration in "
                             f"{timeout:g} s")

    def _tail(self) -> str:
        try:
            return self.log.read_text()[-300:].strip()
        except OSError:
            return ""

    def _read_stats(self) -> dict:
        try:
            return json.loads(Path(f"{self.config}.stats").read_text())
        except (OSError, ValueError):
            return {}

    def stats(self) -> dict:
        """The process's statistics as of now (it writes them on SIGUSR1, and every second);
        ``summary`` gives the gist."""
        if self.process is None or self.process.poll() is not None:
            return self._read_stats()
        before = self._read_stats().get("written", 0)
        self._signal(signal.SIGUSR1)
        fresh = wait_until(lambda: (s := self._read_stats()).get("written", 0) > before and s,
                           2.0, 0.002)
        return fresh or self._read_stats()

    def summary(self) -> dict:
        """Release lateness percentiles, wake-up margin, packets carried and overruns, and how
        the process was scheduled."""
        return {**summarize(self.stats(), self.advance_us), "scheduling": self.scheduling}

    def stop(self) -> None:
        """SIGTERM: the process writes its final statistics and exits (``summary`` then reads
        them)."""
        if self.process is None or self.process.poll() is not None:
            return
        self._signal(signal.SIGTERM)
        try:
            self.process.wait(timeout=5)
        except subprocess.TimeoutExpired:
            os.kill(self.process.pid, signal.SIGKILL)
            self.process.wait()


def _real_time(pid: int, machine: Machine | None = None, remote_pid: int | None = None) -> str:
    """The delay path is the wire: it must run when a packet is due, not when the routing
    daemons, gateways and probers of a large graph leave it a turn (on two cores, a 62-router
    graph made it 4 ms late at p99 at rest under the ordinary scheduler). Real-time FIFO
    priority ``RT_PRIORITY`` gives it the core the moment its timer fires; it sleeps between
    releases. The program itself drops back to ordinary scheduling while it polls under load
    (see ``schedule_for`` in delayd.c). Returns what it got, for the run's record."""
    try:
        if machine is not None:
            said = machine.run(["chrt", "-f", "-p", str(RT_PRIORITY), str(remote_pid)],
                               check=False)
            if said.returncode:
                raise OSError(0, said.stderr.strip() or "chrt failed")
        else:
            os.sched_setscheduler(pid, os.SCHED_FIFO, os.sched_param(RT_PRIORITY))
        return f"SCHED_FIFO {RT_PRIORITY} while not polling"
    except OSError as e:
        print(f"delay path: real-time priority refused ({e.strerror}); its lateness will show "
              "it under load", file=sys.stderr)
        return f"normal (real-time refused: {e.strerror})"


def summarize(stats: dict, advance_us: float) -> dict:
    hist = stats.get("release_lateness_log2_us", [])
    total = sum(hist) + stats.get("early_releases", 0)

    def percentile(q: float) -> str | None:
        """Upper bound of the bucket holding the q-quantile: "< N us"."""
        if not total:
            return None
        seen = stats.get("early_releases", 0)
        for bucket, count in enumerate(hist):
            seen += count
            if seen >= q * total:
                return f"< {1 << bucket} us"
        return None

    namespaces = stats.get("namespaces", {})
    return {"calibrated_cost_us_per_traversal": round(advance_us, 1),
            "wake_margin_us": round(stats.get("wake_margin_ns", 0) / 1000, 1),
            "packets": sum(q["packets"] for n in namespaces.values()
                           for q in n["queues"].values()),
            "overruns": sum(n["overruns"] for n in namespaces.values()),
            "released_early_by_margin": stats.get("early_releases", 0),
            "release_lateness_p50": percentile(0.5), "release_lateness_p99": percentile(0.99)}
