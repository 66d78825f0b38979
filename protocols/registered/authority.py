"""The authority: proves who people are, decides every flow, keeps every gateway's policy.

One process at the authority site. Its loop reads up to ``batch`` datagrams, decides each
(``admission``), appends the batch's admission rows to the journal with one write() (and, with
``power`` durability, an fdatasync) and only then sends the answers: every decision a gateway
acts on is already in the log. A process of its own copies the journal into SQLite
(``importer``).

* Identity: a gateway asks for a challenge on behalf of a host (one outstanding per address: a
  newer one replaces it), and sends the host's proof (``identity``); a good proof for an
  unregistered person registers them, for a registered one binds their identity to the address
  it came from. A revoked identity stays revoked.
* Flows: GRANT and DENY name the flow they answer and the gateway session that asked, so an
  answer replayed to a restarted gateway, or to another request, admits nothing.
* Policy: after every change (an operator's command, a registration) each gateway's share is
  recomputed and the difference sent as numbered changes (``policy``), recorded in the registry
  first, retransmitted until acknowledged; a gateway that (re)appears or reports a gap gets a
  snapshot.
* The operator speaks JSON lines over a Unix socket (``operator`` is the client), served by
  threads of its own: a client that never finishes its line stalls only itself. Requests are
  handed to the loop, which carries each out between two batches (``ops``).

Malformed, forged, stale and replayed datagrams are dropped and counted; nothing a datagram
contains can stop the loop. The process cannot be inspected by others (not dumpable).

    python -m protocols.registered.authority CONFIG.json
"""

from __future__ import annotations

import collections
import hmac
import json
import os
import queue
import secrets
import selectors
import socket
import struct
import sys
import threading
import time
from dataclasses import dataclass
from pathlib import Path

from . import codec, identity, importer
from .admission import AdmissionRow, Decision, FlowRequest, Policy, admit, covered
from .authority_compiled import DECISIONS, CompiledDecisions
from .authority_operator import Job, OperatorDesk
from .authority_push import RETRANSMIT_S, Outgoing, PolicyPush
from .codec import Key, Rejected, Replay, Sender
from .datagrams import Outbox
from .journal import Journal
from .messages import (
    MAGIC,
    PORT,
    VERSION,
    Enrol,
    FlowFlag,
    Reason,
    Type,
    dotted,
)
from .ops import prefix
from .policy import Enforced
from .process import keep_private
from .registry import Gateway, Registry

CHALLENGE_S = 10.0     # a challenge must be answered within this
# a FLOW_REQUEST, header and body in one unpack: the hot path's only parse
FLOW = struct.Struct(codec.HEADER.format + codec.BODIES[Type.FLOW_REQUEST].format[1:])
FLOW_SIZE = FLOW.size + codec.SIGNATURE



@dataclass
class Pending:
    """A challenge given out: who may answer it, until when."""

    gateway: int
    national_id: str
    address: int
    expires: float



