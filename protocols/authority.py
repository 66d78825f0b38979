"""The authority: registers people, decides every new flow, pushes policy to gateways.

One process at the authority site. Its hot loop reads up to ``batch`` datagrams, decides each
(``protocols.admission``), appends the batch's admission-log rows to the journal with one
write() (``protocols.journal``), and only then sends the answers: every decision a gateway
acts on is already logged durably. The journal is copied into SQLite between batches.
Registrations and operator actions commit before they are acknowledged.

Malformed, forged, stale, replayed and unknown-sender datagrams are dropped and counted
(``status`` shows the counters); nothing a datagram contains can stop the loop.

Policy reaches gateways as POLICY_PUSH messages, retransmitted until acknowledged. A gateway
that (re)appears sends SYNC and gets its complete state again.

The operator speaks JSON lines over a Unix socket (``protocols.operator`` is the client).

    python -m protocols.authority CONFIG.json
"""

from __future__ import annotations

import collections
import contextlib
import ipaddress
import json
import os
import selectors
import socket
import struct
import sys
import time
from dataclasses import dataclass
from pathlib import Path

from . import codec
from .admission import FlowRequest, Policy, admit
from .codec import GATEWAY_PORT, MAGIC, PORT, REASONS, VERSION, Key, Nonces, Rejected, ReplayWindow
from .journal import Journal
from .registry import Gateway, Registry

RETRANSMIT_S = 0.1     # first retransmission; doubles each time, up to RETRANSMIT_MAX_S
RETRANSMIT_MAX_S = 2.0
RETRANSMIT_BURST = 32  # per pass of the loop: a mute gateway must not stall answering
GIVE_UP_S = 30.0
IMPORT_S = 0.01
IMPORT_CHUNK = 256  # rows per import: bounds the pause it puts on answering (~0.3 ms)
# a FLOW_REQUEST, header and body in one unpack: the hot path's only parse
FLOW = struct.Struct(codec.HEADER.format + codec.BODIES[codec.FLOW_REQUEST].format[1:])
FLOW_SIZE = FLOW.size + codec.SIGNATURE


def ip(value: int) -> str:
    return str(ipaddress.IPv4Address(value))


def prefix(text: str) -> tuple[int, int]:
    net = ipaddress.IPv4Network(text, strict=False)
    return int(net.network_address), net.prefixlen


@dataclass
class Push:
    gateway: int
    action: int
    identity: int
    prefixes: tuple[tuple[int, int], ...]
    first_sent: float
    last_sent: float = 0.0
    interval: float = RETRANSMIT_S


