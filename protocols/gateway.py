"""The gateway on an access router: nothing passes for its hosts unless the authority said so.

nftables (table ``inet splinter_gw``) does the enforcing, in the kernel:

* a packet from a host line must carry an address of that line (else: spoofed, dropped) and
  one bound to a registered identity on that line (else: unregistered, dropped; unregistered
  hosts reach only the registration service, UDP 7401 on the gateway);
* revoked addresses (``cut``), blocked destinations and, while the region is shut down,
  everything but the essential services are dropped, both ways, before anything else;
* a flow whose (source, destination, protocol, destination port) is in ``grants_l4`` (TCP and
  UDP) or whose (source, destination, protocol) is in ``grants`` (anything else) passes in the
  kernel; the set elements expire after the admission TTL. A flow is what Ethane calls one:
  a new TCP connection to another port is a new flow;
* the first packet of any other flow gets a mark that an iptables rule sends to NFQUEUE
  (nftables' own ``queue`` statement is not in every kernel): this daemon asks the authority
  and gives the verdict. A grant becomes a set element, so the rest of the flow never leaves
  the kernel. Replies to admitted flows ride on conntrack. New flows from national sources
  to our hosts were admitted at their own gateway; new flows from abroad are asked about here.

When the authority cannot be reached (no keepalive answer for 3 s, or a request unanswered
twice), new flows follow the fail mode: ``closed`` drops them (the proposal's spirit), ``open``
lets them through with an ordinary grant. Flows already granted run until their TTL.

    python -m protocols.gateway CONFIG.json
"""

from __future__ import annotations

import collections
import contextlib
import ipaddress
import json
import selectors
import socket
import subprocess
import sys
import threading
import time
from dataclasses import dataclass
from pathlib import Path

from . import codec
from .codec import GATEWAY_PORT, PORT, REASONS, SERVICE_PORT, Key, Nonces, Rejected, ReplayWindow
from .nfqueue import COPY_PACKET, NF_DROP, QueueSocket

TABLE = "splinter_gw"
QUEUE = 100
MARK_OUT, MARK_IN = 0x5A1, 0x5A2
KEEPALIVE_S = 1.0
UNREACHABLE_S = 3.0
DENY_CACHE_MS = 1000
REGISTRATION_TIMEOUT_S = 3.0


def ip(value: int) -> str:
    return str(ipaddress.IPv4Address(value))


def prefix_text(address: int, length: int) -> str:
    return f"{ip(address)}/{length}"


def ruleset(lines: dict[str, str], national: str) -> str:
    """The nftables table, empty of bindings and grants. ``lines``: interface -> its
    subnet."""
    ifaces = ", ".join(f'"{i}"' for i in lines)
    line_elements = ", ".join(f'"{i}" . {net}' for i, net in lines.items())
    return f"""table inet {TABLE}
delete table inet {TABLE}
table inet {TABLE} {{
  counter spoofed {{}}
  counter unregistered {{}}
  counter cut {{}}
  counter blocked {{}}
  counter shut {{}}
  counter denied {{}}
  set hostifs {{ type ifname; elements = {{ {ifaces} }}; }}
  set lines {{ type ifname . ipv4_addr; flags interval; elements = {{ {line_elements} }}; }}
  set bound {{ type ifname . ipv4_addr; }}
  set cut {{ type ipv4_addr; }}
  set blocked {{ type ipv4_addr; flags interval; }}
  set essential {{ type ipv4_addr; flags interval; }}
  set grants {{ type ipv4_addr . ipv4_addr . inet_proto; flags timeout; }}
  set grants_l4 {{ type ipv4_addr . ipv4_addr . inet_proto . inet_service; flags timeout; }}
  set denied {{ type ipv4_addr . ipv4_addr . inet_proto; flags timeout; }}
  set denied_l4 {{ type ipv4_addr . ipv4_addr . inet_proto . inet_service; flags timeout; }}
  chain forward {{
    type filter hook forward priority -10; policy accept;
    iifname @hostifs jump from_host
    oifname @hostifs jump to_host
  }}
  chain from_host {{
    iifname . ip saddr != @lines counter name spoofed drop
    ip saddr @cut counter name cut drop
    iifname . ip saddr != @bound counter name unregistered drop
    ip daddr @blocked counter name blocked drop
    jump shutdown_out
    ct direction reply accept
    jump admitted
    meta mark set {MARK_OUT:#x} accept
  }}
  chain to_host {{
    ip daddr @cut counter name cut drop
    ip saddr @blocked counter name blocked drop
    jump shutdown_in
    ct state established,related accept
    ip saddr {national} accept
    jump admitted
    meta mark set {MARK_IN:#x} accept
  }}
  chain admitted {{
    meta l4proto {{ tcp, udp }} ip saddr . ip daddr . meta l4proto . th dport @grants_l4 accept
    meta l4proto {{ tcp, udp }} ip saddr . ip daddr . meta l4proto . th dport @denied_l4 \
      counter name denied drop
    meta l4proto {{ tcp, udp }} return
    ip saddr . ip daddr . meta l4proto @grants accept
    ip saddr . ip daddr . meta l4proto @denied counter name denied drop
  }}
  chain shutdown_out {{
  }}
  chain shutdown_in {{
  }}
  chain input {{
    type filter hook input priority -10; policy accept;
    iifname @hostifs iifname . ip saddr != @lines counter name spoofed drop
    iifname @hostifs udp dport {SERVICE_PORT} accept
    iifname @hostifs iifname . ip saddr != @bound counter name unregistered drop
  }}
}}
"""