class Authority(PolicyPush, OperatorDesk, CompiledDecisions):
    def __init__(self, db: Path, address: str, admin: Path, batch: int = 256,
                 port: int = PORT, durability: str = "process",
                 infrastructure: list[tuple[int, int]] | None = None,
                 national: list[tuple[int, int]] | None = None,
                 devices: list[tuple[int, int]] | None = None, decisions: str = "python"):
        """``infrastructure``: (address, length) of the control plane, no host's destination;
        ``national``: the network whose sources its routers validate (the log says whether a
        flow's other end is in it); ``devices``: farms' device blocks, whose devices prove
        every flow they start (``identity.device_token``); ``decisions``: ``compiled`` decides
        flows in C (``authority_compiled``)."""
        if decisions not in DECISIONS:
            raise ValueError(f"decisions must be one of {', '.join(DECISIONS)}")
        self.infrastructure = infrastructure or []
        self.national = national or []
        self.devices = devices or []
        self.registry = Registry(db, durability)
        self.journal = Journal(db.with_suffix(".journal"), durability)
        self.registry.import_journal(self.journal)  # whatever a crash left unimported
        self.registry.checkpoint_in_background()
        self.gateways: dict[int, Gateway] = self.registry.gateways()
        self.keys = {g.id: Key(g.key) for g in self.gateways.values()}
        # where each gateway speaks from: a datagram claiming a gateway from anywhere else
        # (abroad, a server) costs nothing, not even an HMAC
        self.sources = {g.id: dotted(g.address) for g in self.gateways.values()}
        self.policy = self._load_policy()
        self.device_secrets = {i: secret for i, address, secret in
                               self.registry.secrets_of_bound()
                               if covered(address, self.devices)}
        self.replays: dict[int, Replay] = {}
        self.sender = Sender()
        self.counters: collections.Counter = collections.Counter()
        self.batch = batch
        self.seq = {g: self.registry.last_seq(g) for g in self.gateways}
        self.shares = {g: Enforced.of(self.policy, g) for g in self.gateways}
        self.acked: dict[int, int] = {}
        self.outgoing: dict[tuple[int, int, int], Outgoing] = {}  # (gateway, seq, part)
        self.challenges: dict[bytes, Pending] = {}
        self.challenge_at: dict[tuple[int, int], bytes] = {}  # (gateway, address) -> latest
        self.expiring: collections.deque[tuple[float, bytes]] = collections.deque()
        self.last_seen: dict[int, float] = {}
        self.started = time.time()
        self.dirty: set[int] = set()  # gateways whose share a registration changed
        self.sock = codec.control_socket(address, port)
        self.outboxes: dict[tuple[str, int], Outbox] = {}  # a gateway's answers, this batch
        self.jobs: queue.Queue[Job] = queue.Queue()
        self.wake_r, self.wake_w = socket.socketpair()
        self.wake_r.setblocking(False)
        admin.unlink(missing_ok=True)
        self.admin = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        self.admin.bind(str(admin))
        os.chmod(admin, 0o600)
        self.admin.listen(16)
        if decisions == "compiled":
            self.compile_decisions()

    def _load_policy(self) -> Policy:
        policy = Policy(ttl_ms=self.registry.ttl_ms(), revoked=self.registry.revoked(),
                        blocked=self.registry.blocked(), shutdowns=self.registry.shutdowns(),
                        region_of={g.id: g.region for g in self.gateways.values()},
                        flushes=self.registry.flushes(), infrastructure=self.infrastructure,
                        devices=self.devices)
        for identity_, address, gateway in self.registry.bindings():
            policy.bind(identity_, address, gateway)
        return policy

    # -- the loop --------------------------------------------------------------------------
    def run(self) -> None:
        selector = selectors.DefaultSelector()
        selector.register(self.sock, selectors.EVENT_READ)
        selector.register(self.wake_r, selectors.EVENT_READ)
        threading.Thread(target=self._serve_operators, name="operator", daemon=True).start()
        copier = importer.start(self.registry.path, self.journal.durability)
        for gateway in self.gateways:  # whatever a gateway missed while we were down
            self.send_snapshot(gateway)
        print(f"authority ready: {len(self.gateways)} gateways, durability "
              f"{self.journal.durability}", flush=True)
        next_look = 0.0  # at the importer: the index must not silently stop growing
        while True:
            for key, _ in selector.select(RETRANSMIT_S):
                if key.fileobj is self.sock:
                    (self.compiled_batch if self.fast else self.serve_batch)()
                else:
                    self.run_jobs()
            self.retransmit()
            if time.monotonic() >= next_look:  # as often as a push is retransmitted, no more
                next_look = time.monotonic() + RETRANSMIT_S
                if copier.poll() is not None:
                    self.counters["importer restarted"] += 1
                    copier = importer.start(self.registry.path, self.journal.durability)

    def serve_batch(self) -> None:
        """Answer what has arrived (up to ``batch``)."""
        received: list[tuple[bytes, tuple]] = []
        recv = self.sock.recvfrom
        for _ in range(self.batch):
            try:
                data, addr = recv(4096)
            except BlockingIOError:
                break
            if self.sources.get(int.from_bytes(data[4:8], "big")) != addr[0]:
                self.counters["not from its gateway's address"] += 1  # before any HMAC
                continue
            received.append((data, addr))
        self.answer_batch(received)

    def answer_batch(self, received: list[tuple[bytes, tuple]]) -> None:
        """Decide, log (durably), then answer each datagram, each from its gateway's address."""
        replies: list[tuple[bytes, tuple]] = []
        rows: list[AdmissionRow] = []
        for data, addr in received:
            try:
                for reply in self.handle(data, rows):
                    replies.append((reply, addr))
            except Rejected as e:
                self.counters[e.args[0]] += 1
            except Exception as e:  # noqa: BLE001 - a datagram must never stop the loop
                self.counters["internal error"] += 1
                print(f"error handling a datagram: {e!r}", file=sys.stderr, flush=True)
        if rows:
            self.journal.append(rows)  # durable before anyone is answered
        if self.dirty:
            self.commit_and_push(self.dirty)
        else:  # what a registration that failed half-way wrote must not hold the lock
            self.registry.rollback()
        for reply, addr in replies:  # each gateway's together (UDP GSO), in order
            if addr not in self.outboxes:
                self.outboxes[addr] = Outbox(self.sock, addr)
            self.outboxes[addr].add(reply)
        for addr in {addr for _, addr in replies}:
            if unsent := len(self.outboxes[addr].flush()):  # no route back, a full buffer:
                self.counters["answer unsent"] += unsent      # that gateway asks again

    def flow(self, data: bytes, rows: list[AdmissionRow]) -> bytes:
        """The hot path: one FLOW_REQUEST, checked, decided, logged (in ``rows``), answered."""
        (magic, version, _, sender, session, counter, timestamp, length, _, request_id, src,
         dst, proto, flags, sport, dport, device, token) = FLOW.unpack_from(data)
        if magic != MAGIC or version != VERSION or length != FLOW.size - codec.HEADER.size:
            raise Rejected("malformed")
        key = self.authenticated(data, sender, session, counter, timestamp)
        inbound = bool(flags & FlowFlag.INBOUND)
        decision = admit(FlowRequest(sender, src, dst, proto, sport, dport, inbound),
                         self.policy)
        if not inbound and self.devices and covered(src, self.devices):
            decision = self.device_spoke(decision, src, dst, dport, device, token)
        now = time.time()
        self.last_seen[sender] = now
        granted = decision.reason == Reason.OK
        rows.append(AdmissionRow(now, sender, decision.identity or None, src, dst, proto, sport,
                                 dport, inbound, bool(flags & FlowFlag.RENEWAL), granted,
                                 decision.reason))
        self.counters["granted" if granted else "denied"] += 1
        return self._encode(Type.GRANT if granted else Type.DENY, sender,
                            (request_id, session, src, dst, proto, flags, sport, dport,
                             decision.reason, decision.ttl_ms, decision.identity), key)

    def device_spoke(self, decision: Decision, src: int, dst: int, dport: int, device: int,
                     token: bytes) -> Decision:
        """A device starting a flow shows who it is: its token must verify under the secret
        of the device it names, and that device must be the one bound to the address. A
        device speaking from a sibling's address is refused and logged as itself."""
        secret = self.device_secrets.get(device)
        if secret is None or not hmac.compare_digest(
                identity.device_token(secret, src, dst, dport), token):
            self.counters["device proof failed"] += 1
            return Decision(Reason.BAD_PROOF, decision.identity, 0)
        if device != self.policy.identity_at.get(src):
            self.counters["device at a sibling's address"] += 1
            return Decision(Reason.ADDRESS_IN_USE, device, 0)
        return decision

    def handle(self, data: bytes, rows: list[AdmissionRow]) -> list[bytes]:
        if len(data) == FLOW_SIZE and data[3] == Type.FLOW_REQUEST:
            return [self.flow(data, rows)]
        msg = self.opened(data)
        sender, fields = msg.sender, msg.body
        self.last_seen[sender] = time.time()
        if msg.type == Type.KEEPALIVE:  # it says what it has applied
            self.acknowledged(sender, fields[0])
            if fields[0] < self.seq[sender] and not any(k[0] == sender for k in self.outgoing):
                self.counters["snapshot: keepalive behind"] += 1
                self.send_snapshot(sender)
            return [self._send(Type.KEEPALIVE_ACK, sender, fields)]
        if msg.type == Type.POLICY_ACK:
            self.acknowledged(sender, fields[0])
            return []
        if msg.type == Type.SYNC:  # what the gateway really has: after a restart, nothing
            self.acked[sender] = fields[0]
            self.send_snapshot(sender)  # even if up to date: it asks until it has one
            return []
        if msg.type == Type.CHALLENGE_REQUEST:
            return [self._send(Type.CHALLENGE, sender, self.challenge(sender, *fields))]
        if msg.type == Type.ENROL:
            return [self._send(Type.ENROL_ACK, sender, self.enrol(sender, *fields))]
        raise Rejected("unexpected type")

    def _encode(self, msg_type: Type, gateway: int, body: tuple, key: Key,
                items: tuple = ()) -> bytes:
        session, counter = self.numbered(gateway)
        return codec.encode(msg_type, 0, session, counter, body, key, items)

    def _send(self, msg_type: Type, gateway: int, body: tuple, items: tuple = ()) -> bytes:
        return self._encode(msg_type, gateway, body, self.keys[gateway], items)

    # -- identity --------------------------------------------------------------------------
    def challenge(self, gateway: int, request_id: int, address: int,
                  national_id: bytes) -> tuple:
        now = time.monotonic()
        while self.expiring and self.expiring[0][0] < now:
            gone = self.challenges.pop(self.expiring.popleft()[1], None)
            if gone is not None:
                self.challenge_at.pop((gone.gateway, gone.address), None)
        challenge = secrets.token_bytes(16)
        # one challenge per address at a time: a flood of requests holds no memory
        self.challenges.pop(self.challenge_at.get((gateway, address), b""), None)
        self.challenge_at[gateway, address] = challenge
        self.challenges[challenge] = Pending(gateway, identity.national_id_of(national_id),
                                             address, now + CHALLENGE_S)
        self.expiring.append((now + CHALLENGE_S, challenge))
        return (request_id, challenge)

    def enrol(self, gateway: int, request_id: int, op: int, address: int, national_id: bytes,
              challenge: bytes, proof: bytes) -> tuple:
        """Register or bind, if the proof answers a challenge given to this gateway, for this
        person and address, and shows the person's card."""
        nid = identity.national_id_of(national_id)
        pending = self.challenges.pop(challenge, None)
        if pending is not None:
            del self.challenge_at[pending.gateway, pending.address]
        if pending is None or (pending.gateway, pending.national_id, pending.address) != (
                gateway, nid, address) or pending.expires < time.monotonic():
            self.counters["enrolment without a challenge"] += 1
            return (request_id, Reason.NO_CHALLENGE, 0)
        person = self.registry.person(nid)
        if person is None or person[1] is None:
            return (request_id, Reason.UNKNOWN_PERSON, 0)
        if op not in (Enrol.REGISTER, Enrol.BIND) or not identity.verify(
                person[1], Enrol(op), nid, address, gateway, challenge, proof):
            self.counters["bad proof"] += 1
            return (request_id, Reason.BAD_PROOF, 0)
        existing = self.registry.identity_of_person(nid)
        now = time.time()
        if existing is None and op == Enrol.BIND:
            return (request_id, Reason.NOT_REGISTERED, 0)
        if existing is not None:
            identity_, revoked = existing
            if revoked is not None:
                return (request_id, Reason.REVOKED, identity_)
            if op == Enrol.REGISTER:
                return (request_id, Reason.ALREADY_REGISTERED, identity_)
        holder = self.policy.identity_at.get(address)
        if holder is not None and (existing is None or holder != existing[0]):
            return (request_id, Reason.ADDRESS_IN_USE, 0)
        if existing is None:
            identity_ = self.registry.add_identity(nid, now)
            self.registry.log_action(now, "register", str(identity_), f"{nid} at "
                                     f"{dotted(address)} via {self.gateways[gateway].name}")
        else:
            self.registry.log_action(now, "bind", str(identity_), f"{dotted(address)} via "
                                     f"{self.gateways[gateway].name}")
        moved_from = self.policy.gateway_of.get(identity_)
        self.registry.bind(identity_, address, gateway, now)
        self.policy.bind(identity_, address, gateway)
        self.bound(identity_, address, gateway)
        self.dirty |= {gateway} | ({moved_from} if moved_from is not None else set())
        return (request_id, Reason.OK, identity_)

    def import_journal(self) -> int:
        """What the importer has not copied yet, copied now (an operator asks for the log)."""
        return self.registry.import_journal(self.journal)


def main() -> None:
    keep_private()
    config = json.loads(Path(sys.argv[1]).read_text())
    Authority(Path(config["db"]), config["address"], Path(config["admin"]),
              config.get("batch", 256), config.get("port", PORT),
              config.get("durability", "process"),
              *([prefix(p) for p in config.get(k, [])]
                for k in ("infrastructure", "national", "devices")),
              config.get("decisions", "python")).run()


if __name__ == "__main__":
    main()
