"""``splinterlab up``: a network under one architecture, then the Mininet CLI or a test.

The CLI is Mininet's (``h1 ping h9``, ``h1 curl ...``, ``xterm h1``) plus failure commands
that go through the network object, the same way experiments schedule them.
"""

from __future__ import annotations

import time

from mininet.cli import CLI

import protocols
import topologies
from topologies.network import EmulatedNetwork, NetworkError

from . import probes


class SplinterCLI(CLI):
    prompt = "splinterlab> "

    def __init__(self, net: EmulatedNetwork, architecture, **kwargs):
        self.net = net
        self.architecture = architecture
        super().__init__(net.mn, **kwargs)

    def _act(self, action, *args) -> None:
        try:
            action(*args)
        except NetworkError as e:
            print(f"*** {e}")

    def do_link(self, line: str) -> None:
        """link A B down [carrier|silent] | link A B up: cut or repair the link A-B."""
        words = line.split()
        if len(words) < 3 or words[2] not in ("up", "down"):
            print("usage: link A B down [carrier|silent] | link A B up")
        elif words[2] == "down":
            self._act(self.net.link_down, words[0], words[1], *words[3:4])
        else:
            self._act(self.net.link_up, words[0], words[1])

    def do_crash(self, line: str) -> None:
        """crash R: router R dies (daemons killed, interfaces down)."""
        self._act(self.net.crash, line.strip())

    def do_restore(self, line: str) -> None:
        """restore R: router R comes back."""
        self._act(self.net.restore, line.strip())

    def do_pingall(self, line: str) -> None:
        """pingall: one ping between every ordered pair of end nodes."""
        results = probes.pingall(self.net)
        for r in results:
            if not r.ok:
                print(f"  {r.src} -> {r.dst}: no reply")
        print(probes.reachable(results))


def up(spec: str, arch: str, backend: str, test: str | None) -> int:
    graph = topologies.build(spec)
    architecture = protocols.get(arch)
    t0 = time.monotonic()
    with EmulatedNetwork(graph, backend=backend,
                         static_routes=architecture.static_routes) as net:
        architecture.start(net)
        print(f"*** {spec} is up under {arch} after {time.monotonic() - t0:.2f} s "
              f"(network {net.timings['bringup_s']:.2f} s; delay backend {net.backend})")
        if test == "pingall":
            results = probes.pingall(net)
            for r in results:
                if not r.ok:
                    print(f"  {r.src} -> {r.dst}: no reply")
            print(probes.reachable(results))
            return 0 if all(r.ok for r in results) else 1
        SplinterCLI(net, architecture)
    return 0
