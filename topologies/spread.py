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
import subprocess
from pathlib import Path

from .delaypath import DelayPath
from .errors import NetworkError
from .machines import LOCAL, Machine
from .placement import Server, place
from .polling import wait_until
from .runstate import MARKER, SOCKETS_ROOT

SFTP_SERVER = "/usr/lib/openssh/sftp-server"
SSHFS_OPTIONS = "passive,allow_other,default_permissions,cache=no,dir_cache=no,attr_timeout=0"


class Spread:
    servers: list[Server]

    def _place(self) -> None:
        """Every node's server; none given: all here."""
        self.placement = place(self.graph, self.servers, self.seed) if self.servers else {}
        self.machines: dict[str, Machine] = {}
        self._mounts: list[subprocess.Popen] = []  # ended by the run's clean (marked)
        self.remote_delays: dict[str, DelayPath] = {}  # another server's delay process
        self.remote_delay_summary: dict[str, dict] = {}  # theirs, once stopped

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
        self.machines[server].run(["mkdir", "-p", str(path)])
        if owner:
            self.machines[server].run(["chown", f"{owner}:{owner}", str(path)])
        return path

    def on_machine(self, server: str | None, argv: list[str],
                   written: Path | None = None) -> list[str]:
        """``argv`` run on ``server`` itself (not in a node), with the run's mark; ``written``:
        a file its pid there is written to first (every program in ``argv`` execs the next,
        so it is the pid of the last), since this machine only sees the ssh that started it."""
        if server is None:
            return argv
        if written is not None:
            argv = ["sh", "-c", f'echo $$ > {written} && exec "$@"', "sh", *argv]
        return self.machines[server].argv(argv, {MARKER: self.run.run_id})

    def _join_servers(self) -> None:
        """Reach every server, share the run's directory with it, say so in the manifest."""
        if not self.servers:
            return
        control = self.run.subdir("ssh")
        self.machines = {s.name: Machine(s.name, control) for s in self.servers}
        for machine in self.remote_machines():
            why = machine.reachable()
            if why:
                raise NetworkError(f"server {machine.name}: ssh as root without a prompt "
                                   f"fails ({why}); 'splinterlab cluster check' says more")
        self.run.record(servers=[s.name for s in self.servers], placement=self.placement)
        for machine in self.remote_machines():
            self._mount(machine)

    def _mount(self, machine: Machine) -> None:
        where = str(self.run.dir)
        to_server, from_here = os.pipe()
        to_here, from_server = os.pipe()
        sftp = subprocess.Popen([SFTP_SERVER], stdin=to_here, stdout=from_here)
        mount = subprocess.Popen(machine.argv(
            ["sh", "-c", f"mkdir -p {where} && exec sshfs -f -o {SSHFS_OPTIONS} "
             f"controller:{where} {where}"], env={MARKER: self.run.run_id}),
            stdin=to_server, stdout=from_server)
        for fd in (to_server, from_here, to_here, from_server):
            os.close(fd)
        self._mounts += [mount, sftp]
        seen = lambda: machine.run(["test", "-e", f"{where}/manifest.json"],  # noqa: E731
                                   check=False).returncode == 0
        if not wait_until(seen, 15, 0.1):
            raise NetworkError(f"server {machine.name}: the run's directory could not be "
                               "mounted there (sshfs)")

    def _mininet(self, **topo):
        """Mininet for the graph: each node on its server, links between servers tunnels."""
        from mininet.net import Mininet

        from .mininet_topo import GraphTopo

        options = {}
        if self.remote_machines():
            from . import remote

            remote.RemoteCommands.run, remote.RemoteCommands.machines = self.run, self.machines
            options["link"] = remote.VxlanLink
        return Mininet(topo=GraphTopo(self.graph, placement=self.placement, **topo),
                       controller=None, build=False, waitConnected=False, **options)

    def on_server(self, node: str, argv: list[str], written: Path | None = None) -> list[str]:
        """``argv`` (run in ``node``'s namespace) as this machine runs it: over ssh, with the
        run's mark, if ``node`` is on another server (``on_machine``)."""
        return self.on_machine(self.server_of(node), argv, written)

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

    def spread_summary(self) -> dict:
        """What a results file says of the servers: who ran what, the links between them."""
        from collections import Counter

        from .placement import crossing

        return {"servers": [s.name for s in self.servers],
                "nodes": dict(sorted(Counter(self.placement.values()).items())),
                "links_between": len(crossing(self.graph, self.placement)),
                "tunnel": "VXLAN, made on each server and moved into the node",
                "run_directory": "this machine's, mounted on the others with sshfs",
                "delay_paths": {n: p.summary() for n, p in self.remote_delays.items()} or
                self.remote_delay_summary}

