"""Commands on the machines a network spans: this one directly, the others over ssh.

ssh runs as root with ``BatchMode`` (a key, never a password prompt) and shares one
connection per machine (``ControlMaster``): a command then costs a few milliseconds instead of
a key exchange. ssh reads root's own ``~/.ssh/config`` unless ``SPLINTERLAB_SSH_CONFIG`` names
another file (the test bed's, for instance). The command line is quoted once, here; sshd hands
it to the remote user's shell. A shared connection lives ``PERSIST_S`` past its last session:
one left behind by a killed run goes by itself.
"""

from __future__ import annotations

import os
import shlex
import subprocess
import tempfile
from dataclasses import dataclass, field
from pathlib import Path

from .errors import NetworkError
from .polling import wait_until

LOCAL = "localhost"
SSH_CONFIG = "SPLINTERLAB_SSH_CONFIG"
CONNECT_TIMEOUT_S = 10
PERSIST_S = 30  # a shared connection outlives its last session this long, never more
SESSIONS = 6  # lasting sessions per shared connection (sshd's MaxSessions is 10 by default)


class MachineError(NetworkError):
    """A machine could not be reached or refused a command; one sentence naming it."""


@dataclass
class Machine:
    """``name``: ``localhost`` or what ssh connects to as root (a host, an address or a
    ``Host`` of the ssh configuration)."""

    name: str
    control_dir: Path | None = None
    ssh_config: str | None = None  # None: SPLINTERLAB_SSH_CONFIG's, or root's own
    _own_dir: bool = field(default=False, repr=False)
    _lasting: int = field(default=0, repr=False)  # lasting sessions asked for so far

    @property
    def local(self) -> bool:
        return self.name == LOCAL

    def ssh(self, lasting: bool = False) -> list[str]:
        """The ssh command line up to the remote command. A ``lasting`` session (a node's
        shell, a daemon, a prober) takes a connection of its own kind, ``SESSIONS`` to each:
        sshd's default allows ten on one connection, and a server runs many more."""
        if self.control_dir is None:
            self.control_dir = Path(tempfile.mkdtemp(prefix="splinterlab-ssh-"))
            self._own_dir = True
        slot = 0
        if lasting:
            slot = 1 + self._lasting // SESSIONS
            self._lasting += 1
        return self._ssh(slot)

    def _ssh(self, slot: int) -> list[str]:
        argv = ["ssh", "-o", "BatchMode=yes", "-o", f"ConnectTimeout={CONNECT_TIMEOUT_S}",
                "-o", "ServerAliveInterval=5", "-o", "LogLevel=ERROR",
                "-o", "ControlMaster=auto", "-o", f"ControlPath={self.control_dir}/%C-{slot}",
                "-o", f"ControlPersist={PERSIST_S}"]
        config = self.ssh_config or os.environ.get(SSH_CONFIG)
        if config:
            argv += ["-F", config]
        return [*argv, "-l", "root", self.name]

    def argv(self, argv: list[str], env: dict[str, str] | None = None,
             written: Path | None = None, lasting: bool = False) -> list[str]:
        """``argv`` to run on this machine, with ``env`` added to its environment; ``written``:
        a file its pid there is written to first (every program in ``argv`` execs the next,
        so it is the last one's), since this machine only sees the ssh that started it. A
        program whose pid is wanted is ``lasting`` (``ssh``)."""
        lasting = lasting or written is not None
        if written is not None:
            argv = ["sh", "-c", f'echo $$ > {shlex.quote(str(written))} && exec "$@"', "sh",
                    *argv]
        if env:
            argv = ["env", *(f"{k}={v}" for k, v in env.items()), *argv]
        return list(argv) if self.local else [*self.ssh(lasting), "--", shlex.join(argv)]

    def run(self, argv: list[str], *, input: str | None = None, timeout: float = 60,
            check: bool = True, env: dict[str, str] | None = None) -> subprocess.CompletedProcess:
        try:
            result = subprocess.run(self.argv(argv, env), input=input, capture_output=True,
                                    text=True, timeout=timeout,
                                    stdin=subprocess.DEVNULL if input is None else None)
        except subprocess.TimeoutExpired:
            raise MachineError(f"{self.name}: '{shlex.join(argv)}' did not finish in "
                               f"{timeout:g} s") from None
        if check and result.returncode:
            said = (result.stderr or result.stdout).strip().splitlines()
            raise MachineError(f"{self.name}: '{shlex.join(argv)[:120]}' failed: "
                               f"{said[-1] if said else f'exit status {result.returncode}'}")
        return result

    def signal(self, written: Path, sig: int, timeout: float = 5) -> int | None:
        """``sig`` to the program whose pid there is ``written`` (``argv``), once the file is
        there; its pid, or None if it never was."""
        pid = wait_until(lambda: written.read_text().strip() if written.exists() else None,
                         timeout, 0.01)
        if pid:
            self.run(["kill", f"-{int(sig)}", pid], check=False)
        return int(pid) if pid else None

    def stat(self, pid: int) -> tuple[str, int] | None:
        """(state, start time in clock ticks) of process ``pid`` there; None if there is none."""
        fields = self.run(["cat", f"/proc/{pid}/stat"], check=False).stdout.rsplit(")", 1)
        if len(fields) != 2 or len(fields[1].split()) < 20:
            return None
        state, *rest = fields[1].split()
        return state, int(rest[18])

    def reachable(self) -> str | None:
        """None if a root command runs there without a prompt, else why not (ssh's words)."""
        if self.local:
            return None
        result = subprocess.run([*self.ssh(), "--", "id -u"], capture_output=True, text=True,
                                timeout=CONNECT_TIMEOUT_S + 5, stdin=subprocess.DEVNULL)
        if result.returncode:
            said = result.stderr.strip().splitlines()
            return said[-1] if said else f"ssh exit status {result.returncode}"
        if result.stdout.strip() != "0":
            return f"logged in as uid {result.stdout.strip()}, not root"
        return None

    def close(self) -> None:
        """End the shared connections (and the directory of their sockets, if ours)."""
        if self.local or self.control_dir is None:
            return
        for slot in range(1 + (self._lasting + SESSIONS - 1) // SESSIONS):
            subprocess.run([*self._ssh(slot), "-O", "exit"], capture_output=True, timeout=10)
        if self._own_dir:
            for sock in self.control_dir.iterdir():
                sock.unlink(missing_ok=True)
            self.control_dir.rmdir()
            self.control_dir, self._own_dir = None, False
