"""Set elements added and removed over nf_tables' netlink, without libnftables: the gateway's
grants and denials, thousands a second in a burst of first contacts.

libnftables parses text and, before every transaction, reads the whole table back from the
kernel to check names and types: measured in a router's namespace with the gateway's table,
a transaction of one element cost 186 us of CPU (one of ten, 26 us an element), most of the
gateway's load at 16 000 devices. Here a transaction is one netlink batch of prepacked
messages (begin, NEWSETELEM / DELSETELEM, end), each acknowledged: the kernel applies all of
a batch or none, and says which message it refused. A batch must fit the socket's buffers
(``MAX_CHANGES``: the callers cut larger work into transactions), and acknowledgements carry
no copy of their message (NETLINK_CAP_ACK), so that a batch's acks fit the receive buffer.

A key is the set's concatenation as the kernel stores it: each field in network order, padded
with zeros to four bytes (an address 4, a protocol 1 + 3, a port 2 + 2).
"""

from __future__ import annotations

import socket
import struct
from typing import NamedTuple

NETLINK_NETFILTER = 12
NFNL_SUBSYS_NFTABLES = 10
NFNL_MSG_BATCH_BEGIN, NFNL_MSG_BATCH_END = 16, 17
NFT_MSG_NEWSETELEM, NFT_MSG_DELSETELEM = 12, 14
NFPROTO_INET = 1
NLM_F_REQUEST, NLM_F_ACK, NLM_F_CREATE = 0x1, 0x4, 0x400
NLMSG_ERROR = 2
NLA_F_NESTED = 0x8000
LIST_TABLE, LIST_SET, LIST_ELEMENTS = 1, 2, 3  # NFTA_SET_ELEM_LIST_*
LIST_ELEM = 1  # NFTA_LIST_ELEM
ELEM_KEY, ELEM_TIMEOUT = 1, 4  # NFTA_SET_ELEM_*
DATA_VALUE = 1  # NFTA_DATA_VALUE
HEADER = struct.Struct("=IHHII")  # nlmsghdr: length, type, flags, sequence, port id
NFGEN = struct.Struct("!BBH")  # nfgenmsg: family, version, resource id (network order)
ERROR = struct.Struct("=i")  # nlmsgerr's code, then the message it answers
ACK_WAIT_S = 5.0  # the kernel answers a batch at once; past this, the socket is broken
SOL_NETLINK, NETLINK_CAP_ACK = 270, 10
SO_SNDBUFFORCE, SO_RCVBUFFORCE = 32, 33  # asm-generic/socket.h (Python names neither)
BUFFER = 4 << 20  # both ways (SO_*BUFFORCE: the gateway is root), far above MAX_CHANGES' need
MAX_CHANGES = 1024  # messages a batch, at most (88 bytes each, a 36-byte ack each)
DRAIN_READS = 4096  # reads of what was left, at most: more than a full receive buffer holds


class Change(NamedTuple):
    """One element added (with a timeout in ms, or the set's own) or removed."""
    add: bool
    set: str
    key: bytes
    timeout_ms: int | None = None


def l4_key(src: int, dst: int, proto: int, sport: int, dport: int) -> bytes:
    """A key of ``ipv4_addr . ipv4_addr . inet_proto . inet_service . inet_service``."""
    return struct.pack("!IIB3xH2xH2x", src, dst, proto, sport, dport)


def echo_key(src: int, dst: int, ident: int) -> bytes:
    """A key of ``ip saddr . ip daddr . icmp id``."""
    return struct.pack("!IIH2x", src, dst, ident)


def _attr(kind: int, payload: bytes) -> bytes:
    size = 4 + len(payload)
    return struct.pack("=HH", size, kind) + payload + bytes(-size % 4)


def _nested(kind: int, *attrs: bytes) -> bytes:
    return _attr(kind | NLA_F_NESTED, b"".join(attrs))


