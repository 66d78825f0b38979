"""``splinterlab up``: a network under one architecture, then the Mininet CLI or a test.

The CLI is Mininet's (``h1 ping h9``, ``h1 curl ...``, ``xterm h1``) plus commands that act
the way experiments do: failures through the network object, web probes from hosts, each
design's censor and central element (``lab_instruments``), a router's own view through vtysh.
"""

from __future__ import annotations

import shlex
import time

from mininet.cli import CLI

from experiments.commands import operator_cli
from experiments.commands.lab_instruments import InstrumentCommands
from experiments.lab import Lab
from experiments.model.reachability import users
from experiments.probing import probes
from protocols.architectures import admits, design
from protocols.censor import CensorError, CensorPolicy
from protocols.registered.operator import OperatorError
from topologies.network import NetworkError


class SplinterCLI(InstrumentCommands, CLI):
    prompt = "splinterlab> "

    def __init__(self, lab: Lab, **kwargs):
        self.attach(lab)
        super().__init__(lab.net.mn, **kwargs)

    def attach(self, lab: Lab) -> None:
        self.lab, self.net = lab, lab.net
        self.architecture, self.services = lab.architecture, lab.services

    def _act(self, action, *args):
        try:
            return action(*args)
        except (NetworkError, CensorError, ValueError) as e:
            print(f"*** {e}")
            return None

    def do_link(self, line: str) -> None:
        """link A B down [carrier|silent] | link A B up: cut or repair the link A-B."""
        words = line.split()
        if len(words) < 3 or words[2] not in ("up", "down"):
            print("usage: link A B down [carrier|silent] | link A B up")
        elif words[2] == "down":
            self._act(self.lab.fail, words[0], words[1], *words[3:4])
        else:
            self._act(self.lab.restore, words[0], words[1])

    def do_crash(self, line: str) -> None:
        """crash R: router R dies (daemons killed, interfaces down)."""
        self._act(self.lab.fail, line.strip())

    def do_restore(self, line: str) -> None:
        """restore R: router R comes back (interfaces up, daemons restarted)."""
        self._act(self.lab.restore, line.strip())

    def do_pingall(self, line: str) -> None:
        """pingall: one ping between every ordered pair of users (not the authority site)."""
        pingall(self.net)

    def do_sites(self, line: str) -> None:
        """sites: the names the resolvers know, and their true addresses."""
        for name, addresses in sorted(self.services.records.items()):
            print(f"  {name:<32} {', '.join(addresses)}")

    def do_probe(self, line: str) -> None:
        """probe HOST SITE [direct|foreign_resolver|relay|tunnel]: DNS, TCP, HTTP from HOST."""
        words = line.split()
        if len(words) not in (2, 3) or words[1] not in self.services.records:
            print("usage: probe HOST SITE [method]   ('sites' lists the sites)")
            return
        r = self._act(self.lab.probe, *words)
        if r:
            verdict = "ok" if r["label"] is None else f"FAILED ({r['label']}): {r['detail']}"
            timing = f"connect {r['connect_ms']:.1f} ms, total {r['total_ms']:.1f} ms" \
                if r["connect_ms"] and r["total_ms"] else ""
            print(f"  {r['host']} -> {r['site']} via {r['method']}: {verdict} {timing}")

    def do_readdress(self, line: str) -> None:
        """readdress HOST [ADDRESS]: HOST moves to another address of its line."""
        words = line.split()
        if words:
            new = self._act(self.net.readdress, *words[:2])
            if new:
                print(f"  {words[0]} is now {new}")

    def do_censor(self, line: str) -> None:
        """censor [show | off | cut-border | block-address X... | block-name SITE... |
        block-keyword WORD...]: the border censor's policy (permissionless)."""
        censor = getattr(self.architecture, "censor", None)
        if censor is None:
            print("*** this architecture has no border censor")
            return
        words = shlex.split(line)
        current = CensorPolicy(**{k: tuple(v) if isinstance(v, list) else v for k, v in
                                  (censor.history[-1].policy if censor.history else {}).items()})
        fields = {"block-address": "block_addresses", "block-name": "block_names",
                  "block-keyword": "block_keywords"}
        if not words or words[0] == "show":
            print(f"  {current}")
            return
        if words[0] == "off":
            policy = CensorPolicy()
        elif words[0] == "cut-border":
            policy = CensorPolicy(**{**vars(current), "cut_border": True})
        elif words[0] in fields and words[1:]:
            name = fields[words[0]]
            policy = CensorPolicy(**{**vars(current), name: getattr(current, name)
                                     + tuple(words[1:])})
        else:
            print("usage: censor [show|off|cut-border|block-address X|block-name SITE|"
                  "block-keyword WORD]")
            return
        change = self._act(censor.apply, policy)
        if change:
            print(f"  in force after {1000 * (change.effective - change.requested):.0f} ms")

    # -- registered access: hosts and the operator ------------------------------------------
    def _registered(self):
        if getattr(self.architecture, "operator", None) is None:
            print("*** only the registered architecture has an authority")
            return None
        return self.architecture

    def do_register(self, line: str) -> None:
        """register HOST [CARD]: HOST proves who it is with its card (or one lent to it, see
        lend) and registers."""
        arch, words = self._registered(), line.split()
        if arch and words:
            why = arch.register(*words[:2])
            print(f"  {why or f'{words[0]} is identity {arch.identity(words[0])}'}")

    def do_bind(self, line: str) -> None:
        """bind HOST [CARD]: HOST binds its card's identity to its current address (after
        readdress, say)."""
        arch, words = self._registered(), line.split()
        if arch and words:
            print(f"  {arch.bind(*words[:2]) or 'bound'}")

    def do_lend(self, line: str) -> None:
        """lend OWNER HOST: OWNER's card (a host's person, or spare1..spare8 of the civil
        register) is handed to HOST, out of band: the "borrowed identity" evasion."""
        arch, words = self._registered(), line.split()
        if not arch or len(words) != 2 or words[1] not in arch.cards:
            print("usage: lend OWNER HOST   (OWNER: a host or spare1..spare8)")
            return
        owner = words[0]
        if owner.startswith("spare") and owner[5:].isdigit() and \
                1 <= int(owner[5:]) <= len(arch.spares):
            owner = arch.spares[int(owner[5:]) - 1]
        elif owner not in arch.cards:
            print(f"*** {owner} holds no card")
            return
        name = arch.lend_card(owner, words[1])
        print(f"  {words[1]} now holds {name}: register {words[1]} {name}")

    def do_operator(self, line: str) -> None:
        """operator COMMAND...: any operator command ('operator' alone lists them)."""
        arch = self._registered()
        if arch is None:
            return
        names = operator_cli.Names(self.net.graph, self.net.moved, self.services.records)
        try:
            print(operator_cli.execute(arch.operator, names, shlex.split(line)))
        except (OperatorError, ValueError) as e:
            print(f"*** {e}")

    def do_vtysh(self, line: str) -> None:
        """vtysh ROUTER COMMAND: ask a router's FRR, e.g. vtysh c1 show ip ospf neighbor."""
        words = line.split(maxsplit=1)
        if len(words) != 2 or words[0] not in self.net.graph:
            print("usage: vtysh ROUTER COMMAND")
            return
        workdir = self.net.workdir("frr", words[0])
        out = self.net.exec(words[0], "vtysh", "--vty_socket", str(workdir), "-c", words[1],
                            check=False)
        print(out.stdout or out.stderr)


