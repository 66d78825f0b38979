"""A process that belongs to a node (or to the run's machinery), as the network keeps it."""

from __future__ import annotations

import subprocess
from dataclasses import dataclass
from pathlib import Path

from . import cleanup
from .machines import Machine


@dataclass
class Daemon:
    """A process that belongs to a node: killed when the node crashes, restarted on restore;
    or, with node "", to a machine: lab machinery serving every node there (the run ends it).

    ``pidfile`` is for programs that fork into the background (FRR); otherwise the network
    keeps the child itself.
    """

    node: str
    name: str
    argv: list[str]
    pidfile: Path | None = None
    log: Path | None = None
    process: subprocess.Popen | None = None
    privileged: bool = False  # in a host: run as root, not as the host's user
    server: str | None = None  # with node "": the server it runs on (None: this machine)
    machine: Machine | None = None  # where it runs, if another server (the network sets it)
    written: Path | None = None  # there, without ``pidfile``: where its pid is written

    def _stat(self, pid: int) -> tuple[str, int] | None:
        """(state, start time) of ``pid`` where the daemon runs."""
        if self.machine is None:
            start = cleanup.start_time(pid)
            return (("R" if cleanup.alive(pid) else "Z"), start) if start is not None else None
        return self.machine.stat(pid)

    def pid(self) -> int | None:
        """A pidfile's second word, if any, is the process's start time: a pid freed and
        taken by another process since is not this daemon's. (A pidfile: the pid where the
        daemon runs; a process: the one this machine started, ssh for another server.)"""
        if self.pidfile:
            try:
                pid, *start = map(int, self.pidfile.read_text().split()[:2])
            except (OSError, ValueError):
                return None
            return pid if not start or (self._stat(pid) or ("", None))[1] == start[0] else None
        if self.written is not None:  # the process there, not the ssh that started it
            try:
                return int(self.written.read_text())
            except (OSError, ValueError):
                return None
        return self.process.pid if self.process else None

    def alive(self) -> bool:
        if self.process:
            return self.process.poll() is None
        pid = self.pid()
        stat = self._stat(pid) if pid is not None else None
        return stat is not None and stat[0] != "Z"
