"""The gateway on an access router: nothing reaches or leaves its hosts unless the authority
said so, in either direction, whoever started the flow.

The kernel enforces (``ruleset``); this process decides what the kernel cannot:

* **First packets.** A packet without a live grant for its flow arrives on NFQUEUE, marked
  with its direction. Its flow is named canonically (initiator, responder, protocol,
  responder port), so a reply finds the grant of the flow it belongs to; the gateway asks the
  authority (``inbound`` when the remote end started it) and gives the verdict. A grant
  becomes a set element with the admission TTL as timeout, so the rest of the flow never
  leaves the kernel. Elements are written on a thread of their own, so the loop is never
  held in libnftables (a transaction takes about 0.5 ms here and several on a slower
  machine) when a flow's first reply comes back, within a millisecond if the other end is
  near: the reply is let through from the gateway's own record of the grant.
* **Grants run out.** Twice before a grant expires, the gateway reads its element's packet
  counter; a flow that carried packets in between, still in use, is asked about again (a
  renewal), in the background, and on a grant its element is replaced with a fresh timeout
  in one transaction. A denied renewal, a
  flush or a revocation removes the element (and the flow's conntrack entry): both directions
  stop at once. With the authority gone, renewals go unanswered and every flow stops within
  one TTL (fail-closed); fail-open gateways grant new flows and renewals themselves, and write
  each such decision to a journal of their own, since the authority never sees them.
* **Policy in order.** POLICY changes are numbered; ``policy.Sequencer`` applies them in order
  and asks for a snapshot when a gap does not close; a snapshot is applied as a difference.
* **Registration service** (UDP 7401, host lines only): relays a host's request for a
  challenge and its proof (``identity``); answers once the host's binding is in force.

Every answer from the authority must carry this process's session and name the flow it
answers: a replayed or stale GRANT admits nothing. The process is not dumpable.

    python -m protocols.registered.gateway CONFIG.json
"""

from __future__ import annotations

import collections
import contextlib
import ctypes
import heapq
import ipaddress
import json
import math
import os
import re
import selectors
import socket
import struct
import subprocess
import sys
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

from protocols.nfqueue import COPY_PACKET, NF_DROP, QueueSocket

from . import codec, identity
from .admission import AdmissionRow
from .codec import Key, Rejected, Replay, Sender
from .journal import Journal
from .messages import (
    DEFAULT_TTL_MS,
    GATEWAY_PORT,
    PORT,
    PORTED,
    PROTOCOLS,
    SERVICE_PORT,
    Action,
    Enrol,
    FlowFlag,
    PolicyFlag,
    Reason,
    Type,
)
from .policy import Enforced, Sequencer, Snapshot
from .ruleset import (
    CHAIN,
    MARK_IN,
    MARK_IN_REPLY,
    MARK_OUT_REPLY,
    MARKS,
    QUEUE,
    QUEUE_RULES,
    TABLE,
    ruleset,
    shutdown_rules,
)

KEEPALIVE_S = 1.0
UNREACHABLE_S = 3.0
DENY_CACHE_MS = 1000
HOST_REQUEST_S = 3.0
LOOK_BATCH_S = (0.05, 0.25)  # looks are taken in batches this far apart (a quarter margin):
# reading counters costs a set's worth of work per call, whatever the number of flows asked
SYNC_S = 1.0  # a gateway asks for its snapshot this often until it has one
ELEMENT_BATCH = 100  # flows per transaction of grant and denial changes
GET_CHUNK = 50  # keys per "get element": libnftables 1.0.6 overflows its stack at ~120
PR_SET_DUMPABLE = 4
IP_PKTINFO = 8  # linux/in.h (Python's socket module lacks it before 3.12)
IN_PKTINFO = struct.Struct("i4s4s")
Flow = tuple[int, int, int, int]  # initiator, responder, protocol, responder port (or 0)
_ELEMENT = re.compile(r"([\d.]+) \. ([\d.]+) \. (\d+)(?: \. (\d+))? counter packets (\d+)")


def ip(value: int) -> str:
    return socket.inet_ntoa(value.to_bytes(4, "big"))


def ip_int(text: str) -> int:
    return int.from_bytes(socket.inet_aton(text), "big")


