"""The gateway on an access router: nothing reaches or leaves its hosts unless the authority
said so, in either direction, whoever started the flow.

The kernel enforces (``ruleset``); this process decides what the kernel cannot:

* **First packets** (``gateway_admission``). A packet without a live grant for its flow
  arrives on NFQUEUE, marked with its direction. Its flow is named canonically (initiator,
  responder, protocol and both ports, an echo by its identifier), so a reply finds the grant
  of the flow it belongs to; within its host's budget, the gateway asks the authority
  (``inbound`` when the remote end started it) and gives the verdict. A grant becomes a set
  element (until its renewal is due), so the rest of the flow never leaves the kernel.
  Elements are written on a thread of their own (``gateway_nft``), so the loop is never held
  in libnftables when a flow's first reply comes back, within a millisecond if the other end
  is near: the reply is let through from the gateway's own record of the grant.
* **Grants run out.** The kernel holds a grant's element one margin short of the grant
  (``gateway_flows.renewal_margin``); a packet of the flow after that comes to the queue:
  the flow is in use. The gateway lets it through (the grant lives), holds the element until
  the grant runs out, and asks about the flow again (a renewal), in the background; on a
  grant its element is replaced with a fresh timeout in one transaction. Grants nobody uses
  cost nothing until they run out. A denied renewal, a flush or a revocation removes the
  element: both directions stop at once (the flow's conntrack entry stays, so its next
  packet is still known as its initiator's). With the authority gone, renewals go unanswered
  and every flow stops within one TTL (fail-closed); fail-open gateways grant new flows and
  renewals themselves, and write each such decision to a journal of their own, since the
  authority never sees them.
* **Policy in order** (``gateway_policy``). POLICY changes are numbered;
  ``policy.Sequencer`` applies them in order and asks for a snapshot when a gap does not
  close; a snapshot is applied as a difference.
* **Registration service** (``gateway_hosts``; UDP 7401, host lines only): relays a host's
  request for a challenge and its proof (``identity``); answers once the host's binding is
  in force.

Every answer from the authority must carry this process's session and name the flow it
answers: a replayed or stale GRANT admits nothing. The process is not dumpable.

    python -m protocols.registered.gateway CONFIG.json
"""

from __future__ import annotations

import collections
import errno
import heapq
import ipaddress
import json
import os
import selectors
import socket
import subprocess
import sys
import threading
import time
from collections.abc import Callable
from pathlib import Path

from protocols.nfqueue import COPY_PACKET, NF_DROP, QueueSocket

from . import codec
from .admission import AdmissionRow
from .budget import (
    QUESTION_BURST,
    QUESTION_RATE,
    REGISTRATION_BURST,
    REGISTRATION_RATE,
    Budget,
)
from .codec import Key, Rejected, Replay, Sender
from .datagrams import Outbox
from .gateway_admission import Admission
from .gateway_flows import (
    AnswerTimer,
    Flow,
    Grant,
    Pending,
    answer_bucket,
)
from .gateway_hosts import HOST_REQUEST_S, IP_PKTINFO, HostRequest, RegistrationService
from .gateway_nft import ElementWriter
from .gateway_policy import PolicySync
from .journal import Journal
from .messages import (
    DEFAULT_TTL_MS,
    GATEWAY_PORT,
    PORT,
    SERVICE_PORT,
    Reason,
    Type,
    dotted,
)
from .policy import Enforced, Sequencer, Snapshot
from .process import keep_private
from .ruleset import CHAIN, QUEUE, QUEUE_RULES, ruleset
from .setelements import Change

KEEPALIVE_S = 1.0
UNREACHABLE_S = 3.0
SYNC_S = 1.0  # a gateway asks for its snapshot this often until it has one
CONTROL_BATCH = 64  # datagrams from the authority a turn, and as many more as open
CONTROL_OPEN_MAX = 1024  # questions can have answers (two each), up to this
LATE_ANSWER_S = 10.0  # how long a fail-open decision still heeds the authority's answer


