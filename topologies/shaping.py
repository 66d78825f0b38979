"""Link shaping plans: which tc and iptables lines, and which delay queues, each node needs.

Two delay backends:

``netem``      the kernel's netem qdisc on the sender's egress (ordinary Linux kernels).
``userspace``  NFQUEUE + ``splinterlab-delayd`` (``topologies/delayd.c``, driven by
               ``topologies.delaypath``) for kernels without netem.

Bandwidth is always an HTB class on the sender's egress; with netem the netem qdisc hangs
under it. Where the userspace delay for the direction A -> B is applied matters:

* at A's egress (POSTROUTING) when A is a router: forwarded packets belong to no socket;
* at B's ingress (PREROUTING) when A is an end node. Held packets would otherwise still be
  charged to the sending socket, and TCP Small Queues and UDP send buffers would throttle the
  sender to a fraction of the link: the delay would cost throughput it should not.

So end nodes never have delay queues, except on a host-to-host link, where the receiver
does; there ``ping`` under-reports by the ingress delay because the kernel timestamps packets
before PREROUTING (``ping -U`` measures user to user). Our topologies never link two hosts.
Loss is an iptables ``statistic`` match at the same place as the delay.
"""

from __future__ import annotations

import subprocess
from dataclasses import dataclass, field
from functools import cache

import networkx as nx

from .addressing import AddressPlan
from .errors import NetworkError
from .graph import LinkSpec, is_router

BACKENDS = ("netem", "userspace")
NETEM_LIMIT = 100_000  # packets; the default 1000 would drop at high bandwidth x delay


@dataclass(frozen=True)
class DelayQueue:
    number: int
    interface: str
    delay_ms: float
    jitter_ms: float


@dataclass
class NodeShaping:
    tc: list[str] = field(default_factory=list)        # lines for `tc -batch`
    iptables: list[str] = field(default_factory=list)  # mangle rules for iptables-restore
    queues: list[DelayQueue] = field(default_factory=list)

    def iptables_restore(self) -> str:
        return "\n".join(["*mangle", *self.iptables, "COMMIT", ""])


def port(interface: str) -> int:
    return int(interface.rsplit("eth", 1)[1])


def htb_lines(dev: str, bw_mbit: float) -> list[str]:
    rate = f"{bw_mbit:g}mbit"
    quantum = int(min(200_000, max(1514, bw_mbit * 1e6 / 8 / 100)))
    return [f"qdisc replace dev {dev} root handle 1: htb default 1",
            f"class replace dev {dev} parent 1: classid 1:1 htb rate {rate} ceil {rate} "
            f"quantum {quantum}"]


def netem_line(dev: str, spec: LinkSpec, parent: str, cost_ms: float = 0.0) -> str:
    """``cost_ms``: netem's own lateness per traversal, measured by calibration, taken off."""
    line = f"qdisc replace dev {dev} {parent} handle 10: netem limit {NETEM_LIMIT}"
    if spec.delay_ms or spec.jitter_ms:
        line += f" delay {round(max(0.0, spec.delay_ms - cost_ms), 3):g}ms"
        if spec.jitter_ms:
            line += f" {spec.jitter_ms:g}ms"
    if spec.loss_pct:
        line += f" loss {spec.loss_pct:g}%"
    return line


def direction(g: nx.Graph, plan: AddressPlan, sender: str, receiver: str, backend: str,
              out: dict[str, NodeShaping], netem_cost_ms: float = 0.0) -> None:
    """Add the shaping of the direction sender -> receiver to ``out``."""
    spec = LinkSpec.of(g, sender, receiver)
    egress = plan.intf(sender, receiver).name
    tc = out.setdefault(sender, NodeShaping()).tc
    if spec.bw_mbit:
        tc += htb_lines(egress, spec.bw_mbit)
    delayed = spec.delay_ms or spec.jitter_ms
    if backend == "netem":
        if delayed or spec.loss_pct:
            tc.append(netem_line(egress, spec, "parent 1:1" if spec.bw_mbit else "root",
                                 netem_cost_ms))
        return
    if not (delayed or spec.loss_pct):
        return
    if is_router(g, sender):
        node, chain, match, intf = sender, "POSTROUTING", "-o", egress
    else:
        node, chain, intf = receiver, "PREROUTING", plan.intf(receiver, sender).name
        match = "-i"
    shaping = out.setdefault(node, NodeShaping())
    if spec.loss_pct:
        shaping.iptables.append(f"-A {chain} {match} {intf} -m statistic --mode random "
                                f"--probability {spec.loss_pct / 100:.6f} -j DROP")
    if delayed:
        number = port(intf)  # both directions of a host line share it: same link, same delay
        shaping.iptables.append(f"-A {chain} {match} {intf} -j NFQUEUE --queue-num {number}")
        if all(q.number != number for q in shaping.queues):
            shaping.queues.append(DelayQueue(number, intf, spec.delay_ms, spec.jitter_ms))


def plan_shaping(g: nx.Graph, plan: AddressPlan, backend: str,
                 netem_cost_ms: float = 0.0) -> dict[str, NodeShaping]:
    """Node -> what to install there, for every link of the graph. (The userspace path's cost
    is taken off by its program, not here.)"""
    if backend not in BACKENDS:
        raise ValueError(f"unknown delay backend {backend!r}")
    out: dict[str, NodeShaping] = {}
    for a, b in g.edges:
        direction(g, plan, a, b, backend, out, netem_cost_ms)
        direction(g, plan, b, a, backend, out, netem_cost_ms)
    return out


@cache
def netem_available() -> bool:
    """Try netem on the loopback of a throwaway namespace."""
    probe = subprocess.run(["unshare", "--net", "tc", "qdisc", "add", "dev", "lo", "root",
                            "netem", "delay", "1ms"], capture_output=True)
    return probe.returncode == 0


def resolve_backend(requested: str) -> str:
    if requested == "auto":
        return "netem" if netem_available() else "userspace"
    if requested not in BACKENDS:
        raise NetworkError(f"unknown delay backend {requested!r}; use auto, netem or userspace")
    if requested == "netem" and not netem_available():
        raise NetworkError("this kernel has no netem qdisc; use --backend userspace (or auto)")
    return requested
