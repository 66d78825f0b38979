"""OSPF routing with FRR: one zebra + ospfd (+ bfdd) per router namespace.

Both architectures route with this: the difference under test is the access layer, never the
routing. Every daemon gets its own config, pid, zebra socket, vty socket and BFD control socket
under the run directory (the file system is shared by all namespaces, so defaults would
collide). Daemons drop to the ``frr`` user, which must own that directory.

Interface cost follows the link's one-way delay (1 + 100 per ms), so OSPF prefers the same
low-delay paths as the static baseline. Every interface is point-to-point (no DR election):
end-node lines are passive and announced as stub networks.
"""

from __future__ import annotations

import functools
import json
import subprocess
import time
from dataclasses import dataclass
from ipaddress import IPv4Network
from pathlib import Path

import networkx as nx

from topologies.addressing import FOREIGN, NATIONAL, AddressPlan
from topologies.graph import end_nodes, is_router, routers
from topologies.network import Daemon, EmulatedNetwork, NetworkError

FRR = "/usr/lib/frr"
ANNOUNCED = [NATIONAL, *FOREIGN]
IGMP_GROUPS = 1024  # per socket, in each router's namespace (the kernel's default is 20)
# quiet: no LSA originated anew for longer than ospfd's minimum between two originations of
# one LSA (5 s)
QUIET_S = 6.0
QUIET_TIMEOUT_S = 120.0
UNANSWERED = 5  # lsdb_state reads in a row without an answer: routing is not quiet, it is gone
VTYSH_S = 10.0


class RoutingError(ValueError):
    """Bad routing settings; the message is one sentence."""


@dataclass(frozen=True)
class OspfSettings:
    """OSPF timers (seconds) and BFD (milliseconds). Defaults are the experiment profile: a
    silent failure is detected within ``dead`` seconds; with ``hello_multiplier`` N (FRR's
    sub-second "fast hellos") within 1 s, N hellos a second; with BFD within about
    ``bfd_interval_ms * bfd_multiplier``."""

    hello: int = 1
    dead: int = 3
    hello_multiplier: int = 0
    bfd: bool = False
    bfd_interval_ms: int = 100
    bfd_multiplier: int = 3
    spf_delay_ms: int = 0
    convergence_timeout: float = 60.0

    def __post_init__(self) -> None:
        if not 1 <= self.hello <= 65535:
            raise RoutingError(f"OSPF hello must be 1-65535 s, not {self.hello}")
        if not self.hello < self.dead <= 65535:
            raise RoutingError(f"OSPF dead interval must exceed hello ({self.hello} s) and be "
                               f"at most 65535 s, not {self.dead}")
        if not 10 <= self.bfd_interval_ms <= 60000 or not 2 <= self.bfd_multiplier <= 255:
            raise RoutingError("BFD interval must be 10-60000 ms and its multiplier 2-255")
        if self.hello_multiplier and not 2 <= self.hello_multiplier <= 20:
            raise RoutingError(f"OSPF hello multiplier must be 2-20, not {self.hello_multiplier}")
        if self.convergence_timeout <= 0:
            raise RoutingError("the convergence timeout must be positive")


def cost(delay_ms: float) -> int:
    return min(65535, 1 + round(delay_ms * 100))


def frr_configs(g: nx.Graph, plan: AddressPlan, router: str, settings: OspfSettings,
                workdir: str) -> dict[str, str]:
    """Daemon -> its config file for one router (each daemon reads only its own)."""
    head = [f"hostname {router}", f"log file {workdir}/frr.log informational", "!"]
    ospf, passive = [*head], []
    for intf in plan.interfaces_of(router):
        if not is_router(g, intf.peer):
            # Point-to-point even though passive: a passive broadcast line still waits out the
            # dead interval (40 s by default), then elects itself DR and re-originates its
            # router LSA, which floods every network well after it is ready.
            passive.append(intf.name)
            ospf += [f"interface {intf.name}", " ip ospf network point-to-point", "!"]
            continue
        timers = ([f" ip ospf dead-interval minimal hello-multiplier {settings.hello_multiplier}"]
                  if settings.hello_multiplier else
                  [f" ip ospf hello-interval {settings.hello}",
                   f" ip ospf dead-interval {settings.dead}"])
        ospf += [f"interface {intf.name}", " ip ospf network point-to-point", *timers,
                 " ip ospf retransmit-interval 1",
                 f" ip ospf cost {cost(g.edges[router, intf.peer].get('delay_ms', 0))}"]
        if settings.bfd:
            ospf += [" ip ospf bfd", " ip ospf bfd profile splinterlab"]
        ospf.append("!")
    ospf += ["router ospf", f" ospf router-id {plan.loopbacks[router]}",
             f" timers throttle spf {settings.spf_delay_ms} 50 500",
             " timers lsa min-arrival 0"]
    ospf += [f" passive-interface {name}" for name in passive]
    ospf += [f" network {net} area 0" for net in ANNOUNCED]
    if any(i.peer in plan.devices for i in plan.interfaces_of(router)):
        ospf.append(" redistribute kernel")  # a farm's device block (the network routes it)
    # Routes go to the kernel as plain multipath routes, not nexthop objects: after interfaces
    # flap, zebra 8.4's kernel nexthop groups can be refused and ECMP routes then never reach
    # the kernel (seen here: a host cut off from abroad after a router came back).
    zebra = [*head, "no zebra nexthop kernel enable", "!"]
    configs = {"zebra": "\n".join(zebra) + "\n", "ospfd": "\n".join([*ospf, "!", ""])}
    if settings.bfd:
        configs["bfdd"] = "\n".join([*head, "bfd", " profile splinterlab",
                                     f"  transmit-interval {settings.bfd_interval_ms}",
                                     f"  receive-interval {settings.bfd_interval_ms}",
                                     f"  detect-multiplier {settings.bfd_multiplier}", " !",
                                     "!", ""])
    return configs


