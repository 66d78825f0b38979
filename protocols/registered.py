"""Registered access: a toy of the "New IP / intrinsic security" proposals, close to Ethane.

Routing is the same OSPF as the permissionless network; on top of it:

* the authority (``protocols.authority``) at the topology's authority site, so that the
  gateways' distance to it is real network distance;
* a gateway (``protocols.gateway``) on every access router, each with its own HMAC key;
* a civil register naming one person per host (and a few spares), which registration
  checks real names against;
* unless told otherwise, every host registers itself through its gateway at start, with the
  ordinary host client: the same path a student's ``register h1`` takes.
"""

from __future__ import annotations

import json
import random
import sys
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

from topologies.graph import authority_site, end_nodes, routers
from topologies.network import Daemon, EmulatedNetwork, NetworkError

from .codec import PORT
from .operator import Operator, OperatorError
from .ospf import Ospf, OspfSettings
from .registry import Gateway, Registry

FIRST = ("Ada", "Bela", "Chen", "Dara", "Emil", "Farah", "Goran", "Hana", "Ines", "Jonas",
         "Kemal", "Lena", "Mira", "Nuno", "Olga", "Pavel")
LAST = ("Okafor", "Lindqvist", "Moreau", "Haddad", "Novak", "Sato", "Ferreira", "Kowalski",
        "Ibrahim", "Jensen", "Rossi", "Petrov")
SPARE_PEOPLE = 8
FAIL_MODES = ("closed", "open")
LOAD_GATEWAY = 99