class Authority:
    def __init__(self, db: Path, address: str, admin: Path, batch: int = 256, port: int = PORT):
        self.registry = Registry(db)
        self.journal = Journal(db.with_suffix(".journal"))
        self.registry.import_journal(self.journal)  # whatever a crash left unimported
        self.unimported = 0  # journal rows not yet in SQLite: nothing to import while idle
        self.registry.checkpoint_in_background()
        self.gateways: dict[int, Gateway] = self.registry.gateways()
        self.keys = {g.id: Key(g.key) for g in self.gateways.values()}
        self.policy = self._load_policy()
        self.windows: dict[int, ReplayWindow] = {}
        self.nonces = Nonces()
        self.counters: collections.Counter = collections.Counter()
        self.batch = batch
        self.pushes: dict[int, Push] = {}
        self.last_push_id = 0
        self.last_seen: dict[int, float] = {}
        self.dirty = False
        self.sock = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
        self.sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 8 << 20)
        self.sock.bind((address, port))
        self.sock.setblocking(False)
        admin.unlink(missing_ok=True)
        self.admin = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        self.admin.bind(str(admin))
        os.chmod(admin, 0o600)
        self.admin.listen(16)

    def _load_policy(self) -> Policy:
        policy = Policy(ttl_ms=self.registry.ttl_ms(), revoked=self.registry.revoked(),
                        blocked=self.registry.blocked(), shutdowns=self.registry.shutdowns(),
                        region_of={g.id: g.region for g in self.gateways.values()})
        for identity, address, gateway in self.registry.bindings():
            policy.bind(identity, address, gateway)
        return policy

    # -- the loop --------------------------------------------------------------------------
    def run(self) -> None:
        selector = selectors.DefaultSelector()
        selector.register(self.sock, selectors.EVENT_READ)
        selector.register(self.admin, selectors.EVENT_READ)
        for gateway in self.gateways:  # whatever a gateway missed while we were down
            self.sync(gateway)
        print(f"authority ready: {len(self.gateways)} gateways", flush=True)
        next_import = 0.0
        while True:
            for key, _ in selector.select(RETRANSMIT_S):
                if key.fileobj is self.sock:
                    self.serve_batch()
                else:
                    self.serve_operator()
            self.retransmit()
            if self.unimported and time.monotonic() >= next_import:
                self.unimported -= self.registry.import_journal(self.journal, IMPORT_CHUNK)
                next_import = time.monotonic() + IMPORT_S

    def serve_batch(self) -> None:
        replies: list[tuple[bytes, tuple]] = []
        rows: list[tuple] = []
        recv = self.sock.recvfrom
        for _ in range(self.batch):
            try:
                data, addr = recv(4096)
            except BlockingIOError:
                break
            try:
                reply = self.handle(data, rows)
            except Rejected as e:
                self.counters[e.args[0]] += 1
                continue
            except Exception as e:  # noqa: BLE001 - a datagram must never stop the loop
                self.counters["internal error"] += 1
                print(f"error handling a datagram: {e!r}", file=sys.stderr, flush=True)
                continue
            if reply:
                replies.append((reply, addr))
        if rows:
            self.journal.append(rows)  # durable before anyone is answered
            self.unimported += len(rows)
        if self.dirty:
            self.registry.commit()
            self.dirty = False
        for reply, addr in replies:
            self.sock.sendto(reply, addr)

    def flow(self, data: bytes, rows: list[tuple]) -> bytes:
        """The hot path: one FLOW_REQUEST, checked, decided, logged (in ``rows``), answered."""
        (magic, version, _, sender, nonce, timestamp, length, _, request_id, src, dst, proto,
         flags, dport) = FLOW.unpack_from(data)
        if magic != MAGIC or version != VERSION or length != FLOW.size - codec.HEADER.size:
            raise Rejected("malformed")
        key = codec.authenticate(data, sender, nonce, timestamp, self.keys.get, self.windows)
        inbound = bool(flags & codec.INBOUND)
        decision = admit(FlowRequest(sender, src, dst, proto, dport, inbound), self.policy)
        now = time.time()
        self.last_seen[sender] = now
        rows.append((now, sender, decision.identity, src, dst, dport, proto, inbound,
                     decision.granted, decision.reason))
        self.counters["granted" if decision.granted else "denied"] += 1
        return codec.encode(codec.GRANT if decision.granted else codec.DENY, 0,
                            self.nonces.next(),
                            (request_id, decision.reason, decision.ttl_ms, decision.identity),
                            key)

    def handle(self, data: bytes, rows: list[tuple]) -> bytes | None:
        if len(data) == FLOW_SIZE and data[3] == codec.FLOW_REQUEST:
            return self.flow(data, rows)
        msg = codec.open_message(data, self.keys.get, self.windows)
        msg_type, sender, fields = msg.type, msg.sender, msg.body
        gateway = self.gateways[sender]
        self.last_seen[sender] = time.time()
        if msg_type == codec.KEEPALIVE:
            return self._send(codec.KEEPALIVE_ACK, gateway, fields)
        if msg_type == codec.PUSH_ACK:
            push = self.pushes.get(fields[0])
            if push and push.gateway == sender:
                del self.pushes[fields[0]]
            return None
        if msg_type == codec.REGISTER:
            return self._send(codec.REGISTER_ACK, gateway, self.register(sender, *fields))
        if msg_type == codec.BIND:
            return self._send(codec.BIND_ACK, gateway, self.bind(sender, *fields))
        if msg_type == codec.SYNC:
            self.sync(sender)
            return None
        raise Rejected("unexpected type")

    def _send(self, msg_type: int, gateway: Gateway, body: tuple,
              prefixes: tuple = ()) -> bytes:
        return codec.encode(msg_type, 0, self.nonces.next(), body, self.keys[gateway.id],
                            prefixes)

    # -- registration ----------------------------------------------------------------------
    def register(self, gateway: int, request_id: int, address: int, national_id: bytes,
                 real_name: bytes) -> tuple:
        nid = national_id.rstrip(b"\0").decode(errors="replace")
        name = real_name.rstrip(b"\0").decode(errors="replace")
        zero = b"\0" * 16
        if self.registry.person(nid) != name:
            return (request_id, codec.UNKNOWN_PERSON, 0, zero)
        existing = self.registry.identity_of_person(nid)
        if existing is not None:
            identity, revoked = existing
            return (request_id, codec.BANNED if revoked else codec.ALREADY_REGISTERED,
                    identity, zero)
        if self.policy.identity_at.get(address) is not None:
            return (request_id, codec.ADDRESS_IN_USE, 0, zero)
        credential = os.urandom(16)
        now = time.time()
        identity = self.registry.add_identity(nid, credential, now)
        self.registry.bind(identity, address, gateway, now)
        self.registry.log_action(now, "register", str(identity), f"{nid} at {ip(address)}")
        self.policy.bind(identity, address, gateway)
        self.dirty = True
        return (request_id, codec.OK, identity, credential)

    def bind(self, gateway: int, request_id: int, address: int, identity: int,
             credential: bytes) -> tuple:
        zero = b"\0" * 16
        if not self.registry.credential_matches(identity, credential):
            return (request_id, codec.BAD_CREDENTIAL, identity, zero)
        if identity in self.policy.revoked:
            return (request_id, codec.REVOKED, identity, zero)
        holder = self.policy.identity_at.get(address)
        if holder not in (None, identity):
            return (request_id, codec.ADDRESS_IN_USE, identity, zero)
        old_address = self.policy.address_of(identity)
        old_gateway = self.policy.gateway_of.get(identity)
        now = time.time()
        self.registry.bind(identity, address, gateway, now)
        self.registry.log_action(now, "bind", str(identity), ip(address))
        self.policy.bind(identity, address, gateway)
        self.dirty = True
        if old_address is not None and (old_address, old_gateway) != (address, gateway):
            self.push(old_gateway, codec.PUSH_UNBIND, identity, ((old_address, 32),))
        return (request_id, codec.OK, identity, zero)

    # -- pushes ----------------------------------------------------------------------------
    def push(self, gateway: int, action: int, identity: int = 0,
             prefixes: tuple[tuple[int, int], ...] = ()) -> None:
        for start in range(0, max(1, len(prefixes)), codec.MAX_PREFIXES):
            self.last_push_id = max(self.last_push_id + 1, int(time.time() * 10) & 0xFFFFFFFF)
            push = Push(gateway, action, identity,
                        prefixes[start:start + codec.MAX_PREFIXES], time.time())
            self.pushes[self.last_push_id] = push
            self._transmit(self.last_push_id, push)

    def _transmit(self, push_id: int, push: Push) -> None:
        gateway = self.gateways[push.gateway]
        data = self._send(codec.POLICY_PUSH, gateway,
                          (push_id, push.action, len(push.prefixes), push.identity),
                          push.prefixes)
        push.last_sent = time.time()
        try:
            self.sock.sendto(data, (ip(gateway.address), GATEWAY_PORT))
        except OSError:
            self.counters["push unreachable"] += 1

    def retransmit(self) -> None:
        now = time.time()
        burst = RETRANSMIT_BURST
        for push_id, push in list(self.pushes.items()):
            if now - push.first_sent > GIVE_UP_S:
                del self.pushes[push_id]  # the gateway will SYNC when it hears from us again
                self.counters["push given up"] += 1
            elif now - push.last_sent >= push.interval and burst:
                burst -= 1
                push.interval = min(2 * push.interval, RETRANSMIT_MAX_S)
                self.counters["push retransmitted"] += 1
                self._transmit(push_id, push)

    def sync(self, gateway: int) -> None:
        """Send a gateway everything it should enforce, after a RESET."""
        self.push(gateway, codec.PUSH_RESET)
        p = self.policy
        for address, identity in p.identity_at.items():
            if p.gateway_of.get(identity) == gateway:
                self.push(gateway, codec.PUSH_BIND, identity, ((address, 32),))
                if identity in p.revoked:
                    self.push(gateway, codec.PUSH_CUT, identity, ((address, 32),))
        if p.blocked:
            self.push(gateway, codec.PUSH_BLOCK, 0, tuple(p.blocked))
        region = p.region_of.get(gateway)
        if region in p.shutdowns:
            self.push(gateway, codec.PUSH_SHUTDOWN, 0, tuple(p.shutdowns[region]))

    # -- the operator ----------------------------------------------------------------------
    def serve_operator(self) -> None:
        conn, _ = self.admin.accept()
        with conn:
            conn.settimeout(2)
            try:
                request = json.loads(conn.makefile().readline())
                answer = {"ok": True, **self.operate(request)}
            except (ValueError, KeyError, TypeError) as e:
                answer = {"ok": False, "error": str(e) or type(e).__name__}
            except OSError:
                return
            answer["time"] = time.time()
            with contextlib.suppress(OSError):
                conn.sendall((json.dumps(answer) + "\n").encode())

    def operate(self, request: dict) -> dict:
        """Carry out one operator request. A change is committed before it is answered, and
        before any gateway hears of it: ``pushes`` go out after the commit."""
        op = request["op"]
        now = time.time()
        p = self.policy
        answer: dict = {}
        pushes: list[tuple] = []
        if op == "status":
            return {"counters": dict(self.counters), "pending_pushes": len(self.pushes),
                    "gateways": {g.name: self.last_seen.get(i) for i, g in
                                 self.gateways.items()},
                    "identities": len(p.identity_at), "revoked": sorted(p.revoked),
                    "blocked": [f"{ip(a)}/{n}" for a, n in p.blocked],
                    "shutdowns": {r: [f"{ip(a)}/{n}" for a, n in allow]
                                  for r, allow in p.shutdowns.items()}, "ttl_ms": p.ttl_ms}
        if op == "log":
            self.unimported -= self.registry.import_journal(self.journal)
            rows = self.registry.admissions(int(request.get("limit", 50)),
                                            request.get("identity"), request.get("since", 0))
            return {"admissions": [
                {"seq": s, "time": t, "gateway": self.gateways[g].name, "identity": i,
                 "src": ip(src), "dst": ip(dst), "proto": proto, "dport": dport,
                 "inbound": bool(inbound), "granted": bool(granted), "reason": REASONS[why]}
                for s, t, g, i, src, dst, proto, dport, inbound, granted, why in rows],
                "actions": [dict(zip(("seq", "time", "action", "target", "detail"), row,
                                     strict=True))
                            for row in self.registry.actions(int(request.get("limit", 50)))]}
        if op == "who":
            identity = request.get("identity")
            if identity is None:
                identity = p.identity_at.get(int(ipaddress.IPv4Address(request["address"])))
            info = self.registry.describe(int(identity)) if identity is not None else None
            if info is None:
                raise KeyError("no such identity")
            if info["address"] is not None:
                info["address"] = ip(info["address"])
            return info
        if op == "add_person":
            self.registry.add_person(request["national_id"], request["real_name"])
            self.registry.log_action(now, op, request["national_id"], request["real_name"])
        elif op == "register":
            nid, name = request["national_id"], request["real_name"]
            if self.registry.person(nid) is None:
                self.registry.add_person(nid, name)
            if self.registry.identity_of_person(nid) is not None:
                raise ValueError(f"{nid} already has an identity")
            credential = os.urandom(16)
            identity = self.registry.add_identity(nid, credential, now)
            self.registry.log_action(now, op, str(identity), nid)
            answer = {"identity": identity, "credential": credential.hex()}
        elif op in ("revoke", "reinstate"):
            identity = int(request["identity"])
            if self.registry.describe(identity) is None:
                raise KeyError(f"no identity {identity}")
            revoke = op == "revoke"
            self.registry.set_revoked(identity, now if revoke else None)
            self.registry.log_action(now, op, str(identity))
            (p.revoked.add if revoke else p.revoked.discard)(identity)
            address = p.address_of(identity)
            if address is not None:
                pushes.append((p.gateway_of[identity],
                               codec.PUSH_CUT if revoke else codec.PUSH_UNCUT, identity,
                               ((address, 32),)))
            answer = {"identity": identity}
        elif op in ("block", "unblock"):
            target = prefix(request["destination"])
            if op == "block":
                self.registry.block(*target, now)
                if target not in p.blocked:
                    p.blocked.append(target)
            else:
                self.registry.unblock(*target)
                p.blocked = [b for b in p.blocked if b != target]
            self.registry.log_action(now, op, request["destination"])
            action = codec.PUSH_BLOCK if op == "block" else codec.PUSH_UNBLOCK
            pushes += [(gateway, action, 0, (target,)) for gateway in self.gateways]
        elif op == "shutdown":
            region = request["region"]
            if region not in set(p.region_of.values()):
                raise KeyError(f"no region {region!r} (regions: "
                               f"{', '.join(sorted(set(p.region_of.values())))})")
            allow = [prefix(a) for a in request.get("allow", [])]
            self.registry.shutdown(region, allow, now)
            self.registry.log_action(now, op, region, ",".join(request.get("allow", [])))
            p.shutdowns[region] = allow
            pushes += [(gateway, codec.PUSH_SHUTDOWN, 0, tuple(allow))
                       for gateway, r in p.region_of.items() if r == region]
        elif op in ("lift", "restore"):
            regions = [request["region"]] if op == "lift" else list(p.shutdowns)
            for region in regions:
                self.registry.lift(region)
                p.shutdowns.pop(region, None)
            unblocked = [] if op == "lift" else list(p.blocked)
            for target in unblocked:
                self.registry.unblock(*target)
            p.blocked = [b for b in p.blocked if b not in unblocked]
            self.registry.log_action(now, op, ",".join(regions))
            for gateway, r in p.region_of.items():
                if r in regions:
                    pushes.append((gateway, codec.PUSH_LIFT))
                if unblocked:
                    pushes.append((gateway, codec.PUSH_UNBLOCK, 0, tuple(unblocked)))
        elif op == "ttl":
            p.ttl_ms = int(request["ms"])
            self.registry.set_ttl(p.ttl_ms)
            self.registry.log_action(now, op, str(p.ttl_ms))
        elif op == "flush":  # gateways forget their grants: every flow is asked for again
            self.registry.log_action(now, op, "all gateways")
            pushes += [(gateway, codec.PUSH_FLUSH) for gateway in self.gateways]
        else:
            raise ValueError(f"unknown operation {op!r}")
        self.registry.commit()
        for push in pushes:
            self.push(*push)
        return answer


def main() -> None:
    config = json.loads(Path(sys.argv[1]).read_text())
    Authority(Path(config["db"]), config["address"], Path(config["admin"]),
              config.get("batch", 256)).run()


if __name__ == "__main__":
    main()
