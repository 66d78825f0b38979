"""What the regulator tells every inspection box, and what a box makes of it.

A rule set is data, versioned by the regulator and the same for every box; each box compiles
the part that concerns it (``Place``: an access router's box watches its subscribers' lines,
a border router's box the lines abroad) into an nftables table and an iptables chain:

* ``blocked``: prefixes dropped both ways (a person's current addresses, a site's, a region's);
* ``keywords``: a TCP payload holding one is reset (an HTTP Host, a TLS server name, an HTTP
  CONNECT naming it): iptables' ``string`` match, as the border censor uses;
* ``fingerprints``: tunnels recognised by what they send first (a TLS ClientHello naming a
  known relay, a plain ``CONNECT``) and reset; TSPU boxes do this to VPN protocols;
* ``throttled``: a prefix slowed to a rate in kbit/s each way (Russia slowed Twitter to about
  130-150 kbit/s in March 2021): packets over the rate are dropped, as a policer does;
* ``shutdown``: regions whose subscribers reach only the essential prefixes;
* ``cut_border``: nothing crosses the border.

Anything not named passes: a box is default-allow, and keeps its last rules when it loses the
regulator.
"""

from __future__ import annotations

import json
from dataclasses import asdict, dataclass, field
from ipaddress import IPv4Network

from protocols.instruments import policed

PORT = 7410  # the regulator's, where every box connects
TABLE = "splinter_box"
CHAIN = "SPLINTER_BOX"
KEYWORD_MAX = 64
RECORDS = "splinter_records"  # the box's record of flows: a table no rule set replaces
RECORD_S = 60  # how long a flow stays in the record set: many times the box's export period
# flows a box can hold in RECORD_S: past this a flood of new flows (one subscriber contacting
# every address) would go unrecorded, so the box's status says when its set is full
RECORD_SLOTS = 262144


class RulesError(ValueError):
    """A rule set a box must not apply, in one sentence."""


@dataclass(frozen=True)
class Rules:
    version: int = 0
    blocked: tuple[str, ...] = ()                 # prefixes
    keywords: tuple[str, ...] = ()                # names, in TLS server names and HTTP
    fingerprints: tuple[str, ...] = ()            # what a tunnel sends first
    throttled: tuple[tuple[str, int], ...] = ()   # (prefix, kbit/s)
    shutdown: dict[str, tuple[str, ...]] = field(default_factory=dict)  # region -> essential
    cut_border: bool = False

    def dumps(self) -> str:
        return json.dumps(asdict(self), sort_keys=True)

    @classmethod
    def loads(cls, text: str) -> Rules:
        """A rule set from the wire, checked: a box applies it whole or not at all."""
        try:
            data = json.loads(text)
            rules = cls(int(data["version"]), _prefixes(data["blocked"]),
                        _words(data["keywords"]), _words(data["fingerprints"]),
                        tuple((p, int(k)) for p, k in zip(_prefixes([p for p, _ in data[
                            "throttled"]]), (k for _, k in data["throttled"]), strict=True)),
                        {str(r): _prefixes(e) for r, e in data["shutdown"].items()},
                        bool(data["cut_border"]))
        except (KeyError, TypeError, ValueError) as e:
            raise RulesError(f"a malformed rule set: {e}") from None
        if any(k <= 0 for _, k in rules.throttled):
            raise RulesError("a throttle rate must be a positive number of kbit/s")
        return rules


def _prefixes(values) -> tuple[str, ...]:
    return tuple(str(IPv4Network(v, strict=False)) for v in values)


def _words(values) -> tuple[str, ...]:
    for w in values:
        if not isinstance(w, str) or not 0 < len(w) <= KEYWORD_MAX or not w.isprintable() \
                or '"' in w:
            raise ValueError(f"keyword {w!r} must be 1-{KEYWORD_MAX} printable characters "
                             "without quotes")
    return tuple(values)


@dataclass(frozen=True)
class Place:
    """Where a box sits: its router, whether it faces subscribers or abroad, the interfaces
    it watches, and (at an access router) the region its subscribers live in."""

    router: str
    border: bool
    watched: tuple[str, ...]
    region: str = ""


def nft(rules: Rules, place: Place) -> str:
    """The box's nftables table, replaced whole (one transaction: nothing in between)."""
    watched = ", ".join(f'"{i}"' for i in place.watched)
    checks = []
    if place.border and rules.cut_border:
        checks.append("counter drop")
    if rules.blocked:  # first: a person cut off stays cut off from the essential too
        checks += ["ip daddr @blocked counter drop", "ip saddr @blocked counter drop"]
    essential = rules.shutdown.get(place.region) if not place.border else None
    if essential is not None:
        checks += ["ip daddr @essential counter accept", "ip saddr @essential counter accept",
                   "counter drop"]
    for prefix, kbit in rules.throttled:
        checks += policed(prefix, kbit)
    return "\n".join([
        f"table inet {TABLE}", f"delete table inet {TABLE}", f"table inet {TABLE} {{",
        _set("blocked", rules.blocked), _set("essential", essential or ()),
        "  chain forward {", "    type filter hook forward priority -4; policy accept;",
        *([f"    iifname {{ {watched} }} jump inspect",
           f"    oifname {{ {watched} }} jump inspect"] if place.watched else []),
        "  }", "  chain inspect {", "    counter", *[f"    {c}" for c in checks], "  }", "}",
        ""])


def recorder(place: Place) -> str:
    """The box's flow records: every new flow on a watched line, source, destination and
    protocol, noted before any rule judges it (a dropped attempt never becomes a connection in
    the router's table, yet the person made it), kept ``RECORD_S`` after its latest new
    connection (``update`` restarts an entry's timeout, ``add`` would not) for the box to
    export."""
    watched = ", ".join(f'"{i}"' for i in place.watched)
    key = "{ ip saddr . ip daddr . meta l4proto }"
    return "\n".join([
        f"table inet {RECORDS}", f"delete table inet {RECORDS}", f"table inet {RECORDS} {{",
        "  set flows { type ipv4_addr . ipv4_addr . inet_proto; flags dynamic, timeout;"
        f" timeout {RECORD_S}s; size {RECORD_SLOTS}; }}",
        "  chain forward {", "    type filter hook forward priority -5; policy accept;",
        *([f"    ct state new {way}name {{ {watched} }} update @flows {key}"
           for way in ("iif", "oif")] if place.watched else []),
        "  }", "}", ""])


def _set(name: str, prefixes) -> str:
    elements = ", ".join(prefixes)
    return (f"  set {name} {{ type ipv4_addr; flags interval; auto-merge;" +
            (f" elements = {{ {elements} }};" if elements else "") + " }")


def iptables(rules: Rules, place: Place, first: bool) -> str:
    """The payload chain, refilled on every change; the jumps to it only the first time."""
    lines = ["*filter", f":{CHAIN} - [0:0]", f"-F {CHAIN}"]
    if first:
        for intf in place.watched:
            lines += [f"-A FORWARD -i {intf} -j {CHAIN}", f"-A FORWARD -o {intf} -j {CHAIN}"]
    for word in (*rules.keywords, *rules.fingerprints):
        lines.append(f'-A {CHAIN} -p tcp -m string --string "{word}" --algo bm --icase '
                     "-j REJECT --reject-with tcp-reset")
    return "\n".join([*lines, "COMMIT", ""])
