"""The lab's censor and central element, the same commands under every design: each design's
operator acts with its own instruments (``protocols.instruments``: a border censor, the
authority, the regulator's boxes), as the censorship experiment does.

    act person h9            act destination news.abroad.example      act undo person
    act name SITE            act region north     act country         act throttle SITE
    records h9               central down         central up

A target left out is the experiments' choice (``experiments.subjects``).
"""

from __future__ import annotations

import time

from experiments import subjects
from protocols import architectures
from protocols.instruments import ACTIONS, THROTTLE, Aim
from topologies.graph import end_nodes, hosts

TARGETS = {"person": "person", "destination": "destination", "name": "name",
           "region": "region", THROTTLE: "destination"}  # the Aim field each action takes


class InstrumentCommands:
    """A mixin of the lab's CLI (``console.SplinterCLI``): needs ``net``, ``services`` and
    ``architecture``."""

    tools = None
    acted: dict
    since = 0.0
    central_down = False  # taken down here, so "central up" has something to bring back

    def _try(self, what, *args) -> bool:
        """Carry out one of the design's operations; its refusal is one line, not the end
        of the lab."""
        try:
            what(*args)
            return True
        except Exception as e:  # noqa: BLE001 - any design's refusal, said and survived
            print(f"*** {e}")
            return False

    def _tools(self):
        """This design's instruments (None, said so, where it has none)."""
        if self.tools is None and hasattr(self.architecture, "instruments"):
            self.tools = self.architecture.instruments(self.net, self.services)
            self.acted, self.since = {}, time.time()
        if self.tools is None:
            print("*** this design has no censor")
        return self.tools

    def _aim(self, action: str, target: str | None) -> Aim | None:
        """The experiments' aim, with ``target`` in the field ``action`` takes (checked)."""
        g = self.net.graph
        who = subjects.choose(g)
        aim = {"person": who.victim, "destination": who.blocked_site, "name": who.named_site,
               "region": who.region}
        if target is not None:
            field = TARGETS.get(action)
            known = {"person": hosts(g), "destination": list(self.services.records),
                     "name": list(self.services.records),
                     "region": sorted({g.nodes[h].get("region") for h in hosts(g)} - {None})}
            if field is None or target not in known[field]:
                print(f"*** {action} takes " + (f"one of: {', '.join(known[field])}" if field
                                                else "no target"))
                return None
            aim[field] = target
        inside = tuple(sorted(h for h in hosts(g) if g.nodes[h].get("region") == aim["region"]))
        return Aim(aim["person"], aim["destination"], aim["name"], aim["region"], inside,
                   tuple(who.essential))

    def do_act(self, line: str) -> None:
        """act ACTION [TARGET] | act undo ACTION: the operator cuts off a person (HOST), a
        destination or a name (SITE), a region, the country, or slows a destination
        (throttle SITE), with this design's instruments; undo takes it back."""
        words = line.split()
        tools = self._tools()
        if tools is None:
            return
        actions = (*ACTIONS, *((THROTTLE,) if tools.can_throttle else ()))
        if len(words) == 2 and words[0] == "undo" and words[1] in self.acted:
            if self._try(tools.undo, words[1], self.acted[words[1]]):
                del self.acted[words[1]]
                print(f"  {words[1]}: undone")
            return
        if not words or words[0] not in actions or len(words) > 2 or words[0] in self.acted:
            print(f"usage: act {'|'.join(actions)} [TARGET] | act undo ACTION   (in force: "
                  f"{', '.join(self.acted) or 'nothing'})")
            return
        aim = self._aim(words[0], words[1] if len(words) == 2 else None)
        if aim is not None:
            started = time.monotonic()
            if self._try(tools.act, words[0], aim):
                self.acted[words[0]] = aim
                print(f"  {words[0]}: in force after "
                      f"{1000 * (time.monotonic() - started):.0f} ms")

    def do_records(self, line: str) -> None:
        """records HOST: the destinations the operator's own records tie to HOST since the
        first act or records command."""
        host, tools = line.strip(), self._tools()
        if tools is None:
            return
        if host not in hosts(self.net.graph):
            print("usage: records HOST")
            return
        names = {self.net.address(n): n for n in end_nodes(self.net.graph)}
        found = sorted(names.get(a, a) for a in tools.records(host, self.since))
        print(f"  {host}: {', '.join(found) or 'nothing on record'}")

    def do_central(self, line: str) -> None:
        """central down|up: this design's central element (the authority, the regulator)
        fails or comes back."""
        central, word = architectures.design(self.architecture.name).central, line.strip()
        if not central or word not in ("down", "up"):
            print("usage: central down|up" if central else "*** this design has no central "
                  "element")
            return
        if (word == "down") != self.central_down:  # already so: nothing to do
            action = self.architecture.kill_central if word == "down" else \
                self.architecture.restart_central
            if not self._try(action):
                return
            self.central_down = word == "down"
        print(f"  the {central} is {word}")
