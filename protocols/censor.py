"""The border censor of the permissionless network: what can be bolted onto chokepoints.

A policy is data (``CensorPolicy``); ``BorderCensor.apply`` puts it in force on every border
router and records when. It only touches traffic crossing the border (entering or leaving an
interface that faces abroad): a permissionless operator controls chokepoints, not the network.

* addresses and prefixes: an nftables set; matching packets are dropped both ways (the client
  sees a TCP timeout: ``tcp_ip``);
* keywords: iptables' ``string`` match (xt_string through nft's compat layer; nftables has no
  payload search of its own) on any TCP packet, so it catches an HTTP Host header or a TLS
  server name; the connection is reset, as deployed censors do (``http``);
* names: the national resolver answers them with an address that leads nowhere (``dns``);
* ``cut_border``: nothing crosses at all.

The border also keeps flow records (its connection-tracking table, as real borders keep
NetFlow records), censoring or not: ``records()`` is what a permissionless operator knows.
"""

from __future__ import annotations

import time
import tomllib
from dataclasses import asdict, dataclass, field
from ipaddress import IPv4Network
from pathlib import Path

from topologies.graph import is_foreign, services, site_owner

from .instruments import THROTTLE, THROTTLE_KBIT, policed
from .services import BOGUS, Services, catalogue

TABLE = "splinter_censor"
CHAIN = "SPLINTER_CENSOR"


class CensorError(ValueError):
    """A policy that cannot be applied; one sentence."""


@dataclass(frozen=True)
class CensorPolicy:
    block_addresses: tuple[str, ...] = ()  # site names, node names, addresses or prefixes
    block_names: tuple[str, ...] = ()      # site names the national resolver lies about
    block_keywords: tuple[str, ...] = ()   # TCP payload containing one is reset
    cut_border: bool = False               # disconnect the country
    throttle_addresses: tuple[str, ...] = ()  # like block_addresses, slowed instead
    throttle_kbit: int = 0                 # to this rate each way (a policer: over it, drop)

    @classmethod
    def from_mapping(cls, data: dict) -> CensorPolicy:
        known = {f for f in cls.__dataclass_fields__}
        unknown = set(data) - known
        if unknown:
            raise CensorError(f"censor policy has unknown field(s) {', '.join(sorted(unknown))}"
                              f" (known: {', '.join(sorted(known))})")
        out = {}
        for key, value in data.items():
            if key == "cut_border":
                if not isinstance(value, bool):
                    raise CensorError("censor policy field cut_border must be true or false")
                out[key] = value
            elif key == "throttle_kbit":
                if not isinstance(value, int) or isinstance(value, bool) or value <= 0:
                    raise CensorError("censor policy field throttle_kbit must be a positive "
                                      "whole number of kbit/s")
                out[key] = value
            elif not isinstance(value, list) or not all(isinstance(v, str) for v in value):
                raise CensorError(f"censor policy field {key} must be a list of strings")
            else:
                out[key] = tuple(value)
        return cls(**out)

    @classmethod
    def load(cls, path: Path) -> CensorPolicy:
        try:
            data = tomllib.loads(path.read_text())
        except OSError as e:
            raise CensorError(f"cannot read censor policy {path}: {e.strerror}") from None
        except tomllib.TOMLDecodeError as e:
            raise CensorError(f"censor policy {path} is not valid TOML: {e}") from None
        return cls.from_mapping(data.get("censor", data))

    def describe(self) -> dict:
        return asdict(self)


@dataclass(frozen=True)
class Resolved:
    """A policy turned into what the border routers and the resolver need."""

    prefixes: tuple[IPv4Network, ...]
    lies: dict[str, str]
    keywords: tuple[str, ...]
    cut: bool
    throttled: tuple[IPv4Network, ...] = ()
    kbit: int = 0


def check(policy: CensorPolicy, g) -> None:
    """Refuse, in one sentence, a policy this topology cannot carry (before anything runs)."""
    names = catalogue(g)
    known = ", ".join(sorted(site_owner(g)))
    if policy.throttle_addresses and not policy.throttle_kbit:
        raise CensorError("censor policy throttles addresses but gives no throttle_kbit")
    for target in (*policy.block_addresses, *policy.throttle_addresses):
        if target not in names and target not in g and not _is_network(target):
            raise CensorError(f"censor policy names unknown site {target!r}; known sites: "
                              f"{known}")
    for name in policy.block_names:
        if name not in names:
            raise CensorError(f"censor policy names unknown site {name!r}; known sites: {known}")
    if policy.block_names and not any(not is_foreign(g, n) for n in services(g, "dns")):
        raise CensorError("blocking names needs a national resolver, and this topology has "
                          "none")
    if (policy.block_addresses or policy.block_keywords or policy.cut_border or
            policy.throttle_addresses) and not any(
            g.nodes[n]["role"] == "border" for n in g):
        raise CensorError("a border censor needs border routers, and this topology has none")
    for keyword in policy.block_keywords:
        if not keyword or len(keyword) > 64 or not keyword.isprintable() or '"' in keyword:
            raise CensorError(f"censor keyword {keyword!r} must be 1-64 printable characters "
                              "without quotes")


def _is_network(text: str) -> bool:
    try:
        IPv4Network(text, strict=False)
    except ValueError:
        return False
    return True


