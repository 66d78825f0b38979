"""IP under national control's censor (``protocols.instruments.Instruments``): the regulator's
rules at every box, the national resolver, the subscriber register.

person       the person's current addresses blocked at every box; when the person moves, the
             lease log says where, and the block follows
destination  the site's addresses blocked at every box
name         the national resolver lies, every box resets connections naming the site
             (TLS server name, HTTP Host, CONNECT) and plain proxy requests, and known
             relays' addresses are blocked (a TLS tunnel shows nothing else to recognise)
region       the region's access boxes pass only what is essential
country      the border boxes pass nothing
throttle     the site's addresses held to a rate at every box

Records: every box's exported flows, each joined with the lease that covered its address at
that time: the person, not just an address.
"""

from __future__ import annotations

import json
import os

from protocols.instruments import THROTTLE, THROTTLE_KBIT
from protocols.services import BOGUS
from topologies.polling import wait_until

from .box import EXPORT_S
from .rules import Rules

TUNNEL_FINGERPRINTS = ("CONNECT ",)  # an HTTP proxy's request, in the clear


class InspectionInstruments:
    lies_about_names = True
    identity_evasions = True
    can_throttle = True

    def __init__(self, arch, net, services):
        self.arch, self.net, self.services = arch, net, services
        self.parts: dict[str, dict] = {}  # action -> its share of the rules
        self.cut: set[str] = set()        # hosts whose person is cut off
        self.read: dict = {}  # box's export -> (its inode, bytes read, the flows in them)

    def _rules(self) -> Rules:
        blocked = [p for part in self.parts.values() for p in part.get("blocked", ())]
        blocked += [f"{a}/32" for h in sorted(self.cut)
                    for a in self.arch.subscribers.addresses(self.arch.subscribers.person(h))]
        return Rules(blocked=tuple(dict.fromkeys(blocked)),
                     keywords=tuple(w for p in self.parts.values() for w in p.get("keywords", ())),
                     fingerprints=TUNNEL_FINGERPRINTS if "name" in self.parts else (),
                     shutdown={r: e for p in self.parts.values()
                               for r, e in p.get("shutdown", {}).items()},
                     throttled=tuple(t for p in self.parts.values()
                                     for t in p.get("throttled", ())),
                     cut_border=any(p.get("cut_border") for p in self.parts.values()))

    def act(self, action: str, aim) -> None:
        if action == "person":
            self.cut.add(aim.person)
        elif action == "destination":
            self.parts[action] = {"blocked": [f"{a}/32" for a in
                                              self.services.records[aim.destination]]}
        elif action == "name":  # and the tunnels that would carry it: known relays' addresses
            self.parts[action] = {"keywords": [aim.name], "blocked": [
                f"{self.net.address(r)}/32" for r in self.services.relays()]}
            self.services.set_lies({aim.name: BOGUS})
        elif action == "region":
            self.parts[action] = {"shutdown": {aim.region: tuple(
                f"{self.net.address(n)}/32" for n in aim.essential)}}
        elif action == THROTTLE:
            self.parts[action] = {"throttled": [(f"{a}/32", THROTTLE_KBIT) for a in
                                                self.services.records[aim.destination]]}
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
        register = self.arch.subscribers
        out = set()
        for r in self._flows(since):
            # a flow is exported up to EXPORT_S after it began: the lease then, or then
            for end, other in ((r["src"], r["dst"]), (r["dst"], r["src"])):
                if person in (register.holder(end, r["t"]),
                              register.holder(end, r["t"] - EXPORT_S)):
                    out.add(other)
        return out

    def _flows(self, since: float) -> list[dict]:
        """Every box's exported flows since ``since``: the collector's view. A box only
        appends, so each export is read on from where the last call stopped (the page asks for
        every host's records every few seconds); from the start again if replaced or cut short."""
        found = set()
        for path in self.arch.directory().glob("*.flows.jsonl"):
            found.add(path)
            with path.open("rb") as f:
                file = os.fstat(f.fileno())
                inode, offset, flows = self.read.get(path, (file.st_ino, 0, []))
                if inode != file.st_ino or file.st_size < offset:
                    offset, flows = 0, []
                f.seek(offset)
                data = f.read()
            whole = data.rfind(b"\n") + 1  # a batch still being written: read next time
            new = []
            for line in data[:whole].splitlines():
                try:
                    new.append(json.loads(line))
                except ValueError:  # a line cut short for good
                    continue
            flows.extend(new)
            self.read[path] = (file.st_ino, offset + whole, flows)
        self.read = {p: done for p, done in self.read.items() if p in found}
        return [r for _, _, flows in self.read.values() for r in flows if r["t"] >= since]

    def reregister(self, host: str) -> bool:
        """The ISP checks the identity document: a person cut off gets no new line."""
        return host not in self.cut

    def borrow(self, host: str) -> bool:
        """A line in somebody else's name (a borrowed SIM card): the ISP leases the host's
        new address to the lender, whom no rule names."""
        self.lender = self.arch.spares[0]
        self.arch.subscribers.lease_to(self.lender, self.net.address(host))
        return True

    def blame(self, host: str, since: float) -> dict:
        address = self.net.address(host)

        def names() -> list[str]:
            return sorted({n for r in self._flows(since) if r["src"] == address
                           for n in [self.arch.subscribers.holder(address, r["t"])] if n})

        wait_until(names, 2 * EXPORT_S + 1, 0.1)  # the boxes export twice a second
        return {"person_who_acted": self.arch.subscribers.person(host),
                "card_owner": self.lender, "log_names": names()}

    def moved(self, host: str) -> None:
        """The ISP leased ``host`` a new address (its log says so): a cut follows it."""
        self.arch.subscribers.lease(host, self.net.address(host))
        if host in self.cut:
            self.arch.push(self._rules())