class Gateway(Admission, ElementWriter, PolicySync, RegistrationService):
    def __init__(self, config: dict, status_file: Path):
        from nftables import Nftables  # Debian's python3-nftables (libnftables)

        self.id = config["id"]
        self.key = Key(bytes.fromhex(config["key"]))
        self.authority = (config["authority"], PORT)
        self.fail_mode = config.get("fail_mode", "closed")
        self.ttl_ms = config.get("ttl_ms", DEFAULT_TTL_MS)
        # a question is asked at most twice (``tick``), each wait within UNREACHABLE_S / 3
        self.answer_timer = AnswerTimer(config.get("request_timeout_ms", 200) / 1000,
                                        UNREACHABLE_S / 3)
        self.lines = {iface: [ipaddress.IPv4Network(n) for n in nets]
                      for iface, nets in config["lines"].items()}
        self.devices = [ipaddress.IPv4Network(n) for n in config.get("devices", [])]
        self.status_file = status_file
        # what it decides alone (fail-open, refusals over budget), as durable as asked
        self.journal = Journal(status_file.with_suffix(".journal"),
                               config.get("durability", "process"))
        self.budget = Budget(*config.get("question_budget", (QUESTION_RATE, QUESTION_BURST)))
        self.registrations = Budget(REGISTRATION_RATE, REGISTRATION_BURST)  # per line
        self.nft = Nftables()
        control = list(map(str, ipaddress.collapse_addresses(
            ipaddress.IPv4Network(n) for n in config.get("infrastructure", []))))
        if self._nft_now(ruleset(config["lines"], config["authority"], control))[0] != 0:
            sys.exit("gateway: the kernel refused its table; without it nothing is enforced")
        # veth hands packets on with their checksums still to be computed, which conntrack
        # verifies for UDP-Lite and then calls every such packet invalid (the ruleset drops
        # invalid packets): checksums are the ends' business, not the gateway's. The setting
        # exists in the namespace once conntrack is (the table just loaded needs it: with
        # conntrack a module, as in Debian's kernel, not before)
        Path("/proc/sys/net/netfilter/nf_conntrack_checksum").write_text("0")
        subprocess.run(["iptables-restore", "-w", "--noflush"], input=QUEUE_RULES, text=True,
                       check=True)
        if subprocess.run(["iptables", "-w", "-C", "FORWARD", "-j", CHAIN],
                          capture_output=True).returncode:  # not hooked yet
            subprocess.run(["iptables", "-w", "-I", "FORWARD", "-j", CHAIN], check=True)
        self._open_sets()
        self.queue = QueueSocket()
        self.queue.bind(QUEUE, copy_mode=COPY_PACKET, copy_range=64)
        self.control = codec.control_socket(config["address"], GATEWAY_PORT)
        self.service = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
        self.service.setsockopt(socket.IPPROTO_IP, IP_PKTINFO, 1)
        self.service.bind(("0.0.0.0", SERVICE_PORT))
        self.service.setblocking(False)
        self.sender = Sender()
        self.outbox = Outbox(self.control, self.authority)  # this turn's questions
        self.authority_key = {0: self.key}.get  # only the authority (sender 0) speaks to us
        self.replays: dict[int, Replay] = {0: Replay()}
        self.counters: collections.Counter = collections.Counter()
        self.answer_times: collections.Counter = collections.Counter()  # bucket -> answers
        self.grants: dict[Flow, Grant] = {}   # the grants; the kernel's elements follow
        self.denied: dict[Flow, float] = {}
        self.denials: list[tuple[float, Flow]] = []  # (until, flow): the cache's expiries
        self.element_changes: collections.deque[Callable[[], list[Change]]] = collections.deque()
        self.nft_lock = threading.RLock()  # one writer to the kernel's table at a time, in order
        self.changes_queued = threading.Event()
        self.writer: threading.Thread | None = None  # write_elements, once run() starts
        # open questions, the last asked last (all wait alike): a turn looks at the oldest
        self.pending: collections.OrderedDict[Flow, Pending] = collections.OrderedDict()
        self.requests: dict[int, Flow] = {}
        self.decided_alone: dict[int, tuple[Flow, float]] = {}  # request id -> flow, when
        self.alone: list[tuple[AdmissionRow, Flow | None, Pending | None]] = []  # this turn
        self.host_requests: dict[int, HostRequest] = {}
        self.enforced = Enforced()
        self.sequencer = Sequencer()
        self.snapshot: Snapshot | None = None
        self.last_request_id = int.from_bytes(os.urandom(4), "big")  # unguessable start
        self.last_answer = 0.0
        self.reachable = False
        self.next_keepalive = 0.0
        self.expiries: list[tuple[float, Flow]] = []
        self.synced = False  # a snapshot applied since this process started or came back
        self.next_sync = 0.0

    def _send(self, msg_type: Type, body: tuple, with_turn: bool = False) -> None:
        """``with_turn``: sent with the others of this turn of the loop (``send_turn``); else
        now, after them (counters in order on the wire: the authority's replay window)."""
        session, counter = self.sender.next(0)
        self.outbox.add(codec.encode(msg_type, self.id, session, counter, body, self.key))
        if not with_turn:
            self.send_questions()

    def _send_failed(self, code: int) -> None:
        """By cause: a full send buffer (EAGAIN) is not a lost route."""
        self.counters[f"send failed ({errno.errorcode.get(code, code)})"] += 1

    def send_questions(self) -> None:
        for code in self.outbox.flush():
            self._send_failed(code)

    def send_turn(self) -> None:
        """What this turn of the loop decided, sent: its questions, then its verdicts."""
        self.send_questions()
        self.queue.flush()

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
            ready = [key.data for key, _ in selector.select(self._timeout())]
            steps = [self.on_control, *(s for s in ready if s != self.on_control), self.tick,
                     self.send_turn, self.settle_alone, self.send_turn]  # verdicts before a sync
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
        deadlines = [self.next_keepalive]
        if self.queue.verdicts:  # their send failed (a failed question's is the timer's)
            deadlines.append(now)
        if not self.synced:
            deadlines.append(self.next_sync)
        if self.pending:
            deadlines.append(next(iter(self.pending.values())).sent + self.answer_timer.timeout())
        return max(0.0, min(deadlines) - now)

    def tick(self) -> None:
        now = time.monotonic()
        self._keep_writer()
        if not self.synced and now >= self.next_sync:
            self._send(Type.SYNC, (self.sequencer.applied,))
            self.next_sync = now + SYNC_S
        if now >= self.next_keepalive:
            self._send(Type.KEEPALIVE, (self.sequencer.applied,))  # what is in force here
            self.next_keepalive = now + KEEPALIVE_S
        was = self.reachable
        self.reachable = now - self.last_answer < UNREACHABLE_S
        if was and not self.reachable:
            self.counters["authority lost"] += 1
        wait, asked_again = self.answer_timer.timeout(), False
        while self.pending:
            flow, pending = next(iter(self.pending.items()))
            if now - pending.sent < wait:
                break
            if pending.attempts < 2 and self.reachable:
                asked_again = True
                pending.attempts += 1
                pending.sent = now
                self.pending.move_to_end(flow)
                self._ask(flow, pending)
            else:
                del self.pending[flow]
                self.fail(flow, pending)
        if asked_again:
            self.answer_timer.asked_again()
        while self.denials and self.denials[0][0] <= now:  # a denial is cached a second
            until, flow = heapq.heappop(self.denials)
            if self.denied.get(flow) == until:
                del self.denied[flow]
        for rid, (_, when) in list(self.decided_alone.items()):
            if now - when > LATE_ANSWER_S:
                del self.decided_alone[rid]
        for rid, req in list(self.host_requests.items()):
            if now - req.sent > HOST_REQUEST_S:
                del self.host_requests[rid]
                self._answer_host(req, {"ok": False, "reason": "no answer from the authority"})
        if self.sequencer.wants_snapshot(now):
            self.counters["gap: snapshot asked"] += 1
            self._send(Type.SYNC, (self.sequencer.applied,))
            self.sequencer.gap_since = now  # ask again after another patience
        self.expire(now)

    def write_status(self) -> None:
        bound = self.enforced.bound  # by name while a person could read it, then counted
        status = {"reachable": self.reachable, "fail_mode": self.fail_mode,
                  "counters": dict(self.counters), "grants": len(self.grants),
                  "bound": {dotted(a): i for a, i in bound.items()} if len(bound) <= 64 else
                  f"{len(bound)} addresses",
                  "pending": len(self.pending), "applied": self.sequencer.applied,
                  "answer_us_buckets": dict(self.answer_times),
                  "asks_again_after_ms": round(self.answer_timer.timeout() * 1000, 1),
                  "session": self.sender.session}
        tmp = self.status_file.with_suffix(".tmp")
        tmp.write_text(json.dumps(status))
        tmp.replace(self.status_file)

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
        """Every answer waiting, first in each turn of the loop: an answer left in the socket
        while new packets are asked about waits behind their questions, its own is asked
        again, and a burst of first contacts collapses into timeouts. A flood at the control
        port (only the authority's address passes the ruleset) is bounded all the same."""
        for _ in range(CONTROL_BATCH + min(3 * len(self.pending), CONTROL_OPEN_MAX)):
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
                                        "gateway": self.id, "address": dotted(req.address)})
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
        (request_id, session, src, dst, proto, _, sport, dport, reason, ttl_ms,
         identity_) = msg.body
        flow = self.requests.get(request_id) or self.decided_alone.get(request_id, (None,))[0]
        if session != self.sender.session or flow != (src, dst, proto, sport, dport):
            self.counters["answer to something else"] += 1
            return
        if request_id in self.decided_alone:  # a late answer to what fail-open let through
            del self.decided_alone[request_id]
            if msg.type == Type.DENY:
                self.counters["late deny"] += 1
                self.deny(flow, Pending(request_id, self._inbound(flow), True, [],
                                        time.monotonic()))
            return
        del self.requests[request_id]
        pending = self.pending.pop(flow)
        waited = time.monotonic() - pending.asked
        self.answer_times[answer_bucket(waited)] += 1
        self.answer_timer.answered(waited, pending.attempts - 1)  # asked again, how often
        if msg.type == Type.GRANT:
            self.counters["granted"] += 1
            if not self.enforced.ttl_ms:  # once the policy says a TTL, only the policy does
                self.ttl_ms = ttl_ms      # (an answer given before a change may come after)
            self.grant(flow, pending, ttl_ms)
        else:
            self.counters["denied"] += 1
            self.deny(flow, pending)


def main() -> None:
    keep_private()
    config_path = Path(sys.argv[1])
    config = json.loads(config_path.read_text())
    Gateway(config, config_path.with_suffix(".status.json")).run()


if __name__ == "__main__":
    main()
