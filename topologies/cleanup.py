"""Remove everything a run can leave behind, even after it was killed with SIGKILL.

What a run creates, and how it is found again:

* processes: every one carries the run's environment mark (see ``runstate``); processes
  sharing a network namespace with a marked one are ours too;
* network namespaces: Mininet's are anonymous and vanish with their last process, and so do
  the veths, qdiscs and netfilter rules inside them;
* interfaces in the root namespace: none with Debian's Mininet, which creates veths inside
  the nodes; any listed in a run's manifest are deleted in case another Mininet version did;
* files: the run's directory under /run/splinterlab.
"""

from __future__ import annotations

import contextlib
import os
import signal
import subprocess
from dataclasses import dataclass, field

from . import reach
from .polling import wait_until
from .runstate import MARKER, SERVER_MARK, runs

_MARK = MARKER.encode() + b"="
_SERVER = SERVER_MARK.encode() + b"="


@dataclass
class CleanReport:
    processes: list[str] = field(default_factory=list)
    interfaces: list[str] = field(default_factory=list)
    runs: list[str] = field(default_factory=list)

    def lines(self) -> list[str]:
        if not (self.processes or self.interfaces or self.runs):
            return ["clean: nothing of splinterlab's was left"]
        return [f"clean: killed {len(self.processes)} processes, removed "
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


def _netns(pid: int | str) -> str | None:
    try:
        return os.readlink(f"/proc/{pid}/ns/net")
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
    pids = [int(p) for p in os.listdir("/proc") if p.isdigit()]
    servers = {_netns(pid) for pid in pids if _mark_of(pid, _SERVER) is not None}
    protected = {_netns(pid) for pid in spared} | servers | {None}
    marked = set()
    for pid in pids:
        mark = _mark_of(pid)
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


def clean(run_id: str | None = None) -> CleanReport:
    """Kill the processes, delete the interfaces and files of one run (or of all runs)."""
    report = CleanReport()
    pids = processes_of(run_id)
    report.processes = [_describe(p) for p in pids]
    kill(pids)
    targets = [r for r in runs() if run_id is None or r.run_id == run_id]
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