@functools.cache
def bfdd_takes_control_socket() -> bool:
    """FRR 8's bfdd has a control socket of its own (``--bfdctl``, placed per router here);
    FRR 10's has none and refuses the option."""
    shown = subprocess.run([f"{FRR}/bfdd", "--help"], capture_output=True, text=True)
    return "--bfdctl" in shown.stdout + shown.stderr


def has_mgmtd() -> bool:
    """FRR 9 and newer have a management daemon that zebra and the others report to (over
    sockets in the vty directory); without it zebra 10 logs a failed send per interface
    change, hundreds of kilobytes a second. FRR 8 has none."""
    return Path(f"{FRR}/mgmtd").exists()


def daemons(router: str, workdir: str, names: list[str], sockets: str) -> list[Daemon]:
    """mgmtd first where FRR has one, then zebra (the others connect to its socket), then
    ospfd and bfdd. mgmtd takes no config file: the others read their own. ``sockets``: where
    their Unix sockets go (the workdir, unless that is shared with another server)."""
    out = []
    for name in (["mgmtd"] if has_mgmtd() else []) + names:
        config = [] if name == "mgmtd" else ["-f", f"{workdir}/{name}.conf"]
        extra = ["--bfdctl", f"{sockets}/bfdd.sock"] if name == "bfdd" and \
            bfdd_takes_control_socket() else []
        out.append(Daemon(router, name, [
            f"{FRR}/{name}", "-d", *config, "-i", f"{workdir}/{name}.pid", "-z",
            f"{sockets}/zserv.api", "--vty_socket", sockets, "-u", "frr", "-g", "frr", "-P", "0",
            "--log", f"file:{workdir}/{name}.log", *extra],
            pidfile=Path(f"{workdir}/{name}.pid")))
    return out


def expected_prefixes(g: nx.Graph, plan: AddressPlan) -> set[IPv4Network]:
    """What every router must reach once converged: every end node's line, every device
    block."""
    return {plan.line(e) for e in end_nodes(g)} | set(plan.blocks())


def missing_routes(net: EmulatedNetwork, routers_: list[str]) -> dict[str, int]:
    """Router -> how many expected prefixes its kernel table lacks (0 = converged)."""
    want = expected_prefixes(net.graph, net.plan)
    out = {}
    for r in routers_:
        table = json.loads(net.exec(r, "ip", "-4", "-j", "route", "show", check=False).stdout
                           or "[]")
        have = {IPv4Network(entry["dst"]) for entry in table if entry.get("dst") != "default"}
        out[r] = len(want - have)
    return out


def bfd_sessions_down(net: EmulatedNetwork, routers_: list[str]) -> dict[str, int]:
    """Router -> BFD sessions not yet up (sessions start slowly and only switch to the fast
    timers once up, so a failure before that is detected by OSPF's dead timer instead)."""
    out = {}
    for r in routers_:
        neighbours = [n for n in net.graph.neighbors(r) if is_router(net.graph, n)
                      and n not in net.crashed]
        shown = vtysh(net, r, "show bfd peers json").stdout
        try:
            up = sum(p.get("status") == "up" for p in json.loads(shown or "[]"))
        except ValueError:
            up = 0
        out[r] = max(0, len(neighbours) - up)
    return out


def vtysh(net: EmulatedNetwork, router: str, command: str) -> subprocess.CompletedProcess:
    """One vtysh command on ``router``'s daemons (its own vty sockets), never waiting long."""
    return net.exec(router, "vtysh", "--vty_socket", str(net.sockets(router, "frr", router)),
                    "-c", command, check=False, timeout=VTYSH_S)


