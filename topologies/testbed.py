"""Servers on this machine that behave like separate ones: the cluster's test bed.

Each server is a network namespace joined to a bridge in this machine's namespace (the
servers' own network, 198.19.254.0/24, never part of an emulated network), with an sshd of
its own, started in mount and pid namespaces of its own: its ``/run``, ``/tmp`` and ``/root``
are empty tmpfs mounts and its processes see only each other. What a run needs on a server
therefore has to reach it the way it would reach a real one (over ssh); nothing is shared by
accident. The rest of the file system is shared, and the install is bound at its own path
(even under /tmp or /root), as "the same install everywhere" asks of real servers.

The controller logs in with a key made for the bed; ``ssh_config`` (under ``STATE``) names the
servers ``srv1``, ``srv2``, ...: point ``SPLINTERLAB_SSH_CONFIG`` at it.
"""

from __future__ import annotations

import contextlib
import os
import shlex
import shutil
import signal
import subprocess
from dataclasses import dataclass
from ipaddress import IPv4Interface
from pathlib import Path

from . import cleanup
from .errors import NetworkError
from .polling import wait_until
from .runstate import MARKER, SERVER_MARK

STATE = Path("/var/lib/splinterlab/testbed")  # outside /run and /tmp: the servers see it
BRIDGE = "slbr0"
NETWORK = IPv4Interface("198.19.254.1/24")  # this machine's address on the servers' network
MTU = 9000  # jumbo frames, as a rack's network may have: tunnels carry a veth's 1500 bytes
MOST = 8
INSTALL = Path(__file__).resolve().parents[1]  # this project, which every server runs


@dataclass(frozen=True)
class TestServer:
    number: int

    @property
    def name(self) -> str:
        return f"srv{self.number}"

    @property
    def namespace(self) -> str:
        return f"sl{self.name}"

    @property
    def address(self) -> str:
        return str(NETWORK.network[10 + self.number])

    @property
    def pidfile(self) -> Path:
        return STATE / f"{self.name}.pid"


def _ip(*argv: str, check: bool = True) -> subprocess.CompletedProcess:
    result = subprocess.run(["ip", *argv], capture_output=True, text=True)
    if check and result.returncode:
        raise NetworkError(f"test bed: 'ip {' '.join(argv)}' failed: {result.stderr.strip()}")
    return result


def servers() -> list[TestServer]:
    """The bed's servers that are up."""
    return sorted((TestServer(int(p.stem[3:])) for p in STATE.glob("srv*.pid")),
                  key=lambda s: s.number)


def _keys() -> None:
    for name in ("id", "host"):
        if not (STATE / name).exists():
            subprocess.run(["ssh-keygen", "-q", "-t", "ed25519", "-N", "", "-C",
                            f"splinterlab test bed {name}", "-f", str(STATE / name)],
                           check=True, capture_output=True)
    shutil.copy(STATE / "id.pub", STATE / "authorized_keys")


def _sshd_config(server: TestServer) -> Path:
    path = STATE / f"{server.name}.sshd_config"
    path.write_text("\n".join([
        f"ListenAddress {server.address}", f"HostKey {STATE / 'host'}",
        f"AuthorizedKeysFile {STATE / 'authorized_keys'}", "PermitRootLogin prohibit-password",
        "PasswordAuthentication no", "KbdInteractiveAuthentication no", "UsePAM no",
        "UseDNS no", "MaxStartups 100:30:200",  # MaxSessions: sshd's default, 10
        "PidFile /run/sshd.pid", "Subsystem sftp internal-sftp", ""]))
    return path


def _ssh_config(bed: list[TestServer]) -> None:
    lines = []
    for server in bed:
        lines += [f"Host {server.name}", f"  HostName {server.address}", "  User root",
                  f"  IdentityFile {STATE / 'id'}", "  IdentitiesOnly yes",
                  f"  UserKnownHostsFile {STATE / 'known_hosts'}",
                  "  StrictHostKeyChecking yes", ""]
    (STATE / "ssh_config").write_text("\n".join(lines))
    host = (STATE / "host.pub").read_text().split()
    (STATE / "known_hosts").write_text("".join(f"{s.address} {host[0]} {host[1]}\n"
                                               for s in bed))


