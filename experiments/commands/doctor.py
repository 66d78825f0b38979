"""``splinterlab doctor``: one line per requirement, each either ok or the command that fixes it.

Checks are real attempts where that is cheap (bind an NFQUEUE, add a netem qdisc, in a
throwaway namespace) rather than guesses from package lists, because this project runs on
kernels that ship without features a package list would promise.
"""

from __future__ import annotations

import importlib
import os
import pwd
import shutil
import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path

from experiments.commands import cluster as cluster_cmd
from topologies import calibration, cleanup, delaypath
from topologies.shaping import netem_available

SETUP = "sudo make setup"
REQUIREMENTS = Path(__file__).resolve().parents[2] / "scripts" / "requirements.txt"
OPTIONAL = {"tcpdump"}  # only for looking at packets by hand


def requirements(path: Path = REQUIREMENTS) -> dict[str, str]:
    """Every command splinterlab runs -> the Debian package that has it (the table setup.sh
    installs from)."""
    out = {}
    for line in path.read_text().splitlines():
        if line.strip() and not line.startswith("#"):
            package, *commands = line.split()
            out.update((c, package) for c in commands if c != "-")
    return out


@dataclass(frozen=True)
class Check:
    name: str
    ok: bool
    detail: str
    required: bool = True

    def line(self) -> str:
        mark = "ok  " if self.ok else ("FAIL" if self.required else "note")
        return f"{mark} {self.name:<18} {self.detail}"


def _apt(package: str) -> str:
    return f"missing: sudo apt-get install {package} (or {SETUP})"


def _tool(name: str, package: str, required: bool = True) -> Check:
    path = shutil.which(name)
    return Check(name, bool(path), path or _apt(package), required)


def _in_scratch_namespace(*argv: str) -> subprocess.CompletedProcess:
    return subprocess.run(["unshare", "--net", *argv], capture_output=True, text=True)


def _nfqueue() -> Check:
    if os.geteuid() != 0:
        return Check("NFQUEUE", False, "cannot test the kernel side without root: use sudo")
    rule = _in_scratch_namespace("iptables", "-t", "mangle", "-A", "POSTROUTING", "-j",
                                 "NFQUEUE", "--queue-num", "7")
    if rule.returncode != 0:
        return Check("NFQUEUE", False, "the kernel refuses the iptables NFQUEUE target "
                     "(CONFIG_NETFILTER_XT_TARGET_NFQUEUE)")
    try:
        delayd = str(delaypath.program())
    except delaypath.DelayPathError as e:
        return Check("NFQUEUE", False, str(e))
    bind = _in_scratch_namespace(delayd, "--check")
    if bind.returncode != 0:
        return Check("NFQUEUE", False, f"binding a queue failed ({bind.stderr.strip()}; "
                     "CONFIG_NETFILTER_NETLINK_QUEUE)")
    return Check("NFQUEUE", True, f"iptables target and queue binding ({delayd}) work")


def _calibration(results: list[Check]) -> Check:
    """The delay backend's own cost per traversal, measured now (as every run does)."""
    netem = next(c for c in results if c.name == "netem").ok
    if os.geteuid() != 0 or not (netem or next(c for c in results if c.name == "NFQUEUE").ok):
        return Check("calibration", True, "not measured (needs root and a delay backend)",
                     required=False)
    try:
        cal = calibration.measure_here("netem" if netem else "userspace")
    except calibration.CalibrationError as e:
        return Check("calibration", False, str(e))
    return Check("calibration", True, f"{cal.backend} costs {cal.cost_us:.0f} us per delayed "
                 f"traversal here (scratch pair: {cal.base_rtt_ms:.3f} ms plain, "
                 f"{cal.delayed_rtt_ms:.3f} ms with {cal.delay_ms:g} ms each way); every run "
                 "measures it at bring-up and delays each link that much less")


def _python_packages() -> Check:
    missing = []
    for module in ("networkx", "matplotlib", "topohub", "scapy", "tqdm", "nftables", "mininet"):
        try:
            importlib.import_module(module)
        except ImportError:
            missing.append(module)
    if not missing:
        return Check("python packages", True, f"all importable from {sys.executable}")
    hint = (" (mininet and nftables come from Debian: the venv needs --system-site-packages)"
            if {"mininet", "nftables"} & set(missing) else "")
    return Check("python packages", False, f"missing {', '.join(missing)}: {SETUP}{hint}")


