"""Datagrams to one address gathered over a turn of a daemon's loop and sent together: each
run of equal size as one send that the kernel cuts into datagrams (UDP GSO), as the
authority's compiled path sends its answers. At a burst of first contacts a gateway asks
thousands of questions a second; a send per question and a netlink message per verdict
were half of its loop."""

from __future__ import annotations

import errno
import socket
import struct

UDP_SEGMENT = 103  # linux/udp.h (Python names it from 3.12 on)
SEGMENTS = 64      # datagrams in one send, at most (the kernel's limit is higher)
# what a kernel or device without UDP GSO answers; anything else (a full buffer, a route gone
# in an outage) is that send's own trouble
GSO_REFUSED = (errno.EINVAL, errno.EIO, errno.EOPNOTSUPP, errno.ENOPROTOOPT)


class Outbox:
    """``add`` keeps a datagram for ``address``; ``flush`` sends what was kept, in order, and
    returns the errno of every datagram the kernel refused (a full buffer: EAGAIN)."""

    def __init__(self, sock: socket.socket, address: tuple[str, int]):
        self.sock, self.address = sock, address
        self.kept: list[bytes] = []
        self.gso = True  # until the kernel refuses it once: then a send each

    def add(self, data: bytes) -> None:
        self.kept.append(data)

    def flush(self) -> list[int]:
        failed: list[int] = []
        kept, self.kept = self.kept, []
        at = 0
        while at < len(kept):
            size = len(kept[at])
            end = at + 1
            while end < len(kept) and end - at < SEGMENTS and len(kept[end]) == size:
                end += 1
            if end - at > 1 and self.gso:
                try:
                    self.sock.sendmsg([b"".join(kept[at:end])], [(
                        socket.SOL_UDP, UDP_SEGMENT, struct.pack("=H", size))], 0,
                        self.address)
                    at = end
                    continue
                except OSError as e:
                    if e.errno in GSO_REFUSED:
                        self.gso = False  # no GSO on this path: one by one from now on
            for data in kept[at:end]:
                try:
                    self.sock.sendto(data, self.address)
                except OSError as e:
                    failed.append(e.errno)
            at = end
        return failed