QUEUE_RULES = (f"*filter\n-A FORWARD -m mark --mark {MARK_OUT:#x} -j NFQUEUE --queue-num "
               f"{QUEUE}\n-A FORWARD -m mark --mark {MARK_IN:#x} -j NFQUEUE --queue-num "
               f"{QUEUE}\nCOMMIT\n")


def parse_ip(payload: bytes) -> tuple[int, int, int, int] | None:
    """(src, dst, proto, destination port) from the first bytes of an IPv4 packet."""
    if len(payload) < 20 or payload[0] >> 4 != 4:
        return None
    ihl = (payload[0] & 0x0F) * 4
    proto = payload[9]
    dport = int.from_bytes(payload[ihl + 2:ihl + 4], "big") if proto in (6, 17) and \
        len(payload) >= ihl + 4 else 0
    return (int.from_bytes(payload[12:16], "big"), int.from_bytes(payload[16:20], "big"),
            proto, dport)


Flow = tuple[int, int, int, int]  # source, destination, protocol, destination port (or 0)


def element(flow: Flow, kind: str) -> str:
    """``add element``'s arguments for a flow in the ``grants`` or ``denied`` sets."""
    src, dst, proto, dport = flow
    if proto in (6, 17):
        return f"{kind}_l4 {{ {ip(src)} . {ip(dst)} . {proto} . {dport}"
    return f"{kind} {{ {ip(src)} . {ip(dst)} . {proto}"


@dataclass
class Pending:
    request_id: int
    inbound: bool
    packets: list[int]
    sent: float
    attempts: int = 1


@dataclass
class HostRequest:
    op: str
    host: tuple[str, int]
    iface: str
    address: int
    sent: float


