"""The registered-access control protocol, defined as scapy layers.

Gateways and the authority talk over UDP (port 7400). Every message is::

    Header (28 bytes) | body (by type) | Signature (32 bytes: HMAC-SHA256 of header and body)

The HMAC key is the sending (or, from the authority, the receiving) gateway's own key. The
nonce is a per-sender counter that only grows (seeded from the clock, so it keeps growing
across restarts); together with the timestamp it defeats replays (``protocols.codec``).

These layers are the definition: used to craft test packets, dissect captures and document the
format. Daemons use the byte-identical ``struct`` codec in ``protocols.codec`` because scapy
dissects only a few thousand packets per second; a property test proves both agree.

    >>> from protocols.wire import *
    >>> pkt = Header(type="FLOW_REQUEST", sender=3, nonce=1, timestamp=2) / \\
    ...     FlowRequest(request_id=7, src="198.19.1.2", dst="203.0.113.10", proto=6, dport=80)
"""

from __future__ import annotations

from scapy.fields import (
    ByteEnumField,
    ByteField,
    FieldLenField,
    FlagsField,
    IntField,
    IPField,
    LongField,
    PacketListField,
    ShortField,
    StrFixedLenField,
    XShortField,
)
from scapy.packet import Packet, bind_layers

from .codec import MAGIC, MESSAGE_TYPES, PROTOCOLS, PUSH_ACTIONS, REASONS, VERSION


class Header(Packet):
    name = "splinterlab control header"
    fields_desc = [
        StrFixedLenField("magic", MAGIC, 2),
        ByteField("version", VERSION),
        ByteEnumField("type", 0, MESSAGE_TYPES),
        IntField("sender", 0),          # gateway id; 0 = the authority
        LongField("nonce", 0),          # per-sender, strictly growing
        LongField("timestamp", 0),      # microseconds since the epoch
        ShortField("length", None),     # body length
        XShortField("reserved", 0),
    ]

    def post_build(self, pkt: bytes, pay: bytes) -> bytes:
        if self.length is None:
            body = len(pay) - (len(Signature()) if self.haslayer(Signature) else 0)
            pkt = pkt[:24] + body.to_bytes(2, "big") + pkt[26:]
        return pkt + pay


class Register(Packet):
    name = "register"
    fields_desc = [IntField("request_id", 0), IPField("address", "0.0.0.0"),
                   StrFixedLenField("national_id", b"", 16),
                   StrFixedLenField("real_name", b"", 40)]


class Bind(Packet):
    name = "bind"
    fields_desc = [IntField("request_id", 0), IPField("address", "0.0.0.0"),
                   IntField("identity", 0), StrFixedLenField("credential", b"", 16)]


class RegisterAck(Packet):
    name = "register or bind answer"
    fields_desc = [IntField("request_id", 0), ByteEnumField("status", 0, REASONS),
                   StrFixedLenField("pad", b"", 3), IntField("identity", 0),
                   StrFixedLenField("credential", b"", 16)]


class FlowRequest(Packet):
    name = "flow request"
    fields_desc = [IntField("request_id", 0), IPField("src", "0.0.0.0"),
                   IPField("dst", "0.0.0.0"), ByteEnumField("proto", 0, PROTOCOLS),
                   FlagsField("flags", 0, 8, ["inbound"]), ShortField("dport", 0)]


class Decision(Packet):
    name = "grant or deny"
    fields_desc = [IntField("request_id", 0), ByteEnumField("reason", 0, REASONS),
                   StrFixedLenField("pad", b"", 3), IntField("ttl_ms", 0),
                   IntField("identity", 0)]


class Prefix(Packet):
    name = "prefix"
    fields_desc = [IPField("address", "0.0.0.0"), ByteField("length", 32),
                   StrFixedLenField("pad", b"", 3)]

    def extract_padding(self, s: bytes):
        return b"", s


class PolicyPush(Packet):
    name = "policy push"
    fields_desc = [IntField("push_id", 0), ByteEnumField("action", 0, PUSH_ACTIONS),
                   StrFixedLenField("pad", b"", 1),
                   FieldLenField("count", None, count_of="prefixes", fmt="!H"),
                   IntField("identity", 0),
                   PacketListField("prefixes", [], Prefix, count_from=lambda p: p.count)]


class PushAck(Packet):
    name = "push ack"
    fields_desc = [IntField("push_id", 0)]


class Keepalive(Packet):
    name = "keepalive"
    fields_desc = [IntField("counter", 0)]


class Sync(Packet):
    name = "sync"
    fields_desc = [IntField("request_id", 0)]


class Signature(Packet):
    name = "HMAC-SHA256"
    fields_desc = [StrFixedLenField("hmac", b"\0" * 32, 32)]


BODIES = {1: Register, 2: RegisterAck, 3: Bind, 4: RegisterAck, 5: FlowRequest, 6: Decision,
          7: Decision, 8: PolicyPush, 9: PushAck, 10: Keepalive, 11: Keepalive, 12: Sync}
for _type, _body in BODIES.items():
    bind_layers(Header, _body, type=_type)
    bind_layers(_body, Signature)