class Registered:
    name = "registered"
    static_routes = False

    def __init__(self, ospf: OspfSettings | None = None, ttl_ms: int = 30_000,
                 fail_mode: str = "closed", register_hosts: bool = True, seed: int = 0,
                 load_gateway: bool = False):
        """``load_gateway``: also register a synthetic gateway (id 99) at the authority's own
        router, whose key a load generator uses to put the authority under load over the
        emulated network."""
        if fail_mode not in FAIL_MODES:
            raise ValueError(f"fail mode must be closed or open, not {fail_mode!r}")
        if not 100 <= ttl_ms <= 86_400_000:
            raise ValueError("the admission TTL must be between 100 ms and a day")
        self.routing = Ospf(ospf)
        self.ttl_ms = ttl_ms
        self.fail_mode = fail_mode
        self.register_hosts = register_hosts
        self.rng = random.Random(seed)
        self.people: dict[str, tuple[str, str]] = {}   # host -> (national id, real name)
        self.spares: list[tuple[str, str]] = []
        self.gateways: dict[str, int] = {}              # access router -> gateway id
        self.operator: Operator | None = None
        self.load_gateway: Gateway | None = None
        self.want_load_gateway = load_gateway
        self.authority_node = ""
        self.authority_daemon: Daemon | None = None
        self.net: EmulatedNetwork | None = None

    # -- bring-up --------------------------------------------------------------------------
    def start(self, net: EmulatedNetwork, services) -> None:
        self.net = net
        g = net.graph
        self.authority_node = authority_site(g)
        if self.authority_node is None:
            raise NetworkError(f"topology {g.graph.get('spec', '')} has no authority site; "
                               "registered access needs one")
        self.routing.start(net)
        self._civil_register()
        workdir = net.workdir("authority")
        gateways = []
        for k, r in enumerate((r for r in routers(g) if g.nodes[r]["role"] == "access"),
                              start=1):
            self.gateways[r] = k
            gateways.append(Gateway(k, r, g.nodes[r].get("region", "all"),
                                    self.rng.randbytes(32), int(net.plan.loopbacks[r])))
        if self.want_load_gateway:
            router = next(iter(g.neighbors(self.authority_node)))
            self.load_gateway = Gateway(LOAD_GATEWAY, router, "load", self.rng.randbytes(32),
                                        int(net.plan.loopbacks[router]))
        Registry.create(workdir / "registry.db",
                        gateways + ([self.load_gateway] if self.load_gateway else []),
                        [*self.people.values(), *self.spares], self.ttl_ms).close()
        self._start_authority(workdir)
        for gw in gateways:
            self._start_gateway(gw)
        for gw in gateways:
            self._wait_gateway(gw.name)
        if self.register_hosts:
            with ThreadPoolExecutor(8) as pool:
                failures = [f for f in pool.map(self.register, self.people) if f]
            if failures:
                raise NetworkError(f"host registration failed: {'; '.join(failures[:3])}")

    def _civil_register(self) -> None:
        names = [f"{f} {last}" for last in LAST for f in FIRST]
        self.rng.shuffle(names)
        hosts = end_nodes(self.net.graph, "host")
        for k, host in enumerate(hosts):
            self.people[host] = (f"NID-{k + 1:05d}", names[k % len(names)])
        self.spares = [(f"NID-{len(hosts) + k + 1:05d}", names[(len(hosts) + k) % len(names)])
                       for k in range(SPARE_PEOPLE)]

    def _start_authority(self, workdir: Path) -> None:
        net = self.net
        config = workdir / "authority.json"
        config.write_text(json.dumps({"db": str(workdir / "registry.db"),
                                      "address": net.address(self.authority_node),
                                      "admin": str(workdir / "admin.sock")}))
        self.authority_daemon = net.start_daemon(Daemon(
            self.authority_node, "authority", [sys.executable, "-m", "protocols.authority",
                                               str(config)], log=workdir / "authority.log"))
        self.operator = Operator(workdir / "admin.sock")
        self._wait_authority(workdir)

    def _wait_authority(self, workdir: Path) -> None:
        net, daemon = self.net, self.authority_daemon
        deadline = time.monotonic() + 15
        while time.monotonic() < deadline:
            if daemon.process.poll() is not None:
                raise NetworkError(f"the authority died: {_tail(workdir / 'authority.log')}")
            if (workdir / "admin.sock").exists() and net.exec(
                    self.authority_node, "ss", "-Hlun", f"sport = :{PORT}",
                    check=False).stdout.strip():
                return
            time.sleep(0.05)
        raise NetworkError("the authority did not start within 15 s")

    def kill_authority(self) -> None:
        """The authority dies (SIGKILL): gateways find out by themselves."""
        self.net.kill_daemon(self.authority_daemon)
        (self.net.workdir("authority") / "admin.sock").unlink(missing_ok=True)

    def restart_authority(self) -> None:
        """Start it again on the same registry; it re-syncs every gateway."""
        self.net.start_daemon(self.authority_daemon)
        self._wait_authority(self.net.workdir("authority"))

    def gateway_dir(self) -> Path:
        return self.net.workdir("gateways")

    def _start_gateway(self, gw: Gateway) -> None:
        net, g = self.net, self.net.graph
        lines = {net.plan.intf(gw.name, h).name: str(net.plan.line(h))
                 for h in g.neighbors(gw.name) if g.nodes[h]["role"] == "host"}
        config = self.gateway_dir() / f"{gw.name}.json"
        config.write_text(json.dumps({
            "id": gw.id, "key": gw.key.hex(), "address": str(net.plan.loopbacks[gw.name]),
            "authority": net.address(self.authority_node), "fail_mode": self.fail_mode,
            "ttl_ms": self.ttl_ms, "national": "198.18.0.0/15", "lines": lines}))
        config.with_suffix(".status.json").unlink(missing_ok=True)
        net.start_daemon(Daemon(gw.name, "gateway", [sys.executable, "-m", "protocols.gateway",
                                                     str(config)],
                                log=self.gateway_dir() / f"{gw.name}.log"))

    def gateway_status(self, router: str) -> dict:
        try:
            return json.loads((self.gateway_dir() / f"{router}.status.json").read_text())
        except (OSError, ValueError):
            return {}

    def _wait_gateway(self, router: str, timeout: float = 20) -> None:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.gateway_status(router).get("reachable"):
                return
            daemon = next(d for d in self.net.daemons if d.node == router
                          and d.name == "gateway")
            if daemon.process and daemon.process.poll() is not None:
                raise NetworkError(f"the gateway on {router} died: "
                                   f"{_tail(self.gateway_dir() / f'{router}.log')}")
            time.sleep(0.05)
        raise NetworkError(f"the gateway on {router} did not reach the authority in "
                           f"{timeout:g} s")

    # -- host side -------------------------------------------------------------------------
    def state_file(self, host: str) -> Path:
        return self.net.workdir("hosts") / f"{host}.json"

    def register(self, host: str, national_id: str | None = None,
                 real_name: str | None = None) -> str:
        """Register ``host`` through its gateway with the host client; '' or why it failed."""
        nid, name = self.people.get(host, ("", ""))
        return self._hostclient(host, "register", national_id or nid, real_name or name)

    def bind(self, host: str) -> str:
        """Re-bind ``host``'s saved identity to its current address; '' or why it failed."""
        return self._hostclient(host, "bind")

    def _hostclient(self, host: str, command: str, *arguments: str) -> str:
        result = self.net.exec(host, sys.executable, "-m", "protocols.hostclient", command,
                               *arguments, str(self.state_file(host)), check=False, timeout=30)
        return "" if result.returncode == 0 else f"{host}: {result.stdout.strip()}"

    def identity(self, host: str) -> int | None:
        """The identity the authority has bound to ``host``'s current address."""
        try:
            return self.operator.who(address=self.net.address(host))["identity"]
        except OperatorError:  # no identity at that address
            return None

    def describe(self) -> dict:
        return {"architecture": self.name, "routing": "OSPF (FRR)",
                "ospf": vars(self.routing.settings),
                "convergence_s": self.routing.convergence_s, "ttl_ms": self.ttl_ms,
                "fail_mode": self.fail_mode, "authority": self.authority_node,
                "gateways": self.gateways}


def _tail(path: Path) -> str:
    try:
        return path.read_text()[-300:].strip()
    except OSError:
        return ""
