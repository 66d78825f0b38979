"""What experiments do to a running network: links cut (two ways) and restored, routers
crashed and powered back on, an end node moved to another address of its line; and the
static routes the kernel drops with an interface, put back.

A mixin of ``network.EmulatedNetwork``, whose ``graph``, ``plan``, ``exec``, ``daemons``,
``down_links``, ``crashed`` and ``moved`` it uses.
"""

from __future__ import annotations

from .errors import NetworkError
from .graph import is_router
from .polling import STARTUP_S, wait_until

LINK_MODES = ("carrier", "silent")


def _chain(intf: str) -> str:
    return "cut_" + intf.replace("-", "_")


class Faults:
    def _link_ends(self, a: str, b: str) -> tuple[str, str]:
        if not self.graph.has_edge(a, b):
            raise NetworkError(f"there is no link {a}-{b} in this topology")
        return self.plan.intf(a, b).name, self.plan.intf(b, a).name

    def link_down(self, a: str, b: str, mode: str = "carrier") -> None:
        """Cut a link. ``carrier``: both interfaces go down, as when a cable is pulled, and
        the routers see it at once. ``silent``: frames vanish but the interfaces stay up, as
        when a box in between fails; only hello or BFD timeouts reveal it."""
        if mode not in LINK_MODES:
            raise NetworkError(f"link mode must be one of {', '.join(LINK_MODES)}")
        for node, intf in zip((a, b), self._link_ends(a, b), strict=True):
            if mode == "carrier":
                self.exec(node, "ip", "link", "set", intf, "down", privileged=True)
            else:
                self.exec(node, "nft", "-f", "-", privileged=True, input=(
                    f"table netdev splinter_cut {{ chain {_chain(intf)} {{ type filter hook "
                    f'ingress device "{intf}" priority -500; policy drop; }}; }}'))
        self.down_links[tuple(sorted((a, b)))] = mode

    def link_up(self, a: str, b: str) -> None:
        mode = self.down_links.pop(tuple(sorted((a, b))), None)
        for node, intf in zip((a, b), self._link_ends(a, b), strict=True):
            if mode == "silent":
                self.exec(node, "nft", "-f", "-", check=False, privileged=True,
                          input=f"delete chain netdev splinter_cut {_chain(intf)}")
            elif node not in self.crashed:
                self.exec(node, "ip", "link", "set", intf, "up", privileged=True)
        self._restore_static_routes([a, b])

    def crash(self, router: str) -> None:
        """A router dies: its daemons are killed and its interfaces go down."""
        if router not in self.graph or not is_router(self.graph, router):
            raise NetworkError(f"{router} is not a router of this topology")
        for daemon in self.daemons:
            if daemon.node == router:
                self._kill(daemon)
        for intf in self.plan.interfaces_of(router):
            self.exec(router, "ip", "link", "set", intf.name, "down")
        for peer, intf in self._far_ends(router):  # a veth's peer would lose its carrier
            self.exec(peer, "ip", "link", "set", intf, "down", privileged=True)
        self.crashed.add(router)

    def restore(self, router: str) -> None:
        """Power the router back on: interfaces up (except links still cut), daemons restarted
        once the kernel reports a carrier on each, so that routing daemons start on lines
        that are up rather than hear of them a moment later (a passive OSPF line once stayed
        unannounced after a restart under load)."""
        self.crashed.discard(router)
        live = [intf for intf in self.plan.interfaces_of(router)
                if self.down_links.get(tuple(sorted((router, intf.peer)))) != "carrier"]
        for intf in live:
            self.exec(router, "ip", "link", "set", intf.name, "up")
        for peer, intf in self._far_ends(router):
            if peer not in self.crashed and self.down_links.get(
                    tuple(sorted((router, peer)))) != "carrier":
                self.exec(peer, "ip", "link", "set", intf, "up", privileged=True)
        wanted = {intf.name for intf in live if intf.peer not in self.crashed}
        if not wait_until(lambda: wanted <= self._carrier(router), STARTUP_S):
            raise NetworkError(f"{router}: no carrier on {', '.join(sorted(wanted))} "
                               f"{STARTUP_S:g} s after it was powered back on")
        self._restore_static_routes([router, *self.graph.neighbors(router)])
        for daemon in self.daemons:
            if daemon.node == router:
                self.start_daemon(daemon)

    def _far_ends(self, router: str) -> list[tuple[str, str]]:
        """(peer, its interface) of ``router``'s links to other servers: a tunnel has no
        carrier to lose, so a crash takes the far end down too, as a veth's peer goes."""
        return [(intf.peer, self.plan.intf(intf.peer, router).name)
                for intf in self.plan.interfaces_of(router)
                if self.placement.get(intf.peer, "localhost") !=
                self.placement.get(router, "localhost")]

    def _carrier(self, node: str) -> set[str]:
        """The interfaces of ``node`` the kernel reports operationally up."""
        shown = self.exec(node, "ip", "-o", "link", "show", "up", check=False).stdout
        return {line.split(":")[1].strip().split("@")[0] for line in shown.splitlines()
                if "LOWER_UP" in line}

    def _route_devices(self, farms) -> None:
        """A farm's device blocks: local in the farm (every address of them is the farm's
        own, without one entry each), routed to the farm's line address by its router."""
        for farm in farms:
            for block in self.plan.devices[farm]:
                self.exec(farm, "ip", "route", "replace", "local", str(block), "dev", "lo",
                          privileged=True)
                self.exec(self.plan.interfaces_of(farm)[0].peer, "ip", "route", "replace",
                          str(block), "via", self.address(farm), check=False)

    def _restore_static_routes(self, nodes) -> None:
        """The kernel drops routes through an interface that went down; put them back. End
        nodes always have a static default route, device blocks their route; routers only
        without a routing protocol (which puts its own routes back)."""
        self._route_devices([f for f in self.plan.devices
                             if f in nodes or self.plan.interfaces_of(f)[0].peer in nodes])
        for node in nodes:
            if is_router(self.graph, node):
                if not self.static_routes:
                    continue
                routes = self[node].params.get("routes", [])
                self.exec(node, "ip", "-batch", "-", check=False, input="".join(
                    f"route replace {p} via {nh}\n" for p, nh in routes))
            else:
                self.exec(node, "ip", "route", "replace", "default", "via",
                          str(self.plan.gateway(node)), check=False, privileged=True)

    def readdress(self, end: str, address: str | None = None) -> str:
        """Move an end node to another address of its own line, as when an ISP hands out a new
        lease; ``address=None`` picks the next spare. Returns the new address."""
        (intf,) = self.plan.interfaces_of(end)
        line = intf.address.network
        spares = [str(a) for a in line.hosts() if a != self.plan.gateway(end)]
        current = self.address(end)
        target = address or next(a for a in spares if a != current)
        if target not in spares:
            raise NetworkError(f"{target} is not a free address of {end}'s line {line}")
        self.exec(end, "ip", "-batch", "-", privileged=True, input=(
            f"addr flush dev {intf.name}\naddr add {target}/{line.prefixlen} dev {intf.name}\n"
            f"route replace default via {self.plan.gateway(end)}\n"))
        if target == str(intf.address.ip):
            self.moved.pop(end, None)
        else:
            self.moved[end] = target
        return target
