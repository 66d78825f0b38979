"""The operator's commands, in words: shared by the ``up`` console and ``splinterlab operator``.

A table of small handlers, each with its usage and a help line. Targets can be named the way
a student sees them: an identity number or a host name (``h3``: the identity bound to h3's
current address), a destination as a site name, a node name, an address or a prefix. Answers
are printed for people: names and national ids, local times, counters in words.
"""

from __future__ import annotations

import ipaddress
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import topologies
from protocols.registered.operator import Operator, OperatorError
from protocols.services import catalogue
from topologies import addressing
from topologies.machines import Machine
from topologies.runstate import runs


class Names:
    """Turns node and site names into addresses, and back, from the run's topology."""

    def __init__(self, graph, current: dict[str, str] | None = None,
                 records: dict[str, list[str]] | None = None):
        self.graph = graph
        self.plan = addressing.plan(graph)
        self.current = current or {}  # node -> address, when a node has moved
        self.sites = catalogue(graph)
        self.records = records or {}

    def address(self, node: str) -> str:
        return self.current.get(node) or str(self.plan.address(node))

    def node(self, address: str) -> str:
        """The node at ``address`` (where it is now), or the address itself."""
        for node, moved in self.current.items():
            if moved == address:
                return node
        return self.plan.node_of(address) or address

    def destinations(self, text: str) -> list[str]:
        if text in self.records:
            return [f"{a}/32" for a in self.records[text]]
        if text in self.sites:
            return [f"{self.address(self.sites[text])}/32"]
        if text in self.graph:
            return [f"{self.address(text)}/32"]
        try:
            return [str(ipaddress.IPv4Network(text, strict=False))]
        except ValueError:
            raise OperatorError(f"{text!r} is not a site, node, address or prefix") from None

    def identity(self, operator: Operator, who: str) -> int:
        if who.isdigit():
            return int(who)
        address = self.address(who) if who in self.graph else who
        try:
            ipaddress.IPv4Address(address)
        except ValueError:
            raise OperatorError(f"{who!r} is not an identity, a host or an address") from None
        return int(operator.who(address=address)["identity"])


def clock(when: float | None) -> str:
    if when is None:
        return "never"
    return time.strftime("%H:%M:%S", time.localtime(when)) + f".{int(when * 1000) % 1000:03d}"


def ago(when: float | None) -> str:
    return "never" if when is None else f"{max(0.0, time.time() - when):.1f} s ago"


@dataclass(frozen=True)
class Command:
    usage: str
    help: str
    run: Callable[[Operator, Names, list[str]], str]


def _revocation(op: str):
    def run(operator: Operator, names: Names, args: list[str]) -> str:
        if len(args) != 1:
            raise OperatorError(f"usage: {COMMANDS[op].usage}")
        identity = names.identity(operator, args[0])
        answer = getattr(operator, op)(identity)
        return f"identity {identity} {op}d at {clock(answer['time'])}; its gateway cut " \
               f"{'it off' if op == 'revoke' else 'nothing more'}"
    return run


def _blocking(op: str):
    def run(operator: Operator, names: Names, args: list[str]) -> str:
        if len(args) != 1:
            raise OperatorError(f"usage: {COMMANDS[op].usage}")
        answers = [getattr(operator, op)(d) for d in names.destinations(args[0])]
        return f"{args[0]} {op}ed at {clock(answers[-1]['time'])}"
    return run


def _shutdown(operator: Operator, names: Names, args: list[str]) -> str:
    if not args or (args[1:] and args[1] != "--allow"):
        raise OperatorError(f"usage: {COMMANDS['shutdown'].usage}")
    allow = [d for dest in args[2:] for d in names.destinations(dest)]
    answer = operator.shutdown(args[0], allow)
    return f"region {args[0]} shut down at {clock(answer['time'])} (still reachable: " \
           f"{', '.join(args[2:]) or 'nothing'})"


def _lift(operator: Operator, names: Names, args: list[str]) -> str:
    if len(args) != 1:
        raise OperatorError(f"usage: {COMMANDS['lift'].usage}")
    return f"region {args[0]} back at {clock(operator.lift(args[0])['time'])}"


def _restore(operator: Operator, names: Names, args: list[str]) -> str:
    answer = operator.restore()
    return f"at {clock(answer['time'])}: {len(answer['lifted'])} shutdowns lifted, " \
           f"{answer['unblocked']} blocks removed (revocations stay)"


