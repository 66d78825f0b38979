"""Daemons an architecture runs on many routers, forked from one loaded interpreter
(``spawner``) rather than started as whole Python processes each."""

from __future__ import annotations

import sys
from pathlib import Path

from topologies.network import Daemon, EmulatedNetwork, NetworkError
from topologies.polling import STARTUP_S, wait_until

SPAWNER = [sys.executable, "-m", "protocols.spawner"]


class Spawner:
    """The spawners of ``module`` for one network: one on each server that runs nodes (its
    socket root's alone: in ``directory`` here, in the server's own directory elsewhere)."""

    def __init__(self, net: EmulatedNetwork, module: str, directory: Path):
        self.net, self.module, self.directory = net, module, directory
        self.sockets: dict[str | None, Path] = {}  # server (None: this machine) -> socket
        self.daemons: dict[str | None, Daemon] = {}  # server -> its spawner

    def start(self) -> None:
        """On each machine (``Daemon`` node ""), ended with the run; ready when this returns."""
        for server in [None, *self.net.servers_used()]:
            self._start(server)

    def _start(self, server: str | None) -> None:
        where = self.directory if server is None else \
            self.net.sockets_at(server, "spawner", self.directory.name)
        socket = self.sockets[server] = where / "spawner.sock"
        log = self.directory / ("spawner.log" if server is None else f"spawner-{server}.log")
        if server is None:
            socket.unlink(missing_ok=True)
        daemon = self.daemons[server] = self.net.start_daemon(Daemon(
            "", "spawner", [*SPAWNER, "serve", str(socket), self.module], log=log,
            server=server))

        def ready() -> bool:
            if not daemon.alive():
                raise NetworkError(f"the spawner of {self.module} died: "
                                   f"{log.read_text()[-300:].strip()}")
            if server is None:
                return socket.exists()
            return self.net.machines[server].run(["test", "-S", str(socket)],
                                                 check=False).returncode == 0

        if not wait_until(ready, STARTUP_S):
            raise NetworkError(f"the spawner of {self.module} did not start within "
                               f"{STARTUP_S:g} s")

    def daemon(self, node: str, name: str, argument: Path, log: Path) -> Daemon:
        """``module``'s copy on ``node`` from its server's spawner, ``argument`` its one
        (start it with ``start_daemon``; a restore starts it again the same way)."""
        pidfile = log.with_suffix(".pid")
        socket = self.sockets[self.net.server_of(node)]
        return Daemon(node, name, [*SPAWNER, "ask", str(socket), name, str(argument),
                                   str(log), str(pidfile)], pidfile=pidfile, log=log)
