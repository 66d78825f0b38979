"""A deterministic IPv4 plan for a topology graph, from ranges never routed on the Internet.

The same graph always gets the same addresses and interface names, so both architectures of a
paired run see identical addresses, and results name the same nodes.

=====================  ===================  =================================================
national links         198.18.0.0/18        a /30 per router-router link
device blocks          198.18.64.0/18       device farms' devices (``farm`` hosts), routed
                       198.18.192.0/18      to the farm's line address; a farm takes these
                       198.19.128.0/17      blocks in order, as many as its devices need
                       (but 198.19.255.0/24)
national loopbacks     198.18.128.0/18      a /32 per router (OSPF router id)
national end lines     198.19.K.0/24        K = the attachment router; a /29 per end node
                                            (past 254 routers with end nodes, smaller
                                            blocks: ``line_blocks``)
unused (censor lies)   198.19.255.0/24      answers that lead nowhere
foreign links          192.0.2.0/25         a /30 per link touching a foreign router
foreign loopbacks      192.0.2.128/25
foreign end lines      203.0.113.0/24       a /29 per foreign server
=====================  ===================  =================================================

An end line is a /29 so that an end node can move to a spare address of its own line (the
"address change" evasion): the router's .1, the node's .2, spares .3-.6.

A device farm (a host whose graph node says ``farm``: how many devices) stands for thousands of
IoT devices, each with an address of its own, in one namespace: its blocks are routed to the
farm's line address (the router holds a route a block, not one neighbour entry per device)
and are local in the farm. Device k has the k-th address of its farm's blocks, each block's
first and last left out (``device_addresses``). Farms of up to 16 382 devices take a /18 each;
farms of more than 32 764 in all take 198.19.128.0/17 too, which must then hold no end line:
hosts on 127 routers at most while each router has a /24 (the plan says so).
"""

from __future__ import annotations

import ipaddress
from dataclasses import dataclass, field
from ipaddress import IPv4Address, IPv4Interface, IPv4Network

import networkx as nx

from .graph import TopologyError, end_nodes, is_foreign, is_router, natural_key, routers

NATIONAL = IPv4Network("198.18.0.0/15")
NATIONAL_LINKS = IPv4Network("198.18.0.0/18")
NATIONAL_LOOPBACKS = IPv4Network("198.18.128.0/18")
NATIONAL_LINES = IPv4Network("198.19.0.0/16")
UNROUTED = IPv4Network("198.19.255.0/24")
FIRST_LINES = IPv4Network("198.19.1.0/24")  # the first router's end lines
DEVICE_BLOCKS = (IPv4Network("198.18.64.0/18"), IPv4Network("198.18.192.0/18"),
                 *sorted(IPv4Network("198.19.128.0/17").address_exclude(UNROUTED)))
FOREIGN_LINKS = IPv4Network("192.0.2.0/25")
FOREIGN_LOOPBACKS = IPv4Network("192.0.2.128/25")
FOREIGN_LINES = IPv4Network("203.0.113.0/24")
FOREIGN = (IPv4Network("192.0.2.0/24"), IPv4Network("198.51.100.0/24"), FOREIGN_LINES)
LINE_PREFIX = 29


def int_of(net: IPv4Network) -> int:
    return int(net.network_address)


@dataclass(frozen=True)
class Interface:
    node: str
    name: str
    address: IPv4Interface
    peer: str