def _log(operator: Operator, names: Names, args: list[str]) -> str:
    limit = int(args[0]) if args and args[0].isdigit() else 20
    who = next((a for a in args if not a.isdigit()), None)
    identity = names.identity(operator, who) if who else None
    answer = operator.log(limit, identity)
    lines = []
    for r in reversed(answer["admissions"]):
        arrow = "<-" if r["inbound"] else "->"
        local, remote = (r["dst"], r["src"]) if r["inbound"] else (r["src"], r["dst"])
        lines.append(f"{clock(r['time'])} {r['gateway']:>4} id {str(r['identity'] or '-'):>4} "
                     f"{names.node(local):>6} {arrow} {names.node(remote):<8}"
                     f"{'' if r['peer_verified'] else ' (as claimed from abroad)'} "
                     f"{r['proto']}/{r['sport']}->{r['dport']:<5} "
                     f"{'granted' if r['granted'] else 'denied: ' + r['reason']}"
                     f"{' (renewal)' if r['renewal'] else ''}"
                     f"{' (by the gateway alone)' if r['by_gateway'] else ''}")
    lines += [f"{clock(a['time'])} operator: {a['action']} {a['target']} {a['detail']}".rstrip()
              for a in reversed(answer["actions"][:5])]
    return "\n".join(lines) or "nothing logged yet"


def _who(operator: Operator, names: Names, args: list[str]) -> str:
    if len(args) != 1:
        raise OperatorError(f"usage: {COMMANDS['who'].usage}")
    info = operator.who(identity=names.identity(operator, args[0]))
    where = (f"bound to {info['address']} ({names.node(info['address'])}) via gateway "
             f"{info['gateway']}" if info["address"] else "bound to no address")
    revoked = f", revoked at {clock(info['revoked'])}" if info["revoked"] else ""
    return (f"identity {info['identity']}: {info['real_name']} ({info['national_id']}), "
            f"registered at {clock(info['registered'])}{revoked}; {where}")


def _status(operator: Operator, names: Names, args: list[str]) -> str:
    s = operator.status()
    counters = ", ".join(f"{n} {k}" for k, n in sorted(s["counters"].items())) or "nothing yet"
    lines = [f"{s['identities']} identities bound, {len(s['revoked'])} revoked "
             f"({', '.join(map(str, s['revoked'])) or 'none'}); grants live "
             f"{s['ttl_ms'] / 1000:g} s; journal durability {s['durability']}",
             f"blocked: {', '.join(s['blocked']) or 'nothing'}; shut down: "
             f"{', '.join(s['shutdowns']) or 'nothing'}",
             f"decisions and events: {counters}",
             f"policy changes not yet acknowledged: {s['changes_unacknowledged']}"
             + (f" (and changes waiting for silent gateways: {', '.join(s['silent_gateways'])})"
                if s.get("silent_gateways") else "")]
    lines += [f"  gateway {name}: heard from {ago(g['last_heard'])}, has applied change "
              f"{g['applied']} of {g['latest']}" for name, g in sorted(s["gateways"].items())]
    return "\n".join(lines)


def _add_person(operator: Operator, names: Names, args: list[str]) -> str:
    if len(args) < 2:
        raise OperatorError(f"usage: {COMMANDS['add_person'].usage}")
    answer = operator.add_person(args[0], " ".join(args[1:]))
    return (f"{args[0]} ({answer['real_name']}) is in the civil register; their card's "
            f"secret is {answer['secret']} (to be handed over out of band)")


COMMANDS: dict[str, Command] = {
    "revoke": Command("revoke WHO", "cut a person off (WHO: a host or an identity number)",
                      _revocation("revoke")),
    "reinstate": Command("reinstate WHO", "let a revoked person back",
                         _revocation("reinstate")),
    "block": Command("block DEST", "block a destination (a site, node, address or prefix)",
                     _blocking("block")),
    "unblock": Command("unblock DEST", "lift a block", _blocking("unblock")),
    "shutdown": Command("shutdown REGION [--allow DEST...]",
                        "switch a region off but for essential destinations", _shutdown),
    "lift": Command("lift REGION", "end one region's shutdown", _lift),
    "restore": Command("restore", "end every shutdown and block (revocations stay)",
                       _restore),
    "log": Command("log [N] [WHO]", "the last N admissions (of WHO) and operator actions",
                   _log),
    "who": Command("who WHO", "the person behind a host, address or identity number", _who),
    "status": Command("status", "what the authority holds and how its gateways are",
                      _status),
    "add_person": Command("add_person NATIONAL_ID NAME...",
                          "the civil register adds a person and issues their card",
                          _add_person),
}


def usage() -> str:
    width = max(len(c.usage) for c in COMMANDS.values())
    return "operator commands:\n" + "\n".join(f"  {c.usage:<{width}}  {c.help}"
                                              for c in COMMANDS.values())


def execute(operator: Operator, names: Names, words: list[str]) -> str:
    """Run one operator command; returns what to print. OperatorError on refusal."""
    if not words or words[0] not in COMMANDS:
        return usage()
    return COMMANDS[words[0]].run(operator, names, words[1:])


def live_run(run_id: str | None) -> tuple[Operator, Names]:
    """The operator and names of a running registered-access network."""
    for run in runs():
        manifest = run.read()
        server, socket_path = manifest.get("operator") or (None, None)
        if run_id in (None, run.run_id) and socket_path and (server or Path(socket_path).exists()):
            graph = topologies.build(manifest["topology"])
            return Operator(Path(socket_path), via=Machine(server) if server else None), \
                Names(graph)
    raise OperatorError("no registered-access network is running (start one with "
                        "'splinterlab up --arch registered')")
