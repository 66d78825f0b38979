"""A minimal DNS A-record lookup over UDP, for daemons that must not use the machine's resolver.

The emulation is closed: ``getaddrinfo`` would read the root file system's resolv.conf and ask
a server outside. Clients inside hosts use ``dig @resolver``; this is for our own daemons.
"""

from __future__ import annotations

import os
import socket
import struct


def query(name: str, qid: int | None = None) -> bytes:
    """An A query for ``name``; ``qid`` (default random) lets a caller match its answers."""
    qid = int.from_bytes(os.urandom(2), "big") if qid is None else qid & 0xFFFF
    labels = b"".join(bytes([len(p)]) + p.encode() for p in name.rstrip(".").split("."))
    return struct.pack("!HHHHHH", qid, 0x0100, 1, 0, 0, 0) + labels + b"\0" + \
        struct.pack("!HH", 1, 1)


def _skip_name(data: bytes, off: int) -> int:
    while True:
        n = data[off]
        if n == 0:
            return off + 1
        if n & 0xC0 == 0xC0:  # compression pointer
            return off + 2
        off += 1 + n


def answer_id(data: bytes) -> int:
    return struct.unpack_from("!H", data)[0]


def parse_a(data: bytes) -> list[str]:
    _, flags, qd, an, _, _ = struct.unpack_from("!HHHHHH", data)
    if flags & 0x000F:  # rcode: NXDOMAIN, SERVFAIL, REFUSED ...
        return []
    off = 12
    for _ in range(qd):
        off = _skip_name(data, off) + 4
    out = []
    for _ in range(an):
        off = _skip_name(data, off)
        rtype, _, _, length = struct.unpack_from("!HHIH", data, off)
        off += 10
        if rtype == 1 and length == 4:
            out.append(socket.inet_ntoa(data[off:off + 4]))
        off += length
    return out


def resolve(name: str, server: str, timeout: float = 2.0) -> list[str]:
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as s:
        s.settimeout(timeout)
        s.sendto(query(name), (server, 53))
        return parse_a(s.recv(4096))
