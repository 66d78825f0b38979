"""The emulated network: a topology graph brought up in Mininet as IP routers and end hosts.

It knows links, addresses, shaping and node processes; it knows nothing of routing protocols
or access control. Architectures start their daemons through ``start_daemon`` so that a router
crash kills them and a restore starts them again, and experiments schedule failures through
``link_down``/``crash``. Everything a run starts carries the run's mark (``runstate``), and
``stop`` ends with the same sweep as ``splinterlab clean``, so nothing outlives the network.

Closed by construction: no link to the root namespace, no NAT, no default route out.

Hosts are people's machines, so their processes are not root: each host has a user of its own
(uid ``HOST_UID_BASE`` + its number) and sees, at ``/run/splinterlab``, only a private
directory of its own (``private_dir``); run files, daemons' keys and sockets stay out of its
reach (and, not being root, it cannot reach them through another process's ``/proc`` entry).
``exec`` and ``popen`` run a command in a host as its user unless ``privileged`` (the
network's own configuration: addresses, routes, shaping). Mininet's CLI shells stay root.
"""

from __future__ import annotations

import contextlib
import os
import shutil
import signal
import subprocess
import time
from collections.abc import Iterator
from dataclasses import asdict, dataclass
from functools import cache
from pathlib import Path

import networkx as nx

from . import addressing, calibration, cleanup, reach, shaping, source_validation
from .delaypath import DelayPath, DelayPathError, Queue, hold_low_latency
from .graph import LinkSpec, hosts, is_router, natural_key
from .runstate import MARKER, RunState

LINK_MODES = ("carrier", "silent")
HOST_UID_BASE = 20000
PRIVATE = Path("/run/splinterlab")  # where a host sees its private directory
_STOP_SIGNALS = {signal.SIGINT, signal.SIGTERM, signal.SIGHUP}


def _end_shell(node) -> None:
    """End a node's Mininet shell without talking to it. (Mininet's own terminate() first
    unmounts private directories through the shell and waits for its prompt: forever, if
    the shell is already gone. A mount namespace ends with its last process anyway.)"""
    shell = node.shell
    if shell is None:
        return
    if shell.poll() is None:
        with contextlib.suppress(OSError):
            os.killpg(shell.pid, signal.SIGHUP)
    with contextlib.suppress(OSError):
        node.stdin.close()
        os.close(node.slave)
    with contextlib.suppress(Exception):
        shell.wait(timeout=5)
    node.shell = None


def _chain(intf: str) -> str:
    return "cut_" + intf.replace("-", "_")


class NetworkError(RuntimeError):
    """The network could not be built or changed; the message is one sentence with a fix."""


@cache
def netem_available() -> bool:
    """Try netem on the loopback of a throwaway namespace."""
    probe = subprocess.run(["unshare", "--net", "tc", "qdisc", "add", "dev", "lo", "root",
                            "netem", "delay", "1ms"], capture_output=True)
    return probe.returncode == 0


def resolve_backend(requested: str) -> str:
    if requested == "auto":
        return "netem" if netem_available() else "userspace"
    if requested not in shaping.BACKENDS:
        raise NetworkError(f"unknown delay backend {requested!r}; use auto, netem or userspace")
    if requested == "netem" and not netem_available():
        raise NetworkError("this kernel has no netem qdisc; use --backend userspace (or auto)")
    return requested


def require_root() -> None:
    if os.geteuid() != 0:
        raise NetworkError("building an emulated network needs root; run it with sudo")
    if not shutil.which("mnexec"):
        raise NetworkError("Mininet's mnexec is missing; run 'sudo make setup'")


