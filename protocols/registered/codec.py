"""The control protocol's byte codec for the daemons: ``struct``, HMAC-SHA256, replay defence.

Byte for byte the format that ``wire`` defines as scapy layers (a property test checks every
message type both ways); addresses are 32-bit integers here, the cheapest form to compare on
a hot path. A message is::

    header (32 bytes) | body (by type) | HMAC-SHA256 of header and body (32 bytes)
    header: magic, version, type, sender, session, counter, timestamp (us), body length

The key is the gateway's own (the authority signs what it sends a gateway with that gateway's
key). A sender's *session* is a number that grows with every start of its process (its start
time in microseconds, shifted, plus random bits) and its *counter* numbers the messages of the
session, one stream per receiver. A message is accepted only if it is well formed, its sender
is known, its HMAC verifies, its timestamp is within ``WINDOW_US`` of now, its session is not
older than the newest one seen from that sender, and its counter is new among the last 1024 of
that session (reordering is tolerated, replays are not). Everything else raises ``Rejected``
with the reason, which daemons count.
"""

from __future__ import annotations

import contextlib
import hashlib
import hmac
import secrets
import socket
import struct
import time
from dataclasses import dataclass

from .messages import MAGIC, MAX_ITEMS, VERSION, Type

HEADER = struct.Struct("!2sBBIQIQHH")
SIGNATURE = 32
WINDOW_US = 5_000_000
ITEM = struct.Struct("!IB3xI")  # address, prefix length, identity
_ANSWER = struct.Struct("!IQIIBBHHB3xII")  # request id, gateway session, the flow, the decision
BODIES: dict[Type, struct.Struct] = {
    Type.CHALLENGE_REQUEST: struct.Struct("!II16s"),   # request id, address, national id
    Type.CHALLENGE: struct.Struct("!I16s"),            # request id, challenge
    Type.ENROL: struct.Struct("!IB3xI16s16s32s"),      # request id, op, address, national id,
                                                       # challenge, proof
    Type.ENROL_ACK: struct.Struct("!IB3xI"),           # request id, reason, identity
    Type.FLOW_REQUEST: struct.Struct("!IIIBBHHI16s"),  # request id, src, dst, proto, flags,
                                                       # sport, dport, and what a device
                                                       # showed: its identity, its token
    Type.GRANT: _ANSWER,  # request id, gateway session, src, dst, proto, flags, sport, dport,
    Type.DENY: _ANSWER,   # reason, ttl ms, identity
    Type.POLICY: struct.Struct("!IBBHHH"),             # seq, action, flags, part, parts, count
    Type.POLICY_ACK: struct.Struct("!I"),              # applied up to
    Type.KEEPALIVE: struct.Struct("!I"),
    Type.KEEPALIVE_ACK: struct.Struct("!I"),
    Type.SYNC: struct.Struct("!I"),                    # applied up to
}
_TYPES = frozenset(int(t) for t in Type)


# Each control socket's buffers, each way. A datagram sent stays charged to its socket until
# it leaves the last emulated link; the links hold it for their delay, so a burst of first
# contacts (thousands of devices at once) would fill the default 208 KiB and every further
# send fail at once (EAGAIN), the question never asked.
CONTROL_BUFFER = 8 << 20
SO_SNDBUFFORCE, SO_RCVBUFFORCE = 32, 33  # Linux's: root may pass the system's maximum


def control_socket(address: str, port: int) -> socket.socket:
    """A daemon's UDP socket of the control protocol: bound, non-blocking, roomy."""
    sock = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    for force, plain in ((SO_SNDBUFFORCE, socket.SO_SNDBUF), (SO_RCVBUFFORCE, socket.SO_RCVBUF)):
        try:
            sock.setsockopt(socket.SOL_SOCKET, force, CONTROL_BUFFER)
        except PermissionError:  # not root: as much as the system allows
            with contextlib.suppress(OSError):
                sock.setsockopt(socket.SOL_SOCKET, plain, CONTROL_BUFFER)
    sock.bind((address, port))
    sock.setblocking(False)
    return sock


class Rejected(ValueError):
    """A message that must be dropped; ``args[0]`` names why (a counter's name)."""


@dataclass(frozen=True, slots=True)
class Message:
    type: Type
    sender: int
    session: int
    counter: int
    timestamp: int
    body: tuple


def now_us() -> int:
    return time.time_ns() // 1000


def new_session() -> int:
    """Later starts get larger sessions: start time in microseconds, then 12 random bits."""
    return ((now_us() << 12) | secrets.randbits(12)) & 0xFFFF_FFFF_FFFF_FFFF


class Sender:
    """Our side of the numbering: one session, one counter per receiver. A counter that would
    wrap starts a new session instead."""

    def __init__(self) -> None:
        self.session = new_session()
        self.counters: dict[int, int] = {}

    def next(self, receiver: int) -> tuple[int, int]:
        counter = self.counters.get(receiver, 0) + 1
        if counter > 0xFFFF_FFFF:
            self.session, self.counters, counter = new_session(), {}, 1
        self.counters[receiver] = counter
        return self.session, counter