def _frr() -> Check:
    missing = [d for d in ("zebra", "ospfd", "bfdd") if not Path(f"/usr/lib/frr/{d}").exists()]
    try:
        pwd.getpwnam("frr")
    except KeyError:
        missing.append("user frr")
    if missing:
        return Check("FRR", False, f"{', '.join(missing)} {_apt('frr')}")
    return Check("FRR", True, "zebra, ospfd, bfdd in /usr/lib/frr")


def _netem() -> Check:
    if os.geteuid() != 0:
        return Check("netem", False, "cannot test without root", required=False)
    if netem_available():
        return Check("netem", True, "kernel qdisc present", required=False)
    return Check("netem", False, "absent from this kernel: links use the userspace delay "
                 "backend (NFQUEUE)", required=False)


def _low_latency() -> Check:
    ok = os.access("/dev/cpu_dma_latency", os.W_OK)
    return Check("PM QoS", ok, "/dev/cpu_dma_latency writable: precise userspace delays" if ok
                 else "/dev/cpu_dma_latency not writable: userspace delays wake up later",
                 required=False)


def _leftovers() -> Check:
    if os.geteuid() != 0:
        return Check("leftovers", True, "not checked without root", required=False)
    found = cleanup.leftovers()
    return Check("leftovers", not found, "none" if not found else
                 f"{len(found)} things from an earlier run: sudo splinterlab clean",
                 required=False)


def _vxlan(required: bool) -> Check:
    """Links between servers are VXLAN tunnels."""
    if os.geteuid() != 0:
        return Check("VXLAN", False, "cannot test without root", required)
    made = _in_scratch_namespace("ip", "link", "add", "vx0", "type", "vxlan", "id", "1",
                                 "dstport", "4789", "remote", "198.19.254.2")
    return Check("VXLAN", made.returncode == 0, "kernel tunnels for links between servers"
                 if made.returncode == 0 else f"the kernel refuses VXLAN devices "
                 f"({made.stderr.strip()}; CONFIG_VXLAN): links cannot cross servers", required)


def _fuse(required: bool) -> Check:
    """A server sees the run's directory through sshfs (FUSE)."""
    ok = os.path.exists("/dev/fuse")
    return Check("FUSE", ok, "/dev/fuse: the run's directory can be shared with servers" if ok
                 else "no /dev/fuse (CONFIG_FUSE_FS): a server cannot mount the run's "
                 "directory", required)


def checks(cluster: bool = False) -> list[Check]:
    root = os.geteuid() == 0
    mininet_ok = bool(shutil.which("mnexec"))
    tools = [_tool(command, package, command not in OPTIONAL)
             for command, package in requirements().items() if command != "mnexec"]
    return [
        Check("root", root, "yes" if root else "not root: run splinterlab with sudo"),
        Check("mininet", mininet_ok, "mnexec " + (shutil.which("mnexec") or "")
              if mininet_ok else _apt("mininet")),
        _frr(),
        _netem(),
        _nfqueue(),
        _python_packages(),
        *tools,
        _vxlan(cluster),
        _fuse(cluster),
        _low_latency(),
        _leftovers(),
        Check(cluster_cmd.INSTALL, True, cluster_cmd.install_line(), required=False),
        Check(cluster_cmd.ALIKE, True, cluster_cmd.alike_line(), required=False),
    ]


def all_checks() -> list[Check]:
    results = checks()
    return [*results, _calibration(results)]


def delay_backend_line(results: list[Check]) -> str:
    netem = next(c for c in results if c.name == "netem")
    if netem.ok:
        return "delay backend: netem (kernel qdisc)"
    if os.geteuid() != 0:
        return "delay backend: unknown until run as root"
    return ("delay backend: userspace (NFQUEUE + splinterlab-delayd, calibrated), since the "
            "kernel has no netem")


def run(cluster: bool = False) -> int:
    """``cluster``: also require what a server of a network spanning machines needs (and
    leave out the calibration, which each run measures anyway)."""
    results = checks(cluster) if cluster else all_checks()
    for check in results:
        print(check.line())
    print(delay_backend_line(results))
    failed = [c.name for c in results if c.required and not c.ok]
    print("everything required is present" if not failed else
          f"missing or failing: {', '.join(failed)}")
    return 1 if failed else 0
