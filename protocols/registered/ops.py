"""The operator's commands: a table of small handlers over the authority's one policy store.

Each handler reads or changes the registry and the in-memory policy of an ``Authority`` (its
``registry``, ``policy``, ``gateways``, ``counters``) and returns an ``Outcome``: the answer
and whether every gateway must forget its grants. Handlers never talk to gateways: after a
change the authority commits it, works out each gateway's new share of the policy and sends
the difference (``policy.Enforced``). Times in answers are seconds since the epoch; the
console turns them into something a person reads.

    OPS["revoke"](authority, {"identity": 7}, now)
"""

from __future__ import annotations

import ipaddress
from collections.abc import Callable
from dataclasses import dataclass, field

from .admission import covered
from .identity import issue
from .messages import MAX_ITEMS, PROTOCOLS, TTL_BOUNDS_MS, Reason, dotted


class OperatorRefusal(ValueError):
    """A request the authority cannot carry out; one sentence."""


@dataclass
class Outcome:
    answer: dict = field(default_factory=dict)
    flush: bool = False


def prefix(text: str) -> tuple[int, int]:
    try:
        net = ipaddress.IPv4Network(text, strict=False)
    except ValueError:
        raise OperatorRefusal(f"{text!r} is not an address or prefix") from None
    return int(net.network_address), net.prefixlen


def _identity(auth, request: dict) -> int:
    try:
        identity = int(request["identity"])
    except (KeyError, TypeError, ValueError):
        raise OperatorRefusal("name an identity by its number") from None
    if auth.registry.describe(identity) is None:
        raise OperatorRefusal(f"there is no identity {identity}")
    return identity


def status(auth, request: dict, now: float) -> Outcome:
    p = auth.policy
    return Outcome({"counters": auth.all_counters(), "changes_unacknowledged": auth.unacked(),
                    "silent_gateways": [auth.gateways[i].name for i in auth.silent()],
                    "gateways": {g.name: {"last_heard": auth.last_seen.get(i),
                                          "applied": auth.acked.get(i, 0),
                                          "latest": auth.seq.get(i, 0)}
                                 for i, g in auth.gateways.items()},
                    "identities": len(p.identity_at), "revoked": sorted(p.revoked),
                    "blocked": [f"{dotted(a)}/{n}" for a, n in p.blocked],
                    "shutdowns": {r: [f"{dotted(a)}/{n}" for a, n in allow]
                                  for r, allow in p.shutdowns.items()},
                    "ttl_ms": p.ttl_ms, "durability": auth.journal.durability})


def log(auth, request: dict, now: float) -> Outcome:
    """Admissions (newest first), for one identity if asked, and the operator's actions
    concerning it (all of them if no identity is named)."""
    auth.import_journal()
    identity = request.get("identity")
    limit = int(request.get("limit", 50))
    rows = auth.registry.admissions(limit, identity, float(request.get("since", 0)))
    names = {i: g.name for i, g in auth.gateways.items()}
    return Outcome({"admissions": [
        {"seq": s, "time": t, "gateway": names.get(g, str(g)), "identity": i, "src": dotted(src),
         "dst": dotted(dst), "proto": PROTOCOLS.get(proto, str(proto)), "sport": sport,
         "dport": dport, "inbound": bool(inbound), "renewal": bool(renewal),
         "granted": bool(granted), "reason": Reason(why).text, "by_gateway": bool(by_gateway),
         "peer_verified": verified(auth, src if inbound else dst)}
        for s, t, g, i, src, dst, proto, sport, dport, inbound, renewal, granted, why,
        by_gateway in rows],
        "actions": [dict(zip(("seq", "time", "action", "target", "detail"), row, strict=True))
                    for row in auth.registry.actions(
                        limit, None if identity is None else str(identity))]})


def verified(auth, peer: int) -> bool:
    """Whether the log's other end of a flow is who its address says: an address of the
    national network, whose routers let no end node send from another's line; a foreign
    address is only what abroad claimed (nothing validates sources there)."""
    return covered(peer, auth.national)


def who(auth, request: dict, now: float) -> Outcome:
    identity = request.get("identity")
    if identity is None:
        try:
            address = int(ipaddress.IPv4Address(request.get("address")))
        except ValueError:
            raise OperatorRefusal("name an identity or an address") from None
        identity = auth.policy.identity_at.get(address)
        if identity is None:
            raise OperatorRefusal(f"nobody is bound to {dotted(address)}")
    info = auth.registry.describe(int(identity))
    if info is None:
        raise OperatorRefusal(f"there is no identity {identity}")
    if info["address"] is not None:
        info["address"] = dotted(info["address"])
    if info["gateway"] is not None:
        info["gateway"] = auth.gateways[info["gateway"]].name
    return Outcome(info)