def parse_ip(payload: bytes) -> tuple[int, int, int, int, int] | None:
    """(src, dst, proto, source port, destination port) of an IPv4 packet (ports 0 without)."""
    if len(payload) < 20 or payload[0] >> 4 != 4:
        return None
    ihl = (payload[0] & 0x0F) * 4
    proto = payload[9]
    sport = dport = 0
    if proto in PORTED and len(payload) >= ihl + 4:
        sport = int.from_bytes(payload[ihl:ihl + 2], "big")
        dport = int.from_bytes(payload[ihl + 2:ihl + 4], "big")
    return (int.from_bytes(payload[12:16], "big"), int.from_bytes(payload[16:20], "big"),
            proto, sport, dport)


def canonical(fields: tuple[int, int, int, int, int], mark: int) -> tuple[Flow, bool] | None:
    """The flow a queued packet belongs to, and whether the remote end started it (None for
    a mark the ruleset never sets)."""
    if mark not in MARKS:
        return None
    src, dst, proto, sport, dport = fields
    reply = mark in (MARK_OUT_REPLY, MARK_IN_REPLY)
    flow = (dst, src, proto, sport) if reply else (src, dst, proto, dport)
    return flow, mark in (MARK_OUT_REPLY, MARK_IN)


def element(flow: Flow, kind: str) -> str:
    """A flow as an element of the ``grants`` or ``denied`` sets (``..._l4`` with ports)."""
    src, dst, proto, dport = flow
    if proto in PORTED:
        return f"{kind}_l4 {{ {ip(src)} . {ip(dst)} . {proto} . {dport}"
    return f"{kind} {{ {ip(src)} . {ip(dst)} . {proto}"


def renewal_margin(ttl_ms: int) -> float:
    """How long before expiry a flow in use is asked about again; "in use" means packets
    since a first look, one margin earlier."""
    return min(ttl_ms / 3000, 2.0)


def look_batch(ttl_ms: int) -> float:
    """How far apart batches of looks are: a quarter margin, within ``LOOK_BATCH_S``."""
    low, high = LOOK_BATCH_S
    return min(high, max(low, renewal_margin(ttl_ms) / 4))


def packet_counts(nft, flows: list[Flow]) -> dict[Flow, int]:
    """Packets each flow's grant element has let through (a query per set and chunk). A
    query naming an element that is gone fails, and costs work in proportion to the whole
    set (25 ms at 16 000 elements, against 0.4 ms for 50 found): then the set is listed
    once (0.13 s) instead of asked about element by element, which at 16 000 devices held
    the loop for seconds and overflowed its queue."""
    nft.set_numeric_proto_output(True)  # "6", not "tcp": no name to map back
    counts: dict[Flow, int] = {}
    out = ""
    for kind in ("grants_l4", "grants"):
        keys = [element(f, "grants").split("{ ", 1)[1] for f in flows
                if (f[2] in PORTED) == (kind == "grants_l4")]
        for k in range(0, len(keys), GET_CHUNK):
            chunk = keys[k:k + GET_CHUNK]
            rc, text = nft.cmd(f"get element inet {TABLE} {kind} {{ {', '.join(chunk)} }}")[:2]
            if rc != 0:  # some element just expired
                out += nft.cmd(f"list set inet {TABLE} {kind}")[1]
                break
            out += text
    for src, dst, proto, port, packets in _ELEMENT.findall(out):
        counts[(ip_int(src), ip_int(dst), int(proto), int(port or 0))] = int(packets)
    return counts


@dataclass
class Grant:
    expires: float
    seen: int = 0          # its element's packet count at the first look


SAMPLE, DECIDE = 0, 1  # what a grant's scheduled looks do (``Gateway.renew``)


@dataclass
class Pending:
    request_id: int
    inbound: bool
    renewal: bool
    packets: list[int]
    sent: float
    attempts: int = 1
    asked: float = 0.0     # when first asked (``sent`` moves on with a retry)


ANSWER_BUCKETS_PER_OCTAVE = 8  # ask-to-answer times, microseconds: buckets 9 % wide


def answer_bucket(seconds: float) -> int:
    return int(ANSWER_BUCKETS_PER_OCTAVE * math.log2(max(1.0, seconds * 1e6)))


def bucket_us(bucket: int) -> float:
    """The upper bound of an ask-to-answer bucket, microseconds."""
    return 2 ** ((bucket + 1) / ANSWER_BUCKETS_PER_OCTAVE)


@dataclass
class HostRequest:
    op: str
    host: tuple[str, int]
    iface: str
    address: int
    sent: float
    identity: int = 0      # enrolled; answered once the binding is in force


