"""A turn's datagrams sent together: each arrives as its own datagram, whole and in order,
whether the kernel cuts a run of them (UDP GSO) or takes them one by one."""

from __future__ import annotations

import errno
import socket

import pytest

from protocols.registered.datagrams import SEGMENTS, Outbox


def _pair() -> tuple[socket.socket, socket.socket]:
    receiver = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    receiver.bind(("127.0.0.1", 0))
    receiver.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 1 << 20)
    sender = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    sender.setblocking(False)
    return sender, receiver


def _received(receiver: socket.socket, n: int) -> list[bytes]:
    receiver.settimeout(2)
    return [receiver.recv(65536) for _ in range(n)]


class Sends:
    """A socket that records its sends; ``sendmsg`` refuses with ``refuse`` if given."""

    def __init__(self, refuse: int | None = None):
        self.refuse, self.gso, self.plain = refuse, 0, 0

    def sendmsg(self, *_args) -> None:
        if self.refuse:
            raise OSError(self.refuse, "refused")
        self.gso += 1

    def sendto(self, *_args) -> None:
        self.plain += 1


def test_every_datagram_arrives_whole_and_in_order():
    sender, receiver = _pair()
    outbox = Outbox(sender, receiver.getsockname())
    sent = [bytes([k % 251]) * 102 for k in range(2 * SEGMENTS + 5)] + [b"short"] + \
        [b"x" * 102 for _ in range(3)]
    for data in sent:
        outbox.add(data)
    assert outbox.flush() == [] and outbox.gso  # cut by the kernel, not sent one by one
    assert _received(receiver, len(sent)) == sent


def test_a_run_of_equal_datagrams_is_one_send():
    sock = Sends()
    outbox = Outbox(sock, ("127.0.0.1", 9))
    for _ in range(SEGMENTS):
        outbox.add(b"q" * 102)
    outbox.add(b"other size")
    outbox.flush()
    assert (sock.gso, sock.plain) == (1, 1)


@pytest.mark.parametrize("refusal", [errno.EIO, errno.EAGAIN, errno.ENETUNREACH])
def test_a_refused_run_goes_one_by_one_and_gso_is_left_only_if_unsupported(refusal):
    """A full buffer or a route lost in an outage is that send's trouble; only a refusal of
    GSO itself turns it off for good."""
    sock = Sends(refuse=refusal)
    outbox = Outbox(sock, ("127.0.0.1", 9))
    for _ in range(10):
        outbox.add(b"q" * 102)
    outbox.flush()
    assert sock.plain == 10 and outbox.gso == (refusal != errno.EIO)
