"""A small nfnetlink_queue client: bind queues, read queued packets, give verdicts.

The registered-access gateway uses it for the first packet of every flow. It speaks the
kernel's netlink protocol directly (linux/netfilter/nfnetlink_queue.h), with no binding library
to install; the delay path's C program (``topologies/delayd.c``) speaks the same protocol.

Wire layout of a message: nlmsghdr (16 bytes, host order) | nfgenmsg (family, version, queue
number big-endian) | attributes (u16 length, u16 type, value padded to 4 bytes).
"""

from __future__ import annotations

import errno
import os
import socket
import struct
from collections.abc import Iterator

NETLINK_NETFILTER = 12
SO_RCVBUFFORCE = 33
NFNL_SUBSYS_QUEUE = 3
NFQNL_MSG_PACKET, NFQNL_MSG_VERDICT, NFQNL_MSG_CONFIG = 0, 1, 2
NFQA_PACKET_HDR, NFQA_VERDICT_HDR, NFQA_MARK, NFQA_PAYLOAD = 1, 2, 3, 10
NFQA_IFINDEX_INDEV, NFQA_IFINDEX_OUTDEV = 5, 6
NFQA_CFG_CMD, NFQA_CFG_PARAMS, NFQA_CFG_QUEUE_MAXLEN, NFQA_CFG_MASK, NFQA_CFG_FLAGS = 1, 2, 3, 4, 5
NFQNL_CFG_CMD_BIND, NFQNL_CFG_CMD_UNBIND = 1, 2
NFQA_CFG_F_GSO = 1 << 2
COPY_META, COPY_PACKET = 1, 2
NF_DROP, NF_ACCEPT = 0, 1
NLM_F_REQUEST, NLM_F_ACK = 1, 4
NLMSG_ERROR = 2

_NLMSG = struct.Struct("=IHHII")
_NFGEN = struct.Struct("!BBH")
_ATTR = struct.Struct("=HH")
_ID = struct.Struct("!I")
_VERDICT = struct.Struct("!II")
_HEADER = _NLMSG.size + _NFGEN.size
VERDICTS_PER_SEND = 1024  # 32 bytes each: a datagram well within a socket's send buffer


class QueueError(OSError):
    pass


def _attr(kind: int, value: bytes) -> bytes:
    pad = (-len(value)) % 4
    return _ATTR.pack(_ATTR.size + len(value), kind) + value + b"\0" * pad


def _message(msg_type: int, queue: int, attrs: bytes, flags: int = NLM_F_REQUEST,
             seq: int = 0) -> bytes:
    body = _NFGEN.pack(socket.AF_UNSPEC, 0, queue) + attrs
    return _NLMSG.pack(_NLMSG.size + len(body), (NFNL_SUBSYS_QUEUE << 8) | msg_type, flags,
                       seq, 0) + body


class Packet:
    """A queued packet as userspace sees it: queue, id, and what was asked to be copied."""

    __slots__ = ("queue", "id", "payload", "indev", "outdev", "mark")

    def __init__(self, queue: int, packet_id: int):
        self.queue, self.id = queue, packet_id
        self.payload, self.indev, self.outdev, self.mark = b"", 0, 0, 0


def parse_packet(data: memoryview | bytes, start: int, end: int) -> Packet:
    """Parse one NFQNL_MSG_PACKET message occupying data[start:end]."""
    queue = _NFGEN.unpack_from(data, start + _NLMSG.size)[2]
    packet = Packet(queue, 0)
    off = start + _HEADER
    while off + _ATTR.size <= end:
        length, kind = _ATTR.unpack_from(data, off)
        if length < _ATTR.size:
            break
        value = off + _ATTR.size
        kind &= 0x3FFF
        if kind == NFQA_PACKET_HDR:
            packet.id = _ID.unpack_from(data, value)[0]
        elif kind == NFQA_PAYLOAD:
            packet.payload = bytes(data[value:off + length])
        elif kind == NFQA_IFINDEX_INDEV:
            packet.indev = _ID.unpack_from(data, value)[0]
        elif kind == NFQA_IFINDEX_OUTDEV:
            packet.outdev = _ID.unpack_from(data, value)[0]
        elif kind == NFQA_MARK:
            packet.mark = _ID.unpack_from(data, value)[0]
        off += (length + 3) & ~3
    return packet


