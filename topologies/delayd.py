"""Userspace link delay for kernels without netem: hold each packet's verdict until it is due.

One process per node namespace. iptables sends a link's packets to NFQUEUE number N (one queue
per interface, N = the interface's port); this process keeps (release time, packet id) in a
FIFO per queue and accepts, in one batch verdict, every packet that is due. Release times never
decrease, so jitter does not reorder packets (netem's default jitter does) and a batch verdict
("everything up to id N") is exact. Only metadata crosses to userspace, never payloads; GSO
packets are queued whole.

The config file maps queue numbers to delays; SIGHUP re-reads it, and the process writes the
config generation it applied to ``<config>.ready`` so the caller can wait for it. Packets are
dropped, never passed undelayed, if this process is not listening: an emulation that silently
loses its delay would report false numbers.

    python -m topologies.delayd CONFIG.json
"""

from __future__ import annotations

import collections
import ctypes
import json
import os
import random
import select
import signal
import sys
import time
from pathlib import Path

from .nfqueue import QueueSocket

PR_SET_TIMERSLACK = 29


class Link:
    __slots__ = ("delay", "jitter", "fifo", "last_release")

    def __init__(self):
        self.delay = self.jitter = self.last_release = 0.0
        self.fifo: collections.deque[tuple[float, int]] = collections.deque()


class DelayDaemon:
    def __init__(self, config: Path):
        self.config = config
        self.queues = QueueSocket()
        self.links: dict[int, Link] = {}
        self.rng = random.Random(0)
        self.reload = True
        self.wakeup, write_end = os.pipe2(os.O_NONBLOCK | os.O_CLOEXEC)
        signal.set_wakeup_fd(write_end)  # a signal makes select() return
        signal.signal(signal.SIGHUP, lambda *_: setattr(self, "reload", True))

    def apply_config(self) -> None:
        data = json.loads(self.config.read_text())
        self.rng.seed(data.get("seed", 0))
        for number, spec in data["queues"].items():
            link = self.links.get(int(number))
            if link is None:
                self.queues.bind(int(number))
                link = self.links[int(number)] = Link()
            link.delay = spec["delay_ms"] / 1000
            link.jitter = min(spec.get("jitter_ms", 0.0), spec["delay_ms"]) / 1000
        Path(f"{self.config}.ready").write_text(str(data["generation"]))

    def arrive(self) -> None:
        links, monotonic, uniform = self.links, time.monotonic, self.rng.uniform
        for queue, packet_id in self.queues.read_ids():
            link = links[queue]
            due = monotonic() + link.delay
            if link.jitter:
                due += uniform(-link.jitter, link.jitter)
            if due < link.last_release:
                due = link.last_release
            link.last_release = due
            link.fifo.append((due, packet_id))

    def release(self) -> float:
        """Accept what is due, one batch verdict per queue; return the next due time."""
        now, soonest = time.monotonic(), float("inf")
        for queue, link in self.links.items():
            fifo, last = link.fifo, 0
            while fifo and fifo[0][0] <= now:
                last = fifo.popleft()[1]
            if last:
                self.queues.verdict_batch(queue, last)
            if fifo and fifo[0][0] < soonest:
                soonest = fifo[0][0]
        return soonest

    def run(self) -> None:
        sources = [self.wakeup, self.queues]
        while True:
            if self.reload:
                self.reload = False
                self.apply_config()
            due = self.release()
            timeout = None if due == float("inf") else max(0.0, due - time.monotonic())
            readable, _, _ = select.select(sources, [], [], timeout)
            if self.queues in readable:
                self.arrive()
            if self.wakeup in readable:
                os.read(self.wakeup, 512)


def main() -> None:
    # Precise wake-ups: the default 50 us timer slack would add to every packet's delay.
    ctypes.CDLL(None).prctl(PR_SET_TIMERSLACK, 1, 0, 0, 0)
    DelayDaemon(Path(sys.argv[1])).run()


if __name__ == "__main__":
    main()
