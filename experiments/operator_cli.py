"""The operator's commands, in words: shared by the ``up`` console and ``splinterlab operator``.

Targets can be named the way a student sees them: an identity number or a host name (``h3``:
the identity bound to h3's current address), a destination as a site name, a node name, an
address or a prefix.
"""

from __future__ import annotations

import ipaddress
import json
import time
from pathlib import Path

import topologies
from protocols.registered.operator import Operator, OperatorError
from protocols.services import catalogue
from topologies import addressing
from topologies.runstate import runs

USAGE = """operator commands:
  add_person NATIONAL_ID NAME...   the civil register adds a person and issues their card
  revoke WHO / reinstate WHO       cut a person off / let them back (WHO: identity or host)
  block DEST / unblock DEST        DEST: site, node, address or prefix
  shutdown REGION [--allow DEST...]  cut a region off but for essential services
  lift REGION / restore            end one shutdown / end all shutdowns and blocks
  log [N] [WHO]                    the last N admissions (of WHO), and operator actions
  who WHO                          the identity behind a host, address or number
  status                           counters, gateways, policy in force"""


class Names:
    """Turns node and site names into addresses, from the topology a run was built from."""

    def __init__(self, graph, current: dict[str, str] | None = None):
        self.graph = graph
        self.plan = addressing.plan(graph)
        self.current = current or {}  # node -> address, when a node has moved
        self.sites = catalogue(graph)

    def address(self, node: str) -> str:
        return self.current.get(node) or str(self.plan.address(node))

    def destinations(self, text: str, records: dict[str, list[str]] | None = None) -> list[str]:
        if records and text in records:
            return [f"{a}/32" for a in records[text]]
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


def _when(answer: dict) -> str:
    return time.strftime("%H:%M:%S", time.localtime(answer["time"])) + \
        f".{int(answer['time'] * 1000) % 1000:03d}"


def execute(operator: Operator, names: Names, words: list[str],
            records: dict[str, list[str]] | None = None) -> str:
    """Run one operator command; returns what to print. OperatorError on refusal."""
    if not words:
        return USAGE
    op, args = words[0], words[1:]
    if op == "add_person" and len(args) >= 2:
        answer = operator.add_person(args[0], " ".join(args[1:]))
        return (f"{args[0]} ({answer['real_name']}) is in the civil register; card secret "
                f"{answer['secret']} (hand it over out of band)")
    if op in ("revoke", "reinstate") and len(args) == 1:
        identity = names.identity(operator, args[0])
        answer = getattr(operator, op)(identity)
        return f"identity {identity} {op}d, committed at {_when(answer)}"
    if op in ("block", "unblock") and len(args) == 1:
        answers = [getattr(operator, op)(d) for d in names.destinations(args[0], records)]
        return f"{args[0]} {op}ed, committed at {_when(answers[-1])}"
    if op == "shutdown" and args:
        region, rest = args[0], args[1:]
        allow = []
        if rest and rest[0] == "--allow":
            for dest in rest[1:]:
                allow += names.destinations(dest, records)
        elif rest:
            raise OperatorError("usage: shutdown REGION [--allow DEST...]")
        answer = operator.shutdown(region, allow)
        return f"region {region} shut down (essential: {', '.join(allow) or 'nothing'}), " \
               f"committed at {_when(answer)}"
    if op == "lift" and len(args) == 1:
        return f"region {args[0]} back, committed at {_when(operator.lift(args[0]))}"
    if op == "restore" and not args:
        return f"every shutdown and block lifted at {_when(operator.restore())}"
    if op == "log" and len(args) <= 2:
        limit = int(args[0]) if args and args[0].isdigit() else 20
        who = next((a for a in args if not a.isdigit()), None)
        answer = operator.log(limit, names.identity(operator, who) if who else None)
        lines = [f"{_when({'time': r['time']})} {r['gateway']:>4} id {str(r['identity']):>4}"
                 f" {r['src']:>15} -> {r['dst']:<15} {r['proto']:>3}/{r['dport']:<5} "
                 f"{'in ' if r['inbound'] else 'out'} "
                 f"{'GRANT' if r['granted'] else 'DENY '} {r['reason']}"
                 for r in reversed(answer["admissions"])]
        lines += [f"{_when({'time': a['time']})} operator {a['action']} {a['target']} "
                  f"{a['detail']}" for a in reversed(answer["actions"][:5])]
        return "\n".join(lines) or "nothing logged yet"
    if op == "who" and len(args) == 1:
        info = operator.who(identity=names.identity(operator, args[0]))
        return json.dumps({k: v for k, v in info.items() if k not in ("ok", "time")})
    if op == "status" and not args:
        answer = operator.status()
        return json.dumps({k: v for k, v in answer.items() if k not in ("ok", "time")},
                          indent=1)
    return USAGE


def live_run(run_id: str | None) -> tuple[Operator, Names]:
    """The operator and names of a running registered-access network."""
    for run in runs():
        manifest = run.read()
        socket_path = run.dir / "authority" / "admin.sock"
        if (run_id in (None, run.run_id)) and socket_path.exists():
            graph = topologies.build(manifest["topology"])
            return Operator(Path(socket_path)), Names(graph)
    raise OperatorError("no registered-access network is running (start one with "
                        "'splinterlab up --arch registered')")