def _operator_command(name: str, command: operator_cli.Command):
    def do(self, line: str) -> None:
        self.do_operator(f"{name} {line}")
    do.__doc__ = f"{command.usage}: {command.help} (registered access)"
    return do


for _name, _command in operator_cli.COMMANDS.items():  # right at the prompt, with their help,
    if not hasattr(SplinterCLI, f"do_{_name}"):  # but for the lab's own (``restore`` a router):
        setattr(SplinterCLI, f"do_{_name}", _operator_command(_name, _command))  # `operator X`


def greeting(arch: str, graph) -> str:
    """Three things worth trying first, with names from this topology."""
    from experiments.subjects import choose

    try:
        s = choose(graph)
        host, other, site = s.user, s.victim, s.blocked_site
    except Exception:  # noqa: BLE001 - a topology without abroad: fall back to its hosts
        people = [n for n in graph if graph.nodes[n]["role"] == "host"]
        host, other, site = people[0], people[-1], None
    tries = ["pingall", f"{host} ping -c 3 {other}"]
    if admits(arch):
        tries = [f"revoke {other}", f"{host} ping -c 3 {other}", f"log 10 {other}"]
    elif design(arch).central:
        tries = [f"act person {other}", f"{host} ping -c 3 {other}", f"records {other}"]
    elif site:
        tries.append(f"probe {host} {site}")
    return ("*** try: " + "   |   ".join(tries) +
            "\n*** 'help' lists every command, 'help COMMAND' explains one, 'exit' ends")


def pingall(net) -> bool:
    """One ping between every ordered pair of users, the pairs without a reply named: the
    authority site is infrastructure (under registered access it answers gateways only, as
    a host that could reach it could attack it). True if every pair answered."""
    results = probes.pingall(net, users(net.graph))
    for r in results:
        if not r.ok:
            print(f"  {r.src} -> {r.dst}: no reply")
    print(probes.reachable(results))
    return all(r.ok for r in results)


def up(spec: str, arch: str, backend: str, test: str | None, options: dict,
       servers=None) -> int:
    t0 = time.monotonic()
    with Lab(spec, arch, backend=backend, servers=servers, **options) as lab:
        net, graph, architecture = lab.net, lab.graph, lab.architecture
        facts = [f"network {net.timings['bringup_s']:.2f} s", f"delay backend {net.backend}"]
        convergence = getattr(getattr(architecture, "routing", None), "convergence_s", None)
        if convergence is not None:
            facts.insert(1, f"OSPF converged in {convergence:.2f} s")
        print(f"*** {spec} is up under {arch} after {time.monotonic() - t0:.2f} s "
              f"({'; '.join(facts)})")
        if test == "pingall":
            return 0 if pingall(net) else 1
        print(greeting(arch, graph))
        SplinterCLI(lab)
    return 0