@dataclass
class AddressPlan:
    interfaces: dict[tuple[str, str], Interface] = field(default_factory=dict)
    loopbacks: dict[str, IPv4Address] = field(default_factory=dict)
    devices: dict[str, tuple[IPv4Network, ...]] = field(default_factory=dict)  # farm -> blocks

    def intf(self, node: str, peer: str) -> Interface:
        """The interface of ``node`` on its link to ``peer``."""
        return self.interfaces[node, peer]

    def interfaces_of(self, node: str) -> list[Interface]:
        return sorted((i for (n, _), i in self.interfaces.items() if n == node),
                      key=lambda i: natural_key(i.name))

    def address(self, node: str) -> IPv4Address:
        """The address other nodes use for ``node``: loopback of a router, line of an end."""
        if node in self.loopbacks:
            return self.loopbacks[node]
        (intf,) = self.interfaces_of(node)
        return intf.address.ip

    def gateway(self, end: str) -> IPv4Address:
        (intf,) = self.interfaces_of(end)
        return self.intf(intf.peer, end).address.ip

    def line(self, end: str) -> IPv4Network:
        (intf,) = self.interfaces_of(end)
        return intf.address.network

    def infrastructure(self, g: nx.Graph) -> list[IPv4Network]:
        """The national control plane's addresses: every router's (links, loopbacks, its
        address on each end-node line), no host's destination under registered access."""
        lines = sorted({IPv4Network(self.gateway(e)) for e in end_nodes(g)
                        if not is_foreign(g, e)}, key=int_of)
        return [NATIONAL_LINKS, NATIONAL_LOOPBACKS, *lines]

    def own_prefixes(self, end: str) -> list[IPv4Network]:
        """What an end node may send from: its line, and a farm's device blocks."""
        return [self.line(end), *self.devices.get(end, ())]

    def blocks(self) -> list[IPv4Network]:
        """Every farm's device blocks."""
        return [b for blocks in self.devices.values() for b in blocks]

    def node_of(self, address: IPv4Address | str) -> str | None:
        address = IPv4Address(str(address))
        for farm, blocks in self.devices.items():
            if any(address in b for b in blocks):
                return farm
        for node, lo in self.loopbacks.items():
            if lo == address:
                return node
        for intf in self.interfaces.values():
            if intf.address.ip == address:
                return intf.node
        return None

    def prefixes(self) -> list[IPv4Network]:
        """Every prefix a router must be able to reach."""
        nets = {i.address.network for i in self.interfaces.values()}
        nets |= {IPv4Network(f"{lo}/32") for lo in self.loopbacks.values()}
        return sorted(nets | set(self.blocks()))


class _Pool:
    def __init__(self, net: IPv4Network, prefixlen: int, what: str):
        self._subnets = net.subnets(new_prefix=prefixlen)
        self._what = what

    def take(self) -> IPv4Network:
        try:
            return next(self._subnets)
        except StopIteration:
            raise TopologyError(f"the topology has too many {self._what} for the address "
                                "plan; use fewer nodes") from None


def _ports(g: nx.Graph) -> dict[tuple[str, str], int]:
    """Port numbers per node, in a canonical edge order (Mininet names ports <node>-eth<N>)."""
    ports: dict[tuple[str, str], int] = {}
    nxt: dict[str, int] = {}
    for a, b in sorted((tuple(sorted(e, key=natural_key)) for e in g.edges),
                       key=lambda e: (natural_key(e[0]), natural_key(e[1]))):
        for node, peer in ((a, b), (b, a)):
            ports[node, peer] = nxt.get(node, 0)
            nxt[node] = ports[node, peer] + 1
    return ports


def plan(g: nx.Graph) -> AddressPlan:
    p = AddressPlan()
    ports = _ports(g)
    national_links = _Pool(NATIONAL_LINKS, 30, "national links")
    foreign_links = _Pool(FOREIGN_LINKS, 30, "links abroad")
    national_lo = iter(NATIONAL_LOOPBACKS.hosts())
    foreign_lo = iter(FOREIGN_LOOPBACKS.hosts())
    foreign_lines = _Pool(FOREIGN_LINES, LINE_PREFIX, "foreign servers")
    for r in routers(g):
        try:
            p.loopbacks[r] = next(foreign_lo if is_foreign(g, r) else national_lo)
        except StopIteration:
            raise TopologyError("the topology has too many routers for the address plan") from None

    def add(node: str, peer: str, addr: IPv4Interface) -> None:
        p.interfaces[node, peer] = Interface(node, f"{node}-eth{ports[node, peer]}", addr, peer)

    for a, b in sorted(g.edges, key=lambda e: sorted(map(natural_key, e))):
        if not (is_router(g, a) and is_router(g, b)):
            continue
        pool = foreign_links if is_foreign(g, a) or is_foreign(g, b) else national_links
        x, y = pool.take().hosts()
        a, b = sorted((a, b), key=natural_key)
        add(a, b, IPv4Interface(f"{x}/30"))
        add(b, a, IPv4Interface(f"{y}/30"))

    blocks = line_blocks(g)
    pools = {r: _Pool(b, LINE_PREFIX, f"end nodes on router {r} (max "
                      f"{b.num_addresses >> (32 - LINE_PREFIX)})") for r, b in blocks.items()}
    for end in end_nodes(g):
        (router,) = g.neighbors(end)
        line = foreign_lines.take() if is_foreign(g, router) else pools[router].take()
        gw, addr = list(line.hosts())[:2]
        add(router, end, IPv4Interface(f"{gw}/{LINE_PREFIX}"))
        add(end, router, IPv4Interface(f"{addr}/{LINE_PREFIX}"))
    p.devices = _device_blocks(g, max((int(b.broadcast_address) + 1 for b in blocks.values()),
                                      default=int(FIRST_LINES.network_address)))
    return p


