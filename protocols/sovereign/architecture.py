"""IP under national control: today's Internet with what a state can add without changing IP.

The same OSPF, addresses and default-allow forwarding as permissionless IP, plus:

* a subscriber register (``subscribers``): every host's line signed up by a real person, every
  address lease logged (China's real-name rules for ISPs);
* an inspection box (``box``) on every access router, watching its subscribers' lines, and on
  every border router, watching the lines abroad (Russia's TSPU boxes, installed at every ISP
  since the 2019 sovereign-internet law);
* a regulator (``regulator``) at the topology's authority site that pushes one rule set to
  every box (Roskomnadzor's central control of the TSPU);
* the national resolver lies when told to; every box exports flow records, which the operator
  joins with the leases to name the person behind each.

Nobody admits a flow: a box that loses the regulator keeps its last rules and passes the rest.
"""

from __future__ import annotations

import json
import random
import sys
import time
from pathlib import Path

from protocols import people
from protocols.design import Design
from protocols.ospf import Ospf, OspfSettings
from protocols.spawned import Spawner
from topologies.graph import DEFAULT_SEED, authority_site, end_nodes, is_foreign, routers
from topologies.network import Daemon, NetworkError
from topologies.polling import STARTUP_S, wait_until
from topologies.private import write_private

from .instruments import InspectionInstruments
from .regulator import ACKS, PORT, RULES
from .rules import Rules
from .subscribers import Subscribers

SPARE_PEOPLE = 4  # people without a line of their own


class SovereignError(RuntimeError):
    """The rules could not be put in force, in one sentence."""


