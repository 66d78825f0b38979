"""The registered-access control protocol, defined as scapy layers.

Gateways and the authority talk over UDP (port 7400). Every message is::

    Header (32 bytes) | body (by type) | Signature (32 bytes: HMAC-SHA256 of header and body)

These layers are the definition: used to craft test packets, dissect captures (a pcap of a
registration shows that no secret crosses the network) and document the format. Daemons run
the byte-identical ``struct`` codec in ``codec`` because scapy dissects only a few thousand
packets per second; a property test proves both agree. Names of types, reasons and actions
come from the ``IntEnum``s in ``messages``.

    >>> from protocols.registered.wire import *
    >>> pkt = Header(type="FLOW_REQUEST", sender=3, session=1, counter=1, timestamp=2) / \\
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

from .messages import MAGIC, PROTOCOLS, VERSION, Action, Enrol, Reason, Type


def _names(enum) -> dict[int, str]:
    return {int(member): member.name for member in enum}


class Header(Packet):
    name = "splinterlab control header"
    fields_desc = [
        StrFixedLenField("magic", MAGIC, 2),
        ByteField("version", VERSION),
        ByteEnumField("type", 0, _names(Type)),
        IntField("sender", 0),          # gateway id; 0 = the authority
        LongField("session", 0),        # grows with every start of the sender
        IntField("counter", 0),         # the sender's messages in that session
        LongField("timestamp", 0),      # microseconds since the epoch
        ShortField("length", None),     # body length
        XShortField("reserved", 0),
    ]

    def post_build(self, pkt: bytes, pay: bytes) -> bytes:
        if self.length is None:
            body = len(pay) - (len(Signature()) if self.haslayer(Signature) else 0)
            pkt = pkt[:28] + body.to_bytes(2, "big") + pkt[30:]
        return pkt + pay


class ChallengeRequest(Packet):
    name = "challenge request"
    fields_desc = [IntField("request_id", 0), IPField("address", "0.0.0.0"),
                   StrFixedLenField("national_id", b"", 16)]


class Challenge(Packet):
    name = "challenge"
    fields_desc = [IntField("request_id", 0), StrFixedLenField("challenge", b"", 16)]


class Enrolment(Packet):
    name = "enrolment proof"
    fields_desc = [IntField("request_id", 0), ByteEnumField("op", 0, _names(Enrol)),
                   StrFixedLenField("pad", b"", 3), IPField("address", "0.0.0.0"),
                   StrFixedLenField("national_id", b"", 16),
                   StrFixedLenField("challenge", b"", 16), StrFixedLenField("proof", b"", 32)]


class EnrolAck(Packet):
    name = "enrolment answer"
    fields_desc = [IntField("request_id", 0), ByteEnumField("reason", 0, _names(Reason)),
                   StrFixedLenField("pad", b"", 3), IntField("identity", 0)]


class FlowRequest(Packet):
    name = "flow request"
    fields_desc = [IntField("request_id", 0), IPField("src", "0.0.0.0"),
                   IPField("dst", "0.0.0.0"), ByteEnumField("proto", 0, PROTOCOLS),
                   FlagsField("flags", 0, 8, ["inbound", "renewal"]), ShortField("sport", 0),
                   ShortField("dport", 0), IntField("device", 0),
                   StrFixedLenField("token", b"\0" * 16, 16)]


class Decision(Packet):
    name = "grant or deny"
    fields_desc = [IntField("request_id", 0), LongField("gateway_session", 0),
                   IPField("src", "0.0.0.0"), IPField("dst", "0.0.0.0"),
                   ByteEnumField("proto", 0, PROTOCOLS),
                   FlagsField("flags", 0, 8, ["inbound", "renewal"]), ShortField("sport", 0),
                   ShortField("dport", 0),
                   ByteEnumField("reason", 0, _names(Reason)), StrFixedLenField("pad", b"", 3),
                   IntField("ttl_ms", 0), IntField("identity", 0)]


class Item(Packet):
    name = "policy item"
    fields_desc = [IPField("address", "0.0.0.0"), ByteField("length", 32),
                   StrFixedLenField("pad", b"", 3), IntField("identity", 0)]

    def extract_padding(self, s: bytes):
        return b"", s


class Policy(Packet):
    name = "policy change or snapshot part"
    fields_desc = [IntField("seq", 0), ByteEnumField("action", 0, _names(Action)),
                   FlagsField("flags", 0, 8, ["snapshot"]), ShortField("part", 0),
                   ShortField("parts", 1),
                   FieldLenField("count", None, count_of="items", fmt="!H"),
                   PacketListField("items", [], Item, count_from=lambda p: p.count)]


class Applied(Packet):
    name = "applied up to"
    fields_desc = [IntField("seq", 0)]


class Signature(Packet):
    name = "HMAC-SHA256"
    fields_desc = [StrFixedLenField("hmac", b"\0" * 32, 32)]


BODIES = {Type.CHALLENGE_REQUEST: ChallengeRequest, Type.CHALLENGE: Challenge,
          Type.ENROL: Enrolment, Type.ENROL_ACK: EnrolAck, Type.FLOW_REQUEST: FlowRequest,
          Type.GRANT: Decision, Type.DENY: Decision, Type.POLICY: Policy,
          Type.POLICY_ACK: Applied, Type.KEEPALIVE: Applied, Type.KEEPALIVE_ACK: Applied,
          Type.SYNC: Applied}
for _type, _body in BODIES.items():
    bind_layers(Header, _body, type=int(_type))
    bind_layers(_body, Signature)
