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
from dataclasses import asdict
from pathlib import Path

import networkx as nx

from . import addressing, calibration, cleanup, reach, shaping, source_validation
from .daemon import Daemon
from .delaypath import DelayPath, DelayPathError, Queue, hold_low_latency
from .diagnosis import Diagnosis
from .errors import NetworkError
from .faults import Faults
from .graph import DEFAULT_SEED, LinkSpec, hosts, is_router, natural_key
from .placement import Server
from .polling import wait_until
from .private import write_private
from .runstate import MARKER, RunState
from .spread import Spread

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


def require_root() -> None:
    if os.geteuid() != 0:
        raise NetworkError("building an emulated network needs root; run it with sudo")
    if not shutil.which("mnexec"):
        raise NetworkError("Mininet's mnexec is missing; run 'sudo make setup'")


class EmulatedNetwork(Faults, Diagnosis, Spread):
    """Bring a graph up (``with EmulatedNetwork(g, static_routes=True) as net:``), act on it,
    tear it down. ``static_routes`` has no default: precomputed kernel routes would silently
    outrank any routing protocol started later."""

    def __init__(self, graph: nx.Graph, *, static_routes: bool, backend: str = "auto",
                 seed: int = DEFAULT_SEED, servers: list[Server] | None = None):
        self.graph = graph
        self.servers = servers or []  # none: this machine alone (``spread``)
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
        self._place()

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

        t0 = time.monotonic()
        self.backend = shaping.resolve_backend(self.requested_backend)
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
        self._join_servers()
        self._calibrate()
        self.mn = self._mininet(static=self.static_routes,
                                private_root=str(self.run.subdir("private")),
                                scratch=str(self.run.subdir("batch")))
        self.mn.build()
        for host, uid in self.users.items():
            os.chown(self.private_dir(host), uid, uid)
            os.chmod(self.private_dir(host), 0o700)
        self._validate_sources()
        self._route_devices(self.plan.devices)
        self.timings["mininet_s"] = time.monotonic() - t0
        if self.servers:
            self._measure_tunnels()
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
        for daemon in reversed(self.daemons):  # a machine's daemon after what it started
            self._kill(daemon)
        for name, path in self.remote_delays.items():
            path.stop()
            self.remote_delay_summary[name] = path.summary()
        self.remote_delays = {}
        if self.delay is not None:
            self.delay.stop()
            self.delay_summary = self.delay.summary()
            self.delay = None
        if self.mn is not None:
            for node in self.mn.hosts:
                _end_shell(node)
        cleanup.clean(self.run.run_id)
        self._left_servers()
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

    def _argv(self, node: str, argv, privileged: bool, raw: bool = False,
              written: Path | None = None) -> list[str]:
        uid = self.users.get(node)
        if uid is None or privileged:
            return self.on_server(node, ["mnexec", "-a", str(self[node].pid), *argv], written)
        # ping's file capability (cap_net_raw) must stay grantable; nothing else is. ``raw``:
        # the host's user may also craft packets (a person in control of their own machine)
        caps = ["--inh-caps=-all,+net_raw", "--ambient-caps=-all,+net_raw"] if raw else \
            ["--inh-caps=-all"]
        return self.on_server(node, [
            "mnexec", "-a", str(self[node].pid), "setpriv", f"--reuid={uid}", f"--regid={uid}",
            f"--groups={reach.HOSTS_GID}", *caps, "--bounding-set=-all,+net_raw", *argv], written)

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
        ``privileged``; on another server, with no terminal input to take). Signal it with
        ``signal``."""
        written = self.written_for(node)
        if written is not None:
            kwargs.setdefault("stdin", subprocess.DEVNULL)
        return self.started_there(subprocess.Popen(
            self._argv(node, argv, privileged, written=written), **kwargs), node, written)

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
        write_private(self.private_dir(node) / name, source.read_bytes(), self.users[node])
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
        server = self.server_of(daemon.node) if daemon.node else daemon.server
        daemon.machine = self.machines[server] if server else None
        if daemon.pidfile:
            self._start_forking(daemon)
        else:
            log = open(daemon.log, "ab") if daemon.log else subprocess.DEVNULL  # noqa: SIM115
            daemon.written = self.workdir("pids") / f"{daemon.node or server}-{daemon.name}" \
                if daemon.machine else None  # what a kill there needs
            argv = self._argv(daemon.node, daemon.argv, daemon.privileged,
                              written=daemon.written) if daemon.node else \
                self.on_machine(daemon.server, daemon.argv, daemon.written)
            daemon.process = subprocess.Popen(argv, stdout=log, stderr=subprocess.STDOUT,
                                              stdin=subprocess.DEVNULL)
            if daemon.log:
                log.close()
        return daemon

    def _start_forking(self, daemon: Daemon) -> None:
        """A program that forks into the background (FRR's ``-d``): wait for the parent only.
        Its output goes to a file, never a pipe: FRR 10's daemon keeps the descriptors it was
        given, and a reader of a pipe would wait for it to exit."""
        out = daemon.log or daemon.pidfile.with_suffix(".out")
        argv = daemon.argv if daemon.machine is None else [  # there: not ssh's own channel
            "sh", "-c", f'exec "$@" >> {out} 2>&1 < /dev/null', "sh", *daemon.argv]
        with open(out, "ab") as f:
            result = subprocess.run(self._argv(daemon.node, argv, daemon.privileged),
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
        if pid and daemon.machine is not None:  # its pid there
            daemon.machine.run(["kill", "-9", str(pid)], check=False)
            wait_until(lambda: not daemon.alive(), 5, 0.02)
        elif pid:
            cleanup.kill([pid])
        if daemon.process:
            with contextlib.suppress(Exception):
                daemon.process.wait(timeout=5)
            daemon.process = None
        for path in (daemon.pidfile, daemon.written):
            if path is not None:
                path.unlink(missing_ok=True)

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
        plans = shaping.plan_shaping(self.shaping_graph(), self.plan, self.backend,
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
                for path, theirs in self.delay_paths(queues):
                    path.configure({q.node: self[q.node].pid for q in theirs}, theirs,
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

    # -- facts -----------------------------------------------------------------------------
    def address(self, node: str) -> str:
        return self.moved.get(node) or str(self.plan.address(node))

    def end_nodes(self) -> Iterator[str]:
        return (n for n in sorted(self.graph, key=natural_key) if not is_router(self.graph, n))

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
        if self.servers:
            out["spread"] = self.spread_summary()
        return out
