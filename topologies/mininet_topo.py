"""Mininet's view of a topology graph: IP routers and end hosts joined by veth links, no switches.

Usable on its own with Mininet's ``mn`` (addresses and static routes, no link shaping)::

    sudo .venv/bin/python /usr/bin/mn --custom topologies/mininet_topo.py \\
         --topo isp --controller none --test pingall

Absolute imports on purpose: ``mn --custom`` executes this file outside its package.
"""

from __future__ import annotations

import os
import tempfile

import networkx as nx
from mininet.node import Node
from mininet.topo import Topo

import topologies
from topologies import addressing, routes
from topologies.graph import is_router

# Quiet, IPv4-only nodes: IPv6 autoconfiguration noise would bypass the IPv4 shaping rules.
_NODE_SYSCTLS = ("net.ipv6.conf.all.disable_ipv6=1", "net.ipv6.conf.default.disable_ipv6=1")


class EndHost(Node):
    """A host or server: one interface, a default route to its router. Any user may ping
    (ICMP "ping sockets"): hosts' processes are not root."""

    def config(self, **params):
        result = super().config(**params)
        self.cmd("sysctl -qw " + " ".join(_NODE_SYSCTLS) +
                 " net.ipv4.ping_group_range='0 2147483647'")
        return result


class Router(Node):
    """A Linux router: forwarding on, loopback address as router id, optional static routes.

    Reverse-path filtering is set per interface by the network (``source_validation``): the
    defaults here are off, since "all" would override every interface's own setting.
    """

    def config(self, loopback=None, routes=(), scratch=None, **params):
        result = super().config(**params)
        self.scratch = scratch
        self.cmd("sysctl -qw net.ipv4.ip_forward=1 net.ipv4.conf.all.rp_filter=0 "
                 "net.ipv4.conf.default.rp_filter=0 " + " ".join(_NODE_SYSCTLS))
        if loopback:
            self.cmd(f"ip addr add {loopback}/32 dev lo")
        if routes:
            self.batch("ip", [f"route replace {prefix} via {nh}" for prefix, nh in routes])
        return result

    def batch(self, tool: str, lines: list[str]) -> str:
        """Run many commands in one process; pty lines are too short for long command strings.
        The file is in ``scratch`` (where the router's server sees it too) if given."""
        with tempfile.NamedTemporaryFile("w", prefix="splinterlab-", suffix=".batch",
                                         dir=getattr(self, "scratch", None), delete=False) as f:
            f.write("\n".join(lines) + "\n")
        try:
            return self.cmd(f"{tool} -batch {f.name}")
        finally:
            os.unlink(f.name)


class GraphTopo(Topo):
    """One Mininet node per graph node, one veth link per edge, addresses from the plan.
    With ``private_root``, every host sees only ``<private_root>/<host>`` at
    /run/splinterlab (a private mount in its own mount namespace). ``placement``: node ->
    server, for a network spread over several (``spread``); ``scratch``: a directory every
    server sees, for routers' batch files."""

    def build(self, graph: nx.Graph, static: bool = True, private_root: str | None = None,
              placement: dict[str, str] | None = None, scratch: str | None = None):
        plan = addressing.plan(graph)
        table = routes.static_routes(graph, plan) if static else {}
        for node in graph:
            cls = Router if is_router(graph, node) else EndHost
            where = {}
            if (placement or {}).get(node, "localhost") != "localhost":  # another server's
                from topologies.remote import REMOTE

                cls = REMOTE[cls]
                where = {"server": placement[node], "serverIP": placement[node], "user": "root"}
            if is_router(graph, node):
                self.addHost(node, cls=cls, ip=None, loopback=str(plan.loopbacks[node]),
                             routes=[(str(p), str(nh)) for p, nh in table.get(node, [])],
                             scratch=scratch, **where)
            else:
                (intf,) = plan.interfaces_of(node)
                private = ([("/run/splinterlab", f"{private_root}/%(name)s")]
                           if private_root and graph.nodes[node]["role"] == "host" else [])
                self.addHost(node, cls=cls, ip=str(intf.address),
                             defaultRoute=f"via {plan.gateway(node)}", privateDirs=private,
                             **where)
        for a, b in sorted(graph.edges):
            ia, ib = plan.intf(a, b), plan.intf(b, a)
            self.addLink(a, b, port1=int(ia.name.rsplit("eth", 1)[1]),
                         port2=int(ib.name.rsplit("eth", 1)[1]),
                         params1={"ip": str(ia.address)}, params2={"ip": str(ib.address)})


def _mn_topo(name: str):
    def make(*args, **kwargs):
        spec = ",".join([name, *map(str, args), *(f"{k}={v}" for k, v in kwargs.items())])
        if name == "zoo":  # mn --topo zoo,Abilene,hosts=2
            first, _, rest = spec[4:].partition(",")
            spec = f"zoo:{first}" + (f",{rest}" if rest else "")
        return GraphTopo(topologies.build(spec))
    return make


topos = {name: _mn_topo(name) for name in [*topologies.BUILDERS, "zoo"]}
