"""What each censorship action stops, and which evasions get through, from the graph alone.

Each design's instruments are rules on a single hop from a host to another node:

permissionless (a border censor, by address, name or cut)
    person, region   the person's (the region's hosts') addresses, at the border: only
                     hops that cross it are stopped
    destination      the site's address at the border (every site sharing it too)
    name             the national resolver lies about the name; no hop is stopped
    country          every hop across the border

registered (the authority, by identity, at every gateway)
    person           every hop to or from the revoked identity
    destination      every hop through a gateway to or from the blocked address
    name             the same, for the addresses the name has (and every site sharing them)
    region           every hop through a gateway of the region, unless the other end is
                     essential
    country          every hop through a gateway to or from abroad

A flow of the experiment's matrix (a host to a site: the national resolver, then the site's
server; a host to another host) is stopped if a hop is. An evasion is a path of hops that must
all be allowed: the foreign resolver (then straight to the server), the TLS tunnel (to the
relay abroad, which looks the name up itself), the relay at home (to the helper, whose relay
uses the national resolver), a new address (under registered access the identity follows it,
and a revoked one cannot bind), the person's own card again (revoked), somebody else's card
(a fresh identity). Attribution: the share of the user's destinations in the operator's
records: all of them under registered access (every flow is admitted and logged); under
permissionless IP only those abroad (the border's flow records), and where the resolver
lies, the user also contacts the address of the lie, which no record holds.
"""

from __future__ import annotations

from dataclasses import dataclass

import networkx as nx

from experiments.subjects import Subjects
from topologies.graph import hosts, is_foreign, services, site_owner

TECHNIQUES = ("foreign_resolver", "tunnel_abroad", "relay_at_home", "address_change",
              "reregistration", "borrowed_identity")
FRESH = "<a fresh address>"  # the host after moving, or holding another identity
LIE = "<the lying resolver's answer>"  # an address that leads nowhere


@dataclass(frozen=True)
class Prediction:
    precision: float | None
    collateral: float | None
    evasion: dict[str, bool | None]
    attribution: float | None


class Border:
    """Permissionless IP: a censor at the border, by address, name or cut."""

    lies_about_names = True
    identity_evasions = False

    @staticmethod
    def stopped(sit: Situation, a: str, b: str) -> bool:
        crosses = sit.foreign(a) != sit.foreign(b)
        return {"person": crosses and sit.s.victim in (a, b),
                "destination": crosses and sit.blocked_server in (a, b),
                "name": False,
                "region": crosses and bool(sit.region_hosts & {a, b}),
                "country": crosses}[sit.action]

    @staticmethod
    def by_name(sit: Situation, host: str, site: str) -> bool:
        """Nothing at the border reads names: the resolver's lie is its instrument."""
        return False

    @staticmethod
    def address_change(sit: Situation, host: str, site: str, server: str) -> bool:
        return not sit.lies(site) and not sit.stopped(FRESH, server)

    @staticmethod
    def recorded(g: nx.Graph, contacted: set[str]) -> set[str]:
        """The border's flow records: only what crossed it."""
        return {n for n in contacted if n in g and is_foreign(g, n)}


class Authority:
    """Registered access: the authority, by identity, at every gateway."""

    lies_about_names = False
    identity_evasions = True

    @staticmethod
    def stopped(sit: Situation, a: str, b: str) -> bool:
        gated = sit.behind_gateway(a) or sit.behind_gateway(b)
        return gated and {
            "person": sit.s.victim in (a, b),
            "destination": sit.blocked_server in (a, b),
            "name": sit.named_server in (a, b),
            "region": any(x in sit.region_hosts and y not in sit.essential
                          for x, y in ((a, b), (b, a))),
            "country": sit.foreign(a) != sit.foreign(b)}[sit.action]

    @staticmethod
    def by_name(sit: Situation, host: str, site: str) -> bool:
        """Gateways see addresses: a name is blocked as the addresses it has."""
        return False

    @staticmethod
    def address_change(sit: Situation, host: str, site: str, server: str) -> bool:
        """The identity follows the host; a revoked one cannot bind."""
        return sit.action != "person" and sit.reaches(host, site)

    @staticmethod
    def recorded(g: nx.Graph, contacted: set[str]) -> set[str]:
        """The admission log: every flow was admitted, so logged."""
        return set(contacted)


class Inspection:
    """IP under national control: the regulator's rules at a box on every access router
    (watching its hosts' and servers' lines) and every border router."""

    lies_about_names = True
    identity_evasions = True  # a line in a borrowed name; the ISP refuses one in their own

    @staticmethod
    def stopped(sit: Situation, a: str, b: str) -> bool:
        crosses = sit.foreign(a) != sit.foreign(b)
        inspected = crosses or sit.watched(a) or sit.watched(b)
        relays = set(services(sit.g, "relay"))
        return inspected and {
            "person": sit.s.victim in (a, b),
            "destination": sit.blocked_server in (a, b),
            "name": bool(relays & {a, b}),  # known relays' addresses; the name: by_name
            "region": any(x in sit.region_hosts and y not in sit.essential
                          for x, y in ((a, b), (b, a))),
            "country": crosses}[sit.action]

    @staticmethod
    def by_name(sit: Situation, host: str, site: str) -> bool:
        """A connection to ``site`` from ``host`` names it (server name, Host, CONNECT), and
        the box on ``host``'s line resets it: the site itself, not its server's other sites."""
        return sit.action == "name" and site == sit.s.named_site and sit.watched(host)

    @staticmethod
    def address_change(sit: Situation, host: str, site: str, server: str) -> bool:
        """The lease log follows the person to the new address; a new address stays on the
        same line (and in the same region)."""
        return sit.action != "person" and sit.reaches(host, site)

    @staticmethod
    def recorded(g: nx.Graph, contacted: set[str]) -> set[str]:
        """Every box exports its flows and every user's line has one: all but the lie's
        address, which no router routes."""
        return {n for n in contacted if n != LIE}


