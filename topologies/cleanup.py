"""Remove everything a run can leave behind, even after it was killed with SIGKILL.

What a run creates, and how it is found again:

* processes: every one carries the run's environment mark (see ``runstate``); processes
  sharing a network namespace with a marked one are ours too;
* network namespaces: Mininet's are anonymous and vanish with their last process, and so do
  the veths, qdiscs and netfilter rules inside them;
* interfaces in the root namespace: none with Debian's Mininet, which creates veths inside
  the nodes; any listed in a run's manifest are deleted in case another Mininet version did;
* files: the run's directory under /run/splinterlab;
* on a server of a run spread over several: the same, found by the same marks by that
  server's own clean, plus the run's tunnel devices (named after the run), its sockets'
  directory and its mount of the controller's run directory.
"""

from __future__ import annotations

import contextlib
import os
import re
import shutil
import signal
import subprocess
import sys
from dataclasses import dataclass, field
from pathlib import Path

from . import reach
from .machines import Machine, MachineError
from .polling import wait_until
from .runstate import DEVICE_PREFIX, MARKER, SERVER_MARK, SOCKETS_ROOT, STATE_ROOT, RunState, runs

_MARK = MARKER.encode() + b"="
_SERVER = SERVER_MARK.encode() + b"="


@dataclass
class CleanReport:
    processes: list[str] = field(default_factory=list)
    interfaces: list[str] = field(default_factory=list)
    runs: list[str] = field(default_factory=list)
    servers: list[str] = field(default_factory=list)  # servers that could not be cleaned

    def lines(self) -> list[str]:
        if not (self.processes or self.interfaces or self.runs):
            return [*self.servers, "clean: nothing of splinterlab's was left"]
        return [*self.servers, f"clean: killed {len(self.processes)} processes, removed "
                f"{len(self.interfaces)} root-namespace interfaces and "
                f"{len(self.runs)} run directories"]


def _read(path: str) -> bytes:
    try:
        with open(path, "rb") as f:
            return f.read()
    except OSError:
        return b""


def _mark_of(pid: int, mark: bytes = _MARK) -> str | None:
    for entry in _read(f"/proc/{pid}/environ").split(b"\0"):
        if entry.startswith(mark):
            return entry[len(mark):].decode(errors="replace")
    return None


def _ssh_master_of(pid: int) -> str | None:
    """The run whose server connection ``pid`` holds: ssh's shared connection retitles itself
    over its environment, mark included, but names its socket, in the run's directory."""
    title = _read(f"/proc/{pid}/cmdline")
    prefix = f"ssh: {STATE_ROOT}/".encode()
    if not (title.startswith(prefix) and b"[mux]" in title):
        return None
    run, _, rest = title[len(prefix):].partition(b"/")
    return run.decode(errors="replace") if rest.startswith(b"ssh/") else None


def _netns(pid: int | str) -> str | None:
    try:
        return os.readlink(f"/proc/{pid}/ns/net")
    except OSError:
        return None


def _pid_ns(pid: int | str) -> str | None:
    try:
        return os.readlink(f"/proc/{pid}/ns/pid")
    except OSError:
        return None


def _ancestors() -> set[int]:
    pids, pid = set(), os.getpid()
    while pid > 1:
        pids.add(pid)
        stat = _read(f"/proc/{pid}/stat").rsplit(b")", 1)
        pid = int(stat[1].split()[1]) if len(stat) == 2 else 0
    return pids


def _describe(pid: int) -> str:
    cmd = _read(f"/proc/{pid}/cmdline").replace(b"\0", b" ").strip()
    return f"{pid} {cmd.decode(errors='replace')[:80]}"


def processes_of(run_id: str | None = None) -> list[int]:
    """Pids of processes belonging to ``run_id`` (any run if None), never our own ancestry.

    A marked process outside the namespace we run in is a node's; everything else in that
    namespace is then ours too. Our own namespace (the root one; PID 1's may be unreadable),
    our ancestors' and a test bed server's (where a run's commands on that server run) are
    never swept.
    """
    spared = _ancestors()
    ours = _pid_ns("self")  # another pid namespace is another (test bed) server's to clean
    pids = [int(p) for p in os.listdir("/proc") if p.isdigit() and _pid_ns(p) == ours]
    servers = {_netns(pid) for pid in pids if _mark_of(pid, _SERVER) is not None}
    protected = {_netns(pid) for pid in spared} | servers | {None}
    marked = set()
    for pid in pids:
        mark = _mark_of(pid) or _ssh_master_of(pid)
        if mark is not None and (run_id is None or mark == run_id):
            marked.add(pid)
    namespaces = {_netns(pid) for pid in marked} - protected
    marked |= {pid for pid in pids if _netns(pid) in namespaces}
    return sorted(marked - spared)