def _where(targets, net, services: Services) -> tuple[IPv4Network, ...]:
    prefixes = []
    for target in targets:
        if target in services.records:  # where the site is now
            prefixes += [IPv4Network(f"{a}/32") for a in services.records[target]]
        elif target in net.graph:
            prefixes.append(IPv4Network(f"{net.address(target)}/32"))
        else:
            prefixes.append(IPv4Network(target, strict=False))
    return tuple(prefixes)


def resolve(policy: CensorPolicy, net, services: Services) -> Resolved:
    check(policy, net.graph)
    return Resolved(_where(policy.block_addresses, net, services),
                    {n: BOGUS for n in policy.block_names}, tuple(policy.block_keywords),
                    policy.cut_border, _where(policy.throttle_addresses, net, services),
                    policy.throttle_kbit)


@dataclass
class Change:
    requested: float  # wall clock, seconds: when apply() was called
    effective: float  # when every border router and the resolver had it
    policy: dict


@dataclass
class BorderCensor:
    net: object
    services: Services
    history: list[Change] = field(default_factory=list)
    _hooked: set[str] = field(default_factory=set)

    def borders(self) -> dict[str, list[str]]:
        """Border router -> its interfaces facing abroad."""
        g, plan = self.net.graph, self.net.plan
        return {b: [plan.intf(b, p).name for p in g.neighbors(b) if is_foreign(g, p)]
                for b in g if g.nodes[b]["role"] == "border"}

    def records(self) -> set[tuple[str, str]]:
        """What the border routers know of flows right now: (source, destination) of every
        connection in their conntrack tables. A permissionless operator sees no more."""
        flows = set()
        for border in self.borders():
            out = self.net.exec(border, "conntrack", "-L", check=False).stdout
            for line in out.splitlines():
                words = line.split()  # the original direction comes first
                src = next((w[4:] for w in words if w.startswith("src=")), None)
                dst = next((w[4:] for w in words if w.startswith("dst=")), None)
                if src and dst:
                    flows.add((src, dst))
        return flows

    def apply(self, policy: CensorPolicy) -> Change:
        requested = time.time()
        resolved = resolve(policy, self.net, self.services)
        for border, abroad in self.borders().items():
            self.net.exec(border, "nft", "-f", "-", input=_nft(resolved, abroad))
            self.net.exec(border, "iptables-restore", "-w", "--noflush",
                          input=_iptables(resolved, abroad, border not in self._hooked))
            self._hooked.add(border)
        if self.services.resolver() is not None:
            self.services.set_lies(resolved.lies)
        change = Change(requested, time.time(), policy.describe())
        self.history.append(change)
        return change


def _nft(policy: Resolved, abroad: list[str]) -> str:
    elements = ", ".join(str(p) for p in policy.prefixes)
    ifaces = ", ".join(f'"{i}"' for i in abroad)
    rules = ["counter drop"] if policy.cut else []
    if elements:
        rules += ["ip daddr @blocked counter drop", "ip saddr @blocked counter drop"]
    for prefix in policy.throttled:
        rules += policed(str(prefix), policy.kbit)
    return "\n".join([
        f"table inet {TABLE}", f"delete table inet {TABLE}", f"table inet {TABLE} {{",
        "  set blocked { type ipv4_addr; flags interval;"
        + (f" elements = {{ {elements} }};" if elements else "") + " }",
        "  chain forward {", "    type filter hook forward priority -5; policy accept;",
        f"    iifname {{ {ifaces} }} jump censor", f"    oifname {{ {ifaces} }} jump censor",
        "  }", "  chain censor {", "    ct state new counter", *[f"    {r}" for r in rules],
        "  }", "}", ""])


def _iptables(policy: Resolved, abroad: list[str], first: bool) -> str:
    """The keyword chain, refilled on every change; the jumps to it only the first time."""
    lines = ["*filter", f":{CHAIN} - [0:0]", f"-F {CHAIN}"]
    if first:
        for intf in abroad:
            lines += [f"-A FORWARD -i {intf} -j {CHAIN}", f"-A FORWARD -o {intf} -j {CHAIN}"]
    for keyword in policy.keywords:
        lines.append(f'-A {CHAIN} -p tcp -m string --string "{keyword}" --algo bm --icase '
                     "-j REJECT --reject-with tcp-reset")
    return "\n".join([*lines, "COMMIT", ""])


class BorderInstruments:
    """Permissionless IP's censor (``instruments.Instruments``): every action is a border
    policy, records are the border's flow records, by address."""

    lies_about_names = True
    identity_evasions = False
    can_throttle = True

    def __init__(self, censor: BorderCensor, net):
        self.censor, self.net = censor, net

    def act(self, action: str, aim) -> None:
        self.censor.apply({
            "person": CensorPolicy(block_addresses=(aim.person,)),
            "destination": CensorPolicy(block_addresses=(aim.destination,)),
            "name": CensorPolicy(block_names=(aim.name,)),
            "region": CensorPolicy(block_addresses=tuple(sorted(aim.region_hosts))),
            "country": CensorPolicy(cut_border=True),
            THROTTLE: CensorPolicy(throttle_addresses=(aim.destination,),
                                   throttle_kbit=THROTTLE_KBIT)}[action])

    def undo(self, action: str, aim) -> None:
        self.censor.apply(CensorPolicy())

    def records(self, host: str, since: float) -> set[str]:
        addresses = {self.net.address(host), str(self.net.plan.address(host))}
        return {dst for src, dst in self.censor.records() if src in addresses}

    def moved(self, host: str) -> None:
        """Nothing: the border knows addresses, not people."""