class QueueSocket:
    """One netlink socket; any number of queues of the current network namespace."""

    def __init__(self, receive_buffer: int = 16 << 20):
        self.sock = socket.socket(socket.AF_NETLINK, socket.SOCK_RAW, NETLINK_NETFILTER)
        self.sock.setsockopt(socket.SOL_SOCKET, SO_RCVBUFFORCE, receive_buffer)
        self.sock.bind((0, 0))
        self.buffer = bytearray(1 << 16)
        self.view = memoryview(self.buffer)
        self.seq = 0
        self.overruns = 0  # times the kernel told us it had to drop (socket buffer full)
        self.verdicts: list[bytes] = []  # given, not sent yet (``flush``)

    def fileno(self) -> int:
        return self.sock.fileno()

    def _request(self, queue: int, attrs: bytes) -> None:
        self.seq += 1
        self.sock.send(_message(NFQNL_MSG_CONFIG, queue, attrs, NLM_F_REQUEST | NLM_F_ACK,
                                self.seq))
        while True:
            n = self.sock.recv_into(self.buffer)
            length, kind, _, seq, _ = _NLMSG.unpack_from(self.buffer, 0)
            if kind == NLMSG_ERROR and seq == self.seq:
                code = -struct.unpack_from("=i", self.buffer, _NLMSG.size)[0]
                if code:
                    raise QueueError(code, f"queue {queue}: {os.strerror(code)}")
                return
            if n == 0 or length == 0:
                raise QueueError(errno.EIO, "no answer from nfnetlink_queue")

    def bind(self, queue: int, copy_mode: int = COPY_META, copy_range: int = 0,
             max_len: int = 65536, gso: bool = True) -> None:
        """Take over ``queue``: fails with EBUSY if another process holds it."""
        self._request(queue, _attr(NFQA_CFG_CMD, struct.pack("!BxH", NFQNL_CFG_CMD_BIND, 0)))
        flags = struct.pack("!I", NFQA_CFG_F_GSO if gso else 0)
        self._request(queue, _attr(NFQA_CFG_PARAMS, struct.pack("!IB", copy_range, copy_mode))
                      + _attr(NFQA_CFG_QUEUE_MAXLEN, struct.pack("!I", max_len))
                      + _attr(NFQA_CFG_MASK, struct.pack("!I", NFQA_CFG_F_GSO))
                      + _attr(NFQA_CFG_FLAGS, flags))

    def receive(self, block: bool = False) -> Iterator[Packet]:
        """Yield queued packets until none is waiting (or one batch if ``block``)."""
        flags = 0 if block else socket.MSG_DONTWAIT
        while True:
            try:
                n = self.sock.recv_into(self.buffer, 0, flags)
            except BlockingIOError:
                return
            except OSError as e:
                if e.errno == errno.ENOBUFS:
                    self.overruns += 1
                    continue
                raise
            off = 0
            while off + _NLMSG.size <= n:
                length, kind = _NLMSG.unpack_from(self.buffer, off)[:2]
                if length < _NLMSG.size:
                    break
                if kind & 0xFF == NFQNL_MSG_PACKET and kind >> 8 == NFNL_SUBSYS_QUEUE:
                    yield parse_packet(self.view, off, off + length)
                off += (length + 3) & ~3
            if block:
                return

    def verdict(self, queue: int, packet_id: int, verdict: int = NF_ACCEPT) -> None:
        """Given with the others of this turn when ``flush``ed: a burst of first packets
        costs a send per ``VERDICTS_PER_SEND`` verdicts, not one each."""
        self.verdicts.append(_message(NFQNL_MSG_VERDICT, queue,
                                      _attr(NFQA_VERDICT_HDR, _VERDICT.pack(verdict, packet_id))))

    def flush(self) -> None:
        """Send the verdicts given since the last flush, several messages a datagram (the
        kernel reads every message of one; one it refuses costs none of the others)."""
        while self.verdicts:
            self.sock.send(b"".join(self.verdicts[:VERDICTS_PER_SEND]))
            del self.verdicts[:VERDICTS_PER_SEND]

    def close(self) -> None:
        self.sock.close()