class Gateway:
    def __init__(self, config: dict, status_file: Path):
        from nftables import Nftables  # Debian's python3-nftables (libnftables)

        self.id = config["id"]
        self.key = Key(bytes.fromhex(config["key"]))
        self.authority = (config["authority"], PORT)
        self.fail_mode = config.get("fail_mode", "closed")
        self.ttl_ms = config.get("ttl_ms", 30_000)
        self.request_timeout = config.get("request_timeout_ms", 200) / 1000
        self.lines = {iface: ipaddress.IPv4Network(net) for iface, net in config["lines"].items()}
        self.status_file = status_file
        self.nft = Nftables()
        self._nft(ruleset(config["lines"], config["national"]))
        subprocess.run(["iptables-restore", "-w", "--noflush"], input=QUEUE_RULES, text=True,
                       check=True)
        self.queue = QueueSocket()
        self.queue.bind(QUEUE, copy_mode=COPY_PACKET, copy_range=64)
        self.control = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
        self.control.bind((config["address"], GATEWAY_PORT))
        self.control.setblocking(False)
        self.service = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
        self.service.bind(("0.0.0.0", SERVICE_PORT))
        self.service.setblocking(False)
        self.nonces = Nonces()
        self.authority_key = {0: self.key}.get  # only the authority (sender 0) speaks to us
        self.windows = {0: ReplayWindow()}
        self.counters: collections.Counter = collections.Counter()
        self.grants: dict[Flow, float] = {}   # mirror of the kernel sets
        self.denied: dict[Flow, float] = {}
        self.pending: dict[Flow, Pending] = {}
        self.requests: dict[int, Flow] = {}
        self.host_requests: dict[int, HostRequest] = {}
        self.bound: dict[int, tuple[str, int]] = {}            # address -> (iface, identity)
        self.last_request_id = 0
        self.last_reset = 0
        self.applied: set[int] = set()
        self.last_answer = 0.0
        self.reachable = False
        self.next_keepalive = 0.0

    # -- small helpers ---------------------------------------------------------------------
    def _nft(self, command: str) -> None:
        rc, _, err = self.nft.cmd(command)
        if rc != 0:
            self.counters["nft error"] += 1
            print(f"nft: {err.strip()} in: {command[:200]}", file=sys.stderr, flush=True)

    def _send(self, msg_type: int, body: tuple) -> None:
        data = codec.encode(msg_type, self.id, self.nonces.next(), body, self.key)
        try:
            self.control.sendto(data, self.authority)
        except OSError:
            self.counters["send failed"] += 1

    def _next_request_id(self) -> int:
        self.last_request_id = (self.last_request_id + 1) & 0xFFFFFFFF
        return self.last_request_id

    def _iface_of(self, address: int) -> str | None:
        addr = ipaddress.IPv4Address(address)
        return next((i for i, net in self.lines.items() if addr in net), None)

    # -- the loop --------------------------------------------------------------------------
    def run(self) -> None:
        selector = selectors.DefaultSelector()
        selector.register(self.queue, selectors.EVENT_READ, self.on_packets)
        selector.register(self.control, selectors.EVENT_READ, self.on_control)
        selector.register(self.service, selectors.EVENT_READ, self.on_host)
        self._send(codec.SYNC, (0,))
        print(f"gateway {self.id} ready, fail mode {self.fail_mode}", flush=True)
        next_status = 0.0
        while True:
            for key, _ in selector.select(self._timeout()):
                key.data()
            now = time.monotonic()
            self.tick(now)
            if now >= next_status:
                self.write_status()
                next_status = now + 1.0

    def _timeout(self) -> float:
        now = time.monotonic()
        deadlines = [self.next_keepalive]
        deadlines += [p.sent + self.request_timeout for p in self.pending.values()]
        return max(0.0, min(deadlines) - now)

    def tick(self, now: float) -> None:
        if now >= self.next_keepalive:
            self._send(codec.KEEPALIVE, (int(now) & 0xFFFFFFFF,))
            self.next_keepalive = now + KEEPALIVE_S
        was = self.reachable
        self.reachable = now - self.last_answer < UNREACHABLE_S
        if was and not self.reachable:
            self.counters["authority lost"] += 1
        for key, pending in list(self.pending.items()):
            if now - pending.sent < self.request_timeout:
                continue
            if pending.attempts < 2 and self.reachable:
                pending.attempts += 1
                pending.sent = now
                self._ask(key, pending)
            else:
                del self.pending[key]
                self.requests.pop(pending.request_id, None)
                self.fail(key, pending.packets)
        for rid, req in list(self.host_requests.items()):
            if now - req.sent > REGISTRATION_TIMEOUT_S:
                del self.host_requests[rid]
                self._answer_host(req, {"ok": False, "reason": "authority unreachable"})
        if len(self.grants) > 4096:
            self.grants = {k: t for k, t in self.grants.items() if t > now}
            self.denied = {k: t for k, t in self.denied.items() if t > now}

    def write_status(self) -> None:
        status = {"reachable": self.reachable, "fail_mode": self.fail_mode,
                  "counters": dict(self.counters), "grants": len(self.grants),
                  "bound": {ip(a): i for a, (_, i) in self.bound.items()},
                  "pending": len(self.pending)}
        tmp = self.status_file.with_suffix(".tmp")
        tmp.write_text(json.dumps(status))
        tmp.replace(self.status_file)

    # -- first packets ---------------------------------------------------------------------
    def on_packets(self) -> None:
        now = time.monotonic()
        for packet in self.queue.receive():
            fields = parse_ip(packet.payload)
            if fields is None:
                self.queue.verdict(QUEUE, packet.id, NF_DROP)
                continue
            key = fields
            if self.grants.get(key, 0) > now:  # granted, the set element is on its way
                self.queue.verdict(QUEUE, packet.id)
            elif self.denied.get(key, 0) > now:
                self.queue.verdict(QUEUE, packet.id, NF_DROP)
            elif key in self.pending:
                self.pending[key].packets.append(packet.id)
            elif not self.reachable:
                self.fail(key, [packet.id])
            else:
                pending = Pending(self._next_request_id(), packet.mark == MARK_IN,
                                  [packet.id], now)
                self.pending[key] = pending
                self.requests[pending.request_id] = key
                self.counters["asked"] += 1
                self._ask(key, pending)

    def _ask(self, key: Flow, pending: Pending) -> None:
        src, dst, proto, dport = key
        self._send(codec.FLOW_REQUEST, (pending.request_id, src, dst, proto,
                                        codec.INBOUND if pending.inbound else 0, dport))

    def fail(self, key: Flow, packets: list[int]) -> None:
        """The authority did not answer: the fail mode decides."""
        if self.fail_mode == "open":
            self.counters["failed open"] += 1
            self.grant(key, packets, self.ttl_ms)
        else:
            self.counters["failed closed"] += 1
            self.deny(key, packets)

    def grant(self, key: Flow, packets: list[int], ttl_ms: int) -> None:
        self.grants[key] = time.monotonic() + ttl_ms / 1000
        for packet_id in packets:  # verdicts first: the set element is not on the hot path
            self.queue.verdict(QUEUE, packet_id)
        self._nft(f"add element inet {TABLE} {element(key, 'grants')} "
                  f"timeout {max(1, ttl_ms)}ms }}")

    def deny(self, key: Flow, packets: list[int]) -> None:
        self.denied[key] = time.monotonic() + DENY_CACHE_MS / 1000
        for packet_id in packets:
            self.queue.verdict(QUEUE, packet_id, NF_DROP)
        self._nft(f"add element inet {TABLE} {element(key, 'denied')} "
                  f"timeout {DENY_CACHE_MS}ms }}")

    # -- the authority speaks --------------------------------------------------------------
    def on_control(self) -> None:
        while True:
            try:
                data, _ = self.control.recvfrom(4096)
            except BlockingIOError:
                return
            try:
                msg = codec.open_message(data, self.authority_key, self.windows)
            except Rejected as e:
                self.counters[f"rejected {e.args[0]}"] += 1
                continue
            self.last_answer = time.monotonic()
            if not self.reachable:
                self.reachable = True
                self._send(codec.SYNC, (0,))  # we may have missed pushes while cut off
            self.dispatch(msg)

    def dispatch(self, msg: codec.Message) -> None:
        if msg.type in (codec.GRANT, codec.DENY):
            request_id, reason, ttl_ms, _ = msg.body
            key = self.requests.pop(request_id, None)
            pending = self.pending.pop(key, None) if key else None
            if pending is None:
                self.counters["late answer"] += 1
            elif msg.type == codec.GRANT:
                self.counters["granted"] += 1
                self.grant(key, pending.packets, ttl_ms)
            else:
                self.counters["denied"] += 1
                self.deny(key, pending.packets)
        elif msg.type == codec.POLICY_PUSH:
            push_id, action, _, identity, prefixes = msg.body
            self._send(codec.PUSH_ACK, (push_id,))
            if push_id in self.applied or push_id < self.last_reset:
                return  # a retransmission, or older than the state we were reset to
            self.applied.add(push_id)
            self.apply(push_id, action, identity, prefixes)
        elif msg.type in (codec.REGISTER_ACK, codec.BIND_ACK):
            request_id, status, identity, credential = msg.body
            req = self.host_requests.pop(request_id, None)
            if req is None:
                return
            if status == codec.OK:
                self.bind(req.address, req.iface, identity)
                answer = {"ok": True, "identity": identity}
                if msg.type == codec.REGISTER_ACK:
                    answer["credential"] = credential.hex()
            else:
                answer = {"ok": False, "reason": REASONS.get(status, str(status)),
                          "identity": identity or None}
            self._answer_host(req, answer)

    def bind(self, address: int, iface: str, identity: int) -> None:
        for old, (_old_iface, old_identity) in list(self.bound.items()):
            if old_identity == identity and old != address:
                self.unbind(old)
        self.bound[address] = (iface, identity)
        self._nft(f'add element inet {TABLE} bound {{ "{iface}" . {ip(address)} }}')

    def unbind(self, address: int) -> None:
        entry = self.bound.pop(address, None)
        if entry:
            self._nft(f'delete element inet {TABLE} bound {{ "{entry[0]}" . {ip(address)} }}')

    def apply(self, push_id: int, action: int, identity: int,
              prefixes: tuple[tuple[int, int], ...]) -> None:
        """Put a policy push in force, then forget what it made obsolete."""
        self.counters[f"push {action}"] += 1
        texts = [prefix_text(a, n) for a, n in prefixes]
        nets = [ipaddress.IPv4Network(t) for t in texts]
        if action == codec.PUSH_RESET:
            self.last_reset = push_id
            self._flush("bound", "cut", "blocked", "essential", "grants", "grants_l4")
            self._shutdown_rules(False)
            self.bound.clear()
            self.grants.clear()
        elif action == codec.PUSH_BIND:
            for address, _ in prefixes:
                iface = self._iface_of(address)
                if iface:
                    self.bind(address, iface, identity)
        elif action == codec.PUSH_UNBIND:
            for address, _ in prefixes:
                self.unbind(address)
        elif action in (codec.PUSH_CUT, codec.PUSH_BLOCK):
            name = "cut" if action == codec.PUSH_CUT else "blocked"
            shown = [ip(a) for a, _ in prefixes] if name == "cut" else texts
            self._nft(f"add element inet {TABLE} {name} {{ {', '.join(shown)} }}")
            self._forget(lambda k: any(ipaddress.IPv4Address(e) in n for n in nets
                                       for e in (k[0], k[1])), nets)
        elif action == codec.PUSH_UNCUT:
            addresses = ", ".join(ip(a) for a, _ in prefixes)
            self._nft(f"delete element inet {TABLE} cut {{ {addresses} }}")
        elif action == codec.PUSH_UNBLOCK:
            self._nft(f"delete element inet {TABLE} blocked {{ {', '.join(texts)} }}")
        elif action == codec.PUSH_SHUTDOWN:
            self._flush("essential")
            if texts:
                self._nft(f"add element inet {TABLE} essential {{ {', '.join(texts)} }}")
            self._shutdown_rules(True)
            self._forget(lambda k: True, [])
        elif action == codec.PUSH_LIFT:
            self._shutdown_rules(False)
            self._flush("essential")
        elif action == codec.PUSH_FLUSH:  # every grant must be asked for again
            self._flush("grants", "grants_l4")
            self.grants.clear()
        self._flush("denied", "denied_l4")  # old denials may no longer hold
        self.denied.clear()

    def _flush(self, *sets: str) -> None:
        """Empty these sets in one nftables transaction."""
        self._nft("\n".join(f"flush set inet {TABLE} {name}" for name in sets))

    def _shutdown_rules(self, on: bool) -> None:
        for chain, field_ in (("shutdown_out", "daddr"), ("shutdown_in", "saddr")):
            self._nft(f"flush chain inet {TABLE} {chain}")
            if on:
                self._nft(f"add rule inet {TABLE} {chain} ip {field_} != @essential "
                          "counter name shut drop")

    def _forget(self, affected, nets: list[ipaddress.IPv4Network]) -> None:
        """Remove grants (kernel set and mirror) and conntrack entries a push made void."""
        gone = [k for k in self.grants if affected(k)]
        for key in gone:
            del self.grants[key]
            self._nft(f"delete element inet {TABLE} {element(key, 'grants')} }}")
        commands = []
        for net in nets:
            for flag in ("-s", "-d"):
                commands.append(["conntrack", "-D", flag, str(net.network_address),
                                 "--mask-src" if flag == "-s" else "--mask-dst",
                                 str(net.netmask)])
        if not nets and gone:
            commands.append(["conntrack", "-F"])
        if commands:  # not on the hot path: enforcement already holds without it
            threading.Thread(target=_run_all, args=(commands,), daemon=True).start()

    # -- the hosts' registration service ---------------------------------------------------
    def on_host(self) -> None:
        while True:
            try:
                data, host = self.service.recvfrom(2048)
            except BlockingIOError:
                return
            try:
                request = json.loads(data)
                op = request["op"]
            except (ValueError, KeyError, TypeError):
                self.counters["bad host request"] += 1
                continue
            address = int(ipaddress.IPv4Address(host[0]))
            iface = self._iface_of(address)
            if iface is None or op not in ("register", "bind"):
                self.counters["bad host request"] += 1
                continue
            rid = self._next_request_id()
            req = HostRequest(op, host, iface, address, time.monotonic())
            try:
                if op == "register":
                    body = (rid, address, request["national_id"].encode()[:16],
                            request["real_name"].encode()[:40])
                    msg_type = codec.REGISTER
                else:
                    body = (rid, address, int(request["identity"]),
                            bytes.fromhex(request["credential"])[:16].ljust(16, b"\0"))
                    msg_type = codec.BIND
            except (KeyError, ValueError, TypeError, AttributeError):
                self.counters["bad host request"] += 1
                continue
            self.host_requests[rid] = req
            self._send(msg_type, body)

    def _answer_host(self, req: HostRequest, answer: dict) -> None:
        with contextlib.suppress(OSError):
            self.service.sendto(json.dumps(answer).encode(), req.host)


def _run_all(commands: list[list[str]]) -> None:
    for argv in commands:
        subprocess.run(argv, capture_output=True)


def main() -> None:
    config_path = Path(sys.argv[1])
    config = json.loads(config_path.read_text())
    Gateway(config, config_path.with_suffix(".status.json")).run()


if __name__ == "__main__":
    main()
