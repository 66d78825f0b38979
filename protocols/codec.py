"""The control protocol's byte codec for daemons: ``struct``, HMAC-SHA256, replay defence.

Byte-for-byte the format that ``protocols.wire`` defines as scapy layers (a property test
checks every message type both ways); addresses are 32-bit integers here, the cheapest form to
compare on a hot path.

A message is accepted only if it is well formed, its sender is known, its HMAC verifies with
that sender's key, its timestamp is within ``WINDOW_US`` of now and its nonce was not seen
before (a sliding window of the last 1024 nonces, so reordering is tolerated and replays are
not). Everything else raises ``Rejected`` with the reason, which daemons count.
"""

from __future__ import annotations

import hashlib
import hmac
import struct
import time
from dataclasses import dataclass

PORT = 7400           # the authority
SERVICE_PORT = 7401   # a gateway's registration service, for its hosts
GATEWAY_PORT = 7402   # a gateway's control socket, for the authority
MAGIC = b"SL"
VERSION = 1

MESSAGE_TYPES = {1: "REGISTER", 2: "REGISTER_ACK", 3: "BIND", 4: "BIND_ACK",
                 5: "FLOW_REQUEST", 6: "GRANT", 7: "DENY", 8: "POLICY_PUSH", 9: "PUSH_ACK",
                 10: "KEEPALIVE", 11: "KEEPALIVE_ACK", 12: "SYNC"}
REASONS = {0: "ok", 1: "unregistered", 2: "revoked", 3: "peer revoked",
           4: "blocked destination", 5: "region shut down", 6: "unknown person",
           7: "already registered", 8: "bad credential", 9: "banned", 10: "address in use",
           11: "wrong gateway"}
PUSH_ACTIONS = {1: "BIND", 2: "UNBIND", 3: "CUT", 4: "UNCUT", 5: "BLOCK", 6: "UNBLOCK",
                7: "SHUTDOWN", 8: "LIFT", 9: "RESET", 10: "FLUSH"}
PROTOCOLS = {1: "icmp", 6: "tcp", 17: "udp"}

(REGISTER, REGISTER_ACK, BIND, BIND_ACK, FLOW_REQUEST, GRANT, DENY, POLICY_PUSH, PUSH_ACK,
 KEEPALIVE, KEEPALIVE_ACK, SYNC) = range(1, 13)
(OK, UNREGISTERED, REVOKED, PEER_REVOKED, BLOCKED, SHUT_DOWN, UNKNOWN_PERSON,
 ALREADY_REGISTERED, BAD_CREDENTIAL, BANNED, ADDRESS_IN_USE, WRONG_GATEWAY) = range(12)
PUSH_BIND, PUSH_UNBIND, PUSH_CUT, PUSH_UNCUT, PUSH_BLOCK, PUSH_UNBLOCK, PUSH_SHUTDOWN, \
    PUSH_LIFT, PUSH_RESET, PUSH_FLUSH = range(1, 11)
INBOUND = 0x01

HEADER = struct.Struct("!2sBBIQQHH")
SIGNATURE = 32
WINDOW_US = 5_000_000
BODIES = {
    REGISTER: struct.Struct("!II16s40s"),      # request id, address, national id, real name
    REGISTER_ACK: struct.Struct("!IB3xI16s"),  # request id, status, identity, credential
    BIND: struct.Struct("!III16s"),            # request id, address, identity, credential
    BIND_ACK: struct.Struct("!IB3xI16s"),
    FLOW_REQUEST: struct.Struct("!IIIBBH"),    # request id, src, dst, proto, flags, dport
    GRANT: struct.Struct("!IB3xII"),           # request id, reason, ttl ms, identity
    DENY: struct.Struct("!IB3xII"),
    POLICY_PUSH: struct.Struct("!IBxHI"),      # push id, action, prefix count, identity
    PUSH_ACK: struct.Struct("!I"),
    KEEPALIVE: struct.Struct("!I"),
    KEEPALIVE_ACK: struct.Struct("!I"),
    SYNC: struct.Struct("!I"),
}
PREFIX = struct.Struct("!IB3x")                # address, prefix length
MAX_PREFIXES = 64


class Rejected(ValueError):
    """A message that must be dropped; ``args[0]`` names why (a counter's name)."""


@dataclass(frozen=True, slots=True)
class Message:
    type: int
    sender: int
    nonce: int
    timestamp: int
    body: tuple


def now_us() -> int:
    return time.time_ns() // 1000


class Nonces:
    """A sender's nonces: strictly growing, and seeded from the clock so that they keep
    growing across a restart (the receiver's replay window would drop repeats)."""

    def __init__(self) -> None:
        self.last = 0

    def next(self) -> int:
        self.last = max(self.last + 1, now_us())
        return self.last


