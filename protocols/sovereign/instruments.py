"""IP under national control's censor (``protocols.instruments.Instruments``): the regulator's
rules at every box, the national resolver, the subscriber register.

person       the person's current addresses blocked at every box; when the person moves, the
             lease log says where, and the block follows
destination  the site's addresses blocked at every box
name         the national resolver lies, and every box resets connections naming the site
             (TLS server name, HTTP Host, CONNECT) and the tunnels it recognises
region       the region's access boxes pass only what is essential
country      the border boxes pass nothing

Records: every box's exported flows, each joined with the lease that covered its address at
that time: the person, not just an address.
"""

from __future__ import annotations

import json

from protocols.services import BOGUS

from .rules import Rules

TUNNEL_FINGERPRINTS = ("CONNECT ", "relay-")  # an HTTP proxy's request; a known relay's name


class InspectionInstruments:
    lies_about_names = True
    identity_evasions = False

    def __init__(self, arch, net, services):
        self.arch, self.net, self.services = arch, net, services
        self.parts: dict[str, dict] = {}  # action -> its share of the rules
        self.cut: set[str] = set()        # hosts whose person is cut off

    def _rules(self) -> Rules:
        blocked = [p for part in self.parts.values() for p in part.get("blocked", ())]
        blocked += [f"{a}/32" for h in sorted(self.cut)
                    for a in self.arch.subscribers.addresses(self.arch.subscribers.person(h))]
        return Rules(blocked=tuple(dict.fromkeys(blocked)),
                     keywords=tuple(w for p in self.parts.values() for w in p.get("keywords", ())),
                     fingerprints=TUNNEL_FINGERPRINTS if "name" in self.parts else (),
                     shutdown={r: e for p in self.parts.values()
                               for r, e in p.get("shutdown", {}).items()},
                     cut_border=any(p.get("cut_border") for p in self.parts.values()))

    def act(self, action: str, aim) -> None:
        if action == "person":
            self.cut.add(aim.person)
        elif action == "destination":
            self.parts[action] = {"blocked": [f"{a}/32" for a in
                                              self.services.records[aim.destination]]}
        elif action == "name":
            self.parts[action] = {"keywords": [aim.name]}
            self.services.set_lies({aim.name: BOGUS})
        elif action == "region":
            self.parts[action] = {"shutdown": {aim.region: tuple(
                f"{self.net.address(n)}/32" for n in aim.essential)}}
        else:
            self.parts[action] = {"cut_border": True}
        self.arch.push(self._rules())

    def undo(self, action: str, aim) -> None:
        if action == "person":
            self.cut.discard(aim.person)
        elif action == "name":
            self.services.set_lies({})
        self.parts.pop(action, None)
        self.arch.push(self._rules())

    def records(self, host: str, since: float) -> set[str]:
        person = self.arch.subscribers.person(host)
        out = set()
        for path in self.arch.directory().glob("*.flows.jsonl"):
            for line in path.read_text().splitlines():
                r = json.loads(line)
                if r["t"] < since:
                    continue
                if self.arch.subscribers.holder(r["src"], r["t"]) == person:
                    out.add(r["dst"])
                elif self.arch.subscribers.holder(r["dst"], r["t"]) == person:
                    out.add(r["src"])
        return out

    def moved(self, host: str) -> None:
        """The ISP leased ``host`` a new address (its log says so): a cut follows it."""
        self.arch.subscribers.lease(host, self.net.address(host))
        if host in self.cut:
            self.arch.push(self._rules())
