"""A network spread over several servers (``--servers``): where each node runs, how the
servers share the run's directory, and how each is left clean.

The run's directory stays on this machine (the controller) and every other server mounts it
at the same path through sshfs in passive mode: this machine's sftp-server answers over the
ssh connection the mount runs in, so no server needs a way back. Daemons there read the
configuration written here and write their logs, records and pid files where the run reads
them. What a file system over ssh cannot hold, a Unix socket, goes to a directory of the
server's own (``sockets``). At the end each server runs its own ``splinterlab clean`` for
the run (``cleanup``: only the server sees its own processes and devices).

A mixin of ``network.EmulatedNetwork`` (``graph``, ``seed``, ``run``, ``mn``).
"""

from __future__ import annotations

import os
import re
import subprocess
import sys
from pathlib import Path

from .daemon import Daemon
from .delaypath import DelayPath
from .errors import NetworkError
from .graph import is_router
from .machines import LOCAL, SSH_CONFIG, Machine
from .placement import Server, crossing, place
from .polling import wait_until
from .runstate import MARKER, SOCKETS_ROOT

SFTP_SERVER = "/usr/lib/openssh/sftp-server"
TUNNEL_PINGS = 10
SSHFS_OPTIONS = "passive,allow_other,default_permissions,cache=no,dir_cache=no,attr_timeout=0"