class ReplayWindow:
    """IPsec-style anti-replay: the highest nonce seen and a bitmap of the 1024 below it."""

    SIZE = 1024

    def __init__(self) -> None:
        self.highest = 0
        self.bitmap = 0

    def accept(self, nonce: int) -> bool:
        if nonce > self.highest:
            shift = nonce - self.highest
            self.bitmap = 1 if shift >= self.SIZE else ((self.bitmap << shift) | 1) & (
                (1 << self.SIZE) - 1)
            self.highest = nonce
            return True
        offset = self.highest - nonce
        if offset >= self.SIZE or self.bitmap >> offset & 1:
            return False
        self.bitmap |= 1 << offset
        return True


class Key:
    """An HMAC-SHA256 key with its inner and outer pads hashed once: signing a message then
    costs two hash-state copies instead of a full HMAC set-up (less than half the time)."""

    def __init__(self, secret: bytes):
        if len(secret) > 64:
            secret = hashlib.sha256(secret).digest()
        block = secret.ljust(64, b"\0")
        self.secret = secret
        self._inner = hashlib.sha256(bytes(b ^ 0x36 for b in block))
        self._outer = hashlib.sha256(bytes(b ^ 0x5C for b in block))

    def sign(self, data: bytes) -> bytes:
        inner = self._inner.copy()
        inner.update(data)
        outer = self._outer.copy()
        outer.update(inner.digest())
        return outer.digest()

    def verify(self, data: bytes) -> bool:
        return hmac.compare_digest(self.sign(data[:-SIGNATURE]), data[-SIGNATURE:])


def encode(msg_type: int, sender: int, nonce: int, body: tuple, key: Key,
           prefixes: tuple[tuple[int, int], ...] = (), timestamp: int | None = None) -> bytes:
    """Header, body and HMAC. ``prefixes`` follow a POLICY_PUSH body."""
    payload = BODIES[msg_type].pack(*body)
    if prefixes:
        payload += b"".join(PREFIX.pack(*p) for p in prefixes)
    data = HEADER.pack(MAGIC, VERSION, msg_type, sender, nonce,
                       now_us() if timestamp is None else timestamp, len(payload), 0) + payload
    return data + key.sign(data)


def peek(data: bytes) -> tuple[int, int, int, int]:
    """(type, sender, nonce, timestamp) of a well-formed message, before any key is known."""
    if len(data) < HEADER.size + SIGNATURE:
        raise Rejected("malformed")
    magic, version, msg_type, sender, nonce, timestamp, length, _ = HEADER.unpack_from(data)
    if magic != MAGIC or version != VERSION or msg_type not in BODIES:
        raise Rejected("malformed")
    if HEADER.size + length + SIGNATURE != len(data):
        raise Rejected("malformed")
    return msg_type, sender, nonce, timestamp


def body(msg_type: int, data: bytes) -> tuple:
    """The body fields; a POLICY_PUSH ends with a tuple of (address, length) prefixes."""
    fmt = BODIES[msg_type]
    end = len(data) - SIGNATURE
    if msg_type == POLICY_PUSH:
        fields = fmt.unpack_from(data, HEADER.size)
        count = fields[2]
        if count > MAX_PREFIXES or HEADER.size + fmt.size + count * PREFIX.size != end:
            raise Rejected("malformed")
        prefixes = tuple(PREFIX.unpack_from(data, HEADER.size + fmt.size + i * PREFIX.size)
                         for i in range(count))
        if any(not 0 <= length <= 32 for _, length in prefixes):
            raise Rejected("malformed")
        return (*fields, prefixes)
    if HEADER.size + fmt.size != end:
        raise Rejected("malformed")
    return fmt.unpack_from(data, HEADER.size)


def fresh(timestamp: int, now: int | None = None) -> bool:
    return abs((now_us() if now is None else now) - timestamp) <= WINDOW_US


def authenticate(data: bytes, sender: int, nonce: int, timestamp: int, key_of,
                 windows: dict[int, ReplayWindow]) -> Key:
    """Sender, HMAC, time window and nonce, in that order, for a well-formed message; the
    sender's key if all hold. The nonce is only recorded once everything else has passed."""
    key = key_of(sender)
    if key is None:
        raise Rejected("unknown sender")
    if not key.verify(data):
        raise Rejected("bad hmac")
    if not fresh(timestamp):
        raise Rejected("stale")
    window = windows.get(sender)
    if window is None:
        window = windows[sender] = ReplayWindow()
    if not window.accept(nonce):
        raise Rejected("replay")
    return key


def open_message(data: bytes, key_of, windows: dict[int, ReplayWindow]) -> Message:
    """Check everything (form, then ``authenticate``); return the message."""
    msg_type, sender, nonce, timestamp = peek(data)
    fields = body(msg_type, data)
    authenticate(data, sender, nonce, timestamp, key_of, windows)
    return Message(msg_type, sender, nonce, timestamp, fields)