def add_person(auth, request: dict, now: float) -> Outcome:
    """The civil register adds a person and issues their card; the answer carries it, to be
    handed over out of band."""
    nid, name = str(request.get("national_id", "")), str(request.get("real_name", ""))
    if not nid or not name:
        raise OperatorRefusal("a person needs a national id and a real name")
    if auth.registry.person(nid) is not None:
        raise OperatorRefusal(f"{nid} is already in the civil register")
    try:
        card = issue(nid, name)
    except ValueError as e:
        raise OperatorRefusal(str(e)) from None
    auth.registry.add_person(card)
    auth.registry.log_action(now, "add_person", nid, name)
    return Outcome({"national_id": nid, "real_name": name, "secret": card.secret.hex()})


def _revocation(revoke: bool):
    def handler(auth, request: dict, now: float) -> Outcome:
        identity = _identity(auth, request)
        auth.registry.set_revoked(identity, now if revoke else None)
        auth.registry.log_action(now, "revoke" if revoke else "reinstate", str(identity))
        (auth.policy.revoked.add if revoke else auth.policy.revoked.discard)(identity)
        return Outcome({"identity": identity})
    return handler


def _blocking(block: bool):
    def handler(auth, request: dict, now: float) -> Outcome:
        target = prefix(str(request.get("destination", "")))
        if block:
            auth.registry.block(*target, now)
            if target not in auth.policy.blocked:
                auth.policy.blocked.append(target)
        else:
            auth.registry.unblock(*target)
            auth.policy.blocked = [b for b in auth.policy.blocked if b != target]
        auth.registry.log_action(now, "block" if block else "unblock", request["destination"])
        return Outcome({"destination": f"{dotted(target[0])}/{target[1]}"})
    return handler


def shutdown(auth, request: dict, now: float) -> Outcome:
    region = request.get("region")
    regions = sorted(set(auth.policy.region_of.values()))
    if region not in regions:
        raise OperatorRefusal(f"there is no region {region!r} (regions: {', '.join(regions)})")
    allow = [prefix(a) for a in request.get("allow", [])]
    if len(allow) > MAX_ITEMS:  # a shutdown is one message: its list must fit
        raise OperatorRefusal(f"at most {MAX_ITEMS} essential prefixes; name wider ones")
    auth.registry.shutdown(region, allow, now)
    auth.registry.log_action(now, "shutdown", region, ",".join(request.get("allow", [])))
    auth.policy.shutdowns[region] = allow
    return Outcome({"region": region, "allow": [f"{dotted(a)}/{n}" for a, n in allow]})


def lift(auth, request: dict, now: float) -> Outcome:
    region = request.get("region")
    if region not in auth.policy.shutdowns:
        raise OperatorRefusal(f"region {region!r} is not shut down")
    auth.registry.lift(region)
    del auth.policy.shutdowns[region]
    auth.registry.log_action(now, "lift", region)
    return Outcome({"region": region})


def restore(auth, request: dict, now: float) -> Outcome:
    """Lift every shutdown and every block (revocations stay)."""
    for region in list(auth.policy.shutdowns):
        auth.registry.lift(region)
    for target in auth.policy.blocked:
        auth.registry.unblock(*target)
    lifted, unblocked = sorted(auth.policy.shutdowns), len(auth.policy.blocked)
    auth.policy.shutdowns.clear()
    auth.policy.blocked = []
    auth.registry.log_action(now, "restore", ",".join(lifted), f"{unblocked} blocks")
    return Outcome({"lifted": lifted, "unblocked": unblocked})


def ttl(auth, request: dict, now: float) -> Outcome:
    """The lifetime of grants from now on (grants already given keep theirs)."""
    try:
        ms = int(request["ms"])
    except (KeyError, TypeError, ValueError):
        raise OperatorRefusal("the TTL is a whole number of milliseconds") from None
    low, high = TTL_BOUNDS_MS
    if not low <= ms <= high:
        raise OperatorRefusal(f"the admission TTL must be from {low} to {high} ms")
    auth.policy.ttl_ms = ms
    auth.registry.set_ttl(ms)
    auth.registry.log_action(now, "ttl", str(ms))
    return Outcome({"ttl_ms": ms})


def flush(auth, request: dict, now: float) -> Outcome:
    """Every gateway forgets its grants: the next packet of every flow is asked about."""
    auth.registry.log_action(now, "flush", "all gateways")
    return Outcome({"gateways": len(auth.gateways)}, flush=True)


def checkpoint(auth, request: dict, now: float) -> Outcome:
    """Everything in the journal into the registry, committed (before a copy is taken)."""
    return Outcome({"imported": auth.import_journal()})


OPS: dict[str, Callable[..., Outcome]] = {
    "status": status, "log": log, "who": who, "add_person": add_person,
    "revoke": _revocation(True), "reinstate": _revocation(False),
    "block": _blocking(True), "unblock": _blocking(False),
    "shutdown": shutdown, "lift": lift, "restore": restore, "ttl": ttl, "flush": flush,
    "checkpoint": checkpoint,
}
READ_ONLY = frozenset({"status", "log", "who", "checkpoint"})