@dataclass
class Daemon:
    """A process that belongs to a node: killed when the node crashes, restarted on restore.

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

    def pid(self) -> int | None:
        if self.pidfile:
            try:
                return int(self.pidfile.read_text().split()[0])
            except (OSError, ValueError, IndexError):
                return None
        return self.process.pid if self.process else None


class EmulatedNetwork:
    """Bring a graph up (``with EmulatedNetwork(g, static_routes=True) as net:``), act on it,
    tear it down. ``static_routes`` has no default: precomputed kernel routes would silently
    outrank any routing protocol started later."""

    def __init__(self, graph: nx.Graph, *, static_routes: bool, backend: str = "auto",
                 seed: int = 0):
        self.graph = graph
        self.plan = addressing.plan(graph)
        self.requested_backend = backend
        self.backend = ""
        self.static_routes = static_routes
        self.seed = seed
        self.run: RunState | None = None
        self.mn = None
        self.daemons: list[Daemon] = []
        self.down_links: dict[tuple[str, str], str] = {}
        self.crashed: set[str] = set()
        self.moved: dict[str, str] = {}  # end node -> address it moved to
        self.users = {h: HOST_UID_BASE + k for k, h in enumerate(hosts(graph), start=1)}
        self.timings: dict[str, float] = {}
        self.delay: DelayPath | None = None  # the userspace delay path, if that backend
        self.calibration: calibration.Calibration | None = None
        self.delay_summary: dict = {}
        self._qos_fd: int | None = None

    # -- life cycle ------------------------------------------------------------------------
    def __enter__(self) -> EmulatedNetwork:
        try:
            return self.start()
        except BaseException:
            self.stop()
            raise

    def __exit__(self, *exc: object) -> None:
        self.stop()

    def start(self) -> EmulatedNetwork:
        require_root()
        from mininet.log import setLogLevel
        from mininet.net import Mininet

        from .mininet_topo import GraphTopo

        t0 = time.monotonic()
        self.backend = resolve_backend(self.requested_backend)
        self.run = RunState.create()
        os.environ[MARKER] = self.run.run_id  # inherited by every process Mininet spawns
        try:
            self.run.record(code_reach=[str(d) for d in reach.grant()])
        except reach.ReachError as e:
            raise NetworkError(str(e)) from None
        self.run.record(phase="bring-up", topology=self.graph.graph.get("spec", ""),
                        backend=self.backend,
                        interfaces=sorted(i.name for i in self.plan.interfaces.values()))
        setLogLevel("output")  # the CLI prints through this level; "info" would be chatty
        self._calibrate()
        self.mn = Mininet(topo=GraphTopo(self.graph, static=self.static_routes,
                                         private_root=str(self.run.subdir("private"))),
                          controller=None, build=False, waitConnected=False)
        self.mn.build()
        for host, uid in self.users.items():
            os.chown(self.private_dir(host), uid, uid)
            os.chmod(self.private_dir(host), 0o700)
        self._validate_sources()
        self._route_devices(self.plan.devices)
        self.timings["mininet_s"] = time.monotonic() - t0
        self._apply_shaping(self.graph.nodes)
        self.run.record(phase="up")
        self.timings["bringup_s"] = time.monotonic() - t0
        return self

    def stop(self) -> None:
        """Tear everything down; safe to call twice and after a failed start. Signals wait
        until it is done: a second Ctrl-C must not leave half a network behind."""
        if self.run is None:
            return
        blocked = signal.pthread_sigmask(signal.SIG_BLOCK, _STOP_SIGNALS)
        try:
            self._teardown()
        finally:
            signal.pthread_sigmask(signal.SIG_SETMASK, blocked)

    def _teardown(self) -> None:
        t0 = time.monotonic()
        self.run.record(phase="teardown")
        for daemon in self.daemons:
            self._kill(daemon)
        if self.delay is not None:
            self.delay.stop()
            self.delay_summary = self.delay.summary()
            self.delay = None
        if self.mn is not None:
            for node in self.mn.hosts:
                _end_shell(node)
        cleanup.clean(self.run.run_id)
        os.environ.pop(MARKER, None)
        if self._qos_fd is not None:
            os.close(self._qos_fd)
            self._qos_fd = None
        self.run, self.mn = None, None
        self.timings["teardown_s"] = time.monotonic() - t0

    def _calibrate(self) -> None:
        """The backend's own cost per delayed traversal, measured on this machine before any
        link uses it (and, for the userspace backend, the run's delay process started)."""
        self._qos_fd = hold_low_latency()
        try:
            if self.backend == "userspace":
                self.delay = DelayPath(self.workdir("delay"), seed=self.seed)
                self.delay.start()
            self.calibration = calibration.measure(self.backend, self.delay)
        except (DelayPathError, calibration.CalibrationError) as e:
            raise NetworkError(str(e)) from None
        self.run.record(calibration=asdict(self.calibration))

    @property
    def low_latency_held(self) -> bool:
        return self._qos_fd is not None

    # -- running things in nodes -----------------------------------------------------------
    def __getitem__(self, name: str):
        return self.mn[name]

    def _argv(self, node: str, argv, privileged: bool, raw: bool = False) -> list[str]:
        uid = self.users.get(node)
        if uid is None or privileged:
            return ["mnexec", "-a", str(self[node].pid), *argv]
        # ping's file capability (cap_net_raw) must stay grantable; nothing else is. ``raw``:
        # the host's user may also craft packets (a person in control of their own machine)
        caps = ["--inh-caps=-all,+net_raw", "--ambient-caps=-all,+net_raw"] if raw else \
            ["--inh-caps=-all"]
        return ["mnexec", "-a", str(self[node].pid), "setpriv", f"--reuid={uid}",
                f"--regid={uid}", f"--groups={reach.HOSTS_GID}", *caps,
                "--bounding-set=-all,+net_raw", *argv]

    def exec(self, node: str, *argv: str, input: str | None = None, timeout: float = 60,
             check: bool = True, privileged: bool = False,
             raw: bool = False) -> subprocess.CompletedProcess:
        """Run a program inside a node and wait for it (in a host, as its user unless
        ``privileged``; ``raw``: with the power to craft packets, nothing more)."""
        result = subprocess.run(self._argv(node, argv, privileged, raw), input=input,
                                capture_output=True, text=True, timeout=timeout)
        if check and result.returncode != 0:
            raise NetworkError(f"{node}: '{' '.join(argv)}' failed: "
                               f"{(result.stderr or result.stdout).strip()[:300]}")
        return result

    def popen(self, node: str, argv: list[str], privileged: bool = False,
              **kwargs) -> subprocess.Popen:
        """Start a program inside a node without waiting (in a host, as its user unless
        ``privileged``)."""
        return subprocess.Popen(self._argv(node, argv, privileged), **kwargs)

    def private_dir(self, host: str) -> Path:
        """Where a host's private directory is, seen from outside (it sees it at PRIVATE)."""
        assert self.run is not None, "the network is not up"
        return self.run.dir / "private" / host

    def give(self, node: str, source: Path, name: str | None = None) -> str:
        """Make a file readable inside ``node``: a host gets a copy in its private directory,
        owned by its user, mode 0600; others read it where it is. Returns the path the node
        sees."""
        if node not in self.users:
            return str(source)
        name = name or source.name
        target = self.private_dir(node) / name
        target.write_bytes(source.read_bytes())
        os.chown(target, self.users[node], self.users[node])
        os.chmod(target, 0o600)
        return str(PRIVATE / name)

    def listening(self, node: str, port: int, udp: bool = False) -> bool:
        """Whether something inside ``node`` listens on ``port``."""
        return bool(self.exec(node, "ss", "-Hlun" if udp else "-Hltn", f"sport = :{port}",
                              check=False).stdout.strip())

    def workdir(self, *parts: str, owner: str | None = None) -> Path:
        assert self.run is not None, "the network is not up"
        return self.run.subdir(*parts, owner=owner)

    def start_daemon(self, daemon: Daemon) -> Daemon:
        if daemon not in self.daemons:
            self.daemons.append(daemon)
        if daemon.pidfile:
            self._start_forking(daemon)
        else:
            log = open(daemon.log, "ab") if daemon.log else subprocess.DEVNULL  # noqa: SIM115
            daemon.process = self.popen(daemon.node, daemon.argv, daemon.privileged, stdout=log,
                                        stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL)
            if daemon.log:
                log.close()
        return daemon

    def _start_forking(self, daemon: Daemon) -> None:
        """A program that forks into the background (FRR's ``-d``): wait for the parent only.
        Its output goes to a file, never a pipe: FRR 10's daemon keeps the descriptors it was
        given, and a reader of a pipe would wait for it to exit."""
        out = daemon.log or daemon.pidfile.with_suffix(".out")
        with open(out, "ab") as f:
            result = subprocess.run(self._argv(daemon.node, daemon.argv, daemon.privileged),
                                    stdin=subprocess.DEVNULL, stdout=f, stderr=subprocess.STDOUT,
                                    timeout=60)
        if result.returncode != 0:
            said = out.read_text(errors="replace").strip().splitlines()[-3:]
            raise NetworkError(f"{daemon.node}: {daemon.name} did not start (exit status "
                               f"{result.returncode}): {' / '.join(said)[:300]}")

    def kill_daemon(self, daemon: Daemon) -> None:
        """SIGKILL, as a crash would; ``start_daemon`` brings it back."""
        self._kill(daemon)

    def _kill(self, daemon: Daemon) -> None:
        pid = daemon.pid()
        if pid:
            cleanup.kill([pid])
        if daemon.process:
            with contextlib.suppress(Exception):
                daemon.process.wait(timeout=5)
            daemon.process = None
        if daemon.pidfile:
            daemon.pidfile.unlink(missing_ok=True)

    def _validate_sources(self) -> None:
        for router in (n for n in self.graph if is_router(self.graph, n)):
            settings = source_validation.rp_filter(self.graph, self.plan, router)
            if settings:
                self.exec(router, "sysctl", "-qw", *settings, privileged=True)
            table = source_validation.ruleset(self.graph, self.plan, router)
            if table:
                self.exec(router, "nft", "-f", "-", input=table, privileged=True)

    # -- shaping ---------------------------------------------------------------------------
    def _apply_shaping(self, nodes) -> None:
        """tc and iptables on ``nodes``; the delay process always gets the whole network's
        queues (one configuration, applied before the rules that feed it)."""
        plans = shaping.plan_shaping(self.graph, self.plan, self.backend,
                                     netem_cost_ms=self.calibration.cost_us / 1000)
        for node in sorted(nodes, key=natural_key):
            todo = plans.get(node, shaping.NodeShaping())
            if todo.tc:  # on stdin: a host does not see the run's files
                self.exec(node, "tc", "-batch", "-", input="\n".join(todo.tc) + "\n",
                          privileged=True)
        if self.delay is not None:
            queues = [Queue(node, q.number, q.delay_ms, q.jitter_ms)
                      for node, todo in sorted(plans.items()) for q in todo.queues]
            try:
                self.delay.configure({q.node: self[q.node].pid for q in queues}, queues,
                                     advance_us=self.calibration.cost_us)
            except DelayPathError as e:
                raise NetworkError(str(e)) from None
        for node in nodes:
            todo = plans.get(node, shaping.NodeShaping())
            self.exec(node, "iptables", "-w", "-t", "mangle", "-F", privileged=True)
            if todo.iptables:
                self.exec(node, "iptables-restore", "-w", "--noflush",
                          input=todo.iptables_restore(), privileged=True)

    def set_link(self, a: str, b: str, spec: LinkSpec) -> None:
        """Change a link's delay, jitter, loss or bandwidth while the network runs."""
        self.graph.edges[a, b].update(delay_ms=spec.delay_ms, bw_mbit=spec.bw_mbit,
                                      loss_pct=spec.loss_pct, jitter_ms=spec.jitter_ms)
        for node in (a, b):
            for intf in self.plan.interfaces_of(node):
                self.exec(node, "tc", "qdisc", "del", "dev", intf.name, "root", check=False,
                          privileged=True)
        self._apply_shaping([a, b])

    # -- failures --------------------------------------------------------------------------
    def _link_ends(self, a: str, b: str) -> tuple[str, str]:
        if not self.graph.has_edge(a, b):
            raise NetworkError(f"there is no link {a}-{b} in this topology")
        return self.plan.intf(a, b).name, self.plan.intf(b, a).name

    def link_down(self, a: str, b: str, mode: str = "carrier") -> None:
        """Cut a link. ``carrier``: both interfaces go down, as when a cable is pulled, and
        the routers see it at once. ``silent``: frames vanish but the interfaces stay up, as
        when a box in between fails; only hello or BFD timeouts reveal it."""
        if mode not in LINK_MODES:
            raise NetworkError(f"link mode must be one of {', '.join(LINK_MODES)}")
        for node, intf in zip((a, b), self._link_ends(a, b), strict=True):
            if mode == "carrier":
                self.exec(node, "ip", "link", "set", intf, "down", privileged=True)
            else:
                self.exec(node, "nft", "-f", "-", privileged=True, input=(
                    f"table netdev splinter_cut {{ chain {_chain(intf)} {{ type filter hook "
                    f'ingress device "{intf}" priority -500; policy drop; }}; }}'))
        self.down_links[tuple(sorted((a, b)))] = mode

    def link_up(self, a: str, b: str) -> None:
        mode = self.down_links.pop(tuple(sorted((a, b))), None)
        for node, intf in zip((a, b), self._link_ends(a, b), strict=True):
            if mode == "silent":
                self.exec(node, "nft", "-f", "-", check=False, privileged=True,
                          input=f"delete chain netdev splinter_cut {_chain(intf)}")
            elif node not in self.crashed:
                self.exec(node, "ip", "link", "set", intf, "up", privileged=True)
        self._restore_static_routes([a, b])

    def crash(self, router: str) -> None:
        """A router dies: its daemons are killed and its interfaces go down."""
        if router not in self.graph or not is_router(self.graph, router):
            raise NetworkError(f"{router} is not a router of this topology")
        for daemon in self.daemons:
            if daemon.node == router:
                self._kill(daemon)
        for intf in self.plan.interfaces_of(router):
            self.exec(router, "ip", "link", "set", intf.name, "down")
        self.crashed.add(router)

    def restore(self, router: str) -> None:
        """Power the router back on: interfaces up (except links still cut), daemons restarted."""
        self.crashed.discard(router)
        for intf in self.plan.interfaces_of(router):
            if self.down_links.get(tuple(sorted((router, intf.peer)))) != "carrier":
                self.exec(router, "ip", "link", "set", intf.name, "up")
        self._restore_static_routes([router, *self.graph.neighbors(router)])
        for daemon in self.daemons:
            if daemon.node == router:
                self.start_daemon(daemon)

    def _route_devices(self, farms) -> None:
        """A farm's device block: local in the farm (every address of it is the farm's own,
        without one entry each), routed to the farm's line address by its router."""
        for farm in farms:
            block = self.plan.devices[farm]
            self.exec(farm, "ip", "route", "replace", "local", str(block), "dev", "lo",
                      privileged=True)
            self.exec(self.plan.interfaces_of(farm)[0].peer, "ip", "route", "replace",
                      str(block), "via", self.address(farm), check=False)

    def _restore_static_routes(self, nodes) -> None:
        """The kernel drops routes through an interface that went down; put them back. End
        nodes always have a static default route, device blocks their route; routers only
        without a routing protocol (which puts its own routes back)."""
        self._route_devices([f for f in self.plan.devices
                             if f in nodes or self.plan.interfaces_of(f)[0].peer in nodes])
        for node in nodes:
            if is_router(self.graph, node):
                if not self.static_routes:
                    continue
                routes = self[node].params.get("routes", [])
                self.exec(node, "ip", "-batch", "-", check=False, input="".join(
                    f"route replace {p} via {nh}\n" for p, nh in routes))
            else:
                self.exec(node, "ip", "route", "replace", "default", "via",
                          str(self.plan.gateway(node)), check=False, privileged=True)

    def readdress(self, end: str, address: str | None = None) -> str:
        """Move an end node to another address of its own line, as when an ISP hands out a new
        lease; ``address=None`` picks the next spare. Returns the new address."""
        (intf,) = self.plan.interfaces_of(end)
        line = intf.address.network
        spares = [str(a) for a in line.hosts() if a != self.plan.gateway(end)]
        current = self.address(end)
        target = address or next(a for a in spares if a != current)
        if target not in spares:
            raise NetworkError(f"{target} is not a free address of {end}'s line {line}")
        self.exec(end, "ip", "-batch", "-", privileged=True, input=(
            f"addr flush dev {intf.name}\naddr add {target}/{line.prefixlen} dev {intf.name}\n"
            f"route replace default via {self.plan.gateway(end)}\n"))
        if target == str(intf.address.ip):
            self.moved.pop(end, None)
        else:
            self.moved[end] = target
        return target

    # -- facts -----------------------------------------------------------------------------
    def address(self, node: str) -> str:
        return self.moved.get(node) or str(self.plan.address(node))

    def end_nodes(self) -> Iterator[str]:
        return (n for n in sorted(self.graph, key=natural_key) if not is_router(self.graph, n))

    def line_state(self, end: str) -> str:
        """What one would look at when an end node stays cut off: its address, routes and
        neighbours; on its router the line's link, route and neighbour, the end-node lines it
        has no route to, the packets each netfilter rule and the delay path's queues took, and
        the conntrack count. One line per command, for an error message."""
        (intf,) = self.plan.interfaces_of(end)
        router, line = intf.peer, self.plan.intf(intf.peer, end).name
        commands = [(end, ["ip", "-br", "-4", "addr"]), (end, ["ip", "-4", "route"]),
                    (end, ["ip", "neigh"]),
                    (router, ["ip", "-br", "link", "show", "dev", line]),
                    (router, ["ip", "-4", "route", "get", self.address(end)]),
                    (router, ["ip", "neigh", "show", "dev", line]),
                    (router, ["sh", "-c", "iptables -w -t mangle -nvxL; iptables -w -nvxL"]),
                    (router, ["nft", "list", "counters"]),
                    (router, ["conntrack", "-C"])]
        out = []
        for node, argv in commands:
            try:
                r = self.exec(node, *argv, check=False, privileged=True, timeout=10)
                text = (r.stdout + r.stderr).strip()
            except subprocess.TimeoutExpired:
                text = "(timed out)"
            if argv[0] in ("sh", "nft"):  # only what counted something
                text = " ; ".join(w for w in text.splitlines() if (
                    "NFQUEUE" in w or "DROP" in w or "Chain" in w or "packets" in w)
                    and " 0 bytes 0" not in w)
            out.append(f"{node}$ {' '.join(argv[-2:])}: {' | '.join(text.splitlines())}")
        table = self.exec(router, "ip", "-4", "route", "show", check=False).stdout
        have = {line.split()[0] for line in table.splitlines() if line.strip()}
        lost = [e for e in self.end_nodes() if str(self.plan.line(e)) not in have]
        out.append(f"{router} has no route to the lines of: {', '.join(lost) or 'none'}")
        prefix = str(self.plan.line(end))
        blind = [r for r in sorted(self.graph, key=natural_key) if is_router(self.graph, r)
                 and not self.exec(r, "ip", "-4", "route", "show", prefix,
                                   check=False).stdout.strip()]
        out.append(f"routers with no route to {end}'s line {prefix}: {', '.join(blind) or 'none'}")
        frr = self.run.dir / "frr" / router if self.run else None
        if frr is not None and frr.is_dir():
            for command in ("show ip ospf neighbor", "show ip ospf database router self-originate"):
                r = self.exec(router, "vtysh", "--vty_socket", str(frr), "-c", command,
                              check=False, timeout=10)
                text = " | ".join(w.strip() for w in (r.stdout + r.stderr).splitlines()
                                  if w.strip() and ("Full" in w or "Link" in w or "Seq" in w
                                                    or "%" in w))
                out.append(f"{router}$ vtysh {command}: {text[:1200]}")
        if self.delay is not None:
            queues = self.delay.stats().get("namespaces", {}).get(router, {}).get("queues")
            out.append(f"delay path queues on {router} (number: packets, most held): {queues}")
        return "\n".join(out)

    def describe(self) -> dict:
        """What a results file needs to say about how links were emulated: the backend, its
        calibration and, for the userspace path, how punctually it released packets."""
        out = {"delay_backend": self.backend, "low_latency_pm_qos": self.low_latency_held,
               "static_routes": self.static_routes,
               "source_validation": source_validation.SETTINGS,
               "hosts": "each its own user and private /run/splinterlab"}
        if self.calibration is not None:
            out["calibration"] = asdict(self.calibration)
        if self.backend == "userspace":
            out["delay_path"] = self.delay.summary() if self.delay else self.delay_summary
        return out