class SetWriter:
    """A netlink socket to nf_tables in the caller's namespace, for one table's sets."""

    def __init__(self, table: str, family: int = NFPROTO_INET):
        self.sock = socket.socket(socket.AF_NETLINK, socket.SOCK_RAW, NETLINK_NETFILTER)
        self.sock.bind((0, 0))
        self.sock.setsockopt(socket.SOL_SOCKET, SO_SNDBUFFORCE, BUFFER)
        self.sock.setsockopt(socket.SOL_SOCKET, SO_RCVBUFFORCE, BUFFER)
        self.sock.setsockopt(SOL_NETLINK, NETLINK_CAP_ACK, 1)
        self.table = _attr(LIST_TABLE, table.encode() + b"\0")
        self.family = family
        self.sock.settimeout(ACK_WAIT_S)
        self.seq = 0

    def _message(self, kind: int, flags: int, body: bytes, family: int, res: int = 0) -> bytes:
        self.seq += 1
        payload = NFGEN.pack(family, 0, res) + body
        return HEADER.pack(HEADER.size + len(payload), kind, NLM_F_REQUEST | flags,
                           self.seq, 0) + payload

    def _change(self, change: Change) -> bytes:
        element = [_nested(ELEM_KEY, _attr(DATA_VALUE, change.key))]
        if change.timeout_ms is not None:
            element.append(_attr(ELEM_TIMEOUT, struct.pack("!Q", change.timeout_ms)))
        body = self.table + _attr(LIST_SET, change.set.encode() + b"\0") + _nested(
            LIST_ELEMENTS, _nested(LIST_ELEM, *element))
        kind = NFT_MSG_NEWSETELEM if change.add else NFT_MSG_DELSETELEM
        return self._message(NFNL_SUBSYS_NFTABLES << 8 | kind,
                             NLM_F_ACK | (NLM_F_CREATE if change.add else 0), body, self.family)

    def apply(self, changes: list[Change]) -> list[tuple[Change, int]]:
        """Apply ``changes`` (at most ``MAX_CHANGES``) as one transaction: all or none.
        Returns what the kernel refused, with its errno (empty: all applied). Raises OSError
        when the answer is not known (then the socket is emptied, so that the next batch
        reads its own acks)."""
        if not changes:
            return []
        if len(changes) > MAX_CHANGES:
            raise ValueError(f"{len(changes)} changes in one batch; at most {MAX_CHANGES}")
        try:
            return self._apply(changes)
        except OSError:
            self._drain()
            raise

    def _drain(self) -> None:
        """Read what is left (acks past their wait, an overflow's report) without waiting
        (with a timeout set, Python waits before every read, whatever its flags)."""
        self.sock.settimeout(0)
        try:
            for _ in range(DRAIN_READS):
                try:
                    self.sock.recv(1 << 16)
                except BlockingIOError:
                    return
                except OSError:  # an overflow reported (ENOBUFS): read on
                    continue
        finally:
            self.sock.settimeout(ACK_WAIT_S)

    def _apply(self, changes: list[Change]) -> list[tuple[Change, int]]:
        self.seq %= 1 << 30
        begin = self._message(NFNL_MSG_BATCH_BEGIN, 0, b"", socket.AF_UNSPEC,
                              NFNL_SUBSYS_NFTABLES)
        first = self.seq + 1
        messages = [self._change(c) for c in changes]
        end = self._message(NFNL_MSG_BATCH_END, 0, b"", socket.AF_UNSPEC, NFNL_SUBSYS_NFTABLES)
        self.sock.sendall(begin + b"".join(messages) + end)
        refused, waiting = [], set(range(first, first + len(changes)))
        while waiting:
            data = self.sock.recv(1 << 16)
            offset = 0
            while offset + HEADER.size <= len(data):
                size, kind, _, seq, _ = HEADER.unpack_from(data, offset)
                if kind == NLMSG_ERROR:
                    (code,) = ERROR.unpack_from(data, offset + HEADER.size)
                    if seq in waiting:
                        waiting.discard(seq)
                        if code:
                            refused.append((changes[seq - first], -code))
                    elif code and seq in (first - 1, first + len(changes)):
                        raise OSError(-code, "nf_tables refused the batch itself")
                offset += max(size + -size % 4, HEADER.size)
        return refused
