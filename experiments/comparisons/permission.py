"""Who may start something without asking: a phase of the latency experiment, measured in
every design on the same hosts.

* newcomer: a host moves to an address of its own line that nobody registered or leased (a
  new device plugged in at home) and pings the national web server;
* new protocol: a host sends a few IP packets of a protocol nobody approved (253, for
  experiments) to the next host, whose experimenter watches for them (``probes.new_protocol``).

Each outcome is one probe's yes or no, kept per host; the scorecard (``scorecard``) reads the
shares. Where a design lets neither through, that is what it measures, not a fault.
"""

from __future__ import annotations

import random
from concurrent.futures import ThreadPoolExecutor

from experiments.probing import probes
from topologies.graph import hosts


def chosen(g, count: int, seed: int) -> list[str]:
    """The hosts that try: ``count`` of them, the same in every design of one run."""
    everyone = hosts(g)
    return sorted(random.Random(seed).sample(everyone, min(count, len(everyone))))


def newcomer(net, host: str, server: str) -> dict:
    """Does ``host`` reach ``server`` from an address nobody registered or leased?"""
    original = net.address(host)
    address = net.readdress(host)
    try:
        reached = probes.ping(net, host, server, count=3, timeout=1).ok  # any echo
    finally:
        net.readdress(host, original)
    return {"host": host, "address": address, "reached": reached}


def measure(net, server: str, tries: list[str]) -> dict:
    """Every chosen host as a newcomer, then each sends a new protocol to the next one; the
    hosts of each part at once (each probe waits on timeouts, not on the CPU)."""
    everyone = hosts(net.graph)
    pairs = [(h, everyone[(everyone.index(h) + 1) % len(everyone)]) for h in tries]
    with ThreadPoolExecutor(max(1, len(tries))) as pool:
        newcomers = list(pool.map(lambda h: newcomer(net, h, server), tries))
        crossed = list(pool.map(lambda p: probes.new_protocol(net, *p), pairs))
    return {"server": server, "newcomers": newcomers,
            "new_protocol": [{"src": a, "dst": b, "crossed": c}
                             for (a, b), c in zip(pairs, crossed, strict=True)]}


def shares(measured: dict) -> dict:
    """The share of newcomers who reached the server and of new-protocol sends that crossed."""
    def share(rows, key):
        return sum(r[key] for r in rows) / len(rows) if rows else None
    return {"newcomers_reached": share(measured["newcomers"], "reached"),
            "new_protocol_crossed": share(measured["new_protocol"], "crossed")}
