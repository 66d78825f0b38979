"""The hosts' registration service on a gateway (UDP 7401, host lines only): it relays a
host's request for a challenge and its proof (``identity``) to the authority, and answers once
the host's binding is in force here; each line's relays are on a budget."""

from __future__ import annotations

import contextlib
import ipaddress
import json
import socket
import struct
import time
from dataclasses import dataclass

from . import identity
from .messages import (
    Enrol,
    Type,
)

IP_PKTINFO = 8  # linux/in.h (Python's socket module lacks it before 3.12)
IN_PKTINFO = struct.Struct("i4s4s")
HOST_REQUEST_S = 3.0
HOST_BATCH = 64


@dataclass
class HostRequest:
    op: str
    host: tuple[str, int]
    iface: str
    address: int
    sent: float
    identity: int = 0      # enrolled; answered once the binding is in force



class RegistrationService:
    """Part of ``gateway.Gateway``: the hosts' registration service."""

    def on_host(self) -> None:
        """At most ``HOST_BATCH`` requests a turn of the loop: a farm's thousand addresses,
        each within its rate, must not hold the loop away from packets."""
        for _ in range(HOST_BATCH):
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
            if not self.registrations.spend(socket.if_nametoindex(iface), False,
                                            time.monotonic()):
                self.counters["registration over budget"] += 1  # a farm's thousand addresses
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