def _start(server: TestServer) -> None:
    ns = server.namespace
    _ip("netns", "add", ns)
    _ip("link", "add", ns, "mtu", str(MTU), "type", "veth", "peer", "name", "eth0", "mtu",
        str(MTU), "netns", ns)
    _ip("link", "set", ns, "master", BRIDGE, "up")
    _ip("-n", ns, "addr", "add", f"{server.address}/{NETWORK.network.prefixlen}", "dev", "eth0")
    _ip("-n", ns, "link", "set", "eth0", "up")
    _ip("-n", ns, "link", "set", "lo", "up")
    config = _sshd_config(server)
    # sshd is the pid namespace's first process: when it dies, everything on the server does
    # the install stays where it is (a clone under /tmp or /root too), as on real servers
    code, held = shlex.quote(str(INSTALL)), shlex.quote(str(STATE / f"{server.name}.code"))
    script = (f"mkdir -p {held} && mount --bind {code} {held} && "
              "mount -t tmpfs -o mode=755 tmpfs /run && mount -t tmpfs tmpfs /tmp && "
              "mount -t tmpfs -o mode=700 tmpfs /root && mkdir -p /run/sshd && "
              f"mkdir -p {code} && mount --bind {held} {code} && umount {held} && "
              f"exec /usr/sbin/sshd -D -e -f {config}")
    # the mark goes on unshare, which waits for sshd: sshd's own title overwrites its environ
    env = {k: v for k, v in os.environ.items() if k != MARKER} | {SERVER_MARK: server.name}
    log = open(STATE / f"{server.name}.log", "ab")  # noqa: SIM115 (the daemon keeps it)
    daemon = subprocess.Popen(["ip", "netns", "exec", ns, "unshare", "--mount", "--pid",
                               "--fork", "--mount-proc", "--propagation", "private",
                               "sh", "-c", script], stdout=log, stderr=log,
                              stdin=subprocess.DEVNULL, start_new_session=True, env=env)
    log.close()
    server.pidfile.write_text(f"{daemon.pid}\n")
    probe = ["bash", "-c", f"exec 3<>/dev/tcp/{server.address}/22"]
    if not wait_until(lambda: subprocess.run(["ip", "netns", "exec", ns, *probe],
                                             capture_output=True).returncode == 0, 10, 0.05):
        said = (STATE / f"{server.name}.log").read_text(errors="replace").strip()
        raise NetworkError(f"test bed: {server.name}'s sshd did not start: {said[-300:]}")


def up(count: int) -> list[TestServer]:
    """Start ``count`` servers (after taking down any bed that was up)."""
    if not 1 <= count <= MOST:
        raise NetworkError(f"a test bed has 1 to {MOST} servers")
    if not Path("/usr/sbin/sshd").exists():
        raise NetworkError("the test bed needs openssh-server's sshd: sudo make setup")
    down()
    STATE.mkdir(mode=0o700, parents=True, exist_ok=True)
    _keys()
    _ip("link", "add", BRIDGE, "mtu", str(MTU), "type", "bridge")
    _ip("addr", "add", str(NETWORK), "dev", BRIDGE)
    _ip("link", "set", BRIDGE, "up")
    bed = [TestServer(k) for k in range(1, count + 1)]
    try:
        for server in bed:
            _start(server)
    except BaseException:
        down()
        raise
    _ssh_config(bed)
    return bed


@contextlib.contextmanager
def bed(count: int):
    """``count`` servers up, ssh pointed at them (``SPLINTERLAB_SSH_CONFIG``), taken down
    afterwards."""
    from .machines import SSH_CONFIG

    servers = up(count)
    os.environ[SSH_CONFIG] = str(STATE / "ssh_config")
    try:
        yield servers
    finally:
        os.environ.pop(SSH_CONFIG, None)
        down()


def down() -> None:
    """Stop every server of the bed and remove its namespaces, links and files."""
    pids = []
    for server in servers():
        with contextlib.suppress(OSError, ValueError):
            pids.append(int(server.pidfile.read_text()))
            with contextlib.suppress(ProcessLookupError):
                os.killpg(pids[-1], signal.SIGKILL)
    # a namespace lives on until its last process is gone, and its veth with it
    wait_until(lambda: not any(map(cleanup.alive, pids)), 10, 0.02)
    for line in _ip("netns", "list", check=False).stdout.splitlines():
        name = line.split()[0] if line.strip() else ""
        if name.startswith("slsrv"):
            _ip("netns", "del", name, check=False)
            _ip("link", "del", name, check=False)
    _ip("link", "del", BRIDGE, check=False)
    shutil.rmtree(STATE, ignore_errors=True)
