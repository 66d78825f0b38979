"""Daemons an architecture runs on many routers, forked from one loaded interpreter
(``spawner``) rather than started as whole Python processes each."""

from __future__ import annotations

import sys
from pathlib import Path

from topologies.network import Daemon, EmulatedNetwork, NetworkError
from topologies.polling import STARTUP_S, wait_until

SPAWNER = [sys.executable, "-m", "protocols.spawner"]


class Spawner:
    """The spawner of ``module`` for one network, its socket in ``directory`` (root's alone)."""

    def __init__(self, net: EmulatedNetwork, module: str, directory: Path):
        self.net, self.module, self.directory = net, module, directory
        self.socket = directory / "spawner.sock"
        self.server: Daemon | None = None

    def start(self) -> None:
        """On the machine (``Daemon`` node ""), ended with the run; ready when this returns."""
        self.socket.unlink(missing_ok=True)
        log = self.directory / "spawner.log"
        self.server = server = self.net.start_daemon(Daemon(
            "", "spawner", [*SPAWNER, "serve", str(self.socket), self.module], log=log))

        def ready() -> bool:
            if not server.alive():
                raise NetworkError(f"the spawner of {self.module} died: "
                                   f"{log.read_text()[-300:].strip()}")
            return self.socket.exists()

        if not wait_until(ready, STARTUP_S):
            raise NetworkError(f"the spawner of {self.module} did not start within "
                               f"{STARTUP_S:g} s")

    def daemon(self, node: str, name: str, argument: Path, log: Path) -> Daemon:
        """``module``'s copy on ``node``, ``argument`` its one (start it with
        ``start_daemon``; a restore starts it again the same way)."""
        pidfile = log.with_suffix(".pid")
        return Daemon(node, name, [*SPAWNER, "ask", str(self.socket), name, str(argument),
                                   str(log), str(pidfile)], pidfile=pidfile, log=log)