class Sovereign:
    name = "sovereign"
    static_routes = False

    def __init__(self, ospf: OspfSettings | None = None, seed: int = DEFAULT_SEED):
        self.routing = Ospf(ospf)
        self.rng = random.Random(seed)  # names only
        self.rules = Rules()
        self.net = None
        self.regulator_node = ""
        self.regulator: Daemon | None = None
        self.boxes: list[str] = []
        self.spawner: Spawner | None = None  # every box's
        self.subscribers: Subscribers | None = None
        self.spares: list[str] = []

    # -- bring-up --------------------------------------------------------------------------
    def start(self, net, services) -> None:
        self.net, g = net, net.graph
        self.regulator_node = authority_site(g)
        if self.regulator_node is None:
            raise NetworkError(f"topology {g.graph.get('spec', '')} has no authority site; "
                               "the regulator runs there")
        self.routing.start(net)
        self.subscribers = Subscribers(self.directory() / "subscribers.db")
        names = people.names(self.rng)
        hosts = end_nodes(g, "host")
        for k, host in enumerate(hosts):
            self.subscribers.sign_up(people.national_id(k), names[k % len(names)], host)
            self.subscribers.lease(host, net.address(host))
        self.spares = [people.national_id(len(hosts) + k) for k in range(SPARE_PEOPLE)]
        for k, person in enumerate(self.spares, start=len(hosts)):  # who could lend an id
            self.subscribers.sign_up(person, names[k % len(names)], None)
        self._save(self.rules)
        self.regulator = net.start_daemon(Daemon(
            self.regulator_node, "regulator",
            [sys.executable, "-m", "protocols.sovereign.regulator", str(self.directory()),
             net.address(self.regulator_node)], log=self.directory() / "regulator.log",
            privileged=True))
        if not wait_until(lambda: net.listening(self.regulator_node, PORT), STARTUP_S, 0.1):
            raise NetworkError(f"the regulator did not start: {self._tail('regulator.log')}")
        self.spawner = Spawner(net, "protocols.sovereign.box", self.directory())
        self.spawner.start()
        for router in routers(g):
            if g.nodes[router]["role"] in ("access", "border"):
                self._start_box(router)
        self.push(Rules())  # every box connected, its record set and table in place

    def directory(self) -> Path:
        return self.net.workdir("sovereign")

    def _start_box(self, router: str) -> None:
        g, plan = self.net.graph, self.net.plan
        border = g.nodes[router]["role"] == "border"
        watched = [plan.intf(router, p).name for p in g.neighbors(router)
                   if (is_foreign(g, p) if border else
                       g.nodes[p]["role"] in ("host", "server") and p != self.regulator_node)]
        config = self.directory() / f"{router}.json"
        write_private(config, json.dumps({
            "router": router, "border": border, "watched": watched,
            "region": g.nodes[router].get("region", ""),
            "regulator": self.net.address(self.regulator_node)}).encode(), None)
        self.net.start_daemon(self.spawner.daemon(router, "box", config,
                                                  self.directory() / f"{router}.log"))
        self.boxes.append(router)

    # -- rules -----------------------------------------------------------------------------
    def push(self, rules: Rules) -> None:
        """``rules`` (any version) as the next version, in force at every live box when this
        returns (SovereignError naming the boxes that are not)."""
        self.rules = Rules(**{**rules.__dict__, "version": self.rules.version + 1})
        self._save(self.rules)
        if self.regulator.process is None or self.regulator.process.poll() is not None:
            raise SovereignError(f"the regulator is down: rule set {self.rules.version} is "
                                 "saved and goes out once it is back")
        self.in_force()

    def in_force(self) -> None:
        def behind() -> list[str]:
            return [b for b in self.boxes if b not in self.net.crashed and
                    self.box_status(b).get("version", -1) < self.rules.version]

        if not wait_until(lambda: not behind(), STARTUP_S, 0.05):
            raise SovereignError(f"rule set {self.rules.version} is not in force at "
                                 f"{', '.join(behind())}: {self.health(behind())}")

    def _save(self, rules: Rules) -> None:
        write_private(self.directory() / RULES, rules.dumps().encode(), None)

    def box_status(self, router: str) -> dict:
        try:
            return json.loads((self.directory() / f"{router}.status.json").read_text())
        except (OSError, ValueError):
            return {}

    def acks(self) -> dict:
        try:
            return json.loads((self.directory() / ACKS).read_text())
        except (OSError, ValueError):
            return {}

    def kill_central(self) -> None:
        """The regulator dies (SIGKILL): the boxes keep their rules and pass the rest."""
        self.net.kill_daemon(self.regulator)

    def restart_central(self) -> None:
        self.net.start_daemon(self.regulator)
        wait_until(lambda: self.net.listening(self.regulator_node, PORT), STARTUP_S, 0.1)

    # -- what experiments ask for ----------------------------------------------------------
    def instruments(self, net, services) -> InspectionInstruments:
        return InspectionInstruments(self, net, services)

    def health(self, routers_) -> str:
        now = time.time()
        return "; ".join(f"box {r}: version {s.get('version')}, regulator heard "
                         f"{now - s.get('heard', 0):.1f} s ago, refused {s.get('refused')}"
                         + (", its flow records full" if s.get("records_full") else "")
                         for r in routers_ for s in [self.box_status(r)])

    def diagnose(self, net, ends: list[str]) -> str:
        first = list(dict.fromkeys(next(iter(net.graph.neighbors(e))) for e in ends[:2]))
        return "\n".join(part for part in (self.health(b for b in first if b in self.boxes),
                                           self.routing.diagnose(net, first)) if part)

    def _tail(self, name: str) -> str:
        path = self.directory() / name
        return path.read_text(errors="replace")[-300:] if path.exists() else "(no log)"

    def keep_records(self, dest: Path) -> list[Path]:
        """What the operator keeps, into a results directory: the subscriber register with
        its leases, and every box's flow records (no secrets: there are none)."""
        dest.mkdir(parents=True, exist_ok=True)
        kept = dest / "subscribers.db"
        self.subscribers.db.execute(f"VACUUM INTO '{kept}'")
        flows = dest / "flows.jsonl"
        flows.write_text("".join(p.read_text() for p in sorted(
            self.directory().glob("*.flows.jsonl"))))
        return [kept, flows]

    def describe(self) -> dict:
        return {"architecture": self.name, "routing": "OSPF (FRR)",
                "ospf": vars(self.routing.settings),
                "convergence_s": self.routing.convergence_s,
                "regulator": self.regulator_node, "boxes": self.boxes,
                "rules": json.loads(self.rules.dumps())}


DESIGN = Design("sovereign", "IP under national control", "#e69f00", Sovereign,
                "today's IP with real-name subscribers, inspection boxes at every access and "
                "border router, rules pushed from a regulator", seeded=True, central="regulator",
                compared=True)