def line_blocks(g: nx.Graph) -> dict[str, IPv4Network]:
    """Each national router with end nodes -> the block its end lines come from: 198.19.K.0/24
    for the K-th while 254 are enough; past that (a continent of the world backbone), blocks
    as small as the router with the most end nodes needs, packed from 198.19.1.0."""
    with_ends = {r: sum(not is_router(g, n) for n in g.neighbors(r)) for r in routers(g)
                 if not is_foreign(g, r) and any(not is_router(g, n) for n in g.neighbors(r))}
    size = 24
    if len(with_ends) > 254:
        # never more than a /24 (aligned where 198.19.K.0 is): a router of more end nodes
        # finds its pool too small and says so
        size = max(24, LINE_PREFIX - (max(with_ends.values()) - 1).bit_length())
    step = 1 << (32 - size)
    room = (int(UNROUTED.network_address) - int(FIRST_LINES.network_address)) // step
    if len(with_ends) > room:
        raise TopologyError(f"the topology has {len(with_ends)} routers with end nodes; the "
                            f"address plan has room for {room} with up to "
                            f"{step >> (32 - LINE_PREFIX)} each")
    return {r: IPv4Network((int(FIRST_LINES.network_address) + k * step, size))
            for k, r in enumerate(with_ends)}


def _device_blocks(g: nx.Graph, lines_end: int) -> dict[str, tuple[IPv4Network, ...]]:
    """Each farm's blocks, taken in order until they hold its devices."""
    free = list(DEVICE_BLOCKS)
    out = {}
    for farm in (e for e in end_nodes(g) if g.nodes[e].get("farm")):
        if is_foreign(g, next(iter(g.neighbors(farm)))):
            raise TopologyError(f"farm {farm} is abroad; the address plan has device blocks "
                                "for national farms only")
        need, taken = int(g.nodes[farm]["farm"]), []
        while need > 0 and free:
            taken.append(free.pop(0))
            need -= capacity(taken[-1:])
        if need > 0:
            raise TopologyError(f"the address plan has room for {capacity(DEVICE_BLOCKS)} "
                                "devices in all its farms")
        out[farm] = tuple(taken)
    if any(int(b.network_address) < lines_end for blocks in out.values() for b in blocks
           if b.subnet_of(NATIONAL_LINES)):
        raise TopologyError("farms of more than 32 764 devices in all take 198.19.128.0/17, "
                            "where this graph's end lines reach: give it fewer routers with "
                            "end nodes")
    return out


def capacity(blocks) -> int:
    """How many devices ``blocks`` hold (each block's first and last address left out)."""
    return sum(b.num_addresses - 2 for b in blocks)


def device_addresses(blocks) -> list[int]:
    """A farm's device addresses, device 0 first: its blocks' in order, each block's first
    and last left out. ``blocks``: networks or their text, in the plan's order."""
    return [a for b in (IPv4Network(str(b)) for b in blocks)
            for a in range(int(b.network_address) + 1, int(b.broadcast_address))]


def is_national(address: IPv4Address | str) -> bool:
    return ipaddress.ip_address(str(address)) in NATIONAL