def kill(pids: list[int], timeout: float = 5.0) -> None:
    for pid in pids:
        with contextlib.suppress(ProcessLookupError):
            os.kill(pid, signal.SIGKILL)
    wait_until(lambda: not any(map(alive, pids)), timeout, 0.02)


def start_time(pid: int) -> int | None:
    """When ``pid`` started, in clock ticks after boot (with the pid, it names one process)."""
    stat = _read(f"/proc/{pid}/stat").rsplit(b")", 1)
    return int(stat[1].split()[19]) if len(stat) == 2 else None


def alive(pid: int) -> bool:
    """True unless gone or a zombie (a zombie holds no namespace, socket or file)."""
    stat = _read(f"/proc/{pid}/stat").rsplit(b")", 1)
    return len(stat) == 2 and stat[1].split()[0] != b"Z"


def _root_interfaces() -> set[str]:
    out = subprocess.run(["ip", "-o", "link", "show"], capture_output=True, text=True).stdout
    return {line.split(":")[1].strip().split("@")[0] for line in out.splitlines()}


def _unmount(run_id: str | None) -> None:
    """A server's view of a controller's run directory (sshfs), dead once its process is."""
    for line in _read("/proc/mounts").decode().splitlines():
        _, point, kind, *_ = line.split()
        if kind.startswith("fuse") and Path(point).parent == STATE_ROOT and (
                run_id is None or Path(point).name == run_id):
            subprocess.run(["umount", "-l", point], capture_output=True)


def _tunnels(run_id: str | None) -> list[str]:
    """A run's tunnel devices still in this namespace (made, not yet moved into a node)."""
    prefix = DEVICE_PREFIX + (RunState(run_id).tag if run_id else "")
    return sorted(n for n in _root_interfaces() if n.startswith(prefix)
                  and re.fullmatch(DEVICE_PREFIX + "[0-9a-f]{10}", n))


def _servers(run_id: str | None) -> tuple[list[str], set[str]]:
    """Each server of a run spread over several cleans its own part (it alone sees it).
    Returns what could not be done, and the runs it left unfinished (a server that answered
    but failed: their manifest stays, for a later clean; one that cannot be reached is named
    and let go, or a server gone for good would keep its runs forever). A server of a run
    (its run directory a mount) asks no one."""
    said, unfinished = [], set()
    for run in runs():
        if run_id is not None and run.run_id != run_id or os.path.ismount(run.dir):
            continue
        manifest = run.read()
        for name in manifest.get("servers", []):
            machine = Machine(name, ssh_config=manifest.get("ssh_config"))
            try:
                if machine.local:
                    continue
                if (why := machine.reachable()) is not None:
                    said.append(f"clean: server {name} cannot be reached ({why}); what run "
                                f"{run.run_id} left there is for its own 'splinterlab clean'")
                    continue
                machine.run([str(Path(sys.executable).parent / "splinterlab"), "clean",
                             "--run", run.run_id], timeout=120)
            except (MachineError, OSError) as e:
                said.append(f"clean: server {name} was not cleaned ({e}); its part of run "
                            f"{run.run_id} stays listed for the next clean")
                unfinished.add(run.run_id)
            finally:
                machine.close()
    return said, unfinished


def clean(run_id: str | None = None) -> CleanReport:
    """Kill the processes, delete the interfaces and files of one run (or of all runs), here
    and on the servers it spread over."""
    report = CleanReport()
    report.servers, unfinished = _servers(run_id)
    pids = processes_of(run_id)
    report.processes = [_describe(p) for p in pids]
    kill(pids)
    _unmount(run_id)
    for name in _tunnels(run_id):
        subprocess.run(["ip", "link", "del", name], capture_output=True)
        report.interfaces.append(name)
    for path in SOCKETS_ROOT.glob(run_id or "*"):
        shutil.rmtree(path, ignore_errors=True)
    targets = [r for r in runs() if (run_id is None or r.run_id == run_id) and
               r.run_id not in unfinished]
    present = _root_interfaces()
    for run in targets:
        for name in run.read().get("interfaces", []):
            if name in present:
                subprocess.run(["ip", "link", "del", name], capture_output=True)
                report.interfaces.append(name)
        run.remove()
        report.runs.append(run.run_id)
    if not runs():  # the last run is gone: the hosts' way to the code goes with it
        reach.revoke()
    return report


def leftovers(run_id: str | None = None) -> list[str]:
    """What a clean would remove; empty means nothing of ours is left."""
    found = [_describe(p) for p in processes_of(run_id)]
    present = _root_interfaces()
    for run in runs():
        if run_id is None or run.run_id == run_id:
            found.append(f"run directory {run.dir}")
            found += [f"interface {n}" for n in run.read().get("interfaces", []) if n in present]
    return found