class Spread:
    servers: list[Server]

    def _place(self) -> None:
        """Every node's server; none given: all here."""
        self.placement = place(self.graph, self.servers, self.seed) if self.servers else {}
        self.machines: dict[str, Machine] = {}
        self._mounts: list[subprocess.Popen] = []  # ended by the run's clean (marked)
        self._made: set[tuple[str, Path]] = set()  # socket directories made on servers
        self.remote_delays: dict[str, DelayPath] = {}  # another server's delay process
        self.remote_delay_summary: dict[str, dict] = {}  # theirs, once stopped
        self.tunnel_ms: dict[tuple[str, str], float] = {}  # link between servers -> its own
        self._started = 0  # programs started on other servers (``written_for``)
        self._there: dict[int, tuple[Machine, Path]] = {}  # local pid -> where, its pid file

    def machine(self, node: str) -> Machine | None:
        """The server running ``node``; None when it is this machine."""
        name = self.placement.get(node, LOCAL)
        return None if name == LOCAL else self.machines[name]

    def remote_machines(self) -> list[Machine]:
        return [m for m in self.machines.values() if not m.local]

    def server_of(self, node: str) -> str | None:
        """The name of the server running ``node``; None when it is this machine."""
        machine = self.machine(node)
        return machine.name if machine else None

    def servers_used(self) -> list[str]:
        """The other servers that run nodes."""
        return sorted({s for s in self.placement.values() if s != LOCAL})

    def sockets(self, node: str, *parts: str, owner: str | None = None) -> Path:
        """Where ``node``'s daemons keep their Unix sockets (``sockets_at`` its server)."""
        return self.sockets_at(self.server_of(node), *parts, owner=owner)

    def sockets_at(self, server: str | None, *parts: str, owner: str | None = None) -> Path:
        """A directory for Unix sockets on ``server``: in the run's directory here, in the
        server's own on another (sshfs cannot hold a socket)."""
        if server is None:
            return self.workdir(*parts, owner=owner)
        path = SOCKETS_ROOT / self.run.run_id / Path(*parts)
        if (server, path) not in self._made:  # once: it is asked for in polling loops
            self.machines[server].run(["mkdir", "-p", str(path)])
            if owner:
                self.machines[server].run(["chown", f"{owner}:{owner}", str(path)])
            self._made.add((server, path))
        return path

    def on_machine(self, server: str | None, argv: list[str],
                   written: Path | None = None) -> list[str]:
        """``argv`` run on ``server`` itself (not in a node), with the run's mark (and the
        file its pid there is ``written`` to: ``Machine.argv``)."""
        if server is None:
            return argv
        return self.machines[server].argv(argv, {MARKER: self.run.run_id}, written)

    def _join_servers(self) -> None:
        """Reach every server, share the run's directory with it, let its hosts reach the code
        (``reach``: the server's own clean takes it back), say so in the manifest."""
        if not self.servers:
            return
        control = self.run.subdir("ssh")
        self.machines = {s.name: Machine(s.name, control) for s in self.servers}
        for machine in self.remote_machines():
            why = machine.reachable()
            if why:
                raise NetworkError(f"server {machine.name}: ssh as root without a prompt "
                                   f"fails ({why}); 'splinterlab cluster check' says more")
        self.run.record(servers=[s.name for s in self.servers], placement=self.placement,
                        ssh_config=os.environ.get(SSH_CONFIG))
        for machine in self.remote_machines():
            self._mount(machine)
            machine.run([sys.executable, "-c", "from topologies import reach; reach.grant()"])

    def _mount(self, machine: Machine) -> None:
        where = str(self.run.dir)
        to_server, from_here = os.pipe()
        to_here, from_server = os.pipe()
        sftp = subprocess.Popen([SFTP_SERVER], stdin=to_here, stdout=from_here)
        mount = subprocess.Popen(machine.argv(
            ["sh", "-c", f"mkdir -p {where} && exec sshfs -f -o {SSHFS_OPTIONS} "
             f"controller:{where} {where}"], env={MARKER: self.run.run_id}, lasting=True),
            stdin=to_server, stdout=from_server)
        for fd in (to_server, from_here, to_here, from_server):
            os.close(fd)
        self._mounts += [mount, sftp]
        seen = lambda: machine.run(["test", "-e", f"{where}/manifest.json"],  # noqa: E731
                                   check=False).returncode == 0
        if not wait_until(seen, 15, 0.1):
            raise NetworkError(f"server {machine.name}: the run's directory could not be "
                               "mounted there (sshfs)")

    def _left_servers(self) -> None:
        """After the run's clean, which ended its mounts' processes (they carry its mark):
        collect them."""
        for process in self._mounts:
            process.kill()
            process.wait(timeout=5)
        self._mounts, self._made, self._there = [], set(), {}

    def _mininet(self, **topo):
        """Mininet for the graph: each node on its server, links between servers tunnels."""
        from mininet.net import Mininet

        from .mininet_topo import GraphTopo

        options = {}
        if self.remote_machines():
            from . import remote

            remote.RemoteCommands.run, remote.RemoteCommands.machines = self.run, self.machines
            remote.VxlanLink.count = 0  # a run's links numbered from 1 (names, VNIs)
            remote.VxlanLink.ends = {}  # and the servers' addresses and MTU asked again
            options["link"] = remote.VxlanLink
        return Mininet(topo=GraphTopo(self.graph, placement=self.placement, **topo),
                       controller=None, build=False, waitConnected=False, **options)

    def on_server(self, node: str, argv: list[str], written: Path | None = None) -> list[str]:
        """``argv`` (run in ``node``'s namespace) as this machine runs it: over ssh, with the
        run's mark, if ``node`` is on another server (``on_machine``)."""
        return self.on_machine(self.server_of(node), argv, written)

    def written_for(self, node: str) -> Path | None:
        """Where a program started on ``node`` writes its pid, if on another server."""
        if self.machine(node) is None:
            return None
        self._started += 1
        return self.workdir("pids") / f"{node}-{self._started}"

    def started_there(self, process: subprocess.Popen, node: str,
                      written: Path | None) -> subprocess.Popen:
        if written is not None:
            self._there[process.pid] = (self.machine(node), written)
        return process

    def signal(self, target, sig: int) -> None:
        """``sig`` to a process ``popen`` started or to a ``Daemon``: on another server, by
        its pid there (this machine's signal would reach only the ssh that started it)."""
        machine, written = (target.machine, target.written) if isinstance(target, Daemon) \
            else self._there.get(target.pid, (None, None))
        if machine is None:
            (target.process if isinstance(target, Daemon) else target).send_signal(sig)
            return
        machine.signal(written, sig)

    def delay_paths(self, queues: list) -> list[tuple[DelayPath, list]]:
        """Each server's delay process with the queues of its nodes (this machine's always,
        even with none); another server's is started the first time it has some."""
        mine = {None: []} | {m.name: [] for m in self.remote_machines()}
        for q in queues:
            machine = self.machine(q.node)
            mine[machine.name if machine else None].append(q)
        out = [(self.delay, mine.pop(None))]
        for name, theirs in mine.items():
            if name not in self.remote_delays and theirs:
                path = DelayPath(self.workdir("delay", name), self.seed, self.machines[name],
                                 {MARKER: self.run.run_id})
                path.start()
                self.remote_delays[name] = path
            if name in self.remote_delays:
                out.append((self.remote_delays[name], theirs))
        return out

    def _measure_tunnels(self) -> None:
        """Each link between servers: its own one-way latency beyond a veth pair's, from the
        least of ``TUNNEL_PINGS`` pings before anything is shaped, taken off the delay the
        link is given (``shaping_graph``), as calibration takes off the delay path's own."""
        links = crossing(self.graph, self.placement)
        if not links:
            return
        same = next((e for e in sorted(self.graph.edges) if self.placement[e[0]] ==
                     self.placement[e[1]] and all(is_router(self.graph, n) for n in e)), None)
        veth = self._least_rtt(*same) if same else self.calibration.base_rtt_ms
        for a, b in links:
            self.tunnel_ms[a, b] = round(max(0.0, (self._least_rtt(a, b) - veth) / 2), 4)
        self.run.record(tunnels_ms={f"{a}-{b}": ms for (a, b), ms in self.tunnel_ms.items()})

    def _least_rtt(self, a: str, b: str) -> float:
        said = self.exec(a, "ping", "-n", "-q", "-c", str(TUNNEL_PINGS), "-i", "0.01", "-W",
                         "1", str(self.plan.intf(b, a).address.ip), privileged=True,
                         check=False).stdout
        found = re.search(r"= ([\d.]+)/", said)
        if not found:
            raise NetworkError(f"the link {a}-{b} does not carry a ping ({self.placement[a]} "
                               f"to {self.placement[b]}): UDP port 4789 between them?")
        return float(found.group(1))

    def shaping_graph(self):
        """The graph as shaping should delay it: a link between servers less its tunnel's
        own latency."""
        if not self.tunnel_ms:
            return self.graph
        g = self.graph.copy()
        for (a, b), ms in self.tunnel_ms.items():
            g.edges[a, b]["delay_ms"] = max(0.0, g.edges[a, b].get("delay_ms", 0.0) - ms)
        return g

    def spread_summary(self) -> dict:
        """What a results file says of the servers: who ran what, the links between them."""
        from collections import Counter

        from . import remote

        return {"servers": [s.name for s in self.servers],
                "nodes": dict(sorted(Counter(self.placement.values()).items())),
                "links_between": len(crossing(self.graph, self.placement)),
                "tunnel_ms_taken_off": dict(sorted(
                    (f"{a}-{b}", ms) for (a, b), ms in self.tunnel_ms.items())),
                "tunnel": "VXLAN, made on each server and moved into the node",
                "tunnel_mtu": {f"{a}-{b}": mtu for (a, b), (_, _, mtu)
                               in sorted(remote.VxlanLink.ends.items()) if a < b},
                "run_directory": "this machine's, mounted on the others with sshfs",
                "delay_paths": {n: p.summary() for n, p in self.remote_delays.items()} or
                self.remote_delay_summary}