RULES = {"permissionless": Border, "registered": Authority,  # each design's, by its name
         "sovereign": Inspection}


class Situation:
    """One design, one action, one graph and its subjects."""

    def __init__(self, g: nx.Graph, subjects: Subjects, design: str, action: str):
        if design not in RULES:
            raise ValueError(f"the censorship model has no rules for {design!r}")
        self.rules = RULES[design]
        self.g, self.s, self.design, self.action = g, subjects, design, action
        self.owner = site_owner(g)
        self.region_hosts = {h for h in hosts(g) if g.nodes[h].get("region") == subjects.region}
        self.essential = set(subjects.essential)
        self.blocked_server = self.owner[subjects.blocked_site]
        self.named_server = self.owner[subjects.named_site]

    def foreign(self, node: str) -> bool:
        return node != FRESH and is_foreign(self.g, node)

    def behind_gateway(self, node: str) -> bool:
        return node == FRESH or self.g.nodes[node]["role"] == "host"

    def watched(self, node: str) -> bool:
        """Is ``node``'s line watched by an access router's box?"""
        if node == FRESH:
            return True
        if self.g.nodes[node]["role"] not in ("host", "server"):
            return False
        (router,) = self.g.neighbors(node)
        return self.g.nodes[router]["role"] == "access"

    def stopped(self, a: str, b: str) -> bool:
        """Is the hop a -> b (a host, or the relay) stopped?"""
        return self.rules.stopped(self, a, b)

    def lies(self, site: str) -> bool:
        """Does the national resolver lie about ``site``?"""
        return self.rules.lies_about_names and self.action == "name" and \
            site == self.s.named_site

    def reaches(self, host: str, target: str, resolver: str | None = None) -> bool:
        """A flow of the matrix: a site (through ``resolver``, the national one by default)
        or another host."""
        if target not in self.owner:
            return not self.stopped(host, target)
        national = self.s.essential[0]
        if resolver is None and (self.stopped(host, national) or self.lies(target)):
            return False
        if resolver is not None and self.stopped(host, resolver):
            return False
        return not self.stopped(host, self.owner[target]) and \
            not self.rules.by_name(self, host, target)

    def targeted(self, host: str, target: str) -> bool:
        return {"person": self.s.victim in (host, target),
                "destination": target == self.s.blocked_site,
                "name": target == self.s.named_site,
                "region": bool(self.region_hosts & {host, target}) and
                target not in self.essential and self.owner.get(target) not in self.essential,
                "country": target in self.owner and self.foreign(self.owner[target])
                }[self.action]

    def evasion(self, technique: str) -> bool | None:
        host = self.s.victim if self.action in ("person", "region") else self.s.user
        site = self.s.named_site if self.action == "name" else self.s.blocked_site
        server = self.owner[site]
        if technique == "foreign_resolver":
            resolver = next(n for n in services(self.g, "dns") if self.foreign(n))
            return self.reaches(host, site, resolver=resolver)
        if technique == "tunnel_abroad":
            relay = next(n for n in services(self.g, "relay") if self.foreign(n))
            return not self.stopped(host, relay) and not self.stopped(relay, server)
        if technique == "relay_at_home":
            return not self.stopped(host, self.s.helper) and \
                self.reaches(self.s.helper, site)
        if technique == "address_change":
            return self.rules.address_change(self, host, site, server)
        if not self.rules.identity_evasions or self.action != "person":
            return None  # only an identity cut off has a registration to try
        if technique == "reregistration":
            return False  # the person's own card: still revoked
        return self.reaches(FRESH, site)  # borrowed identity: a fresh, unrevoked one


def flows(g: nx.Graph) -> list[tuple[str, str]]:
    """The experiment's matrix: every host to every site and to every other host."""
    people = hosts(g)
    return [(h, t) for h in people for t in [*sorted(site_owner(g)),
                                             *(d for d in people if d != h)]]


def predict(g: nx.Graph, subjects: Subjects, design: str, action: str) -> Prediction:
    situation = Situation(g, subjects, design, action)
    stopped_t = total_t = stopped_n = total_n = 0
    for host, target in flows(g):
        stopped = not situation.reaches(host, target)
        if situation.targeted(host, target):
            total_t += 1
            stopped_t += stopped
        else:
            total_n += 1
            stopped_n += stopped
    host = subjects.victim if action in ("person", "region") else subjects.user
    owner = site_owner(g)
    contacted = {subjects.essential[0], *owner.values(), *(h for h in hosts(g) if h != host)}
    if situation.lies(subjects.named_site):
        contacted.add(LIE)  # the user follows the resolver's lie nowhere: in no record
    recorded = situation.rules.recorded(g, contacted)
    return Prediction(stopped_t / total_t if total_t else None,
                      stopped_n / total_n if total_n else None,
                      {t: situation.evasion(t) for t in TECHNIQUES},
                      len(recorded) / len(contacted))