class Replay:
    """A sender's newest session and, IPsec-style, the highest counter seen in it with a
    bitmap of the 1024 below."""

    SIZE = 1024

    def __init__(self) -> None:
        self.session = 0
        self.highest = 0
        self.bitmap = 0

    def accept(self, session: int, counter: int) -> str | None:
        """None if new (and now remembered), else why not."""
        if session < self.session:
            return "old session"
        if session > self.session:
            self.session, self.highest, self.bitmap = session, 0, 0
        if counter > self.highest:
            shift = counter - self.highest
            self.bitmap = 1 if shift >= self.SIZE else ((self.bitmap << shift) | 1) & (
                (1 << self.SIZE) - 1)
            self.highest = counter
            return None
        offset = self.highest - counter
        if offset >= self.SIZE or self.bitmap >> offset & 1:
            return "replay"
        self.bitmap |= 1 << offset
        return None


class Key:
    """An HMAC-SHA256 key with its inner and outer pads hashed once: signing a message then
    costs two hash-state copies instead of a full HMAC set-up (less than half the time)."""

    def __init__(self, secret: bytes):
        if len(secret) > 64:
            secret = hashlib.sha256(secret).digest()
        block = secret.ljust(64, b"\0")
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


def encode(msg_type: Type, sender: int, session: int, counter: int, body: tuple, key: Key,
           items: tuple[tuple[int, int, int], ...] = (), timestamp: int | None = None) -> bytes:
    """Header, body and HMAC. ``items`` (address, length, identity) follow a POLICY body."""
    payload = BODIES[msg_type].pack(*body)
    if items:
        payload += b"".join(ITEM.pack(*item) for item in items)
    data = HEADER.pack(MAGIC, VERSION, msg_type, sender, session, counter,
                       now_us() if timestamp is None else timestamp, len(payload), 0) + payload
    return data + key.sign(data)


def peek(data: bytes) -> tuple[Type, int, int, int, int]:
    """(type, sender, session, counter, timestamp) of a well-formed message, before any key
    is known."""
    if len(data) < HEADER.size + SIGNATURE:
        raise Rejected("malformed")
    magic, version, msg_type, sender, session, counter, timestamp, length, _ = \
        HEADER.unpack_from(data)
    if magic != MAGIC or version != VERSION or msg_type not in _TYPES:
        raise Rejected("malformed")
    if HEADER.size + length + SIGNATURE != len(data):
        raise Rejected("malformed")
    return Type(msg_type), sender, session, counter, timestamp


def body(msg_type: Type, data: bytes) -> tuple:
    """The body fields; a POLICY body ends with a tuple of (address, length, identity)."""
    fmt = BODIES[msg_type]
    end = len(data) - SIGNATURE
    if msg_type == Type.POLICY:
        fields = fmt.unpack_from(data, HEADER.size)
        count = fields[5]
        if count > MAX_ITEMS or HEADER.size + fmt.size + count * ITEM.size != end:
            raise Rejected("malformed")
        items = tuple(ITEM.unpack_from(data, HEADER.size + fmt.size + i * ITEM.size)
                      for i in range(count))
        if any(not 0 <= length <= 32 for _, length, _ in items):
            raise Rejected("malformed")
        return (*fields, items)
    if HEADER.size + fmt.size != end:
        raise Rejected("malformed")
    return fmt.unpack_from(data, HEADER.size)


STARTED_US = time.time_ns() // 1000  # this process's start: nothing said before it is heard


def fresh(timestamp: int, now: int | None = None) -> bool:
    return abs((now_us() if now is None else now) - timestamp) <= WINDOW_US


def authenticate(data: bytes, sender: int, session: int, counter: int, timestamp: int,
                 key_of, replays: dict[int, Replay], started_us: int = STARTED_US) -> Key:
    """Sender, HMAC, time window, then session and counter, for a well-formed message; the
    sender's key if all hold. The counter is only recorded once everything else has passed.
    A receiver remembers counters only since it started, so it hears nothing timestamped
    before ``started_us`` (else a restart would accept a message of the last seconds once)."""
    key = key_of(sender)
    if key is None:
        raise Rejected("unknown sender")
    if not key.verify(data):
        raise Rejected("bad hmac")
    if not fresh(timestamp):
        raise Rejected("stale")
    if timestamp < started_us:
        raise Rejected("sent before this receiver started")
    replay = replays.get(sender)
    if replay is None:
        replay = replays[sender] = Replay()
    why = replay.accept(session, counter)
    if why:
        raise Rejected(why)
    return key


def open_message(data: bytes, key_of, replays: dict[int, Replay],
                 started_us: int = STARTED_US) -> Message:
    """Check everything (form, then ``authenticate``); return the message."""
    msg_type, sender, session, counter, timestamp = peek(data)
    fields = body(msg_type, data)
    authenticate(data, sender, session, counter, timestamp, key_of, replays, started_us)
    return Message(msg_type, sender, session, counter, timestamp, fields)
