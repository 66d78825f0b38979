"""Commands on the machines a network spans: this one directly, the others over ssh.

ssh runs as root with ``BatchMode`` (a key, never a password prompt) and shares one
connection per machine (``ControlMaster``): a command then costs a few milliseconds instead of
a key exchange. ssh reads root's own ``~/.ssh/config`` unless ``SPLINTERLAB_SSH_CONFIG`` names
another file (the test bed's, for instance). The command line is quoted once, here; sshd hands
it to the remote user's shell.
"""

from __future__ import annotations

import os
import shlex
import subprocess
import tempfile
from dataclasses import dataclass, field
from pathlib import Path

from .errors import NetworkError

LOCAL = "localhost"
SSH_CONFIG = "SPLINTERLAB_SSH_CONFIG"
CONNECT_TIMEOUT_S = 10


class MachineError(NetworkError):
    """A machine could not be reached or refused a command; one sentence naming it."""


@dataclass
class Machine:
    """``name``: ``localhost`` or what ssh connects to (a host, an address, ``user@host`` or
    a ``Host`` of the ssh configuration)."""

    name: str
    control_dir: Path | None = None
    _own_dir: bool = field(default=False, repr=False)

    @property
    def local(self) -> bool:
        return self.name == LOCAL

    def ssh(self) -> list[str]:
        """The ssh command line up to the remote command."""
        if self.control_dir is None:
            self.control_dir = Path(tempfile.mkdtemp(prefix="splinterlab-ssh-"))
            self._own_dir = True
        argv = ["ssh", "-o", "BatchMode=yes", "-o", f"ConnectTimeout={CONNECT_TIMEOUT_S}",
                "-o", "ServerAliveInterval=5", "-o", "LogLevel=ERROR",
                "-o", "ControlMaster=auto", "-o", f"ControlPath={self.control_dir}/%C",
                "-o", "ControlPersist=yes"]
        if os.environ.get(SSH_CONFIG):
            argv += ["-F", os.environ[SSH_CONFIG]]
        if "@" not in self.name:
            argv += ["-l", "root"]
        return [*argv, self.name]

    def argv(self, argv: list[str], env: dict[str, str] | None = None) -> list[str]:
        """``argv`` to run on this machine, with ``env`` added to its environment."""
        if env:
            argv = ["env", *(f"{k}={v}" for k, v in env.items()), *argv]
        return list(argv) if self.local else [*self.ssh(), "--", shlex.join(argv)]

    def run(self, argv: list[str], *, input: str | None = None, timeout: float = 60,
            check: bool = True, env: dict[str, str] | None = None) -> subprocess.CompletedProcess:
        try:
            result = subprocess.run(self.argv(argv, env), input=input, capture_output=True,
                                    text=True, timeout=timeout)
        except subprocess.TimeoutExpired:
            raise MachineError(f"{self.name}: '{shlex.join(argv)}' did not finish in "
                               f"{timeout:g} s") from None
        if check and result.returncode:
            said = (result.stderr or result.stdout).strip().splitlines()
            raise MachineError(f"{self.name}: '{shlex.join(argv)[:120]}' failed: "
                               f"{said[-1] if said else f'exit status {result.returncode}'}")
        return result

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
        """End the shared connection (and the directory of its socket, if ours)."""
        if self.local or self.control_dir is None:
            return
        subprocess.run([*self.ssh(), "-O", "exit"], capture_output=True, timeout=10)
        if self._own_dir:
            for sock in self.control_dir.iterdir():
                sock.unlink(missing_ok=True)
            self.control_dir.rmdir()
            self.control_dir, self._own_dir = None, False
