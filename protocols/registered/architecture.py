"""Registered access, laid over an emulated network: a toy of the "New IP / intrinsic security"
proposals, close to Ethane.

Routing is the same OSPF as the permissionless network; on top of it:

* a civil register naming one person per host (and a few spares), each with a card
  (``identity``); a host finds its card in its private directory, readable by it alone;
* the authority (``authority``) at the topology's authority site, so that the gateways'
  distance to it is real network distance, with its registry and journal;
* a gateway (``gateway``) on every access router, each with its own HMAC key;
* unless told otherwise, every host registers itself at start with the ordinary host client
  (``hostclient``): the same path a student's ``register h1`` takes;
* a device farm's devices (``topologies.addressing``) are enrolled in bulk before the
  authority starts, each a person of the register bound to its own address, as a maker
  provisions devices at the factory: thousands of proofs over the network would measure the
  set-up, not the architecture.

Keys and enrolment secrets come from the operating system (``secrets``); the seed chooses
names only. Key files, the registry and the operator's socket are readable by root alone, and
hosts see none of them. ``keep_records`` copies the registry and the admission log, without
secrets, into a results directory before the network goes away.
"""

from __future__ import annotations

import json
import os
import random
import secrets
import sys
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

from protocols import people
from protocols.design import Design, Option
from protocols.ospf import Ospf, OspfSettings
from protocols.spawned import Spawner
from topologies.addressing import NATIONAL, capacity, device_addresses
from topologies.graph import DEFAULT_SEED, attachment, authority_site, end_nodes, routers
from topologies.network import PRIVATE, Daemon, EmulatedNetwork, NetworkError
from topologies.polling import STARTUP_S, wait_until
from topologies.private import write_private

from . import records
from .identity import DEVICES, Card, issue
from .instruments import AuthorityInstruments
from .messages import DEFAULT_TTL_MS, PORT, TTL_BOUNDS_MS
from .operator import Operator, OperatorError
from .registry import Gateway, Registry

SPARE_PEOPLE = 8
TTL = Option("ttl_ms", "--ttl", DEFAULT_TTL_MS, "how long a grant lives, in ms",
             bounds=TTL_BOUNDS_MS, unit="ms")
FAIL_MODE = Option("fail_mode", "--fail-mode", "closed", "gateways without their authority: "
                   "drop new flows (closed) or let them pass (open)", choices=("closed", "open"))
DURABILITY = ("process", "power")
LOAD_GATEWAY = 99
CARD = "card.json"
STATE = "identity.json"