def lsdb_state(net: EmulatedNetwork, router: str) -> tuple | None:
    """What changes in ``router``'s link-state database whenever any router originates a new
    instance of an LSA (its sequence number, hence its checksum, changes): the count and
    checksum sum of each kind, per area and AS-wide (external LSAs: a farm's redistributed
    block). One database is enough: a single area floods to all. None: no answer."""
    try:
        shown = json.loads(vtysh(net, router, "show ip ospf json").stdout or "{}")
    except (ValueError, subprocess.TimeoutExpired):
        return None
    scopes = {"": shown, **shown.get("areas", {})}
    return tuple(sorted((scope, key, value) for scope, fields in scopes.items()
                        for key, value in fields.items() if key.startswith("lsa"))) or None


class Ospf:
    """Start OSPF on every router of a network and wait until it has converged."""

    def __init__(self, settings: OspfSettings | None = None):
        self.settings = settings or OspfSettings()
        self.convergence_s: float | None = None

    def start(self, net: EmulatedNetwork) -> float:
        t0 = time.monotonic()
        for r in routers(net.graph):
            # ospfd joins AllSPFRouters on every interface from one socket; Linux allows a
            # socket 20 groups by default, so a router of more than 20 links never heard its
            # neighbours on the rest (zoo:Ulaknet's hub has 54): FRR's advice is to raise it
            net.exec(r, "sysctl", "-qw", f"net.ipv4.igmp_max_memberships={IGMP_GROUPS}",
                     privileged=True)
            workdir = net.workdir("frr", r, owner="frr")
            configs = frr_configs(net.graph, net.plan, r, self.settings, str(workdir))
            for name, text in configs.items():
                (workdir / f"{name}.conf").write_text(text)
            sockets = net.sockets(r, "frr", r, owner="frr")
            for daemon in daemons(r, str(workdir), list(configs), str(sockets)):
                net.start_daemon(daemon)
        # the timeout runs from the last router's start: starting hundreds takes minutes
        self.convergence_s = self.wait_converged(net, t0, time.monotonic())
        return self.convergence_s

    def diagnose(self, net: EmulatedNetwork, routers_: list[str]) -> str:
        """What OSPF says on ``routers_``: its neighbours and its own router LSA (a router
        whose LSA lacks a line cannot be reached through it), one line per command."""
        out = []
        for router in routers_:
            for command in ("show ip ospf neighbor", "show ip ospf database router self-originate"):
                r = vtysh(net, router, command)
                text = " | ".join(w.strip() for w in (r.stdout + r.stderr).splitlines()
                                  if w.strip() and ("Full" in w or "Link" in w or "Seq" in w
                                                    or "%" in w))
                out.append(f"{router}$ vtysh {command}: {text[:1200]}")
        return "\n".join(out)

    def wait_quiet(self, net: EmulatedNetwork) -> float | None:
        """Seconds from now until the routers stopped originating new LSAs (0: already quiet),
        once nothing has changed for ``QUIET_S``; None if they still did after
        ``QUIET_TIMEOUT_S``. Routes converge before the flooding ends; a network measured "at
        rest" during it is not. A wave that begins more than ``QUIET_S`` after the last
        change is not waited for (passive broadcast host lines made one 40-60 s after start:
        see ``frr_configs``)."""
        router = next((r for r in routers(net.graph) if r not in net.crashed), None)
        if router is None:
            raise NetworkError("no router is running: routing cannot be quiet")
        t0 = time.monotonic()
        state, changed, unanswered = lsdb_state(net, router), t0, 0
        while time.monotonic() - changed < QUIET_S or state is None:
            if time.monotonic() - t0 > QUIET_TIMEOUT_S:
                return None
            time.sleep(0.5)
            now = lsdb_state(net, router)
            unanswered = unanswered + 1 if now is None else 0
            if unanswered >= UNANSWERED:
                raise NetworkError(f"ospfd on {router} did not answer {UNANSWERED} times in a "
                                   "row")
            if now is not None and now != state:
                state, changed = now, time.monotonic()
        return round(changed - t0, 1)

    def wait_converged(self, net: EmulatedNetwork, t0: float | None = None,
                       started: float | None = None) -> float:
        """Seconds from ``t0`` until every live router reaches every end-node line (and,
        with BFD, every BFD session is up), within the timeout from ``started`` (``t0``)."""
        t0 = time.monotonic() if t0 is None else t0
        live = [r for r in routers(net.graph) if r not in net.crashed]
        deadline = (t0 if started is None else started) + self.settings.convergence_timeout
        while True:
            missing = missing_routes(net, live)
            if self.settings.bfd and not any(missing.values()):
                missing = bfd_sessions_down(net, live)
            if not any(missing.values()):
                return time.monotonic() - t0
            if time.monotonic() > deadline:
                late = ", ".join(f"{r} ({n} routes or BFD sessions missing)"
                                 for r, n in missing.items() if n)
                raise NetworkError(f"OSPF did not converge within "
                                   f"{self.settings.convergence_timeout:g} s: {late}")
            time.sleep(0.1)