class Gateway:
    def __init__(self, config: dict, status_file: Path):
        from nftables import Nftables  # Debian's python3-nftables (libnftables)

        self.id = config["id"]
        self.key = Key(bytes.fromhex(config["key"]))
        self.authority = (config["authority"], PORT)
        self.fail_mode = config.get("fail_mode", "closed")
        self.ttl_ms = config.get("ttl_ms", DEFAULT_TTL_MS)
        self.request_timeout = config.get("request_timeout_ms", 200) / 1000
        self.lines = {iface: [ipaddress.IPv4Network(n) for n in nets]
                      for iface, nets in config["lines"].items()}
        self.status_file = status_file
        self.journal = Journal(status_file.with_suffix(".journal"))  # fail-open decisions
        self.nft = Nftables()
        self._nft_now(ruleset(config["lines"]))
        subprocess.run(["iptables-restore", "-w", "--noflush"], input=QUEUE_RULES, text=True,
                       check=True)
        if subprocess.run(["iptables", "-w", "-C", "FORWARD", "-j", CHAIN],
                          capture_output=True).returncode:  # not hooked yet
            subprocess.run(["iptables", "-w", "-I", "FORWARD", "-j", CHAIN], check=True)
        self.queue = QueueSocket()
        self.queue.bind(QUEUE, copy_mode=COPY_PACKET, copy_range=64)
        self.control = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
        self.control.bind((config["address"], GATEWAY_PORT))
        self.control.setblocking(False)
        self.service = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
        self.service.setsockopt(socket.IPPROTO_IP, IP_PKTINFO, 1)
        self.service.bind(("0.0.0.0", SERVICE_PORT))
        self.service.setblocking(False)
        self.sender = Sender()
        self.authority_key = {0: self.key}.get  # only the authority (sender 0) speaks to us
        self.replays: dict[int, Replay] = {0: Replay()}
        self.counters: collections.Counter = collections.Counter()
        self.answer_times: collections.Counter = collections.Counter()  # bucket -> answers
        self.grants: dict[Flow, Grant] = {}   # the grants; the kernel's elements follow
        self.denied: dict[Flow, float] = {}
        self.element_changes: collections.deque[Callable[[], str]] = collections.deque()
        self.nft_lock = threading.RLock()      # one user of libnftables at a time, in order
        self.changes_queued = threading.Event()
        self.writer: threading.Thread | None = None  # write_elements, once run() starts
        self.pending: dict[Flow, Pending] = {}
        self.requests: dict[int, Flow] = {}
        self.host_requests: dict[int, HostRequest] = {}
        self.enforced = Enforced()
        self.sequencer = Sequencer()
        self.snapshot: Snapshot | None = None
        self.last_request_id = int.from_bytes(os.urandom(4), "big")  # unguessable start
        self.last_answer = 0.0
        self.reachable = False
        self.next_keepalive = 0.0
        self.next_renewal_check = 0.0
        self.looks: list[tuple[float, int, Flow, float]] = []  # (when, what, flow, expiry)
        self.expiries: list[tuple[float, Flow]] = []
        self.synced = False  # a snapshot applied since this process started or came back
        self.next_sync = 0.0

    # -- small helpers ---------------------------------------------------------------------
    def _nft(self, command: str) -> tuple[int, str]:
        """Run ``command`` now, after the element changes still queued (order is kept)."""
        with self.nft_lock:
            self.apply_elements()
            return self._nft_now(command)

    def _nft_now(self, command: str, quiet: bool = False) -> tuple[int, str]:
        """``quiet``: a refusal is the caller's to handle (a batch retried change by change)."""
        try:
            rc, out, err = self.nft.cmd(command)
        except Exception as e:  # noqa: BLE001 - libnftables reports errors by code, but
            rc, out, err = 1, "", repr(e)  # a change must never be lost to an exception
        if rc != 0 and not quiet:
            self.counters["nft error"] += 1
            print(f"nft: {err.strip()} in: {command[:200]}", file=sys.stderr, flush=True)
        return rc, out

    def _element_change(self, commands: Callable[[], str]) -> None:
        """Queue a grant's or denial's set change, written when it is applied (a timeout then
        counts from its deadline, not from the queueing). The writer takes what queued up
        while it was busy in transactions of up to ``ELEMENT_BATCH``: a fifth of the cost of
        one per flow, which is what a burst of first connections needs. ``_nft`` and
        ``renew`` write what is still queued themselves, before they go on."""
        self.element_changes.append(commands)
        self.changes_queued.set()

    def apply_elements(self) -> None:
        """The queued element changes, in order, in transactions of ``ELEMENT_BATCH`` flows;
        a transaction the kernel refuses is retried change by change (one bad change must
        not cost the others). Taken from the queue under the lock, so a command run by
        ``_nft`` comes after every change queued before it."""
        with self.nft_lock:
            while self.element_changes:
                batch = []
                while self.element_changes and len(batch) < ELEMENT_BATCH:
                    batch.append(self.element_changes.popleft()())
                if len(batch) == 1 or self._nft_now("\n".join(batch), quiet=True)[0] != 0:
                    for change in batch:
                        self._nft_now(change)

    def _start_writer(self) -> None:
        self.writer = threading.Thread(target=self.write_elements, name="elements", daemon=True)
        self.writer.start()
        self.changes_queued.set()

    def _keep_writer(self) -> None:
        """A writer that died is started again: elements would wait for the next policy
        change, and every packet of an admitted flow would come to the queue meanwhile."""
        if not self.writer.is_alive():
            self.counters["element writer restarted"] += 1
            self._start_writer()

    def write_elements(self) -> None:
        """The element writer's thread: applies changes as they are queued."""
        while True:
            self.changes_queued.wait()
            self.changes_queued.clear()
            try:
                self.apply_elements()
            except Exception as e:  # noqa: BLE001 - nothing may stop the writer
                self.counters["internal error"] += 1
                print(f"error in write_elements: {e!r}", file=sys.stderr, flush=True)
                time.sleep(0.01)
                self.changes_queued.set()  # what is left is tried again

    def _send(self, msg_type: Type, body: tuple) -> None:
        session, counter = self.sender.next(0)
        data = codec.encode(msg_type, self.id, session, counter, body, self.key)
        try:
            self.control.sendto(data, self.authority)
        except OSError:
            self.counters["send failed"] += 1

    def _next_request_id(self) -> int:
        self.last_request_id = (self.last_request_id + 1) & 0xFFFFFFFF
        return self.last_request_id

    def _iface_of(self, address: int) -> str | None:
        addr = ipaddress.IPv4Address(address)
        return next((i for i, nets in self.lines.items() if any(addr in n for n in nets)),
                    None)

    # -- the loop --------------------------------------------------------------------------
    def run(self) -> None:
        selector = selectors.DefaultSelector()
        selector.register(self.queue, selectors.EVENT_READ, self.on_packets)
        selector.register(self.control, selectors.EVENT_READ, self.on_control)
        selector.register(self.service, selectors.EVENT_READ, self.on_host)
        self._start_writer()
        print(f"gateway {self.id} ready, fail mode {self.fail_mode}", flush=True)
        next_status = 0.0
        while True:
            steps = [key.data for key, _ in selector.select(self._timeout())] + [self.tick]
            if time.monotonic() >= next_status:
                steps.append(self.write_status)
                next_status = time.monotonic() + 1.0
            for step in steps:
                try:
                    step()
                except Exception as e:  # noqa: BLE001 - nothing may stop the gateway
                    self.counters["internal error"] += 1
                    print(f"error in {step.__name__}: {e!r}", file=sys.stderr, flush=True)

    def _timeout(self) -> float:
        now = time.monotonic()
        deadlines = [self.next_keepalive, self.next_renewal_check]
        if not self.synced:
            deadlines.append(self.next_sync)
        deadlines += [p.sent + self.request_timeout for p in self.pending.values()]
        return max(0.0, min(deadlines) - now)

    def tick(self) -> None:
        now = time.monotonic()
        self._keep_writer()
        if not self.synced and now >= self.next_sync:
            self._send(Type.SYNC, (self.sequencer.applied,))
            self.next_sync = now + SYNC_S
        if now >= self.next_keepalive:
            self._send(Type.KEEPALIVE, (int(now) & 0xFFFFFFFF,))
            self.next_keepalive = now + KEEPALIVE_S
        was = self.reachable
        self.reachable = now - self.last_answer < UNREACHABLE_S
        if was and not self.reachable:
            self.counters["authority lost"] += 1
        for flow, pending in list(self.pending.items()):
            if now - pending.sent < self.request_timeout:
                continue
            if pending.attempts < 2 and self.reachable:
                pending.attempts += 1
                pending.sent = now
                self._ask(flow, pending)
            else:
                del self.pending[flow]
                self.requests.pop(pending.request_id, None)
                self.fail(flow, pending)
        for rid, req in list(self.host_requests.items()):
            if now - req.sent > HOST_REQUEST_S:
                del self.host_requests[rid]
                self._answer_host(req, {"ok": False, "reason": "no answer from the authority"})
        if self.sequencer.wants_snapshot(now):
            self.counters["gap: snapshot asked"] += 1
            self._send(Type.SYNC, (self.sequencer.applied,))
            self.sequencer.gap_since = now  # ask again after another patience
        if now >= self.next_renewal_check:
            self.renew(now)
            self.next_renewal_check = max(now + look_batch(self.ttl_ms), self._next_due())

    def write_status(self) -> None:
        bound = self.enforced.bound  # by name while a person could read it, then counted
        status = {"reachable": self.reachable, "fail_mode": self.fail_mode,
                  "counters": dict(self.counters), "grants": len(self.grants),
                  "bound": {ip(a): i for a, i in bound.items()} if len(bound) <= 64 else
                  f"{len(bound)} addresses",
                  "pending": len(self.pending), "applied": self.sequencer.applied,
                  "answer_us_buckets": dict(self.answer_times),
                  "session": self.sender.session}
        tmp = self.status_file.with_suffix(".tmp")
        tmp.write_text(json.dumps(status))
        tmp.replace(self.status_file)

    # -- packets without a grant -----------------------------------------------------------
    def on_packets(self) -> None:
        now = time.monotonic()
        for packet in self.queue.receive():
            fields = parse_ip(packet.payload)
            named = None if fields is None else canonical(fields, packet.mark)
            if named is None:
                self.counters["not a flow"] += 1
                self.queue.verdict(QUEUE, packet.id, NF_DROP)
                continue
            flow, inbound = named
            grant = self.grants.get(flow)
            if grant is not None and grant.expires > now:  # its element is on its way
                self.queue.verdict(QUEUE, packet.id)
            elif self.denied.get(flow, 0) > now:
                self.queue.verdict(QUEUE, packet.id, NF_DROP)
            elif flow in self.pending:
                self.pending[flow].packets.append(packet.id)
            else:
                pending = Pending(0, inbound, False, [packet.id], now)
                if self.reachable:
                    self._request(flow, pending)
                else:
                    self.fail(flow, pending)

    def _request(self, flow: Flow, pending: Pending) -> None:
        pending.request_id = self._next_request_id()
        pending.asked = time.monotonic()
        self.pending[flow] = pending
        self.requests[pending.request_id] = flow
        self.counters["renewals asked" if pending.renewal else "asked"] += 1
        self._ask(flow, pending)

    def _ask(self, flow: Flow, pending: Pending) -> None:
        src, dst, proto, dport = flow
        flags = (FlowFlag.INBOUND if pending.inbound else 0) | (
            FlowFlag.RENEWAL if pending.renewal else 0)
        self._send(Type.FLOW_REQUEST, (pending.request_id, src, dst, proto, int(flags), dport))

    def fail(self, flow: Flow, pending: Pending) -> None:
        """The authority did not answer: the fail mode decides (and, open, logs it here)."""
        if self.fail_mode == "open":
            self.counters["failed open"] += 1
            local = flow[1] if pending.inbound else flow[0]
            identity_ = self.enforced.bound.get(local, 0)
            self.journal.append([AdmissionRow(time.time(), self.id, identity_ or None, *flow[:3],
                                              flow[3], pending.inbound, pending.renewal, True,
                                              Reason.OK, by_gateway=True)])
            self.grant(flow, pending, self.ttl_ms)
        else:
            self.counters["failed closed"] += 1
            if pending.renewal:  # its grant runs out; packets that found it gone wait here
                for packet_id in pending.packets:
                    self.queue.verdict(QUEUE, packet_id, NF_DROP)
            else:
                self.deny(flow, pending)

    def grant(self, flow: Flow, pending: Pending, ttl_ms: int) -> None:
        expires = time.monotonic() + ttl_ms / 1000
        self.grants[flow] = Grant(expires)
        margin = renewal_margin(ttl_ms)
        heapq.heappush(self.looks, (expires - 2 * margin, SAMPLE, flow, expires))
        heapq.heappush(self.looks, (expires - margin, DECIDE, flow, expires))
        heapq.heappush(self.expiries, (expires, flow))
        self.next_renewal_check = min(self.next_renewal_check, expires - 2 * margin)
        for packet_id in pending.packets:  # verdicts first: the element is not on the path
            self.queue.verdict(QUEUE, packet_id)
        entry = f"element inet {TABLE} {element(flow, 'grants')}"
        self._element_change(lambda: f"add {entry} }}\ndelete {entry} }}\nadd {entry} timeout "
                             f"{_left_ms(expires)}ms }}")

    def deny(self, flow: Flow, pending: Pending) -> None:
        self.denied[flow] = time.monotonic() + DENY_CACHE_MS / 1000
        for packet_id in pending.packets:
            self.queue.verdict(QUEUE, packet_id, NF_DROP)
        until = self.denied[flow]
        self._element_change(lambda: f"add element inet {TABLE} {element(flow, 'denied')} "
                             f"timeout {_left_ms(until)}ms }}")
        # a renewal refused: cut it now (even if its grant has run out here: the kernel's
        # element may have been applied later than the grant was made)
        if self.grants.pop(flow, None) is not None or pending.renewal:
            self._withdraw([flow])

    # -- grants running out ----------------------------------------------------------------
    def renew(self, now: float) -> None:
        """Flows in use whose grant is about to run out are asked about again. Each grant is
        looked at twice, from a schedule (work in proportion to the grants due, not to all
        held): two margins before expiry its element's packet count is noted, one margin
        before it is asked about again if that count has grown since. A flow that carried
        its few packets at the start (a connection attempt, a lookup) is left to expire.
        Looks due before the next batch are taken now (early by less than a quarter margin)."""
        while self.expiries and self.expiries[0][0] <= now:
            expires, flow = heapq.heappop(self.expiries)
            if (grant := self.grants.get(flow)) is not None and grant.expires == expires:
                del self.grants[flow]
        sample, decide = [], []
        horizon = now + look_batch(self.ttl_ms)
        while self.looks and self.looks[0][0] <= horizon:
            _, what, flow, expires = heapq.heappop(self.looks)
            grant = self.grants.get(flow)
            if grant is None or grant.expires != expires:
                continue  # withdrawn or granted anew since: a look of an older grant
            if flow not in self.pending:
                (sample if what == SAMPLE else decide).append(flow)
        if not sample and not decide:
            return
        with self.nft_lock:
            self.apply_elements()  # counters of elements that are there
            used = packet_counts(self.nft, sample + decide)
        for flow in sample:
            self.grants[flow].seen = used.get(flow, 0)
        for flow in decide:
            grant = self.grants[flow]
            if used.get(flow, 0) > grant.seen:
                pending = Pending(0, self._inbound(flow), True, [], now)
                if self.reachable:
                    self._request(flow, pending)
                else:
                    self.fail(flow, pending)

    def _next_due(self) -> float:
        """When the schedule next has a look or an expiry due (never, without grants): a
        gateway at rest wakes for its keepalive, not four times a second for nothing."""
        return min(self.looks[0][0] if self.looks else math.inf,
                   self.expiries[0][0] if self.expiries else math.inf)

    def _inbound(self, flow: Flow) -> bool:
        return flow[0] not in self.enforced.bound

    def _withdraw(self, flows: list[Flow]) -> None:
        """Remove these flows' grant elements and conntrack entries: both directions stop."""
        if not flows:
            return
        self._nft("\n".join(f"add element inet {TABLE} {element(f, 'grants')} }}\n"
                            f"delete element inet {TABLE} {element(f, 'grants')} }}"
                            for f in flows))
        commands = [["conntrack", "-D", "-s", ip(src), "-d", ip(dst), "-p",
                     PROTOCOLS.get(proto, str(proto))] + (["--dport", str(port)]
                                                          if proto in PORTED else [])
                    for src, dst, proto, port in flows]
        # not on the hot path: without the grants, the kernel drops the flows already
        threading.Thread(target=_run_all, args=(commands,), daemon=True).start()

    def _forget(self, affected) -> None:
        """Withdraw the grants of the flows ``affected`` names, and drop the questions still
        open about them: an answer the authority gave before this change admits nothing."""
        gone = [f for f in self.grants if affected(f)]
        for flow in gone:
            del self.grants[flow]
        self._withdraw(gone)
        for flow in [f for f in self.pending if affected(f)]:
            pending = self.pending.pop(flow)
            self.requests.pop(pending.request_id, None)
            for packet_id in pending.packets:
                self.queue.verdict(QUEUE, packet_id, NF_DROP)
            self.counters["question void"] += 1

    # -- the authority speaks --------------------------------------------------------------
    def on_control(self) -> None:
        while True:
            try:
                data, _ = self.control.recvfrom(4096)
            except BlockingIOError:
                return
            try:
                msg = codec.open_message(data, self.authority_key, self.replays)
            except Rejected as e:
                self.counters[f"rejected {e.args[0]}"] += 1
                continue
            self.last_answer = time.monotonic()
            if not self.reachable:  # we may have missed changes: ask for a snapshot
                self.reachable = True
                self.synced = False
                self.next_sync = 0.0
            self.dispatch(msg)

    def dispatch(self, msg: codec.Message) -> None:
        if msg.type in (Type.GRANT, Type.DENY):
            self.on_answer(msg)
        elif msg.type == Type.POLICY:
            self.on_policy(*msg.body)
        elif msg.type == Type.CHALLENGE:
            request_id, challenge = msg.body
            req = self.host_requests.pop(request_id, None)
            if req is not None:
                self._answer_host(req, {"ok": True, "challenge": challenge.hex(),
                                        "gateway": self.id, "address": ip(req.address)})
        elif msg.type == Type.ENROL_ACK:
            request_id, reason, identity_ = msg.body
            req = self.host_requests.get(request_id)
            if req is None:
                return
            if reason == Reason.OK:
                req.identity = identity_
                self._answer_enrolled()
            else:
                del self.host_requests[request_id]
                self._answer_host(req, {"ok": False, "reason": Reason(reason).text,
                                        "identity": identity_ or None})

    def on_answer(self, msg: codec.Message) -> None:
        (request_id, session, src, dst, proto, _, dport, reason, ttl_ms,
         identity_) = msg.body
        flow = self.requests.get(request_id)
        if session != self.sender.session or flow != (src, dst, proto, dport):
            self.counters["answer to something else"] += 1
            return
        del self.requests[request_id]
        pending = self.pending.pop(flow)
        self.answer_times[answer_bucket(time.monotonic() - pending.asked)] += 1
        if msg.type == Type.GRANT:
            self.counters["granted"] += 1
            self.grant(flow, pending, ttl_ms)
        else:
            self.counters["denied"] += 1
            self.deny(flow, pending)

    def on_policy(self, seq: int, action: int, flags: int, part: int, parts: int, _count: int,
                  items: tuple) -> None:
        now = time.monotonic()
        change = (Action(action), items)
        if flags & PolicyFlag.SNAPSHOT:
            if seq >= self.sequencer.applied:
                if self.snapshot is None or self.snapshot.seq != seq:
                    self.snapshot = Snapshot(seq, parts)
                if self.snapshot.add(part, change):
                    for c in self.enforced.changes_to(self.snapshot.state()):
                        self.apply(*c)
                    self.counters["snapshots applied"] += 1
                    self.snapshot = None
                    self.synced = True
                    for c in self.sequencer.snapshot_applied(seq, now):
                        self.apply(*c)
        else:
            for c in self.sequencer.offer(seq, change, now):
                self.apply(*c)
        self._send(Type.POLICY_ACK, (self.sequencer.applied,))

    def apply(self, action: Action, items: tuple) -> None:
        """Put one change in force, then forget the grants it made void."""
        self.counters[f"change {action.name.lower()}"] += 1
        self.enforced.apply(action, items)
        nets = [ipaddress.IPv4Network(f"{ip(a)}/{n}", strict=False) for a, n, _ in items]
        addresses = ", ".join(ip(a) for a, _, _ in items)
        if action == Action.BIND:
            elements = [f'"{self._iface_of(a)}" . {ip(a)}' for a, _, _ in items
                        if self._iface_of(a)]
            if elements:
                self._nft(f"add element inet {TABLE} bound {{ {', '.join(elements)} }}")
            self._answer_enrolled()
        elif action == Action.UNBIND:  # the address's cut goes with its binding
            for a, _, _ in items:
                iface = self._iface_of(a)
                if iface:
                    self._nft(f'add element inet {TABLE} bound {{ "{iface}" . {ip(a)} }}\n'
                              f'delete element inet {TABLE} bound {{ "{iface}" . {ip(a)} }}\n'
                              f"add element inet {TABLE} cut {{ {ip(a)} }}\n"
                              f"delete element inet {TABLE} cut {{ {ip(a)} }}")
            self._forget(lambda f: f[0] in {a for a, _, _ in items} or
                         f[1] in {a for a, _, _ in items})
        elif action == Action.CUT:
            self._nft(f"add element inet {TABLE} cut {{ {addresses} }}")
            self._forget(lambda f: f[0] in self.enforced.cut or f[1] in self.enforced.cut)
        elif action in (Action.BLOCK, Action.UNBLOCK):
            self._nft(_prefix_set("blocked", self.enforced.blocked))
            if action == Action.BLOCK:
                self._forget(lambda f: any(ipaddress.IPv4Address(e) in n for n in nets
                                           for e in (f[0], f[1])))
        elif action == Action.UNCUT:
            self._nft(f"add element inet {TABLE} cut {{ {addresses} }}\n"
                      f"delete element inet {TABLE} cut {{ {addresses} }}")
        elif action == Action.SHUTDOWN:
            self._nft(_prefix_set("essential", self.enforced.shutdown) + "\n" +
                      shutdown_rules(True))
            self._forget(lambda f: not any(ipaddress.IPv4Address(e) in n for n in nets
                                           for e in (f[0], f[1])))
        elif action == Action.LIFT:
            self._nft(shutdown_rules(False) + f"\nflush set inet {TABLE} essential")
        elif action == Action.FLUSH:
            self._forget(lambda f: True)
        self._nft(f"flush set inet {TABLE} denied\nflush set inet {TABLE} denied_l4")
        self.denied.clear()  # old denials may no longer hold

    # -- the hosts' registration service ---------------------------------------------------
    def on_host(self) -> None:
        while True:
            try:
                data, ancdata, _, host = self.service.recvmsg(2048, socket.CMSG_SPACE(12))
            except BlockingIOError:
                return
            iface = next((socket.if_indextoname(IN_PKTINFO.unpack(d)[0]) for level, kind, d
                          in ancdata if level == socket.IPPROTO_IP and
                          kind == IP_PKTINFO), None)
            address = int(ipaddress.IPv4Address(host[0]))
            if iface not in self.lines or self._iface_of(address) != iface:
                self.counters["registration from elsewhere"] += 1
                continue
            try:
                request = json.loads(data)
                op, nid = request["op"], str(request["national_id"])
                msg_type, body = self._host_message(op, address, nid, request)
            except (ValueError, KeyError, TypeError, AttributeError):
                self.counters["bad host request"] += 1
                continue
            rid = self._next_request_id()
            self.host_requests[rid] = HostRequest(op, host, iface, address, time.monotonic())
            self._send(msg_type, (rid, *body))

    @staticmethod
    def _host_message(op: str, address: int, nid: str, request: dict) -> tuple[Type, tuple]:
        if op == "challenge":
            return Type.CHALLENGE_REQUEST, (address, identity.national_id_field(nid))
        enrol = {"register": Enrol.REGISTER, "bind": Enrol.BIND}[op]
        challenge, proof = bytes.fromhex(request["challenge"]), bytes.fromhex(request["proof"])
        if len(challenge) != 16 or len(proof) != 32:
            raise ValueError("malformed proof")
        return Type.ENROL, (int(enrol), address, identity.national_id_field(nid), challenge,
                            proof)

    def _answer_enrolled(self) -> None:
        """Enrolled hosts hear so once their binding is in force here."""
        for rid, req in list(self.host_requests.items()):
            if req.identity and self.enforced.bound.get(req.address) == req.identity:
                del self.host_requests[rid]
                self._answer_host(req, {"ok": True, "identity": req.identity})

    def _answer_host(self, req: HostRequest, answer: dict) -> None:
        with contextlib.suppress(OSError):
            self.service.sendto(json.dumps(answer).encode(), req.host)


def _prefix_set(name: str, prefixes) -> str:
    """Commands that make an interval set hold exactly ``prefixes`` (address, length), in one
    transaction: overlapping prefixes are merged first, which nft requires, and rebuilding
    from the whole state means removing one never removes a prefix merged with it."""
    nets = list(ipaddress.collapse_addresses(
        ipaddress.IPv4Network((a, n), strict=False) for a, n in prefixes))
    add = f"\nadd element inet {TABLE} {name} {{ {', '.join(map(str, nets))} }}" if nets else ""
    return f"flush set inet {TABLE} {name}{add}"


def _left_ms(deadline: float) -> int:
    """Milliseconds until a monotonic deadline, at least 1 (nft's smallest timeout)."""
    return max(1, round((deadline - time.monotonic()) * 1000))


def _run_all(commands: list[list[str]]) -> None:
    for argv in commands:
        subprocess.run(argv, capture_output=True)


def main() -> None:
    ctypes.CDLL(None).prctl(PR_SET_DUMPABLE, 0, 0, 0, 0)  # no peeking through /proc
    config_path = Path(sys.argv[1])
    config = json.loads(config_path.read_text())
    Gateway(config, config_path.with_suffix(".status.json")).run()


if __name__ == "__main__":
    main()