class Registered:
    name = "registered"
    static_routes = False

    def __init__(self, ospf: OspfSettings | None = None, ttl_ms: int = DEFAULT_TTL_MS,
                 fail_mode: str = "closed", register_hosts: bool = True, seed: int = DEFAULT_SEED,
                 load_gateway: bool = False, durability: str = "process"):
        """``load_gateway``: also register a synthetic gateway (id 99) at the authority's own
        router, whose key a load generator uses to put the authority under load over the
        emulated network."""
        FAIL_MODE.check(fail_mode)
        TTL.check(ttl_ms)
        if durability not in DURABILITY:
            raise ValueError(f"durability must be process or power, not {durability!r}")
        self.routing = Ospf(ospf)
        self.ttl_ms = ttl_ms
        self.fail_mode = fail_mode
        self.durability = durability
        self.register_hosts = register_hosts
        self.rng = random.Random(seed)           # names only: never keys or secrets
        self.cards: dict[str, Card] = {}         # host -> its person's card
        self.spares: list[Card] = []             # people with a card and no host
        self.gateways: dict[str, int] = {}       # access router -> gateway id
        self.operator: Operator | None = None
        self.load_gateway: Gateway | None = None
        self.load_router = ""
        self.want_load_gateway = load_gateway
        self.authority_node = ""
        self.authority_daemon: Daemon | None = None
        self.spawner: Spawner | None = None      # every gateway's
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
        workdir = self.authority_dir()
        gateways = []
        for k, r in enumerate((r for r in routers(g) if g.nodes[r]["role"] == "access"),
                              start=1):
            self.gateways[r] = k
            gateways.append(Gateway(k, r, g.nodes[r].get("region", "all"),
                                    secrets.token_bytes(32), int(net.plan.loopbacks[r])))
        if self.want_load_gateway:
            # at the authority's router, on that router's address on the authority's line
            # and under a name of its own: the router may run a real gateway too
            self.load_router = next(iter(g.neighbors(self.authority_node)))
            self.load_gateway = Gateway(LOAD_GATEWAY, f"load@{self.load_router}", "load",
                                        secrets.token_bytes(32),
                                        int(net.plan.gateway(self.authority_node)))
        registry = Registry.create(workdir / "registry.db",
                                   gateways + ([self.load_gateway] if self.load_gateway else []),
                                   [*self.cards.values(), *self.spares], self.ttl_ms)
        self._enrol_devices(registry)
        registry.close()
        self._start_authority(workdir)
        self.spawner = Spawner(net, "protocols.registered.gateway", self.gateway_dir())
        self.spawner.start()
        for gw in gateways:
            self._start_gateway(gw)
        for gw in gateways:
            self._wait_gateway(gw.name)
        if self.register_hosts:
            with ThreadPoolExecutor(8) as pool:
                failures = [f for f in pool.map(self.register, self.cards) if f]
            if failures:
                raise NetworkError(f"host registration failed: {'; '.join(failures[:3])}")

    def _enrol_devices(self, registry: Registry) -> None:
        """Every farm's devices: ``farm`` on its graph node is how many, at the addresses
        of its blocks (``addressing.device_addresses``)."""
        net, now = self.net, time.time()
        for farm, blocks in net.plan.devices.items():
            count = int(net.graph.nodes[farm]["farm"])
            if not 0 < count <= capacity(blocks):
                raise NetworkError(f"a farm holds 1 to {capacity(blocks)} devices, not {count}")
            gateway = self.gateways.get(net.plan.interfaces_of(farm)[0].peer)
            if gateway is None:
                raise NetworkError(f"farm {farm} is not on an access router")
            provisioned = []  # what the maker puts in each device: its identity, its secret
            addresses = device_addresses(blocks)
            for k in range(1, count + 1):
                card = issue(f"DEV-{farm}-{k}", f"device {k} of {farm}")
                registry.add_person(card)
                identity_ = registry.add_identity(card.national_id, now)
                registry.bind(identity_, addresses[k - 1], gateway, now)
                provisioned.append([identity_, card.secret.hex()])
            write_private(net.private_dir(farm) / DEVICES, json.dumps(
                {"devices": provisioned}).encode(), net.users[farm])
        registry.commit()

    def infrastructure(self) -> list[str]:
        """The control plane (every router, the authority): no host's destination."""
        net = self.net
        return [*map(str, net.plan.infrastructure(net.graph)),
                f"{net.address(self.authority_node)}/32"]

    def authority_dir(self) -> Path:
        path = self.net.workdir("authority")
        os.chmod(path, 0o700)
        return path

    def gateway_dir(self) -> Path:
        path = self.net.workdir("gateways")
        os.chmod(path, 0o700)
        return path

    def _civil_register(self) -> None:
        """One person per host and a few spares; each host gets its person's card."""
        names = people.names(self.rng)
        hosts = end_nodes(self.net.graph, "host")
        for k, host in enumerate(hosts):
            self.cards[host] = issue(people.national_id(k), names[k % len(names)])
            self.cards[host].save(self.net.private_dir(host) / CARD, self.net.users[host])
        self.spares = [issue(people.national_id(len(hosts) + k),
                             names[(len(hosts) + k) % len(names)]) for k in range(SPARE_PEOPLE)]

    def _start_authority(self, workdir: Path) -> None:
        net = self.net
        config = workdir / "authority.json"
        admin = self.admin_socket()
        write_private(config, json.dumps({
            "db": str(workdir / "registry.db"), "address": net.address(self.authority_node),
            "admin": str(admin), "durability": self.durability,
            "infrastructure": self.infrastructure(), "national": [str(NATIONAL)],
            "devices": [str(b) for b in net.plan.blocks()]}).encode(), None)
        self.authority_daemon = net.start_daemon(Daemon(
            self.authority_node, "authority", [sys.executable, "-m",
                                               "protocols.registered.authority", str(config)],
            log=workdir / "authority.log"))
        self.operator = Operator(admin, via=net.machine(self.authority_node))
        net.run.record(operator=[net.server_of(self.authority_node), str(admin)])
        self._wait_authority(workdir)

    def admin_socket(self) -> Path:
        """The authority's operator socket, on the server that runs it."""
        return self.net.sockets(self.authority_node, "authority") / "admin.sock"

    def _wait_authority(self, workdir: Path) -> None:
        machine = self.net.machine(self.authority_node)

        def started() -> bool:
            if self.authority_daemon.process.poll() is not None:
                raise NetworkError(f"the authority died: {_tail(workdir / 'authority.log')}")
            admin = self.admin_socket()
            there = admin.exists() if machine is None else machine.run(
                ["test", "-S", str(admin)], check=False).returncode == 0
            return there and self.net.listening(self.authority_node, PORT, udp=True)

        if not wait_until(started, STARTUP_S):
            raise NetworkError(f"the authority did not start within {STARTUP_S:g} s: "
                               f"{_tail(workdir / 'authority.log')}")

    def kill_authority(self) -> None:
        """The authority dies (SIGKILL): gateways find out by themselves."""
        self.net.kill_daemon(self.authority_daemon)
        admin, machine = self.admin_socket(), self.net.machine(self.authority_node)
        if machine is None:
            admin.unlink(missing_ok=True)
        else:
            machine.run(["rm", "-f", str(admin)])

    def restart_authority(self) -> None:
        """Start it again on the same registry; it re-syncs every gateway."""
        self.net.start_daemon(self.authority_daemon)
        self._wait_authority(self.authority_dir())

    kill_central, restart_central = kill_authority, restart_authority  # DESIGN.central

    def _start_gateway(self, gw: Gateway) -> None:
        net, g = self.net, self.net.graph
        lines = {net.plan.intf(gw.name, h).name: list(map(str, net.plan.own_prefixes(h)))
                 for h in g.neighbors(gw.name) if g.nodes[h]["role"] == "host"}
        config = self.gateway_dir() / f"{gw.name}.json"
        write_private(config, json.dumps({
            "id": gw.id, "key": gw.key.hex(), "address": str(net.plan.loopbacks[gw.name]),
            "authority": net.address(self.authority_node), "fail_mode": self.fail_mode,
            "ttl_ms": self.ttl_ms, "lines": lines, "durability": self.durability,
            "infrastructure": self.infrastructure(),
            "devices": [str(b) for h in g.neighbors(gw.name)
                        for b in net.plan.devices.get(h, ())]}).encode(), None)
        self._status_file(gw.name).unlink(missing_ok=True)
        net.start_daemon(self.spawner.daemon(gw.name, "gateway", config,
                                             self.gateway_dir() / f"{gw.name}.log"))

    def _status_file(self, router: str) -> Path:
        return self.gateway_dir() / f"{router}.status.json"

    def gateway_daemon(self, router: str) -> Daemon:
        return next(d for d in self.net.daemons if d.node == router and d.name == "gateway")

    def gateway_status(self, router: str) -> dict:
        try:
            return json.loads(self._status_file(router).read_text())
        except (OSError, ValueError):
            return {}

    def diagnose(self, net, ends: list[str]) -> str:
        """Why ``ends`` (most suspect first) stay cut off: their gateways' state and what
        OSPF says on the first two's routers."""
        g = net.graph
        gateways = [attachment(g, e) for e in ends if g.nodes[e]["role"] == "host"]
        first = list(dict.fromkeys(attachment(g, e) for e in ends[:2]))
        return "\n".join(part for part in (self.health(gateways),
                                            self.routing.diagnose(net, first)) if part)

    def health(self, routers) -> str:
        """The state of the gateways on ``routers`` in one line each (alive, reachable,
        policy applied, bindings, counters, last log words)."""
        lines = []
        for router in sorted(set(routers) & set(self.gateways)):
            daemon = self.gateway_daemon(router)
            alive = daemon.alive()
            status = self.gateway_status(router)
            path = self._status_file(router)
            age = time.time() - path.stat().st_mtime if path.exists() else float("nan")
            log = _tail(self.gateway_dir() / f"{router}.log").replace("\n", " | ")
            lines.append(f"gateway {router}: {'alive' if alive else 'dead'}, status "
                         f"{age:.0f} s old: "
                         f"reachable {status.get('reachable')}, applied "
                         f"{status.get('applied')}, bound {status.get('bound')}, counters "
                         f"{status.get('counters')}; log: {log[-200:]}")
        return "\n".join(lines)

    def _wait_gateway(self, router: str) -> None:
        daemon = self.gateway_daemon(router)

        def reached() -> bool:
            if not daemon.alive():
                raise NetworkError(f"the gateway on {router} died: "
                                   f"{_tail(self.gateway_dir() / f'{router}.log')}")
            return bool(self.gateway_status(router).get("reachable"))

        if wait_until(reached, STARTUP_S):
            return
        raise NetworkError(f"the gateway on {router} did not reach the authority in "
                           f"{STARTUP_S:g} s")

    # -- host side -------------------------------------------------------------------------
    def register(self, host: str, card: str = CARD) -> str:
        """``host`` registers, showing the card in its private directory named ``card`` (its
        own by default); '' or why it failed."""
        return self._hostclient(host, "register", card)

    def bind(self, host: str, card: str = CARD) -> str:
        """``host`` binds the identity of ``card`` to its current address; '' or why not."""
        return self._hostclient(host, "bind", card)

    def lend_card(self, owner: str | Card, borrower: str) -> str:
        """The holder of ``owner``'s card (a host's person, or a spare's card) hands it to
        ``borrower``, out of band: a copy lands in the borrower's private directory. Returns
        its name there."""
        card = self.cards[owner] if isinstance(owner, str) else owner
        name = f"borrowed-{card.national_id}.json"
        card.save(self.net.private_dir(borrower) / name, self.net.users[borrower])
        return name

    def _hostclient(self, host: str, command: str, card: str) -> str:
        result = self.net.exec(host, sys.executable, "-m", "protocols.registered.hostclient",
                               command, str(PRIVATE / card), str(PRIVATE / STATE),
                               check=False, timeout=30)
        if result.returncode == 0:
            return ""
        try:
            return f"{host}: {json.loads(result.stdout)['reason']}"
        except (ValueError, KeyError):
            return f"{host}: {(result.stdout or result.stderr).strip()[-200:]}"

    def identity(self, host: str) -> int | None:
        """The identity the authority has bound to ``host``'s current address."""
        try:
            return self.operator.who(address=self.net.address(host))["identity"]
        except OperatorError:  # no identity at that address
            return None

    def instruments(self, net, services) -> AuthorityInstruments:
        return AuthorityInstruments(self, net, services)

    # -- records ---------------------------------------------------------------------------
    def keep_records(self, dest: Path) -> list[Path]:
        """The registry without secrets and the whole admission log as CSV (``records``)."""
        return records.keep(dest, self.operator, self.authority_dir(), self.gateway_dir())

    def describe(self) -> dict:
        return {"architecture": self.name, "routing": "OSPF (FRR)",
                "ospf": vars(self.routing.settings),
                "convergence_s": self.routing.convergence_s, "ttl_ms": self.ttl_ms,
                "fail_mode": self.fail_mode, "durability": self.durability,
                "authority": self.authority_node, "gateways": self.gateways,
                "identity_proofing": "challenge-response with an enrolment card per person",
                "grants": "both directions, renewed in the background while in use"}


def _tail(path: Path) -> str:
    try:
        return path.read_text()[-300:].strip()
    except OSError:
        return ""


DESIGN = Design("registered", "registered access", "#c8392f", Registered,
                "an authority admits or denies every flow of registered identities",
                options=(TTL, FAIL_MODE), seeded=True, admits_flows=True, central="authority")
