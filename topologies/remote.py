"""Nodes on other servers, and links between servers, on Mininet's Cluster Edition.

Nodes placed on another server are Mininet's ``RemoteMixin`` nodes (their shell runs there
over ssh), carrying the run's mark so that the server's own ``splinterlab clean`` finds what
the run left. A link whose ends run on different servers is a VXLAN tunnel, not the Cluster
Edition's ssh tap tunnel (one ssh process per link, a fixed ``tap9`` name that two runs on one
server would share, connection limits past ten nodes): the kernel carries it, made in each
server's own namespace and then moved into the node's, where it takes the interface's name.
Its devices are named after the run (``vx`` + run tag + link number) so that a server can
sweep a run's leftovers without knowing anything else about it.
"""

from __future__ import annotations

import re
import socket
import subprocess

from mininet.examples.cluster import RemoteLink, RemoteMixin

from .machines import LOCAL, Machine, MachineError
from .mininet_topo import EndHost, Router
from .runstate import DEVICE_PREFIX, MARKER, RunState

VXLAN_PORT = 4789
TUNNEL_OVERHEAD = 50  # VXLAN over IPv4: outer Ethernet, IP, UDP and VXLAN headers
LINK_MTU = 1500  # a veth pair's: a tunnel carries as much where the servers' network allows


def device(run: RunState, number: int) -> str:
    """A tunnel device's name on a server, before it moves into its node."""
    return f"{DEVICE_PREFIX}{run.tag}{number:04x}"


def vni(run: RunState, number: int) -> int:
    """VXLAN network identifier: the run's tag in the top bits, the link in the low 12."""
    return (int(run.tag, 16) << 12 | number) & 0xFFFFFF or 1


class RemoteCommands:
    """What the run's remote nodes share: the run's mark and the machines' ssh."""

    run: RunState | None = None
    machines: dict[str, Machine] = {}


class _Remote(RemoteMixin):
    """A node on another server; ``sshbase`` is the run's ssh to it, and every process the
    node starts there carries the run's mark."""

    @property
    def sshbase(self):
        machine = RemoteCommands.machines[self.server]
        return [*machine.ssh(lasting=True)[:-1], "-tt"]

    def _popen(self, cmd, sudo=True, tt=True, **params):
        if isinstance(cmd, str):
            cmd = cmd.split()
        if self.isRemote:
            cmd = ["env", f"{MARKER}={RemoteCommands.run.run_id}", *cmd]
        return super()._popen(cmd, sudo=sudo, tt=tt, **params)


class RemoteRouter(_Remote, Router):
    pass


class RemoteEndHost(_Remote, EndHost):
    pass


REMOTE = {Router: RemoteRouter, EndHost: RemoteEndHost}


def address(machine: Machine, toward: Machine | None = None) -> str:
    """The address other servers reach ``machine`` at: this machine's source address toward
    ``toward``; another's, what ssh connects to (its configured HostName, resolved)."""
    if machine.local:
        target = address(toward)
        out = subprocess.run(["ip", "-o", "route", "get", target], capture_output=True,
                             text=True).stdout
        found = re.search(r"\bsrc (\S+)", out)
        if not found:
            raise MachineError(f"no route from this machine to {toward.name} ({target})")
        return found.group(1)
    ssh = subprocess.run([*machine.ssh()[:-1], "-G", machine.name], capture_output=True,
                         text=True).stdout
    host = next((line.split()[1] for line in ssh.splitlines()
                 if line.startswith("hostname ")), machine.name)
    try:
        return socket.getaddrinfo(host, None, socket.AF_INET)[0][4][0]
    except OSError:
        raise MachineError(f"{machine.name}: its address ({host}) does not resolve") from None


class _Tunnel:
    """What RemoteLink keeps as its tunnel: nothing to stop (the devices go with their
    namespaces)."""

    def terminate(self) -> None:
        pass


class VxlanLink(RemoteLink):
    """A veth pair on one server, a VXLAN tunnel between two."""

    count = 0
    ends: dict[tuple[str, str], tuple[str, str, int]] = {}  # servers -> addresses, MTU

    @classmethod
    def _between(cls, here: Machine, there: Machine) -> tuple[str, str, int]:
        """(here's address, there's address, the tunnel's MTU: a veth pair's where the
        servers' network carries it with the encapsulation, less where it does not)."""
        key = (here.name, there.name)
        if key not in cls.ends:
            mine, theirs = address(here, there), address(there, here)
            mtu = min(LINK_MTU, min(_mtu(here, theirs), _mtu(there, mine)) - TUNNEL_OVERHEAD)
            cls.ends[key] = (mine, theirs, mtu)
            cls.ends[key[::-1]] = (theirs, mine, mtu)
        return cls.ends[key]

    def makeTunnel(self, node1, node2, intfname1, intfname2, addr1=None, addr2=None):
        machines = RemoteCommands.machines
        ends = [(node1, intfname1, addr1), (node2, intfname2, addr2)]
        servers = [machines[getattr(n, "server", None) or LOCAL] for n, _, _ in ends]
        VxlanLink.count += 1
        run, number = RemoteCommands.run, VxlanLink.count
        name = device(run, number)
        for k, (node, intf, mac) in enumerate(ends):
            here, there = servers[k], servers[1 - k]
            mine, theirs, mtu = self._between(here, there)
            here.run(["ip", "link", "add", name, "mtu", str(mtu), "type", "vxlan", "id",
                      str(vni(run, number)), "remote", theirs, "local", mine,
                      "dstport", str(VXLAN_PORT)])
            here.run(["ip", "link", "set", name, "netns", str(node.pid)])
            node.cmd(f"ip link set {name} name {intf}" + (f" address {mac}" if mac else ""))
        return _Tunnel()


def _mtu(machine: Machine, toward: str) -> int:
    """The MTU of ``machine``'s device toward the address ``toward``."""
    route = machine.run(["ip", "-o", "route", "get", toward]).stdout
    dev = re.search(r"\bdev (\S+)", route)
    out = machine.run(["ip", "-o", "link", "show", "dev", dev.group(1)]).stdout if dev else ""
    found = re.search(r"\bmtu (\d+)", out)
    return int(found.group(1)) if found else 1500
